// Input hardening, table by table: every kind of bad input to every RPC,
// sent to a real server on 127.0.0.1 through real stubs. Each row checks
// the status code and that the message names the field; after each row
// every session's status and parameters are byte-identical to before (the
// bad request touched nothing), and a valid round afterwards leaves the
// session exactly where the same valid rounds leave a clean session.
//
// errors_test.cc shows one example per status code; this file is the
// exhaustive list. The tests at the end are gaps this table found, kept as
// regression tests.
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

// The fixture's server limit, small so that an oversized message is cheap.
constexpr int kMaxMessageMb = 1;
// Deadline of a row's call: a bad request that is wrongly accepted waits at
// the barrier, and this turns the hang into a failure.
constexpr absl::Duration kRowDeadline = absl::Seconds(5);

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

std::chrono::system_clock::time_point RowDeadline() {
  return std::chrono::system_clock::now() +
         absl::ToChronoMilliseconds(kRowDeadline);
}

// ---- Everything a client can observe of the server ----------------------

// Every session's status and parameters in text format (so that a failure
// shows a readable diff): equal strings mean nothing observable changed.
// Text format prints doubles with enough digits to round-trip.
std::string Snapshot(v1::GameOptimizer::Stub& stub) {
  grpc::ClientContext context;
  v1::ListSessionsResponse list;
  grpc::Status status =
      stub.ListSessions(&context, v1::ListSessionsRequest(), &list);
  if (!status.ok()) return "ListSessions failed: " + status.error_message();
  for (v1::SessionStatus& session : *list.mutable_sessions()) {
    for (v1::WorkerStatus& w : *session.mutable_workers()) {
      w.clear_idle_seconds();  // the clock's, not the request's
    }
  }
  std::string out = list.DebugString();
  for (const v1::SessionStatus& session : list.sessions()) {
    absl::StatusOr<v1::GetParametersResponse> params =
        GetParameters(stub, session.session_id());
    out += params.ok() ? params->DebugString()
                       : std::string(params.status().message());
  }
  return out;
}

// ---- A session and its workers, driven with valid requests ----------------

// A thread joined when it goes out of scope, so that a failed ASSERT while
// it runs ends the test instead of std::terminate.
class Background {
 public:
  Background() = default;
  explicit Background(std::function<void()> run) : thread_(std::move(run)) {}
  Background(Background&&) = default;
  Background& operator=(Background&&) = default;
  ~Background() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

class Scenario {
 public:
  Scenario(v1::GameOptimizer::Stub& stub, const QuadraticGame& game,
           v1::SessionConfig config)
      : stub_(stub), game_(game), config_(std::move(config)) {}

  // Creates the session and joins workers_per_round workers.
  void Create() {
    absl::StatusOr<std::string> id = CreateSession(stub_, config_);
    ASSERT_TRUE(id.ok()) << id.status();
    id_ = *id;
    workers_.resize(config_.workers_per_round());
    for (Worker& w : workers_) {
      v1::TaskResponse response;
      grpc::Status status = Join(stub_, id_, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      w.id = response.worker_id();
      Take(w, response);
    }
  }

  const std::string& id() const { return id_; }
  const v1::SessionConfig& config() const { return config_; }
  int64_t worker_id(int w) const { return workers_[w].id; }
  const v1::Task& task(int w) const { return workers_[w].task; }

  // Worker w's valid answer to its current task.
  v1::SubmitGradientRequest Gradient(int w) const {
    return GradientRequest(game_, id_, workers_[w].id, workers_[w].task,
                           workers_[w].x);
  }
  v1::SubmitJacobianProductsRequest Products(int w) const {
    return ProductsRequest(game_, id_, workers_[w].id, workers_[w].task);
  }

  // Worker w answers its task validly and waits for the next one.
  void Submit(int w) {
    Worker& worker = workers_[w];
    v1::TaskResponse response;
    const grpc::Status status =
        worker.task.kind() == v1::GRADIENT
            ? testing::Submit(stub_, Gradient(w), &response)
            : testing::Submit(stub_, Products(w), &response);
    ASSERT_TRUE(status.ok())
        << "worker " << w << ": " << status.error_message();
    Take(worker, response);
  }
  Background SubmitInBackground(int w) {
    return Background([this, w] { Submit(w); });
  }

  // Every worker answers its task; returns when the round has closed.
  void Round() {
    std::vector<Background> threads;
    for (size_t w = 0; w < workers_.size(); ++w) {
      threads.push_back(SubmitInBackground(static_cast<int>(w)));
    }
    for (Background& t : threads) t.Join();
  }

  // Status with the session id cleared, and parameters, serialized.
  std::string State() const {
    absl::StatusOr<v1::SessionStatus> status = GetSession(stub_, id_);
    absl::StatusOr<v1::GetParametersResponse> params =
        GetParameters(stub_, id_);
    if (!status.ok() || !params.ok()) return "unavailable";
    status->clear_session_id();
    for (v1::WorkerStatus& w : *status->mutable_workers()) {
      w.clear_idle_seconds();  // the clock's, not the request's
    }
    return status->DebugString() + params->DebugString();
  }

 private:
  struct Worker {
    int64_t id = 0;
    v1::Task task;
    Eigen::VectorXd x;
  };
  void Take(Worker& w, const v1::TaskResponse& response) {
    w.task = response.task();
    if (w.task.params_included()) w.x = DecodeVector(game_, w.task.params());
  }

  v1::GameOptimizer::Stub& stub_;
  const QuadraticGame& game_;
  const v1::SessionConfig config_;
  std::string id_;
  std::vector<Worker> workers_;
};

// ---- Rows -------------------------------------------------------------------

struct Row {
  std::string what;
  std::function<grpc::Status()> send;
  grpc::StatusCode code;
  std::string text;  // a substring of the message: the field it names
};

class ValidationTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GameOptServerOptions options = TestServerOptions();
    options.max_message_mb = kMaxMessageMb;
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub(server_->port());
  }

