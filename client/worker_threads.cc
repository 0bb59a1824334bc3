#include "client/worker_threads.h"

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace gameopt {

absl::StatusOr<double> RunWorkerThreads(const ShardedSession& session,
                                        const Game& game,
                                        const WorkerThreadsOptions& options) {
  const int k = std::max(1, options.threads);
  std::vector<absl::Status> statuses(k);
  std::vector<std::thread> threads;
  absl::Mutex mu;
  int running = k;      // guarded by mu
  absl::Time finished;  // guarded by mu
  const absl::Time start = absl::Now();
  for (int i = 0; i < k; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Game> mine = game.Clone();
      WorkerOptions worker_options;
      worker_options.name = absl::StrCat(options.name_prefix, "-", i);
      worker_options.send_dtype = options.send_dtype;
      worker_options.stochastic_rounding = options.stochastic_rounding;
      if (i == 0) worker_options.on_progress = options.first_worker_progress;
      statuses[i] = session.RunWorker(mine.get(), worker_options);
      absl::MutexLock lock(&mu);
      if (--running == 0) finished = absl::Now();
    });
  }
  absl::Time end;
  {
    absl::MutexLock lock(&mu);
    const auto all_done = [&running]() { return running == 0; };
    while (
        !mu.AwaitWithTimeout(absl::Condition(&all_done), options.tick_every)) {
      if (options.tick) options.tick();
    }
    end = finished;
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  return absl::ToDoubleSeconds(end - start);
}

}  // namespace gameopt
