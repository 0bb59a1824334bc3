#include "server/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gameopt {
namespace {

// Threads claim parts one at a time, so a thread that the scheduler delays
// (the cores are shared with gRPC's threads and other processes) leaves
// its remaining parts to the others, and the others wait at most for the
// part it holds: at least kPartsPerThread parts per thread, and parts of
// at most kMaxPart coordinates (about 50 us of a memory-bound kernel).
constexpr int kPartsPerThread = 4;
constexpr int64_t kMaxPart = int64_t{1} << 16;

// The helpers of ParallelFor: size() - 1 threads that sleep until a job is
// posted, then claim its parts alongside the caller. A leaked singleton: the
// threads live as long as the process.
class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) {
      std::thread([this] { Loop(); }).detach();
    }
    size_ = helpers + 1;
  }

  int size() const { return size_; }

  // Runs fn(0) .. fn(parts - 1) on the caller and up to threads - 1
  // helpers; inline when the pool is busy with another job.
  void Run(int parts, int threads, absl::FunctionRef<void(int)> fn) {
    if (threads <= 1 || parts <= 1 || !run_mu_.TryLock()) {
      for (int p = 0; p < parts; ++p) fn(p);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      job_ = &fn;
      parts_ = parts;
      next_ = 0;
      done_ = 0;
      slots_ = std::min(threads - 1, size_ - 1);
      ++generation_;
    }
    Work();
    {
      absl::MutexLock lock(&mu_);
      auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return done_ == parts_ && active_ == 0;
      };
      mu_.Await(absl::Condition(&finished));
      job_ = nullptr;
    }
    run_mu_.Unlock();
  }

 private:
  // Claims and runs parts of the current job until none is left.
  void Work() {
    while (true) {
      int part;
      const absl::FunctionRef<void(int)>* job;
      {
        absl::MutexLock lock(&mu_);
        if (job_ == nullptr || next_ >= parts_) return;
        part = next_++;
        job = job_;
      }
      (*job)(part);
      absl::MutexLock lock(&mu_);
      ++done_;
    }
  }

  void Loop() {
    int64_t seen = 0;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto posted = [this, &seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return generation_ != seen && job_ != nullptr && slots_ > 0;
        };
        mu_.Await(absl::Condition(&posted));
        seen = generation_;
        --slots_;
        ++active_;
      }
      Work();
      absl::MutexLock lock(&mu_);
      --active_;
    }
  }

  int size_ = 1;
  absl::Mutex run_mu_;  // held by the caller of the running job
  absl::Mutex mu_;
  const absl::FunctionRef<void(int)>* job_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int parts_ ABSL_GUARDED_BY(mu_) = 0;
  int next_ ABSL_GUARDED_BY(mu_) = 0;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  int slots_ ABSL_GUARDED_BY(mu_) = 0;   // helpers that may still join
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // helpers inside Work()
};

Pool& GetPool() {
  static Pool* const pool = [] {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return new Pool(std::clamp(cores, 1, 64) - 1);
  }();
  return *pool;
}

std::atomic<int> max_parallelism{0};  // 0: the default

}  // namespace

int MaxParallelism() {
  const int set = max_parallelism.load(std::memory_order_relaxed);
  const int size = GetPool().size();
  return set == 0 ? size : std::min(set, size);
}

void SetMaxParallelism(int threads) {
  max_parallelism.store(
      threads <= 0 ? 0 : std::clamp(threads, 1, GetPool().size()),
      std::memory_order_relaxed);
}

void ParallelFor(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn) {
  const int threads = MaxParallelism();
  if (n < kParallelMinCoordinates || threads <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  const int64_t wanted = int64_t{threads} * kPartsPerThread;
  int64_t length = std::min((n + wanted - 1) / wanted, kMaxPart);
  length = (length + kParallelAlign - 1) / kParallelAlign * kParallelAlign;
  const int parts = static_cast<int>((n + length - 1) / length);
  GetPool().Run(parts, threads, [&](int part) {
    const int64_t begin = part * length;
    fn(begin, std::min(n, begin + length));
  });
}

int64_t ParallelFirst(int64_t n,
                      absl::FunctionRef<int64_t(int64_t, int64_t)> fn) {
  std::atomic<int64_t> first{n};
  ParallelFor(n, [&](int64_t begin, int64_t end) {
    const int64_t found = fn(begin, end);
    if (found < 0) return;
    int64_t seen = first.load(std::memory_order_relaxed);
    while (found < seen && !first.compare_exchange_weak(seen, found)) {
    }
  });
  const int64_t found = first.load();
  return found < n ? found : -1;
}

}  // namespace gameopt