  // Sends every row and checks its status, its message and that no state
  // changed.
  void RunTable(const std::vector<Row>& rows) {
    const std::string before = Snapshot(*stub_);
    for (const Row& row : rows) {
      SCOPED_TRACE(row.what);
      const grpc::Status status = row.send();
      EXPECT_EQ(status.error_code(), row.code) << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr(row.text));
      const std::string after = Snapshot(*stub_);
      if (after != before) {
        // The later rows would only repeat the failure.
        EXPECT_EQ(after, before) << "the bad request changed state";
        return;
      }
    }
  }

  // The state of `dirty` equals that of `clean` after the same valid rounds.
  void ExpectSameState(const Scenario& dirty, const Scenario& clean) {
    const std::string state = dirty.State();
    EXPECT_NE(state, "unavailable");
    EXPECT_EQ(state, clean.State());
  }

  grpc::Status SendGradient(const v1::SubmitGradientRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(RowDeadline());
    v1::TaskResponse response;
    return stub_->SubmitGradient(&context, request, &response);
  }
  grpc::Status SendProducts(const v1::SubmitJacobianProductsRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(RowDeadline());
    v1::TaskResponse response;
    return stub_->SubmitJacobianProducts(&context, request, &response);
  }
  grpc::Status SendCreate(const v1::SessionConfig& config) {
    grpc::ClientContext context;
    context.set_deadline(RowDeadline());
    v1::CreateSessionRequest request;
    *request.mutable_config() = config;
    v1::CreateSessionResponse response;
    return stub_->CreateSession(&context, request, &response);
  }
  grpc::Status SendJoin(const std::string& session_id, int64_t worker_id,
                        const std::string& name = "") {
    grpc::ClientContext context;
    context.set_deadline(RowDeadline());
    v1::JoinSessionRequest request;
    request.set_session_id(session_id);
    request.set_worker_id(worker_id);
    request.set_worker_name(name);
    v1::TaskResponse response;
    return stub_->JoinSession(&context, request, &response);
  }
  grpc::Status SendLeave(const std::string& session_id, int64_t worker_id) {
    grpc::ClientContext context;
    v1::LeaveSessionRequest request;
    request.set_session_id(session_id);
    request.set_worker_id(worker_id);
    v1::LeaveSessionResponse response;
    return stub_->LeaveSession(&context, request, &response);
  }

  // A row that sends `scenario`'s valid request of worker `w`, edited.
  Row GradientRow(const std::string& what, const Scenario& scenario, int w,
                  std::function<void(v1::SubmitGradientRequest&)> edit,
                  grpc::StatusCode code, const std::string& text) {
    return Row{what,
               [this, &scenario, w, edit] {
                 v1::SubmitGradientRequest request = scenario.Gradient(w);
                 edit(request);
                 return SendGradient(request);
               },
               code, text};
  }
  Row ProductsRow(const std::string& what, const Scenario& scenario, int w,
                  std::function<void(v1::SubmitJacobianProductsRequest&)> edit,
                  grpc::StatusCode code, const std::string& text) {
    return Row{what,
               [this, &scenario, w, edit] {
                 v1::SubmitJacobianProductsRequest request =
                     scenario.Products(w);
                 edit(request);
                 return SendProducts(request);
               },
               code, text};
  }

  const QuadraticGame game_ = QuadraticGame::TwoPlayer(77);
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

constexpr grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr grpc::StatusCode kNotFound = grpc::StatusCode::NOT_FOUND;
constexpr grpc::StatusCode kStale = grpc::StatusCode::FAILED_PRECONDITION;
constexpr grpc::StatusCode kExhausted = grpc::StatusCode::RESOURCE_EXHAUSTED;

// Writes `value` as the dtype of `tensor` at element `index`.
void Poke(v1::Tensor* tensor, int index, double value) {
  std::string& data = *tensor->mutable_data();
  if (tensor->dtype() == v1::FLOAT32) {
    const float f = static_cast<float>(value);
    std::memcpy(&data[index * 4], &f, 4);
  } else {
    std::memcpy(&data[index * 8], &value, 8);
  }
}

// The game's tensors (QuadraticGame::TwoPlayer): player 0 'gen' has w [2, 2]
// and b [2], player 1 'disc' has w [3] and s [] (a scalar).
v1::Tensor* GradTensor(v1::SubmitGradientRequest& r, int p, int t) {
  return r.mutable_gradients(0)->mutable_players(p)->mutable_tensors(t);
}
v1::Tensor* VjpTensor(v1::SubmitJacobianProductsRequest& r, int p, int t) {
  return r.mutable_vjp(0)->mutable_players(p)->mutable_tensors(t);
}

// ---- CreateSession ----------------------------------------------------------

