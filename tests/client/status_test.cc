// `gameopt_client status` (client/status.h): the table's formatting from a
// hand-made GetMetricsResponse, and RunStatus against a live server after a
// game played by the reference client. (The binary: tests/e2e.)
#include "client/status.h"

#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "client/play.h"
#include "client/worker/worker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/server.h"
#include "tests/client/local_server.h"

namespace gameopt {
namespace {

using ::testing::HasSubstr;

// What `out` received, for RunStatus.
class CapturedFile {
 public:
  CapturedFile() : file_(std::tmpfile()) {}
  ~CapturedFile() { std::fclose(file_); }
  std::FILE* get() { return file_; }
  std::string Text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) {
      text.append(buffer, n);
    }
    return text;
  }

 private:
  std::FILE* file_;
};

v1::GetMetricsResponse TwoSessions() {
  v1::GetMetricsResponse response;
  v1::SessionMetrics* a = response.add_sessions();
  a->set_session_id("s1");
  a->set_name("mog-conopt");
  a->set_algorithm("conopt");
  a->set_step(120);
  a->set_max_steps(500);
  a->set_phase_label("consensus");
  a->set_workers_active(3);
  a->set_workers_per_round(4);
  a->add_players("gen");
  a->add_players("disc");
  a->add_xi_norm(0.125);
  a->add_xi_norm(2.5);
  a->set_loss(3.1328125);
  a->set_correction_norm(0.75);
  a->set_gamma(0.8);
  for (int64_t step : {0, 40}) {
    v1::GammaChange* change = a->add_gamma_trajectory();
    change->set_step(step);
    change->set_reason(step == 0 ? "cancellation" : "spectrum");
  }
  a->set_steps_per_second(812.34);
  a->set_bytes_received(3 << 20);
  a->set_bytes_sent(1536);
  a->add_learning_rate(0.001);
  a->add_learning_rate(0.002);
  v1::Scalar* loss = a->add_scalars();
  loss->set_name("loss/gen");
  loss->set_value(0.6931);
  for (int w = 1; w <= 2; ++w) {
    v1::WorkerMetrics* worker = a->add_workers();
    worker->set_name("w" + std::to_string(w));
    worker->set_last_to_submit_rounds(w * 10);
    worker->set_missed_rounds(w == 2 ? 3 : 0);
  }
  v1::SessionMetrics* b = response.add_sessions();
  b->set_session_id("s2");
  b->set_algorithm("simgd");
  b->set_step(7);
  b->set_done(true);
  b->set_workers_per_round(1);
  return response;
}

