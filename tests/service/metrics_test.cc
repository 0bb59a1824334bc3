// The metrics (GetMetrics, /metrics) through a real server on 127.0.0.1:
// GetMetrics after steps played by real workers, the bytes it counts against
// the payload sizes a worker sent and received, and the Prometheus endpoint
// scraped over HTTP and parsed (text exposition format 0.0.4).
#include "server/core/metrics.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/service/prometheus_exporter.h"
#include "tests/service/http_get.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

// prometheus-cpp prints doubles with 16 significant digits (one short of
// a round trip): relative error up to 5e-16.
constexpr double kPrintedRelative = 1e-15;

void ExpectPrinted(double printed, double value) {
  EXPECT_NEAR(printed, value, kPrintedRelative * std::abs(value));
}

// One sample line: name{label="value",...} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The text exposition format: "# HELP/TYPE" lines and samples. Fails the
// test on a line it cannot parse; `types` gets each family's TYPE.
std::vector<Sample> ParseExposition(const std::string& text,
                                    std::map<std::string, std::string>* types) {
  std::vector<Sample> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      EXPECT_EQ(parts.size(), 2u) << line;
      if (parts.size() == 2) (*types)[parts[0]] = parts[1];
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;
    Sample sample;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) {
      ADD_FAILURE() << "no value: " << line;
      continue;
    }
    if (brace != absl::string_view::npos && brace < space) {
      sample.name = std::string(line.substr(0, brace));
      const size_t close = line.rfind('}');
      // Our label values hold no '"' or ',': a plain split suffices.
      for (absl::string_view pair :
           absl::StrSplit(line.substr(brace + 1, close - brace - 1), ',',
                          absl::SkipEmpty())) {
        const size_t eq = pair.find("=\"");
        if (eq == absl::string_view::npos || !absl::EndsWith(pair, "\"")) {
          ADD_FAILURE() << "bad label: " << line;
          continue;
        }
        sample.labels[std::string(pair.substr(0, eq))] =
            std::string(pair.substr(eq + 2, pair.size() - eq - 3));
      }
    } else {
      sample.name = std::string(line.substr(0, space));
    }
    const absl::string_view value = line.substr(space + 1);
    if (value == "Nan" || value == "NaN") {
      sample.value = std::nan("");
    } else if (value == "+Inf") {
      sample.value = std::numeric_limits<double>::infinity();
    } else {
      EXPECT_TRUE(absl::SimpleAtod(value, &sample.value)) << line;
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The samples named `name` whose labels include `labels`.
std::vector<Sample> Find(const std::vector<Sample>& samples,
                         const std::string& name,
                         const std::map<std::string, std::string>& labels) {
  std::vector<Sample> found;
  for (const Sample& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = sample.labels.find(key);
      match &= it != sample.labels.end() && it->second == value;
    }
    if (match) found.push_back(sample);
  }
  return found;
}

// The one sample named `name` with `labels`, or NaN (and a failure).
double Value(const std::vector<Sample>& samples, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  const std::vector<Sample> found = Find(samples, name, labels);
  EXPECT_EQ(found.size(), 1u) << name;
  return found.size() == 1 ? found[0].value : std::nan("");
}

