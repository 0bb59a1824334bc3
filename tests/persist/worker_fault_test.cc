// A worker that dies in the middle of a round (it holds a task and never
// answers): the round closes at its phase deadline with the quorum, the
// server logs the dropped worker by id, the later rounds go on without it,
// and the result equals a core session fed the same submissions in which
// that worker left after its last one, i.e. with its samples absent from
// the rounds after its death.
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

constexpr int kWorkers = 3;
constexpr int kQuorum = 2;
constexpr int64_t kSteps = 6;
// Short, so the test waits for it once; long enough on a loaded machine
// for the two live workers to answer a round.
constexpr double kDeadlineSeconds = 1.0;
// The dying worker submits this many tasks (ConOpt: 2 per step), then holds
// its next one (a products task of step 2) without answering.
constexpr int64_t kSubmissionsBeforeDeath = 5;

// Collects the server's log lines.
class LogLines {
 public:
  LogSink Sink() {
    return [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  bool Contains(const std::string& a, const std::string& b) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& line : lines_) {
      if (absl::StrContains(line, a) && absl::StrContains(line, b)) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

TEST(WorkerFault, DeadWorkerIsDroppedAtTheDeadlineAndTheRunGoesOnWithout) {
  LogLines log;
  GameOptServerOptions options = testing::TestServerOptions();
  options.log = log.Sink();
  std::unique_ptr<GameOptServer> server = testing::StartServer(options);
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(4);
  v1::SessionConfig config =
      testing::QuadraticConfig(game, v1::CONOPT, kWorkers, kSteps);
  config.set_quorum(kQuorum);
  config.set_phase_deadline_seconds(kDeadlineSeconds);
  absl::StatusOr<std::string> session = testing::CreateSession(*stub, config);
  ASSERT_TRUE(session.ok()) << session.status();

  testing::Recording recording;
  std::vector<testing::WorkerRun> runs(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      auto worker_stub = testing::NewStub(server->port());
      testing::WorkerOptions worker;
      worker.recording = &recording;
      if (w == kWorkers - 1) worker.max_tasks = kSubmissionsBeforeDeath;
      runs[w] = testing::RunWorker(*worker_stub, *session, game, worker);
    });
  }
  for (std::thread& thread : threads) thread.join();
  const int64_t dead = runs[kWorkers - 1].worker_id;
  EXPECT_EQ(runs[kWorkers - 1].submissions, kSubmissionsBeforeDeath);
  EXPECT_EQ(runs[kWorkers - 1].last_task.kind(), v1::PRODUCTS);
  for (int w = 0; w < kWorkers - 1; ++w) {
    EXPECT_TRUE(runs[w].status.ok()) << runs[w].status.error_message();
    EXPECT_EQ(runs[w].last_task.kind(), v1::DONE);
  }
  EXPECT_TRUE(log.Contains(absl::StrCat("worker ", dead, " ("),
                           "dropped from the round"));

  absl::StatusOr<v1::SessionStatus> status =
      testing::GetSession(*stub, *session);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->step(), kSteps);

  // Expected: the dead worker's samples absent from every round after its
  // last submission (it leaves the core session there).
  int64_t last_round = -1;
  for (const auto& [round, entries] : recording.rounds()) {
    for (const auto& entry : entries) {
      if (entry.worker_id == dead) last_round = round;
    }
  }
  ASSERT_EQ(last_round, kSubmissionsBeforeDeath - 1);
  absl::StatusOr<v1::GetParametersResponse> wire =
      testing::GetParameters(*stub, *session);
  ASSERT_TRUE(wire.ok()) << wire.status();
  v1::SessionConfig no_deadline = config;
  no_deadline.set_phase_deadline_seconds(-1);
  absl::StatusOr<ParametersSnapshot> expected =
      testing::Replay(no_deadline, recording, kWorkers, /*shuffle_seed=*/1,
                      [&](Session& core, int64_t round) {
                        if (round == last_round) {
                          EXPECT_TRUE(core.Leave(dead).ok());
                        }
                      });
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(expected->step, kSteps);
  EXPECT_EQ(testing::VectorBytes(wire->params()),
            testing::FlatBytes(*expected->values));

  // The dead worker can come back under its id (the session is done, so
  // its task is DONE).
  v1::TaskResponse rejoined;
  grpc::Status join = testing::Join(*stub, *session, &rejoined, dead);
  EXPECT_TRUE(join.ok()) << join.error_message();
  EXPECT_EQ(rejoined.task().kind(), v1::DONE);
}

}  // namespace
}  // namespace gameopt
