// The validation tables' fixture (validation_*_test.cc): a real server on
// 127.0.0.1 with a scenario of sessions and workers driven by valid
// requests, a snapshot of everything a client can observe, and rows of
// bad requests, each checked for its status, its message and that it
// changed nothing.
#ifndef GAMEOPT_TESTS_SERVICE_VALIDATION_TABLE_H_
#define GAMEOPT_TESTS_SERVICE_VALIDATION_TABLE_H_

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

using ::testing::HasSubstr;

// The fixture's server limit, small so that an oversized message is cheap.
inline constexpr int kMaxMessageMb = 1;
// Deadline of a row's call: a bad request that is wrongly accepted waits at
// the barrier, and this turns the hang into a failure.
inline constexpr absl::Duration kRowDeadline = absl::Seconds(5);

inline const double kNaN = std::numeric_limits<double>::quiet_NaN();
inline const double kInf = std::numeric_limits<double>::infinity();

inline std::chrono::system_clock::time_point RowDeadline() {
  return std::chrono::system_clock::now() +
         absl::ToChronoMilliseconds(kRowDeadline);
}

// ---- Everything a client can observe of the server ----------------------

// Every session's status and parameters in text format (so that a failure
// shows a readable diff): equal strings mean nothing observable changed.
// Text format prints doubles with enough digits to round-trip.
inline std::string Snapshot(v1::GameOptimizer::Stub& stub) {
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

inline constexpr grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
inline constexpr grpc::StatusCode kNotFound = grpc::StatusCode::NOT_FOUND;
inline constexpr grpc::StatusCode kStale =
    grpc::StatusCode::FAILED_PRECONDITION;
inline constexpr grpc::StatusCode kExhausted =
    grpc::StatusCode::RESOURCE_EXHAUSTED;

// Writes `value` as the dtype of `tensor` at element `index`.
inline void Poke(v1::Tensor* tensor, int index, double value) {
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
inline v1::Tensor* GradTensor(v1::SubmitGradientRequest& r, int p, int t) {
  return r.mutable_gradients(0)->mutable_players(p)->mutable_tensors(t);
}
inline v1::Tensor* VjpTensor(v1::SubmitJacobianProductsRequest& r, int p,
                             int t) {
  return r.mutable_vjp(0)->mutable_players(p)->mutable_tensors(t);
}

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_SERVICE_VALIDATION_TABLE_H_
