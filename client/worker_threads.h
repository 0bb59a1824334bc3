// K worker threads on one experiment, each with its own clone of the game:
// what `gameopt_client play` and `gameopt_client work` run.
#ifndef GAMEOPT_CLIENT_WORKER_THREADS_H_
#define GAMEOPT_CLIENT_WORKER_THREADS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/worker/game.h"
#include "client/worker/sharded_session.h"
#include "client/worker/worker_options.h"

namespace gameopt {

struct WorkerThreadsOptions {
  int threads = 1;                     // K (at least 1 runs)
  std::string name_prefix = "worker";  // worker i is named <prefix>-<i>
  // WorkerOptions::send_dtype and stochastic_rounding of every worker.
  v1::DType send_dtype = v1::DTYPE_UNSPECIFIED;
  bool stochastic_rounding = false;
  // Worker 0's WorkerOptions::on_progress, on its thread (may be empty).
  std::function<void(const WorkerProgress&)> first_worker_progress;
  // Called on the calling thread every `tick_every` while the workers run
  // (may be empty), e.g. to redraw a progress line.
  std::function<void()> tick;
  absl::Duration tick_every = absl::Milliseconds(200);
};

// Runs the workers until every one has returned. The seconds from the
// start to the last worker's return, or the first worker's error (by
// thread index). `game` is only cloned; it is not used by the threads.
absl::StatusOr<double> RunWorkerThreads(const ShardedSession& session,
                                        const Game& game,
                                        const WorkerThreadsOptions& options);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_THREADS_H_