TEST_F(ValidationTableTest, CreateSessionRejectsEveryBadConfigField) {
  const v1::SessionConfig base = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  // A live session with state (a completed round) that no row may touch.
  Scenario dirty(*stub_, game_, base), clean(*stub_, game_, base);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }

  struct ConfigRow {
    std::string what;
    std::function<void(v1::SessionConfig&)> edit;
    std::string text;
    grpc::StatusCode code = kInvalid;
  };
  auto optimizer = [](v1::SessionConfig& c) {
    return c.mutable_players(1)->mutable_optimizer();
  };
  auto with = [optimizer](v1::Optimizer kind,
                          std::function<void(v1::OptimizerConfig*)> set) {
    return [optimizer, kind, set](v1::SessionConfig& c) {
      optimizer(c)->set_kind(kind);
      set(optimizer(c));
    };
  };
  auto tensor = [](v1::SessionConfig& c, int p, int t) {
    return c.mutable_players(p)->mutable_tensors(t);
  };
  const std::string name257(257, 'a');
  const std::vector<ConfigRow> rows = {
      // Players.
      {"no players", [](v1::SessionConfig& c) { c.clear_players(); },
       "players: a game needs at least 2 players, got 0"},
      {"one player",
       [](v1::SessionConfig& c) { c.mutable_players()->RemoveLast(); },
       "at least 2 players, got 1"},
      {"empty player name",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name(""); },
       "config.players[1].name ''"},
      {"player name with a space",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("d isc"); },
       "config.players[1].name 'd isc'"},
      {"player name with a newline",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("d\nisc"); },
       "config.players[1].name"},
      {"player name not ASCII",
       [](v1::SessionConfig& c) {
         c.mutable_players(1)->set_name("d\xc3\xa9");
       },
       "config.players[1].name"},
      {"player name of 257 characters",
       [&](v1::SessionConfig& c) { c.mutable_players(1)->set_name(name257); },
       "config.players[1].name"},
      {"duplicate player name",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("gen"); },
       "config.players[1].name 'gen' is used by another player"},
      {"player without tensors",
       [](v1::SessionConfig& c) { c.mutable_players(1)->clear_tensors(); },
       "config.players[1] ('disc') has no tensors"},
      // Tensors: names, shapes, dtypes, initial values.
      {"empty tensor name",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name(""); },
       "config.players[0].tensors[1].name ''"},
      {"tensor name with a bad character",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name("b*"); },
       "config.players[0].tensors[1].name 'b*'"},
      {"tensor name of 257 characters",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name(name257); },
       "config.players[0].tensors[1].name"},
      {"duplicate tensor name",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name("w"); },
       "config.players[0].tensors[1].name 'w' is used twice"},
      {"zero dimension",
       [&](v1::SessionConfig& c) { tensor(c, 0, 0)->set_shape(1, 0); },
       "config.players[0].tensors[0].shape [2, 0]"},
      {"negative dimension",
       [&](v1::SessionConfig& c) { tensor(c, 0, 0)->set_shape(0, -2); },
       "config.players[0].tensors[0].shape [-2, 2]"},
      {"shape whose product overflows int64",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 0);
         t->clear_data();
         t->set_shape(0, int64_t{1} << 32);
         t->set_shape(1, int64_t{1} << 32);
       },
       "config.players[0].tensors[0].shape [4294967296, 4294967296]"},
      {"shape past 2^40 elements",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 0);
         t->clear_data();
         t->set_shape(0, int64_t{1} << 21);
         t->set_shape(1, int64_t{1} << 20);
       },
       "config.players[0].tensors[0].shape"},
      {"unknown session dtype",
       [](v1::SessionConfig& c) { c.set_dtype(static_cast<v1::DType>(7)); },
       "config.dtype: unknown enum value 7"},
      {"unknown tensor dtype",
       [&](v1::SessionConfig& c) {
         tensor(c, 1, 0)->set_dtype(static_cast<v1::DType>(9));
       },
       "config.players[1].tensors[0].dtype: unknown enum value 9"},
      {"initial values one byte short",
       [&](v1::SessionConfig& c) {
         tensor(c, 0, 1)->mutable_data()->resize(15);
       },
       "players[0].tensors[1] ('gen/b').initial_values has 15 bytes"},
      {"initial values of the wrong dtype",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_dtype(v1::FLOAT32); },
       "players[0].tensors[1] ('gen/b').initial_values has 16 bytes"},
      {"initial value NaN",
       [&](v1::SessionConfig& c) { Poke(tensor(c, 1, 0), 2, kNaN); },
       "players[1].tensors[0] ('disc/w').initial_values is not finite at "
       "index 2"},
      {"initial value inf",
       [&](v1::SessionConfig& c) { Poke(tensor(c, 1, 1), 0, -kInf); },
       "players[1].tensors[1] ('disc/s').initial_values is not finite"},
      {"float32 initial value NaN",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 1);
         t->set_dtype(v1::FLOAT32);
         t->mutable_data()->assign(8, '\0');
         Poke(t, 1, kNaN);
       },
       "players[0].tensors[1] ('gen/b').initial_values is not finite at "
       "index 1"},
      // Base optimizers.
      {"unknown optimizer",
       [&](v1::SessionConfig& c) {
         optimizer(c)->set_kind(static_cast<v1::Optimizer>(42));
       },
       "config.players[1].optimizer.kind: unknown enum value 42"},
      {"unknown RMSProp preset",
       [&](v1::SessionConfig& c) {
         optimizer(c)->set_rmsprop_preset(static_cast<v1::RmsPropPreset>(3));
       },
       "config.players[1].optimizer.rmsprop_preset: unknown enum value 3"},
      {"negative learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(-0.1); },
       "config.players[1].optimizer.learning_rate = -0.1"},
      {"NaN learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(kNaN); },
       "config.players[1].optimizer.learning_rate"},
      {"infinite learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(kInf); },
       "config.players[1].optimizer.learning_rate"},
      {"momentum 1", with(v1::MOMENTUM, [](auto* o) { o->set_momentum(1.0); }),
       "config.players[1].optimizer.momentum = 1"},
      {"negative Nesterov momentum",
       with(v1::NESTEROV, [](auto* o) { o->set_momentum(-0.1); }),
       "config.players[1].optimizer.momentum"},
      {"RMSProp decay 1",
       with(v1::RMSPROP, [](auto* o) { o->set_rmsprop_decay(1.0); }),
       "config.players[1].optimizer.rmsprop_decay = 1"},
      {"RMSProp epsilon 0",
       with(v1::RMSPROP, [](auto* o) { o->set_epsilon(0.0); }),
       "config.players[1].optimizer.epsilon = 0"},
      {"RMSProp negative initial accumulator",
       with(v1::RMSPROP, [](auto* o) { o->set_initial_accumulator(-1.0); }),
       "config.players[1].optimizer.initial_accumulator = -1"},
      {"Adam negative epsilon",
       with(v1::ADAM, [](auto* o) { o->set_epsilon(-1e-8); }),
       "config.players[1].optimizer.epsilon"},
      {"Adam beta1 1", with(v1::ADAM, [](auto* o) { o->set_beta1(1.0); }),
       "config.players[1].optimizer.beta1 = 1"},
      {"Adam NaN beta2", with(v1::ADAM, [](auto* o) { o->set_beta2(kNaN); }),
       "config.players[1].optimizer.beta2"},
      {"negative clip value",
       [&](v1::SessionConfig& c) { optimizer(c)->set_clip_value(-1.0); },
       "config.players[1].optimizer.clip_value = -1"},
      {"NaN clip value",
       [&](v1::SessionConfig& c) { optimizer(c)->set_clip_value(kNaN); },
       "config.players[1].optimizer.clip_value"},
      // The algorithm.
      {"unknown algorithm",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(static_cast<v1::Algorithm>(99));
       },
       "config.algorithm.kind: unknown enum value 99"},
      {"unknown estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_estimator(static_cast<v1::Estimator>(9));
       },
       "config.algorithm.estimator: unknown enum value 9"},
      {"negative gamma",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_gamma(-1.0); },
       "config.algorithm.gamma = -1"},
      {"NaN gamma",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_gamma(kNaN); },
       "config.algorithm.gamma"},
      {"negative lambda0",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_lambda0(-2.0); },
       "config.algorithm.lambda0 = -2"},
      {"negative lookahead k",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_lookahead_k(-1); },
       "config.algorithm.lookahead_k = -1"},
      {"lookahead alpha above 1",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_lookahead_k(5);
         c.mutable_algorithm()->set_lookahead_alpha(1.5);
       },
       "config.algorithm.lookahead_alpha = 1.5"},
      {"negative lookahead alpha",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_lookahead_k(5);
         c.mutable_algorithm()->set_lookahead_alpha(-0.5);
       },
       "config.algorithm.lookahead_alpha"},
      {"negative global clip norm",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_clip_global_norm(-1.0);
       },
       "config.algorithm.clip_global_norm = -1"},
      {"fused products with the pooled estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->set_fuse_local_products(true);
       },
       "algorithm.fuse_local_products needs algorithm conopt or sga with "
       "estimator local"},
      {"adaptive gamma without the field's spectrum estimates",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->mutable_adaptive_gamma()->set_enabled(true);
       },
       "spectrum.every_steps > 0 and add a spectrum request with operator "
       "ALGORITHM_FIELD and smallest_real"},
      {"adaptive gamma with sga",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SGA);
         c.mutable_algorithm()->mutable_adaptive_gamma()->set_enabled(true);
       },
       "algorithm.adaptive_gamma adapts ConOpt's gamma: it needs algorithm "
       "conopt"},
      {"adaptive gamma with a decrease that is no decrease",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         auto* rule = c.mutable_algorithm()->mutable_adaptive_gamma();
         rule->set_enabled(true);
         rule->set_decrease(1.5);
       },
       "algorithm.adaptive_gamma.decrease"},
      {"fused products with simgd",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_estimator(v1::LOCAL);
         c.mutable_algorithm()->set_fuse_local_products(true);
       },
       "algorithm.fuse_local_products"},
      {"step schedule without a step size",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(1)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::STEP);
         s->set_gamma(0.5);
       },
       "players[1].optimizer.schedule.step_size = 0"},
      {"exponential schedule with gamma 0",
       [](v1::SessionConfig& c) {
         c.mutable_players(0)
             ->mutable_optimizer()
             ->mutable_schedule()
             ->set_kind(v1::LearningRateSchedule::EXPONENTIAL);
       },
       "players[0].optimizer.schedule.gamma = 0"},
      {"multistep milestones not increasing",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::MULTI_STEP);
         s->set_gamma(0.1);
         s->add_milestones(5);
         s->add_milestones(5);
       },
       "players[0].optimizer.schedule.milestones[1] = 5"},
      {"cosine schedule with negative eta_min",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::COSINE);
         s->set_t_max(10);
         s->set_eta_min(-1);
       },
       "players[0].optimizer.schedule.eta_min = -1"},
      {"linear schedule with start factor 0",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::LINEAR);
         s->set_end_factor(1);
         s->set_total_steps(4);
       },
       "players[0].optimizer.schedule.start_factor = 0"},
      {"unknown schedule kind",
       [](v1::SessionConfig& c) {
         c.mutable_players(0)
             ->mutable_optimizer()
             ->mutable_schedule()
             ->set_kind(static_cast<v1::LearningRateSchedule::Kind>(17));
       },
       "config.players[0].optimizer.schedule.kind: unknown enum value 17"},
      {"unbiased estimator with one sample per round",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->set_estimator(v1::UNBIASED);
         c.set_workers_per_round(1);
       },
       "config.algorithm.estimator = unbiased needs at least 2"},
      {"altgd stage of an unknown player",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         c.mutable_algorithm()->add_altgd_order()->set_player("ghost");
       },
       "config.algorithm.altgd_order[0].player 'ghost'"},
      {"altgd stage of 1001 steps",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         v1::AltGdStage* stage = c.mutable_algorithm()->add_altgd_order();
         stage->set_player("gen");
         stage->set_steps(1001);
       },
       "config.algorithm.altgd_order[0].steps = 1001"},
      {"altgd stage of negative steps",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         v1::AltGdStage* stage = c.mutable_algorithm()->add_altgd_order();
         stage->set_player("disc");
         stage->set_steps(-3);
       },
       "config.algorithm.altgd_order[0].steps = -3"},
      // LOLA and SOS.
      {"lola with a negative alpha",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::LOLA);
         c.mutable_algorithm()->set_lola_alpha(-0.5);
       },
       "config.algorithm.lola_alpha = -0.5"},
      {"sos with a = 1",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SOS);
         c.mutable_algorithm()->set_sos_a(1.0);
       },
       "config.algorithm.sos_a = 1"},
      {"sos with the local estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SOS);
         c.mutable_algorithm()->set_estimator(v1::LOCAL);
       },
       "leave the estimator unset (pooled)"},
      // Workers, quorum, deadline, samples, steps, policy.
      {"negative workers per round",
       [](v1::SessionConfig& c) { c.set_workers_per_round(-1); },
       "config.workers_per_round = -1"},
      {"10001 workers per round",
       [](v1::SessionConfig& c) { c.set_workers_per_round(10001); },
       "config.workers_per_round = 10001"},
      {"negative quorum", [](v1::SessionConfig& c) { c.set_quorum(-1); },
       "config.quorum = -1"},
      {"quorum above K", [](v1::SessionConfig& c) { c.set_quorum(3); },
       "config.quorum = 3"},
      {"NaN deadline",
       [](v1::SessionConfig& c) { c.set_phase_deadline_seconds(kNaN); },
       "config.phase_deadline_seconds is NaN"},
      {"deadline that rounds to zero",
       [](v1::SessionConfig& c) { c.set_phase_deadline_seconds(1e-300); },
       "config.phase_deadline must be positive"},
      {"negative samples per worker",
       [](v1::SessionConfig& c) { c.set_samples_per_worker(-1); },
       "config.samples_per_worker = -1"},
      {"1025 samples per worker",
       [](v1::SessionConfig& c) { c.set_samples_per_worker(1025); },
       "config.samples_per_worker = 1025"},
      {"negative max steps", [](v1::SessionConfig& c) { c.set_max_steps(-5); },
       "config.max_steps = -5"},
      {"unknown invalid-sample policy",
       [](v1::SessionConfig& c) {
         c.set_invalid_sample_policy(static_cast<v1::InvalidSamplePolicy>(4));
       },
       "config.invalid_sample_policy: unknown enum value 4"},
      // Size.
      {"config over the message limit",
       [](v1::SessionConfig& c) {
         c.set_name(std::string((kMaxMessageMb << 20) + 1, 'n'));
       },
       "", kExhausted},
  };
  std::vector<Row> table;
  for (const ConfigRow& row : rows) {
    table.push_back(Row{row.what,
                        [this, &base, row] {
                          v1::SessionConfig config = base;
                          row.edit(config);
                          return SendCreate(config);
                        },
                        row.code, row.text});
  }
  RunTable(table);

  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

