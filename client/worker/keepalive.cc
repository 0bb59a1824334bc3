#include "client/worker/keepalive.h"

#include <utility>

#include "absl/time/clock.h"

namespace gameopt {

Keepalive::Keepalive(std::shared_ptr<grpc::Channel> channel,
                     std::string session_id)
    : stub_(v1::GameOptimizer::NewStub(std::move(channel))),
      session_id_(std::move(session_id)) {}

Keepalive::~Keepalive() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Keepalive::Arm(int64_t worker_id) {
  absl::MutexLock lock(&mu_);
  if (disabled_ || worker_id == 0) return;
  worker_id_ = worker_id;
  next_ = absl::Now() + interval_;
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void Keepalive::Disarm() {
  absl::MutexLock lock(&mu_);
  worker_id_ = 0;
}

int64_t Keepalive::sent() const {
  absl::MutexLock lock(&mu_);
  return sent_;
}

bool Keepalive::Due() const {
  return stop_ || (worker_id_ != 0 && !disabled_ && absl::Now() >= next_);
}

void Keepalive::Loop() {
  while (true) {
    int64_t worker_id;
    {
      absl::MutexLock lock(&mu_);
      // Wakes for Stop/Disarm/Arm (the condition is re-evaluated on every
      // unlock) and at least every 50 ms for the clock.
      while (!Due()) {
        mu_.AwaitWithTimeout(absl::Condition(this, &Keepalive::Due),
                             absl::Milliseconds(50));
      }
      if (stop_) return;
      worker_id = worker_id_;
      next_ = absl::Now() + interval_;
    }
    v1::HeartbeatRequest request;
    request.set_session_id(session_id_);
    request.set_worker_id(worker_id);
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    const grpc::Status status = stub_->Heartbeat(&context, request, &response);
    absl::MutexLock lock(&mu_);
    ++sent_;
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      disabled_ = true;
    } else if (status.ok()) {
      if (response.worker_lease_seconds() <= 0.0) {
        disabled_ = true;  // no lease: nothing to renew
      } else {
        interval_ = absl::Seconds(response.worker_lease_seconds() / 3.0);
        next_ = absl::Now() + interval_;
      }
    }
  }
}

}  // namespace gameopt