absl::StatusOr<v1::GetMetricsResponse> GetMetrics(
    v1::GameOptimizer::Stub& stub, const std::string& session_id) {
  v1::GetMetricsRequest request;
  request.set_session_id(session_id);
  v1::GetMetricsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::Status status = stub.GetMetrics(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

// A server with the metrics endpoint and one ConOpt session of two workers
// played for kSteps steps by two real worker threads.
class MetricsTest : public ::testing::Test {
 protected:
  static constexpr int kSteps = 6;

  void SetUp() override {
    GameOptServerOptions options = TestServerOptions();
    options.metrics_address = "127.0.0.1:0";
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(server_->metrics_port(), 0);
    stub_ = NewStub(server_->port());
  }

  std::string PlayConOpt() {
    v1::SessionConfig config = QuadraticConfig(game_, v1::CONOPT, 2, kSteps);
    config.set_name("metrics-test");
    return Play(config);
  }

  // Plays `config` to its end with two real worker threads.
  std::string Play(const v1::SessionConfig& config) {
    absl::StatusOr<std::string> id = CreateSession(*stub_, config);
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::thread> threads;
    for (int w = 0; w < 2; ++w) {
      threads.emplace_back([&, w] {
        auto stub = NewStub(server_->port());
        WorkerOptions options;
        options.name = absl::StrCat("w", w);
        const WorkerRun run = RunWorker(*stub, *id, game_, options);
        EXPECT_TRUE(run.status.ok()) << run.status.error_message();
      });
    }
    for (std::thread& t : threads) t.join();
    return id.value_or("");
  }

  const QuadraticGame game_ = QuadraticGame::TwoPlayer(5);
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(MetricsTest, GetMetricsReportsTheStepsPlayedByRealWorkers) {
  const std::string id = PlayConOpt();
  absl::StatusOr<v1::GetMetricsResponse> all = GetMetrics(*stub_, "");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->sessions_size(), 1);
  const v1::SessionMetrics& m = all->sessions(0);
  EXPECT_EQ(m.session_id(), id);
  EXPECT_EQ(m.name(), "metrics-test");
  EXPECT_EQ(m.algorithm(), "conopt");
  EXPECT_EQ(m.step(), kSteps);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.workers_per_round(), 2);
  EXPECT_EQ(m.workers_active(), 2);
  ASSERT_EQ(m.players_size(), 2);
  EXPECT_EQ(m.players(0), "gen");
  ASSERT_EQ(m.xi_norm_size(), 2);
  EXPECT_GT(m.xi_norm(0), 0);
  EXPECT_DOUBLE_EQ(m.loss(), 0.5 * (m.xi_norm(0) * m.xi_norm(0) +
                                    m.xi_norm(1) * m.xi_norm(1)));
  EXPECT_GT(m.correction_norm(), 0);
  EXPECT_GT(m.steps_per_second(), 0);
  ASSERT_EQ(m.phase_latency_size(), 2);
  EXPECT_EQ(m.phase_latency(0).phase_label(), "gradient");
  EXPECT_EQ(m.phase_latency(1).phase_label(), "consensus");
  for (const v1::PhaseLatency& phase : m.phase_latency()) {
    EXPECT_EQ(phase.rounds(), kSteps);
    EXPECT_GE(phase.total_seconds(), phase.max_seconds());
    EXPECT_GE(phase.max_seconds(), phase.last_seconds());
  }
  // Every round of two submitters closed on one of them.
  ASSERT_EQ(m.workers_size(), 2);
  EXPECT_EQ(m.workers(0).last_to_submit_rounds() +
                m.workers(1).last_to_submit_rounds(),
            2 * kSteps);
  EXPECT_EQ(m.workers(0).missed_rounds(), 0);
  for (const v1::WorkerMetrics& w : m.workers()) {  // the enum and its name
    EXPECT_NE(w.worker_state(), v1::WORKER_STATE_UNSPECIFIED);
    EXPECT_EQ(w.worker_state() == v1::WORKER_STATE_ACTIVE,
              w.state() == "active");
  }
  EXPECT_GT(m.bytes_received(), 0);
  EXPECT_GT(m.bytes_sent(), 0);

  absl::StatusOr<v1::GetMetricsResponse> one = GetMetrics(*stub_, id);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->sessions(0).step(), kSteps);
  EXPECT_EQ(GetMetrics(*stub_, "nope").status().code(),
            absl::StatusCode::kNotFound);
}

// CGD's products rounds, Krylov iterations and residual of the last step,
// in GetSession, GetMetrics and on /metrics alike; the round count follows
// the solver (rhs, warm start, two per iteration, response).
TEST_F(MetricsTest, CgdRoundsAreShownEverywhere) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::CGD, 2, kSteps);
  config.mutable_algorithm()->set_cgd_tolerance(1e-10);
  const std::string id = Play(config);
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, id);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_GE(status->cgd_iterations(), 1);
  EXPECT_EQ(status->cgd_rounds(), 1 + 2 + 2 * status->cgd_iterations() + 1);
  EXPECT_LT(status->cgd_residual(), 1e-10);
  absl::StatusOr<v1::GetMetricsResponse> metrics = GetMetrics(*stub_, id);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const v1::SessionMetrics& m = metrics->sessions(0);
  EXPECT_EQ(m.algorithm(), "cgd");
  EXPECT_EQ(m.cgd_rounds(), status->cgd_rounds());
  EXPECT_EQ(m.cgd_iterations(), status->cgd_iterations());
  EXPECT_EQ(m.cgd_residual(), status->cgd_residual());
  std::set<std::string> labels;
  for (const v1::PhaseLatency& p : m.phase_latency()) {
    labels.insert(p.phase_label());
  }
  EXPECT_EQ(labels,
            (std::set<std::string>{"gradient", "cgd: rhs", "cgd: warm start",
                                   "cgd: krylov", "cgd: response"}));
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples =
      ParseExposition(HttpGet(server_->metrics_port(), "/metrics"), &types);
  EXPECT_EQ(types["gameopt_cgd_rounds"], "gauge");
  EXPECT_EQ(Value(samples, "gameopt_cgd_rounds", {{"session", id}}),
            status->cgd_rounds());
  EXPECT_EQ(Value(samples, "gameopt_cgd_iterations", {{"session", id}}),
            status->cgd_iterations());
}