TEST(StatusTable, OneAlignedRowPerSessionUnderAHeader) {
  const std::string table = StatusTable(TwoSessions());
  const std::vector<std::string> lines =
      absl::StrSplit(table, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_TRUE(absl::StartsWith(lines[0], "session  name        algorithm"))
      << lines[0];
  // Every column starts where its header does.
  for (const char* header : {"algorithm", "step", "workers", "L ", "in "}) {
    const size_t column = lines[0].find(header);
    ASSERT_NE(column, std::string::npos) << header;
    EXPECT_NE(lines[1][column], ' ') << header << "\n" << table;
    EXPECT_EQ(lines[1][column - 1], ' ') << header << "\n" << table;
  }
  EXPECT_THAT(lines[1], HasSubstr("mog-conopt"));
  EXPECT_THAT(lines[1], HasSubstr("120/500"));
  EXPECT_THAT(lines[1], HasSubstr("consensus"));
  EXPECT_THAT(lines[1], HasSubstr("3/4"));
  EXPECT_THAT(lines[1], HasSubstr("gen=1.25e-01 disc=2.50e+00"));
  EXPECT_THAT(lines[1], HasSubstr("3.13"));
  EXPECT_THAT(lines[1], HasSubstr("0.75"));
  EXPECT_THAT(lines[1], HasSubstr("812.3"));
  EXPECT_THAT(lines[1], HasSubstr("3.0 MiB"));
  EXPECT_THAT(lines[1], HasSubstr("1.5 KiB"));
  EXPECT_THAT(lines[1], HasSubstr("gen=0.001 disc=0.002"));
  EXPECT_THAT(lines[1], HasSubstr("loss/gen=0.693"));
  EXPECT_THAT(lines[1],
              HasSubstr("0.8 (2 changes, last at step 40: spectrum)"));
  EXPECT_THAT(lines[2], HasSubstr("simgd"));
  EXPECT_TRUE(absl::EndsWith(lines[1], "w2:20 missed 3")) << lines[1];
  EXPECT_THAT(lines[2], HasSubstr("7 done"));
  EXPECT_TRUE(absl::EndsWith(lines[2], "-")) << lines[2];
}

// Dropped workers are listed by name, read from WorkerMetrics.worker_state,
// or from the string an older server sends alone.
TEST(StatusTable, ListsDroppedWorkersByEnumOrByTheOlderString) {
  v1::GetMetricsResponse response;
  v1::SessionMetrics* m = response.add_sessions();
  m->set_session_id("s1");
  m->set_algorithm("simgd");
  m->set_workers_per_round(4);
  auto add = [&](const char* name, const char* state,
                 v1::WorkerState worker_state) {
    v1::WorkerMetrics* w = m->add_workers();
    w->set_name(name);
    w->set_state(state);
    w->set_worker_state(worker_state);
  };
  add("new-dropped", "dropped", v1::WORKER_STATE_DROPPED);
  add("new-active", "active", v1::WORKER_STATE_ACTIVE);
  add("old-dropped", "dropped", v1::WORKER_STATE_UNSPECIFIED);
  add("old-left", "left", v1::WORKER_STATE_UNSPECIFIED);
  const std::string table = StatusTable(response);
  EXPECT_THAT(table, HasSubstr("dropped new-dropped,old-dropped")) << table;
}

TEST(StatusTable, SaysSoWhenThereAreNoSessions) {
  EXPECT_EQ(StatusTable(v1::GetMetricsResponse()), "no sessions\n");
}

TEST(HumanBytes, PicksTheLargestUnitBelow1024) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(int64_t{5} << 30), "5.0 GiB");
}

class StatusAgainstServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartLocalServer();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::GameOptimizer::NewStub(MakeChannel(server_->address()));
  }

  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(StatusAgainstServerTest, ShowsAPlayedSessionOnceAndRedrawsWithWatch) {
  PlayConfig config;
  config.game = "bilinear";
  config.session.algorithm = "conopt";
  config.session.learning_rate = 0.2;
  config.session.workers = 2;
  config.steps = 40;
  config.server = server_->address();
  config.live = false;
  config.keep_session = true;
  absl::StatusOr<PlayResult> played = Play(config);
  ASSERT_TRUE(played.ok()) << played.status();

  CapturedFile once;
  ASSERT_TRUE(RunStatus(*stub_, StatusOptions(), once.get()).ok());
  const std::string table = once.Text();
  const std::vector<std::string> lines =
      absl::StrSplit(table, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_TRUE(absl::StartsWith(lines[1], played->session_id + " ")) << lines[1];
  EXPECT_THAT(lines[1], HasSubstr("conopt"));
  EXPECT_THAT(lines[1], HasSubstr("40/40 done"));
  EXPECT_THAT(lines[1], HasSubstr("2/2"));
  EXPECT_THAT(lines[1], HasSubstr("x="));
  EXPECT_THAT(lines[1], HasSubstr("worker-"));  // the straggler column

  StatusOptions watch;
  watch.watch = absl::Milliseconds(10);
  watch.count = 3;
  CapturedFile watched;
  ASSERT_TRUE(RunStatus(*stub_, watch, watched.get()).ok());
  const std::string text = watched.Text();
  size_t redraws = 0;
  for (size_t at = text.find("\033[H\033[2J"); at != std::string::npos;
       at = text.find("\033[H\033[2J", at + 1)) {
    ++redraws;
  }
  EXPECT_EQ(redraws, 3u) << text;
}

TEST_F(StatusAgainstServerTest, AnUnreachableServerIsAnError) {
  server_->Shutdown();
  StatusOptions options;
  options.rpc_deadline = absl::Seconds(2);
  CapturedFile out;
  EXPECT_FALSE(RunStatus(*stub_, options, out.get()).ok());
}

}  // namespace
}  // namespace gameopt