// ---- SubmitGradient ---------------------------------------------------------

// Sessions of either dtype; the table runs once with the round empty and
// once with the other worker's submission waiting at the barrier.
class GradientTableTest
    : public ValidationTableTest,
      public ::testing::WithParamInterface<std::tuple<v1::DType, bool>> {};

TEST_P(GradientTableTest, BadGradientsAreRejectedAndTouchNothing) {
  const auto [dtype, other_waiting] = GetParam();
  const v1::SessionConfig config =
      QuadraticConfig(game_, v1::SIMGD, 2, 0, dtype);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // At round 2 (step 2): round 0 is closed and is not the worker's last
    // (resending the last one is a retry, answered again).
    ASSERT_NO_FATAL_FAILURE(s->Round());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  Background waiting;
  if (other_waiting) {
    waiting = dirty.SubmitInBackground(1);
    ASSERT_TRUE(WaitForSubmitted(*stub_, dirty.id(), 1));
  }

  using Request = v1::SubmitGradientRequest;
  auto row = [&](const std::string& what, std::function<void(Request&)> edit,
                 grpc::StatusCode code, const std::string& text) {
    return GradientRow(what, dirty, 0, std::move(edit), code, text);
  };
  const std::string w42 = "worker 42 is not in session";
  std::vector<Row> rows = {
      // Ids.
      row(
          "unknown session", [](Request& r) { r.set_session_id("nope"); },
          kNotFound, "no session 'nope'"),
      row(
          "empty session id", [](Request& r) { r.set_session_id(""); },
          kNotFound, "no session ''"),
      row(
          "unknown worker", [](Request& r) { r.set_worker_id(42); }, kNotFound,
          w42),
      row(
          "worker id 0", [](Request& r) { r.set_worker_id(0); }, kNotFound,
          "worker 0 is not in session"),
      row(
          "negative worker id", [](Request& r) { r.set_worker_id(-7); },
          kNotFound, "worker -7 is not in session"),
      // Round, step and phase.
      row(
          "closed round", [](Request& r) { r.set_round(0); }, kStale,
          "round 0 (step 2 phase 0) is closed"),
      row(
          "future round", [](Request& r) { r.set_round(5); }, kStale,
          "round 5 (step 2 phase 0) is not open yet"),
      row(
          "largest round",
          [](Request& r) { r.set_round(std::numeric_limits<int64_t>::max()); },
          kStale, "is not open yet"),
      row(
          "negative round", [](Request& r) { r.set_round(-1); }, kStale,
          "round -1 (step 2 phase 0) is closed"),
      row(
          "wrong step", [](Request& r) { r.set_step(3); }, kInvalid,
          "step 3 phase 0 do not match round 2"),
      row(
          "negative step", [](Request& r) { r.set_step(-1); }, kInvalid,
          "step -1 phase 0 do not match round 2"),
      row(
          "wrong phase", [](Request& r) { r.set_phase(1); }, kInvalid,
          "step 2 phase 1 do not match round 2"),
      // Reported scalars and fused products.
      row(
          "NaN scalar",
          [](Request& r) {
            v1::Scalar* s = r.add_scalars();
            s->set_name("loss/gen");
            s->set_value(kNaN);
          },
          kInvalid, "scalars[0] ('loss/gen').value is nan"),
      row(
          "scalar name with a space",
          [](Request& r) { r.add_scalars()->set_name("a b"); }, kInvalid,
          "scalars[0].name must be 1 to 128 characters"),
      row(
          "65 scalars",
          [](Request& r) {
            for (int i = 0; i < 65; ++i) {
              r.add_scalars()->set_name(absl::StrCat("s", i));
            }
          },
          kInvalid, "scalars: 65 entries; at most 64"),
      row(
          "repeated scalar name",
          [](Request& r) {
            r.add_scalars()->set_name("l");
            r.add_scalars()->set_name("l");
          },
          kInvalid, "scalars[1]: the name 'l' appears twice"),
      row(
          "fused product the task did not ask for",
          [](Request& r) { *r.add_vjp() = r.gradients(0); }, kInvalid,
          "vjp: the task asks for 0 fused product(s)"),
      // Values.
      row(
          "NaN", [](Request& r) { Poke(GradTensor(r, 1, 0), 1, kNaN); },
          kInvalid,
          "gradients[0] player 'disc' tensor 'w': value at index 1 is not "
          "finite"),
      row(
          "+inf", [](Request& r) { Poke(GradTensor(r, 0, 0), 3, kInf); },
          kInvalid,
          "gradients[0] player 'gen' tensor 'w': value at index 3 is not "
          "finite"),
      row(
          "-inf in a scalar",
          [](Request& r) { Poke(GradTensor(r, 1, 1), 0, -kInf); }, kInvalid,
          "gradients[0] player 'disc' tensor 's': value at index 0 is not "
          "finite"),
      row(
          "float32 NaN",
          [](Request& r) {
            v1::Tensor* t = GradTensor(r, 0, 1);
            t->set_dtype(v1::FLOAT32);
            t->mutable_data()->assign(8, '\0');
            Poke(t, 1, kNaN);
          },
          kInvalid,
          "gradients[0] player 'gen' tensor 'b': value at index 1 is not "
          "finite"),
      // Shapes and sizes.
      row(
          "wrong dimension",
          [](Request& r) { GradTensor(r, 0, 0)->set_shape(1, 3); }, kInvalid,
          "gradients[0] player 'gen' tensor 'w': shape [2, 3] does not "
          "match the session's [2, 2]"),
      row(
          "flattened shape",
          [](Request& r) {
            v1::Tensor* t = GradTensor(r, 0, 0);
            t->clear_shape();
            t->add_shape(4);
          },
          kInvalid, "tensor 'w': shape [4] does not match the session's"),
      row(
          "scalar sent as [1]",
          [](Request& r) { GradTensor(r, 1, 1)->add_shape(1); }, kInvalid,
          "tensor 's': shape [1] does not match the session's []"),
      row(
          "negative dimension",
          [](Request& r) { GradTensor(r, 0, 0)->set_shape(0, -2); }, kInvalid,
          "tensor 'w': shape [-2, 2]"),
      row(
          "one byte short",
          [](Request& r) { GradTensor(r, 0, 1)->mutable_data()->pop_back(); },
          kInvalid, "tensor 'b': 15 bytes of data, but shape [2] of float64"),
      row(
          "one value too many",
          [](Request& r) {
            GradTensor(r, 1, 0)->mutable_data()->append(8, '\0');
          },
          kInvalid, "tensor 'w': 32 bytes of data"),
      row(
          "no data", [](Request& r) { GradTensor(r, 1, 1)->clear_data(); },
          kInvalid, "tensor 's': 0 bytes of data"),
      row(
          "float64 bytes labelled float32",
          [](Request& r) { GradTensor(r, 0, 1)->set_dtype(v1::FLOAT32); },
          kInvalid, "tensor 'b': 16 bytes of data, but shape [2] of float32"),
      // Players and tensors.
      row(
          "missing player",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players()->RemoveLast();
          },
          kInvalid, "gradients[0]: player 'disc' is missing"),
      row(
          "unknown player",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players(1)->set_player("ghost");
          },
          kInvalid, "gradients[0].players[1]: player 'ghost' is not a player"),
      row(
          "extra player",
          [](Request& r) {
            v1::PlayerTensors* extra = r.mutable_gradients(0)->add_players();
            *extra = r.gradients(0).players(0);
            extra->set_player("extra");
          },
          kInvalid, "gradients[0].players[2]: player 'extra'"),
      row(
          "duplicate player",
          [](Request& r) {
            *r.mutable_gradients(0)->add_players() = r.gradients(0).players(0);
          },
          kInvalid, "gradients[0]: player 'gen' appears twice"),
      row(
          "empty player name",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players(0)->set_player("");
          },
          kInvalid, "gradients[0].players[0]: player ''"),
      row(
          "missing tensor",
          [](Request& r) {
            r.mutable_gradients(0)
                ->mutable_players(0)
                ->mutable_tensors()
                ->RemoveLast();
          },
          kInvalid, "gradients[0] player 'gen': tensor 'b' is missing"),
      row(
          "unknown tensor",
          [](Request& r) { GradTensor(r, 1, 1)->set_name("t"); }, kInvalid,
          "gradients[0] player 'disc' tensor 't': no such tensor"),
      row(
          "duplicate tensor",
          [](Request& r) {
            v1::PlayerTensors* p = r.mutable_gradients(0)->mutable_players(1);
            *p->add_tensors() = p->tensors(0);
          },
          kInvalid, "gradients[0] player 'disc' tensor 'w': appears twice"),
      // Samples and dtypes.
      row(
          "no sample", [](Request& r) { r.clear_gradients(); }, kInvalid,
          "gradients: the task asks for 1 sample(s), got 0"),
      row(
          "two samples",
          [](Request& r) { *r.add_gradients() = r.gradients(0); }, kInvalid,
          "gradients: the task asks for 1 sample(s), got 2"),
      row(
          "unspecified dtype",
          [](Request& r) {
            GradTensor(r, 1, 0)->set_dtype(v1::DTYPE_UNSPECIFIED);
          },
          kInvalid,
          "gradients[0].players[1].tensors[0] ('disc/w').dtype is "
          "DTYPE_UNSPECIFIED"),
      row(
          "unknown dtype",
          [](Request& r) {
            GradTensor(r, 0, 0)->set_dtype(static_cast<v1::DType>(9));
          },
          kInvalid,
          "gradients[0].players[0].tensors[0] ('gen/w').dtype: unknown enum "
          "value 9"),
      // A compressed dtype the session's wire does not accept.
      row(
          "bfloat16 without wire.from_workers",
          [](Request& r) { GradTensor(r, 0, 0)->set_dtype(v1::BFLOAT16); },
          kInvalid,
          "dtype bfloat16 is not accepted by this session: send float32, "
          "float64 (the session's wire.from_workers)"),
      // Size.
      row(
          "message over the limit",
          [](Request& r) {
            GradTensor(r, 0, 0)->mutable_data()->resize((kMaxMessageMb << 20) +
                                                        8);
          },
          kExhausted, ""),
      // The other RPC.
      Row{"products in a gradient phase",
          [&] {
            v1::SubmitJacobianProductsRequest request;
            request.set_session_id(dirty.id());
            request.set_worker_id(dirty.worker_id(0));
            request.set_round(dirty.task(0).round());
            request.set_step(dirty.task(0).step());
            request.set_phase(dirty.task(0).phase());
            *request.add_vjp() = dirty.Gradient(0).gradients(0);
            return SendProducts(request);
          },
          kStale, "wants gradients: call SubmitGradient"},
  };
  if (dtype == v1::FLOAT32) {
    // A float64 value past float32's range becomes inf on conversion.
    rows.push_back(row(
        "float64 value overflowing float32",
        [](Request& r) { Poke(GradTensor(r, 0, 1), 0, 1e300); }, kInvalid,
        "gradients[0] player 'gen' tensor 'b': value at index "
        "0 is not finite"));
  }
  RunTable(rows);

  if (other_waiting) {
    ASSERT_NO_FATAL_FAILURE(dirty.Submit(0));
    waiting.Join();
  } else {
    ASSERT_NO_FATAL_FAILURE(dirty.Round());
  }
  ASSERT_NO_FATAL_FAILURE(clean.Round());
  ExpectSameState(dirty, clean);
}

