#include "client/worker/worker.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           int max_message_mb) {
  grpc::ChannelArguments args;
  const int bytes = max_message_mb >= 2047 ? std::numeric_limits<int>::max()
                                           : max_message_mb * 1024 * 1024;
  args.SetMaxReceiveMessageSize(bytes);
  args.SetMaxSendMessageSize(bytes);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

Worker::Worker(std::shared_ptr<grpc::Channel> channel, std::string session_id,
               Game* game, WorkerOptions options)
    : stub_(v1::GameOptimizer::NewStub(std::move(channel))),
      session_id_(std::move(session_id)),
      game_(game),
      options_(std::move(options)),
      layout_(game->players()),
      worker_id_(options_.worker_id),
      params_(Eigen::VectorXd::Zero(layout_.dimension())) {}

absl::Status Worker::Join(v1::TaskResponse& response) {
  v1::JoinSessionRequest request;
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  request.set_worker_name(options_.name);
  request.set_known_params_version(params_version_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  return FromGrpc(stub_->JoinSession(&context, request, &response));
}

template <typename Request>
absl::Status Worker::Call(const Request& request, v1::TaskResponse& response) {
  absl::Duration backoff = options_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + options_.call_timeout));
    grpc::Status grpc_status;
    if constexpr (std::is_same_v<Request, v1::JoinSessionRequest>) {
      grpc_status = stub_->JoinSession(&context, request, &response);
    } else if constexpr (std::is_same_v<Request, v1::SubmitGradientRequest>) {
      grpc_status = stub_->SubmitGradient(&context, request, &response);
    } else {
      grpc_status = stub_->SubmitJacobianProducts(&context, request, &response);
    }
    absl::Status status = FromGrpc(grpc_status);
    if (status.code() == absl::StatusCode::kFailedPrecondition &&
        worker_id_ != 0) {
      // The round closed without us: ask for the current task.
      status = Join(response);
    }
    if (status.ok() || !Retryable(status.code()) ||
        attempt >= options_.max_retries || stop_) {
      return status;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status Worker::Accept(const v1::TaskResponse& response) {
  worker_id_ = response.worker_id();
  task_ = response.task();
  if (task_.params_included()) {
    absl::Status status = DecodeVector(task_.params(), layout_, params_);
    if (!status.ok()) return status;
    params_version_ = task_.params_version();
    if (task_.params().players_size() > 0 &&
        task_.params().players(0).tensors_size() > 0) {
      dtype_ = task_.params().players(0).tensors(0).dtype();
    }
  }
  if (options_.on_progress) {
    WorkerProgress progress;
    progress.worker_id = worker_id_;
    progress.step = task_.step();
    progress.phase = task_.phase();
    progress.kind = task_.kind();
    progress.params = &params_;
    progress.gradient = gradient_.size() > 0 ? &gradient_ : nullptr;
    options_.on_progress(progress);
  }
  return absl::OkStatus();
}

absl::Status Worker::Compute(const v1::Task& task) {
  const std::vector<std::string> players(task.players().begin(),
                                         task.players().end());
  if (task.kind() == v1::GRADIENT) {
    game_->DrawMinibatches(task.num_samples(), task.seed());
    v1::SubmitGradientRequest& request = gradient_request_;
    request.set_session_id(session_id_);
    request.set_worker_id(worker_id_);
    request.set_round(task.round());
    request.set_step(task.step());
    request.set_phase(task.phase());
    request.set_known_params_version(params_version_);
    for (int k = 0; k < task.num_samples(); ++k) {
      Eigen::VectorXd g = game_->Gradient(params_, k);
      v1::Vector* out = k < request.gradients_size()
                            ? request.mutable_gradients(k)
                            : request.add_gradients();
      EncodeVector(g, layout_, players, dtype_, *out);
      if (k == 0) gradient_ = std::move(g);
    }
    while (request.gradients_size() > task.num_samples()) {
      request.mutable_gradients()->RemoveLast();
    }
    v1::TaskResponse response;
    absl::Status status = Call(request, response);
    if (!status.ok()) return status;
    return Accept(response);
  }
  v1::SubmitJacobianProductsRequest& request = products_request_;
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  request.set_round(task.round());
  request.set_step(task.step());
  request.set_phase(task.phase());
  request.set_known_params_version(params_version_);
  request.clear_vjp();
  request.clear_jvp();
  Eigen::VectorXd probe = Eigen::VectorXd::Zero(layout_.dimension());
  for (int k = 0; k < task.probes_size(); ++k) {
    absl::Status status = DecodeVector(task.probes(k), layout_, probe);
    if (!status.ok()) return status;
    if (task.vjp()) {
      EncodeVector(game_->Vjp(params_, probe, k), layout_, {}, dtype_,
                   *request.add_vjp());
    }
    if (task.jvp()) {
      EncodeVector(game_->Jvp(params_, probe, k), layout_, {}, dtype_,
                   *request.add_jvp());
    }
  }
  v1::TaskResponse response;
  absl::Status status = Call(request, response);
  if (!status.ok()) return status;
  return Accept(response);
}

absl::Status Worker::Run() {
  v1::JoinSessionRequest join;
  join.set_session_id(session_id_);
  join.set_worker_id(worker_id_);
  join.set_worker_name(options_.name);
  join.set_known_params_version(params_version_);
  v1::TaskResponse response;
  absl::Status status = Call(join, response);
  if (!status.ok()) return status;
  status = Accept(response);
  while (status.ok() && task_.kind() != v1::DONE) {
    if (stop_) return absl::CancelledError("worker stopped");
    v1::Task task;
    task.Swap(&task_);  // Compute() refills task_ with the next task
    status = Compute(task);
    ++tasks_done_;
  }
  return status;
}

}  // namespace gameopt
