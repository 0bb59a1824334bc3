// Worker: joins a gameopt session and answers its tasks with a Game until
// the session is DONE. What any C++ user links to take part in training.
//
//   auto channel = MakeChannel("127.0.0.1:50051");  // channel.h: TLS, token
//   Worker worker(channel, session_id, game.get());
//   absl::Status status = worker.Run();   // OK when the session is DONE
//
// Failures: UNAVAILABLE (server restarting or shutting down), CANCELLED
// (the server stopped with the call in flight), ABORTED (a round missed its
// quorum) and DEADLINE_EXCEEDED are retried with
// exponential backoff, resubmitting the same round (the server applies it
// once). FAILED_PRECONDITION (the round closed without us, e.g. after being
// dropped at a deadline) rejoins with the same worker id for the current
// task. Anything else ends Run() with the server's status.
#ifndef GAMEOPT_CLIENT_WORKER_WORKER_H_
#define GAMEOPT_CLIENT_WORKER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/worker/game.h"
#include "client/worker/channel.h"
#include "client/worker/task_link.h"
#include "client/worker/tensor_codec.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace gameopt {

// What the worker just received, for progress displays and recorders.
struct WorkerProgress {
  int64_t worker_id = 0;
  int64_t step = 0;
  int phase = 0;
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  // The point of the task (x at the start of the step when phase == 0).
  const Eigen::VectorXd* params = nullptr;
  // Worker's own sample-0 gradient of the last gradient task, or null.
  const Eigen::VectorXd* gradient = nullptr;
};

struct WorkerOptions {
  std::string name;       // shown in the server's logs
  int64_t worker_id = 0;  // nonzero to rejoin as that worker
  int max_retries = 20;   // consecutive retryable failures before giving up
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(2);
  // Deadline of one call; a call waits at the barrier for the slowest
  // worker, so make it long.
  absl::Duration call_timeout = absl::Minutes(30);

  RetryPolicy retry_policy() const {
    return {max_retries, initial_backoff, max_backoff, call_timeout};
  }
  // Called on the worker's thread after each task arrives (before it is
  // computed), and once with kind DONE.
  std::function<void(const WorkerProgress&)> on_progress;
  // Called after the gradients of each GRADIENT task are computed: named
  // numbers to report with them (SubmitGradientRequest.scalars, e.g.
  // {"loss/generator", 0.69}); the server averages them per step and shows
  // them in its status and metrics. At most 64, names
  // [A-Za-z0-9_.:/-]{1,128}, finite values (else the submission fails with
  // INVALID_ARGUMENT).
  std::function<std::vector<std::pair<std::string, double>>(
      const v1::Task& task)>
      report_scalars;
};

// Not thread-safe; one Worker per thread. `game` must outlive Run().
class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, std::string session_id,
         Game* game, WorkerOptions options = {});

  // Joins and plays until the session is DONE (OK), Stop() is called
  // (CANCELLED) or a non-retryable error.
  absl::Status Run();
  // Makes Run() return at the next task boundary. Thread-safe.
  void Stop() { stop_ = true; }

  int64_t worker_id() const { return link_.worker_id(); }
  int64_t tasks_done() const { return tasks_done_; }

 private:
  absl::Status Compute(const v1::Task& task);
  absl::Status Accept(const v1::TaskResponse& response);

  Game* const game_;
  const WorkerOptions options_;
  const FlatLayout layout_;
  std::atomic<bool> stop_{false};
  TaskLink link_;

  int64_t tasks_done_ = 0;
  int64_t params_version_ = 0;     // 0: holds none
  v1::DType dtype_ = v1::FLOAT32;  // the session's, learned from params
  Eigen::VectorXd params_;
  Eigen::VectorXd gradient_;
  v1::Task task_;
  // Reused request messages: no allocation per round in steady state.
  v1::SubmitGradientRequest gradient_request_;
  v1::SubmitJacobianProductsRequest products_request_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_WORKER_H_
