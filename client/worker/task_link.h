// TaskLink: one worker's calls to one session (JoinSession and the submits)
// with the failure handling of worker.h, shared by Worker and ShardedWorker.
//
// UNAVAILABLE, ABORTED and DEADLINE_EXCEEDED are retried with exponential
// backoff (initial_backoff doubling up to max_backoff, at most max_retries
// times in a row), resending the same request: the server applies a
// submission once. FAILED_PRECONDITION (the round closed without us) is
// answered by rejoining with our worker id, which returns the current task.
// Anything else is returned as is.
//
// Between a task's arrival and the next call, Heartbeat renews the
// worker's lease (keepalive.h), so long computations keep it active.
#ifndef GAMEOPT_CLIENT_WORKER_TASK_LINK_H_
#define GAMEOPT_CLIENT_WORKER_TASK_LINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/worker/keepalive.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace gameopt {

absl::Status FromGrpcStatus(const grpc::Status& status);

struct RetryPolicy {
  int max_retries = 20;  // consecutive retryable failures before giving up
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(2);
  // Deadline of one call; a call waits at the barrier for the slowest
  // worker, so make it long.
  absl::Duration call_timeout = absl::Minutes(30);
};

// Not thread-safe: one call at a time. `stop` (may be null) ends the retries
// early; it must outlive the link.
class TaskLink {
 public:
  TaskLink(std::shared_ptr<grpc::Channel> channel, std::string session_id,
           std::string worker_name, RetryPolicy policy,
           const std::atomic<bool>* stop = nullptr);

  const std::string& session_id() const { return session_id_; }
  // 0 until the first successful call; then the id the server gave us.
  int64_t worker_id() const { return worker_id_; }
  // Before the first call: rejoin as this worker instead of a new one.
  void set_worker_id(int64_t worker_id) { worker_id_ = worker_id; }

  // Joins (or rejoins with worker_id()) holding `known_params_version`.
  absl::Status Join(int64_t known_params_version, v1::TaskResponse& response);
  // The request's session and worker ids are filled in here.
  absl::Status Submit(v1::SubmitGradientRequest& request,
                      v1::TaskResponse& response);
  absl::Status Submit(v1::SubmitJacobianProductsRequest& request,
                      v1::TaskResponse& response);

 private:
  template <typename Request>
  absl::Status Call(const Request& request, v1::TaskResponse& response);
  absl::Status JoinOnce(int64_t known_params_version,
                        v1::TaskResponse& response);

  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
  const std::string session_id_;
  const std::string worker_name_;
  const RetryPolicy policy_;
  const std::atomic<bool>* const stop_;
  int64_t worker_id_ = 0;
  // Heartbeats while the worker computes a task (between our calls).
  Keepalive keepalive_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_TASK_LINK_H_