TEST_F(MetricsTest, SosPIsShownEverywhere) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SOS, 2, kSteps);
  config.mutable_algorithm()->set_sos_b(0.9);
  const std::string id = Play(config);
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, id);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_GT(status->sos_p(), 0.0);
  EXPECT_LE(status->sos_p(), 1.0);
  absl::StatusOr<v1::GetMetricsResponse> metrics = GetMetrics(*stub_, id);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->sessions(0).algorithm(), "sos");
  EXPECT_EQ(metrics->sessions(0).sos_p(), status->sos_p());
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples =
      ParseExposition(HttpGet(server_->metrics_port(), "/metrics"), &types);
  EXPECT_EQ(types["gameopt_sos_p"], "gauge");
  EXPECT_EQ(Value(samples, "gameopt_sos_p", {{"session", id}}),
            status->sos_p());
}

TEST_F(MetricsTest, BytesMatchThePayloadSizesSentAndReceived) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 3);
  absl::StatusOr<std::string> id = CreateSession(*stub_, config);
  ASSERT_TRUE(id.ok()) << id.status();
  int64_t sent = 0, received = 0;  // as the worker sees them
  v1::JoinSessionRequest join;
  join.set_session_id(*id);
  join.set_worker_name("counted");
  v1::TaskResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->JoinSession(&context, join, &response).ok());
  }
  sent += join.ByteSizeLong();
  received += response.ByteSizeLong();
  Eigen::VectorXd x = DecodeVector(game_, response.task().params());
  while (response.task().kind() != v1::DONE) {
    const v1::SubmitGradientRequest request =
        GradientRequest(game_, *id, response.worker_id(), response.task(), x);
    response.Clear();
    ASSERT_TRUE(Submit(*stub_, request, &response).ok());
    sent += request.ByteSizeLong();
    received += response.ByteSizeLong();
    if (response.task().params_included()) {
      x = DecodeVector(game_, response.task().params());
    }
  }
  absl::StatusOr<v1::GetParametersResponse> params = GetParameters(*stub_, *id);
  ASSERT_TRUE(params.ok());
  v1::GetParametersRequest params_request;
  params_request.set_session_id(*id);
  sent += params_request.ByteSizeLong();
  received += params->ByteSizeLong();

  absl::StatusOr<v1::GetMetricsResponse> metrics = GetMetrics(*stub_, *id);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->sessions(0).bytes_received(), sent);
  EXPECT_EQ(metrics->sessions(0).bytes_sent(), received);
}

