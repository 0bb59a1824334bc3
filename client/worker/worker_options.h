// What a worker of this library (Worker, ShardedWorker) is told, and tells
// its caller while it plays: WorkerOptions and WorkerProgress.
#ifndef GAMEOPT_CLIENT_WORKER_WORKER_OPTIONS_H_
#define GAMEOPT_CLIENT_WORKER_WORKER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/time/time.h"
#include "client/worker/task_link.h"
#include "gameopt/v1/gameopt.pb.h"

namespace gameopt {

// What the worker just received, for progress displays and recorders.
struct WorkerProgress {
  int64_t worker_id = 0;  // sharded: the id on shard 0
  int64_t step = 0;
  int phase = 0;
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  // The point of the task (x at the start of the step when phase == 0).
  const Eigen::VectorXd* params = nullptr;
  // Worker's own sample-0 gradient of the last gradient task, or null.
  const Eigen::VectorXd* gradient = nullptr;
};

struct WorkerOptions {
  std::string name;  // shown in the server's logs
  // Nonzero to rejoin as that worker. One shard only: a sharded worker's ids
  // may differ per shard (a ShardedWorker of S > 1 refuses it).
  int64_t worker_id = 0;
  int max_retries = 20;  // consecutive retryable failures before giving up
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(2);
  // Deadline of one call; a call waits at the barrier for the slowest
  // worker, so make it long.
  absl::Duration call_timeout = absl::Minutes(30);

  // Compressed wire: the dtype gradients and products are sent in; set it
  // to the session's wire.from_workers (BFLOAT16, FLOAT16, INT8_BLOCK: the
  // session refuses a compressed dtype it did not ask for).
  // DTYPE_UNSPECIFIED: the session's dtype, learned from the parameters.
  // Tasks are decoded whatever their dtype.
  v1::DType send_dtype = v1::DTYPE_UNSPECIFIED;
  // Round what is sent stochastically (unbiased; the session's
  // wire.stochastic_rounding) instead of to nearest-even.
  bool stochastic_rounding = false;

  RetryPolicy retry_policy() const {
    return {max_retries, initial_backoff, max_backoff, call_timeout};
  }
  // Called on the worker's thread after each task arrives (before it is
  // computed), and once with kind DONE.
  std::function<void(const WorkerProgress&)> on_progress;
  // Called after the gradients of each GRADIENT task are computed: named
  // numbers to report with them (SubmitGradientRequest.scalars, e.g.
  // {"loss/generator", 0.69}); the server averages them per step and shows
  // them in its status and metrics. Sharded: sent to every shard. At most
  // 64, names [A-Za-z0-9_.:/-]{1,128}, finite values (else the submission
  // fails with INVALID_ARGUMENT).
  std::function<std::vector<std::pair<std::string, double>>(
      const v1::Task& task)>
      report_scalars;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_WORKER_OPTIONS_H_