INSTANTIATE_TEST_SUITE_P(
    DTypesAndBarrier, GradientTableTest,
    ::testing::Combine(::testing::Values(v1::FLOAT64, v1::FLOAT32),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<v1::DType, bool>>& info) {
      return std::string(v1::DType_Name(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "OtherWaiting" : "RoundEmpty");
    });

// AltGD asks for one player's block per phase: the other is extra.
TEST_F(ValidationTableTest, AltGdGradientOfAPlayerNotAskedForIsRejected) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::ALTGD, 1, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Create());
  ASSERT_EQ(dirty.task(0).players_size(), 1);
  ASSERT_EQ(dirty.task(0).players(0), "gen");
  RunTable({
      GradientRow(
          "the other player's block too", dirty, 0,
          [this](v1::SubmitGradientRequest& r) {
            *r.mutable_gradients(0) =
                EncodeVector(game_, game_.x0(), v1::FLOAT64);
          },
          kInvalid,
          "gradients[0].players[1]: player 'disc' was not asked for in this "
          "task"),
      GradientRow(
          "the other player's block instead", dirty, 0,
          [this](v1::SubmitGradientRequest& r) {
            *r.mutable_gradients(0) =
                EncodeVector(game_, game_.x0(), v1::FLOAT64, {"disc"});
          },
          kInvalid, "player 'disc' was not asked for in this task"),
  });
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

