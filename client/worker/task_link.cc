#include "client/worker/task_link.h"

#include <algorithm>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/time/clock.h"

namespace gameopt {
namespace {

// CANCELLED too: the worker never cancels its own calls, so a CANCELLED
// comes from a server that stopped with the call in flight (a retry that
// reached it during its graceful shutdown), and the restarted server
// answers the resubmission.
bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kCancelled ||
         code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

TaskLink::TaskLink(std::shared_ptr<grpc::Channel> channel,
                   std::string session_id, std::string worker_name,
                   RetryPolicy policy, const std::atomic<bool>* stop)
    : stub_(v1::GameOptimizer::NewStub(channel)),
      session_id_(std::move(session_id)),
      worker_name_(std::move(worker_name)),
      policy_(policy),
      stop_(stop),
      keepalive_(std::move(channel), session_id_) {}

absl::Status TaskLink::JoinOnce(int64_t known_params_version,
                                v1::TaskResponse& response) {
  v1::JoinSessionRequest request;
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  request.set_worker_name(worker_name_);
  request.set_known_params_version(known_params_version);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + policy_.call_timeout));
  return FromGrpcStatus(stub_->JoinSession(&context, request, &response));
}

template <typename Request>
absl::Status TaskLink::Call(const Request& request,
                            v1::TaskResponse& response) {
  keepalive_.Disarm();
  absl::Duration backoff = policy_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    absl::Status status;
    if constexpr (std::is_same_v<Request, v1::JoinSessionRequest>) {
      status = JoinOnce(request.known_params_version(), response);
    } else {
      grpc::ClientContext context;
      context.set_deadline(
          absl::ToChronoTime(absl::Now() + policy_.call_timeout));
      if constexpr (std::is_same_v<Request, v1::SubmitGradientRequest>) {
        status =
            FromGrpcStatus(stub_->SubmitGradient(&context, request, &response));
      } else {
        status = FromGrpcStatus(
            stub_->SubmitJacobianProducts(&context, request, &response));
      }
      if (status.code() == absl::StatusCode::kFailedPrecondition &&
          worker_id_ != 0) {
        // The round closed without us: ask for the current task.
        status = JoinOnce(request.known_params_version(), response);
      }
    }
    if (status.ok()) {
      worker_id_ = response.worker_id();
      if (response.task().kind() != v1::DONE) keepalive_.Arm(worker_id_);
      return status;
    }
    if (!Retryable(status.code()) || attempt >= policy_.max_retries ||
        (stop_ != nullptr && *stop_)) {
      return status;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

absl::Status TaskLink::Join(int64_t known_params_version,
                            v1::TaskResponse& response) {
  v1::JoinSessionRequest request;
  request.set_known_params_version(known_params_version);
  return Call(request, response);
}

absl::Status TaskLink::Submit(v1::SubmitGradientRequest& request,
                              v1::TaskResponse& response) {
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  return Call(request, response);
}

absl::Status TaskLink::Submit(v1::SubmitJacobianProductsRequest& request,
                              v1::TaskResponse& response) {
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  return Call(request, response);
}

}  // namespace gameopt
