// The RPC side of the service test helpers (test_util.h): servers, stubs,
// calls and the worker loop.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

// A worker's call: waits up to kRpcDeadline, and for its channel to connect
// (wait_for_ready). A fresh channel's first connection can fail spuriously
// with gRPC 1.51 ("No such file or directory", seen 1 in 20 runs of the
// 64-worker load test under a CPU hog; the cause is in
// client/worker/channel.h, PrimeAbseilBeforeConnecting); a fail-fast Join
// would then leave that worker out and the round waiting for it. The
// worker libraries retry UNAVAILABLE instead; these helpers let gRPC
// reconnect. Errors from the server are still returned at once.
void PrepareWorkerCall(grpc::ClientContext& context) {
  context.set_deadline(Deadline(kRpcDeadline));
  context.set_wait_for_ready(true);
}

}  // namespace

// ---- Servers and stubs
// -------------------------------------------------------

GameOptServerOptions TestServerOptions() {
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  if (std::getenv("GAMEOPT_TEST_LOG") == nullptr) options.log = nullptr;
  return options;
}

std::unique_ptr<GameOptServer> StartServer(GameOptServerOptions options) {
  auto server = std::make_unique<GameOptServer>(std::move(options));
  if (absl::Status status = server->Start(); !status.ok()) {
    std::cerr << "cannot start the test server: " << status << "\n";
    return nullptr;
  }
  return server;
}

std::unique_ptr<v1::GameOptimizer::Stub> NewStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return v1::GameOptimizer::NewStub(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

std::unique_ptr<v1::GameOptimizer::Stub> NewStub(int port) {
  return NewStub("127.0.0.1:" + std::to_string(port));
}

// ---- Calls and the worker loop
// -------------------------------------------------

grpc::Status Join(v1::GameOptimizer::Stub& stub, const std::string& session_id,
                  v1::TaskResponse* response, int64_t worker_id,
                  const std::string& name) {
  v1::JoinSessionRequest request;
  request.set_session_id(session_id);
  request.set_worker_id(worker_id);
  request.set_worker_name(name);
  request.set_known_params_version(-1);
  grpc::ClientContext context;
  PrepareWorkerCall(context);
  return stub.JoinSession(&context, request, response);
}

grpc::Status Submit(v1::GameOptimizer::Stub& stub,
                    const v1::SubmitGradientRequest& request,
                    v1::TaskResponse* response) {
  grpc::ClientContext context;
  PrepareWorkerCall(context);
  return stub.SubmitGradient(&context, request, response);
}

grpc::Status Submit(v1::GameOptimizer::Stub& stub,
                    const v1::SubmitJacobianProductsRequest& request,
                    v1::TaskResponse* response) {
  grpc::ClientContext context;
  PrepareWorkerCall(context);
  return stub.SubmitJacobianProducts(&context, request, response);
}

absl::StatusOr<std::string> CreateSession(v1::GameOptimizer::Stub& stub,
                                          const v1::SessionConfig& config) {
  v1::CreateSessionRequest request;
  *request.mutable_config() = config;
  v1::CreateSessionResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub.CreateSession(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response.session_id();
}

absl::StatusOr<v1::SessionStatus> GetSession(v1::GameOptimizer::Stub& stub,
                                             const std::string& session_id) {
  v1::GetSessionRequest request;
  request.set_session_id(session_id);
  v1::SessionStatus response;
  grpc::ClientContext context;
  grpc::Status status = stub.GetSession(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

absl::StatusOr<v1::GetParametersResponse> GetParameters(
    v1::GameOptimizer::Stub& stub, const std::string& session_id) {
  v1::GetParametersRequest request;
  request.set_session_id(session_id);
  v1::GetParametersResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub.GetParameters(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

WorkerRun RunWorker(v1::GameOptimizer::Stub& stub,
                    const std::string& session_id, const QuadraticGame& game,
                    const WorkerOptions& options) {
  WorkerRun run;
  v1::TaskResponse response;
  run.status = Join(stub, session_id, &response, 0, options.name);
  if (!run.status.ok()) return run;
  run.worker_id = response.worker_id();
  Eigen::VectorXd x;
  while (true) {
    const v1::Task task = response.task();
    run.last_task = task;
    if (task.params_included()) x = DecodeVector(game, task.params());
    if (task.kind() == v1::DONE || run.submissions >= options.max_tasks) break;
    if (x.size() == 0) {
      run.status = grpc::Status(grpc::StatusCode::INTERNAL,
                                "a task came without the parameters");
      break;
    }
    ++run.submissions;
    response.Clear();
    if (task.kind() == v1::GRADIENT || task.kind() == v1::CROSS_GRADIENT) {
      const v1::SubmitGradientRequest request = GradientRequest(
          game, session_id, run.worker_id, task, x, options.dtype);
      if (options.recording != nullptr) options.recording->Add(request);
      run.status = Submit(stub, request, &response);
    } else {
      const v1::SubmitJacobianProductsRequest request =
          ProductsRequest(game, session_id, run.worker_id, task, options.dtype);
      if (options.recording != nullptr) options.recording->Add(request, task);
      run.status = Submit(stub, request, &response);
    }
    if (!run.status.ok()) break;
  }
  return run;
}

std::unique_ptr<AsyncCall> SubmitAsync(v1::GameOptimizer::Stub& stub,
                                       v1::SubmitGradientRequest request,
                                       absl::Duration deadline) {
  auto call = std::make_unique<AsyncCall>();
  call->request = std::move(request);
  call->context.set_deadline(Deadline(deadline));
  AsyncCall* raw = call.get();
  stub.async()->SubmitGradient(&raw->context, &raw->request, &raw->response,
                               [raw](grpc::Status status) {
                                 raw->status = std::move(status);
                                 raw->done.Notify();
                               });
  return call;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

bool WaitForSubmitted(v1::GameOptimizer::Stub& stub,
                      const std::string& session_id, int n) {
  return WaitFor([&] {
    absl::StatusOr<v1::SessionStatus> status = GetSession(stub, session_id);
    return status.ok() && status->submitted() == n;
  });
}

}  // namespace gameopt::testing