// ---- SubmitJacobianProducts -------------------------------------------------

class ProductsTableTest : public ValidationTableTest,
                          public ::testing::WithParamInterface<v1::Algorithm> {
};

TEST_P(ProductsTableTest, BadProductsAreRejectedAndTouchNothing) {
  const v1::Algorithm algorithm = GetParam();
  const bool sga = algorithm == v1::SGA;
  const v1::SessionConfig config = QuadraticConfig(game_, algorithm, 2, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // A step, then the gradients of the next: products at round 3, step 1.
    for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  ASSERT_EQ(dirty.task(0).kind(), v1::PRODUCTS);
  ASSERT_EQ(dirty.task(0).jvp(), sga);

  using Request = v1::SubmitJacobianProductsRequest;
  auto row = [&](const std::string& what, std::function<void(Request&)> edit,
                 grpc::StatusCode code, const std::string& text) {
    return ProductsRow(what, dirty, 0, std::move(edit), code, text);
  };
  std::vector<Row> rows = {
      row(
          "unknown session", [](Request& r) { r.set_session_id("nope"); },
          kNotFound, "no session 'nope'"),
      row(
          "unknown worker", [](Request& r) { r.set_worker_id(42); }, kNotFound,
          "worker 42 is not in session"),
      row(
          "closed round", [](Request& r) { r.set_round(1); }, kStale,
          "round 1 (step 1 phase 1) is closed"),
      row(
          "wrong phase", [](Request& r) { r.set_phase(0); }, kInvalid,
          "step 1 phase 0 do not match round 3"),
      row(
          "wrong step", [](Request& r) { r.set_step(0); }, kInvalid,
          "step 0 phase 1 do not match round 3"),
      row(
          "no vjp", [](Request& r) { r.clear_vjp(); }, kInvalid,
          "vjp: the task asks for 1 product(s) (one per probe), got 0"),
      row(
          "two vjp", [](Request& r) { *r.add_vjp() = r.vjp(0); }, kInvalid,
          "vjp: the task asks for 1 product(s) (one per probe), got 2"),
      row(
          "NaN in vjp", [](Request& r) { Poke(VjpTensor(r, 0, 1), 0, kNaN); },
          kInvalid,
          "vjp[0] player 'gen' tensor 'b': value at index 0 is not finite"),
      row(
          "missing player in vjp",
          [](Request& r) { r.mutable_vjp(0)->mutable_players()->RemoveLast(); },
          kInvalid, "vjp[0]: player 'disc' is missing"),
      row(
          "unknown player in vjp",
          [](Request& r) {
            r.mutable_vjp(0)->mutable_players(1)->set_player("ghost");
          },
          kInvalid, "vjp[0].players[1]: player 'ghost' is not a player"),
      row(
          "duplicate tensor in vjp",
          [](Request& r) {
            v1::PlayerTensors* p = r.mutable_vjp(0)->mutable_players(0);
            *p->add_tensors() = p->tensors(1);
          },
          kInvalid, "vjp[0] player 'gen' tensor 'b': appears twice"),
      row(
          "wrong shape in vjp",
          [](Request& r) { VjpTensor(r, 1, 0)->set_shape(0, 4); }, kInvalid,
          "vjp[0] player 'disc' tensor 'w': shape [4]"),
      row(
          "short vjp",
          [](Request& r) { VjpTensor(r, 1, 1)->mutable_data()->resize(4); },
          kInvalid, "vjp[0] player 'disc' tensor 's': 4 bytes of data"),
      row(
          "unspecified dtype in vjp",
          [](Request& r) {
            VjpTensor(r, 0, 0)->set_dtype(v1::DTYPE_UNSPECIFIED);
          },
          kInvalid, "vjp[0].players[0].tensors[0] ('gen/w').dtype"),
      Row{"gradients in a products phase",
          [&] {
            v1::SubmitGradientRequest request;
            request.set_session_id(dirty.id());
            request.set_worker_id(dirty.worker_id(0));
            request.set_round(dirty.task(0).round());
            request.set_step(dirty.task(0).step());
            request.set_phase(dirty.task(0).phase());
            *request.add_gradients() = dirty.Products(0).vjp(0);
            return SendGradient(request);
          },
          kStale, "wants Jacobian products: call SubmitJacobianProducts"},
  };
  if (sga) {
    rows.push_back(row(
        "no jvp", [](Request& r) { r.clear_jvp(); }, kInvalid,
        "jvp: the task asks for 1 product(s) (one per probe), "
        "got 0"));
    rows.push_back(row(
        "inf in jvp",
        [](Request& r) {
          Poke(r.mutable_jvp(0)->mutable_players(1)->mutable_tensors(0), 2,
               -kInf);
        },
        kInvalid,
        "jvp[0] player 'disc' tensor 'w': value at index 2 "
        "is not finite"));
  } else {
    rows.push_back(row(
        "jvp not asked for", [](Request& r) { *r.add_jvp() = r.vjp(0); },
        kInvalid, "jvp: the task asks for 0 product(s)"));
  }
  RunTable(rows);

  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

INSTANTIATE_TEST_SUITE_P(ConOptAndSga, ProductsTableTest,
                         ::testing::Values(v1::CONOPT, v1::SGA),
                         [](const auto& info) {
                           return v1::Algorithm_Name(info.param);
                         });

// A worker that sent no gradient sample of the step has no probe to answer.
TEST_F(ValidationTableTest, ProductsFromAWorkerWithoutASampleAreRejected) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::CONOPT, 2, 0);
  config.set_quorum(1);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // Worker 1 leaves before it submits: the round closes with worker 0's
    // sample alone, and worker 1 rejoins into the products phase.
    ASSERT_TRUE(SendLeave(s->id(), s->worker_id(1)).ok());
    ASSERT_NO_FATAL_FAILURE(s->Submit(0));
    ASSERT_EQ(s->task(0).kind(), v1::PRODUCTS);
  }
  const int64_t second = dirty.worker_id(1);
  auto products_of_second = [&] {
    v1::SubmitJacobianProductsRequest request = dirty.Products(0);
    request.set_worker_id(second);
    return SendProducts(request);
  };
  RunTable({{"products of a worker that left", products_of_second, kStale,
             "worker 2 left session"}});
  // Rejoining makes it active again, still without a sample: it has no
  // role in this phase, so its Join waits (a short deadline ends it).
  auto rejoin = [&](const Scenario& s) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(300));
    v1::JoinSessionRequest join;
    join.set_session_id(s.id());
    join.set_worker_id(s.worker_id(1));
    v1::TaskResponse response;
    return stub_->JoinSession(&context, join, &response).error_code();
  };
  for (Scenario* s : {&dirty, &clean}) {
    EXPECT_EQ(rejoin(*s), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The expired Join's cancellation reaches the server a little later and
  // drops the worker (liveness): wait for it before taking the tables'
  // before-state.
  for (Scenario* s : {&dirty, &clean}) {
    EXPECT_TRUE(WaitFor([&] {
      absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, s->id());
      return status.ok() && status->workers_size() == 2 &&
             status->workers(1).state() == "dropped";
    }));
  }
  RunTable({{"products of a rejoined worker that holds no sample",
             products_of_second, kStale,
             "worker 2 holds no gradient sample of step 0 phase 1"}});
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Submit(0));
  ExpectSameState(dirty, clean);
}