// Reported scalars, over the raw submit path: each step's mean by name
// shows in GetSession, GetMetrics and the Prometheus endpoint, with each
// player's scheduled learning rate.
TEST_F(MetricsTest, ReportedScalarsAndLearningRatesAreShownEverywhere) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 3);
  v1::LearningRateSchedule* schedule =
      config.mutable_players(1)->mutable_optimizer()->mutable_schedule();
  schedule->set_kind(v1::LearningRateSchedule::EXPONENTIAL);
  schedule->set_gamma(0.5);
  absl::StatusOr<std::string> id = CreateSession(*stub_, config);
  ASSERT_TRUE(id.ok()) << id.status();
  v1::TaskResponse tasks[2];
  for (auto& task : tasks) ASSERT_TRUE(Join(*stub_, *id, &task).ok());
  Eigen::VectorXd x[2] = {game_.x0(), game_.x0()};
  for (int64_t step = 0; step < 3; ++step) {
    std::vector<std::unique_ptr<AsyncCall>> calls;
    for (int w = 0; w < 2; ++w) {
      if (tasks[w].task().params_included()) {
        x[w] = DecodeVector(game_, tasks[w].task().params());
      }
      v1::SubmitGradientRequest request = GradientRequest(
          game_, *id, tasks[w].worker_id(), tasks[w].task(), x[w]);
      v1::Scalar* loss = request.add_scalars();
      loss->set_name("loss/gen");
      loss->set_value(static_cast<double>(10 * step + w));
      if (w == 1) {
        v1::Scalar* only = request.add_scalars();
        only->set_name("w1:acc");
        only->set_value(0.25);
      }
      calls.push_back(SubmitAsync(*stub_, std::move(request)));
    }
    for (int w = 0; w < 2; ++w) {
      calls[w]->done.WaitForNotification();
      ASSERT_TRUE(calls[w]->status.ok()) << calls[w]->status.error_message();
      tasks[w] = calls[w]->response;
    }
  }
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, *id);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->scalars_size(), 2);
  EXPECT_EQ(status->scalars(0).name(), "loss/gen");
  EXPECT_EQ(status->scalars(0).value(), 20.5);
  EXPECT_EQ(status->scalars(1).name(), "w1:acc");
  EXPECT_EQ(status->scalars(1).value(), 0.25);
  absl::StatusOr<v1::GetMetricsResponse> metrics = GetMetrics(*stub_, *id);
  ASSERT_TRUE(metrics.ok());
  const v1::SessionMetrics& m = metrics->sessions(0);
  ASSERT_EQ(m.scalars_size(), 2);
  EXPECT_EQ(m.scalars(0).value(), 20.5);
  ASSERT_EQ(m.learning_rate_size(), 2);
  const double lr0 = config.players(0).optimizer().learning_rate();
  const double lr1 = config.players(1).optimizer().learning_rate();
  EXPECT_EQ(m.learning_rate(0), lr0);
  EXPECT_EQ(m.learning_rate(1), lr1 * 0.125);  // 0.5^3 after 3 steps

  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(text, &types);
  EXPECT_EQ(types["gameopt_session_scalar"], "gauge");
  EXPECT_EQ(Value(samples, "gameopt_session_scalar",
                  {{"session", *id}, {"name", "loss/gen"}}),
            20.5);
  EXPECT_EQ(Value(samples, "gameopt_session_scalar",
                  {{"session", *id}, {"name", "w1:acc"}}),
            0.25);
  ExpectPrinted(Value(samples, "gameopt_learning_rate",
                      {{"session", *id}, {"player", "disc"}}),
                lr1 * 0.125);
}

TEST_F(MetricsTest, BadScalarsAndResumeByNameOverTheWire) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 3);
  absl::StatusOr<std::string> id = CreateSession(*stub_, config);
  ASSERT_TRUE(id.ok()) << id.status();
  v1::TaskResponse task;
  ASSERT_TRUE(Join(*stub_, *id, &task, 0, "rank0").ok());
  v1::SubmitGradientRequest request =
      GradientRequest(game_, *id, task.worker_id(), task.task(), game_.x0());
  request.add_scalars()->set_name("bad name");
  v1::TaskResponse response;
  grpc::Status bad = Submit(*stub_, request, &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("scalars[0].name"), std::string::npos)
      << bad.error_message();
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, *id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->submitted(), 0);

  // A restarted process with the same name gets its old id back.
  v1::JoinSessionRequest join;
  join.set_session_id(*id);
  join.set_worker_name("rank0");
  join.set_resume_by_name(true);
  v1::TaskResponse again;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->JoinSession(&context, join, &again).ok());
  EXPECT_EQ(again.worker_id(), task.worker_id());
  EXPECT_EQ(again.task().round(), task.task().round());
}