// ---- JoinSession, LeaveSession, GetSession, DeleteSession, GetParameters ----

TEST_F(ValidationTableTest, UnknownIdsAreNotFoundEverywhere) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  auto get = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::GetSessionRequest request;
    request.set_session_id(id);
    v1::SessionStatus response;
    return stub_->GetSession(&context, request, &response);
  };
  auto params = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::GetParametersRequest request;
    request.set_session_id(id);
    v1::GetParametersResponse response;
    return stub_->GetParameters(&context, request, &response);
  };
  auto del = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::DeleteSessionRequest request;
    request.set_session_id(id);
    v1::DeleteSessionResponse response;
    return stub_->DeleteSession(&context, request, &response);
  };
  const std::string id = dirty.id();
  // A session id that differs from a real one only in case or padding.
  std::string upper = id;
  upper[0] = 'S';
  RunTable({
      {"join an unknown session", [&] { return SendJoin("nope", 0); },
       kNotFound, "no session 'nope'"},
      {"join a padded id", [&] { return SendJoin(id + " ", 0); }, kNotFound,
       "no session '" + id + " '"},
      {"join as an unknown worker", [&] { return SendJoin(id, 42); }, kNotFound,
       "worker 42 is not in session"},
      {"join as a negative worker", [&] { return SendJoin(id, -1); }, kNotFound,
       "worker -1 is not in session"},
      {"join a full session", [&] { return SendJoin(id, 0, "third"); },
       kExhausted, "already has 2 active workers"},
      {"join with a message over the limit",
       [&] {
         return SendJoin(id, 0, std::string((kMaxMessageMb << 20) + 1, 'n'));
       },
       kExhausted, ""},
      {"leave an unknown session", [&] { return SendLeave("nope", 1); },
       kNotFound, "no session 'nope'"},
      {"leave as an unknown worker", [&] { return SendLeave(id, 42); },
       kNotFound, "worker 42 is not in session"},
      {"leave as worker 0", [&] { return SendLeave(id, 0); }, kNotFound,
       "worker 0 is not in session"},
      {"get an unknown session", [&] { return get("nope"); }, kNotFound,
       "no session 'nope'"},
      {"get an empty id", [&] { return get(""); }, kNotFound, "no session ''"},
      {"get with the wrong case", [&] { return get(upper); }, kNotFound,
       "no session '" + upper + "'"},
      {"parameters of an unknown session", [&] { return params("nope"); },
       kNotFound, "no session 'nope'"},
      {"parameters of an empty id", [&] { return params(""); }, kNotFound,
       "no session ''"},
      {"delete an unknown session", [&] { return del("nope"); }, kNotFound,
       "no session 'nope'"},
      {"delete an empty id", [&] { return del(""); }, kNotFound,
       "no session ''"},
  });
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

// ---- Requests that once got through ---------------------------------------
//
// Each was a gap found by this table (see the fix's commit); they stay as
// regression tests.

// A 40-byte CreateSession asks for a 2^36-element tensor, which passes
// validation (the limit is 2^40 elements) and Session::Create allocates it.
// When the allocation fails, std::bad_alloc escapes the handler and gRPC
// answers UNIMPLEMENTED with an empty message (seen here); when it fits
// (2^31 float32 is 8 GiB per copy, and the session keeps several), one
// request takes the machine's memory. A limit on the dimension (a server
// flag) and RESOURCE_EXHAUSTED would bound it.
TEST_F(ValidationTableTest, HugeShapeIsRejectedNotACrash) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  v1::Tensor* t = config.mutable_players(0)->mutable_tensors(0);
  t->clear_data();
  t->clear_shape();
  t->add_shape(int64_t{1} << 36);
  const grpc::Status status = SendCreate(config);
  EXPECT_TRUE(status.error_code() == kInvalid ||
              status.error_code() == kExhausted)
      << status.error_code() << " " << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.players[0].tensors[0].shape"));
  EXPECT_EQ(Snapshot(*stub_).rfind("ListSessions failed", 0),
            std::string::npos);
}

// An 800 KB config (100,000 AltGD stages of 1000 steps each) expands into a
// plan of 10^8 phases in Session::Create: many seconds of a server thread
// and GBs of memory (the client's 5 s deadline passes first), then
// std::bad_alloc. A cap on the total steps of a plan would bound it.
TEST_F(ValidationTableTest, HugeAltGdPlanIsRejectedNotACrash) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::ALTGD, 1, 0);
  for (int i = 0; i < 100000; ++i) {
    v1::AltGdStage* stage = config.mutable_algorithm()->add_altgd_order();
    stage->set_player("gen");
    stage->set_steps(1000);
  }
  GameOptServerOptions options = TestServerOptions();
  server_ = StartServer(options);  // the default message limit
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  const absl::Time start = absl::Now();
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kInvalid)
      << status.error_code() << " " << status.error_message() << " after "
      << absl::Now() - start;
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.algorithm.altgd_order"));
}

// The total-size check once named no field ("config.the game has more than
// 2^40 coordinates"). Past the server's --max_parameters it is
// RESOURCE_EXHAUSTED naming the tensor that crosses the limit.
TEST_F(ValidationTableTest, GameOverTheSizeLimitNamesTheTensor) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  v1::Tensor* t = config.mutable_players(1)->mutable_tensors(0);
  t->clear_data();
  t->set_shape(0, int64_t{1} << 40);
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kExhausted) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.players[1].tensors[0].shape"));
}

// Players and tensors are unbounded in number and looked up by linear
// search (GameLayout::FindPlayer / FindTensor), so creating a session and
// decoding every submission is quadratic in their count: 16,000 players
// take 0.7 s to create, 100,000 (a 1.3 MB request) about 45 s of a server
// thread. A cap (say 1024 players and 65536 tensors per player) or a hash
// index would bound it.
TEST_F(ValidationTableTest, TooManyPlayersAreRejectedQuickly) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  config.clear_players();
  for (int i = 0; i < 100000; ++i) {
    v1::PlayerConfig* p = config.add_players();
    p->set_name("p" + std::to_string(i));
    p->add_tensors()->set_name("w");
  }
  GameOptServerOptions options = TestServerOptions();
  server_ = StartServer(options);  // the default message limit
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kInvalid) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("config.players"));
}

// worker_name is stored, logged and returned by GetSession unchecked: any
// length up to the message limit, any bytes (newlines forge log lines).
TEST_F(ValidationTableTest, WorkerNameIsValidated) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 3, 0);
  absl::StatusOr<std::string> id = CreateSession(*stub_, config);
  ASSERT_TRUE(id.ok());
  RunTable({
      {"name of 100 KB",
       [&] { return SendJoin(*id, 0, std::string(100 << 10, 'n')); }, kInvalid,
       "worker_name"},
      {"name with a newline",
       [&] { return SendJoin(*id, 0, "w\n2024-01-01 00:00:00.000 forged"); },
       kInvalid, "worker_name"},
  });
}

// A submission for round -1 from a worker that has not submitted yet
// matches its last_round (-1, "none") and is taken for a retry: OK with the
// current task instead of FAILED_PRECONDITION.
TEST_F(ValidationTableTest, RoundMinusOneIsNotARetry) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  Scenario scenario(*stub_, game_, config);
  ASSERT_NO_FATAL_FAILURE(scenario.Create());
  RunTable({GradientRow(
      "round -1 of a fresh worker", scenario, 0,
      [](v1::SubmitGradientRequest& r) { r.set_round(-1); }, kStale,
      "round -1")});
}

// An error message echoes the client's session id whole: a long id makes
// the status too large for gRPC's metadata limit (8 KiB by default), and
// the client gets something other than NOT_FOUND.
TEST_F(ValidationTableTest, LongSessionIdIsNotFound) {
  const std::string id(64 << 10, 's');
  RunTable({
      {"get a 64 KiB id",
       [&] {
         grpc::ClientContext context;
         v1::GetSessionRequest request;
         request.set_session_id(id);
         v1::SessionStatus response;
         return stub_->GetSession(&context, request, &response);
       },
       kNotFound, "no session"},
      {"join a 64 KiB id", [&] { return SendJoin(id, 0); }, kNotFound,
       "no session"},
  });
}

// A worker dropped at a deadline that resends its last submission (a retry)
// is made active again without the check Join makes, so K + 1 workers can
// be active in a K-worker session.
TEST_F(ValidationTableTest, DroppedWorkerRetryDoesNotExceedK) {
  FakeClock clock;
  GameOptServerOptions options = TestServerOptions();
  options.clock = &clock;
  server_ = StartServer(options);
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  config.set_quorum(1);
  config.set_phase_deadline_seconds(10);
  Scenario scenario(*stub_, game_, config);
  ASSERT_NO_FATAL_FAILURE(scenario.Create());
  // Round 0: both submit. Round 1: only worker 0; the deadline drops 1.
  ASSERT_NO_FATAL_FAILURE(scenario.Round());
  const v1::SubmitGradientRequest last_of_1 = [&] {
    v1::SubmitGradientRequest r = scenario.Gradient(1);
    r.set_round(0);  // its last accepted submission, resent
    r.set_step(0);
    return r;
  }();
  Background w0 = scenario.SubmitInBackground(0);
  ASSERT_TRUE(WaitForSubmitted(*stub_, scenario.id(), 1));
  clock.Advance(absl::Seconds(11));
  w0.Join();
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, scenario.id());
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->workers(1).state(), "dropped");
  // A new worker takes the free place.
  v1::TaskResponse joined;
  ASSERT_TRUE(Join(*stub_, scenario.id(), &joined, 0, "replacement").ok());
  // The dropped worker retries its last submission.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(500));
  v1::TaskResponse response;
  stub_->SubmitGradient(&context, last_of_1, &response);
  status = GetSession(*stub_, scenario.id());
  ASSERT_TRUE(status.ok());
  int active = 0;
  for (const v1::WorkerStatus& w : status->workers()) {
    active += w.state() == "active";
  }
  EXPECT_LE(active, 2) << status->DebugString();
  server_.reset();  // before `clock`, which it reads
}

}  // namespace
}  // namespace gameopt::testing