TEST_F(MetricsTest, ScrapedEndpointAgreesWithGetMetricsAndForgetsDeleted) {
  const std::string id = PlayConOpt();
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_FALSE(text.empty());
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(text, &types);
  absl::StatusOr<v1::GetMetricsResponse> got = GetMetrics(*stub_, id);
  ASSERT_TRUE(got.ok()) << got.status();
  const v1::SessionMetrics& m = got->sessions(0);

  EXPECT_EQ(types["gameopt_step"], "gauge");
  EXPECT_EQ(types["gameopt_phase_latency_seconds"], "histogram");
  EXPECT_EQ(types["gameopt_bytes_sent_total"], "counter");
  EXPECT_EQ(types["gameopt_straggler_rounds_total"], "counter");
  const std::map<std::string, std::string> session = {{"session", id}};
  EXPECT_EQ(Value(samples, "gameopt_sessions", {}), 1);
  EXPECT_EQ(
      Value(
          samples, "gameopt_session_info",
          {{"session", id}, {"algorithm", "conopt"}, {"name", "metrics-test"}}),
      1);
  EXPECT_EQ(Value(samples, "gameopt_step", session), kSteps);
  EXPECT_EQ(Value(samples, "gameopt_done", session), 1);
  ExpectPrinted(
      Value(samples, "gameopt_xi_norm", {{"session", id}, {"player", "gen"}}),
      m.xi_norm(0));
  ExpectPrinted(
      Value(samples, "gameopt_xi_norm", {{"session", id}, {"player", "disc"}}),
      m.xi_norm(1));
  ExpectPrinted(Value(samples, "gameopt_loss", session), m.loss());
  ExpectPrinted(Value(samples, "gameopt_correction_norm", session),
                m.correction_norm());
  EXPECT_EQ(Value(samples, "gameopt_workers_active", session), 2);
  EXPECT_EQ(Value(samples, "gameopt_bytes_received_total", session),
            m.bytes_received());
  EXPECT_EQ(Value(samples, "gameopt_bytes_sent_total", session),
            m.bytes_sent());
  // Done: the rate no longer moves, so both reads agree.
  ExpectPrinted(Value(samples, "gameopt_steps_per_second", session),
                m.steps_per_second());
  for (const v1::PhaseLatency& phase : m.phase_latency()) {
    const std::map<std::string, std::string> labels = {
        {"session", id}, {"phase", phase.phase_label()}};
    EXPECT_EQ(Value(samples, "gameopt_phase_latency_seconds_count", labels),
              phase.rounds());
    ExpectPrinted(Value(samples, "gameopt_phase_latency_seconds_sum", labels),
                  phase.total_seconds());
    const std::vector<Sample> buckets =
        Find(samples, "gameopt_phase_latency_seconds_bucket", labels);
    ASSERT_EQ(buckets.size(), kLatencyBucketBounds.size() + 1);
    EXPECT_EQ(buckets.back().labels.at("le"), "+Inf");
    EXPECT_EQ(buckets.back().value, phase.rounds());
    for (size_t b = 1; b < buckets.size(); ++b) {
      EXPECT_GE(buckets[b].value, buckets[b - 1].value) << "not cumulative";
    }
  }
  for (const v1::WorkerMetrics& worker : m.workers()) {
    const std::map<std::string, std::string> labels = {
        {"session", id},
        {"worker", absl::StrCat(worker.worker_id())},
        {"worker_name", worker.name()}};
    EXPECT_EQ(Value(samples, "gameopt_straggler_rounds_total", labels),
              worker.last_to_submit_rounds());
    EXPECT_EQ(Value(samples, "gameopt_missed_rounds_total", labels), 0);
  }

  v1::DeleteSessionRequest request;
  request.set_session_id(id);
  v1::DeleteSessionResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->DeleteSession(&context, request, &response).ok());
  const std::vector<Sample> after =
      ParseExposition(HttpGet(server_->metrics_port(), "/metrics"), &types);
  EXPECT_EQ(Value(after, "gameopt_sessions", {}), 0);
  for (const Sample& sample : after) {
    EXPECT_EQ(sample.labels.count("session"), 0u)
        << sample.name << " of a deleted session";
  }
}

// Slow clients: clients that send half a request and wait hold one
// HTTP thread each until the request timeout; a scrape meanwhile is
// answered at once.
TEST(MetricsServer, SlowClientsDoNotBlockAScrape) {
  GameOptServerOptions options = TestServerOptions();
  options.metrics_address = "127.0.0.1:0";
  std::unique_ptr<GameOptServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  std::vector<int> slow;
  for (int i = 0; i < kMetricsThreads - 1; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server->metrics_port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    ASSERT_EQ(write(fd, half.data(), half.size()),
              static_cast<ssize_t>(half.size()));
    slow.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(200));  // the slow ones are served first
  const absl::Time start = absl::Now();
  const std::string text = HttpGet(server->metrics_port(), "/metrics");
  const absl::Duration took = absl::Now() - start;
  EXPECT_NE(text.find("# TYPE"), std::string::npos) << text;
  // Far below the request timeout the slow clients are held to.
  EXPECT_LT(took, absl::Milliseconds(kMetricsRequestTimeoutMs) / 2) << took;
  for (int fd : slow) close(fd);
  server->Shutdown();
}

TEST(MetricsServer, AMetricsAddressInUseFailsStartClearly) {
  GameOptServerOptions first_options = TestServerOptions();
  first_options.metrics_address = "127.0.0.1:0";
  std::unique_ptr<GameOptServer> first = StartServer(first_options);
  ASSERT_NE(first, nullptr);
  GameOptServerOptions options = TestServerOptions();
  options.metrics_address = absl::StrCat("127.0.0.1:", first->metrics_port());
  GameOptServer second(options);
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("metrics"), absl::string_view::npos);
}

}  // namespace
}  // namespace gameopt::testing
