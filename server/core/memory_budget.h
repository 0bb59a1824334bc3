// MemoryBudget: the memory a server's sessions may hold (--max_memory_mb).
// A request that would take more than is left is refused with
// RESOURCE_EXHAUSTED saying how much it asks and how much is left, instead
// of the kernel killing the server when the memory is touched.
//
// What a session holds is estimated from its config (EstimateSessionBytes):
// per coordinate of the joint vector, in the session's dtype,
//   - the parameters and the algorithm's own vectors (mean gradient,
//     update direction, extrapolated point, lookahead's slow weights):
//     kAlgorithmVectors;
//   - each player's optimizer slots (momentum 1, RMSProp 1, Adam 2);
//   - per worker of a round (K = workers_per_round) and sample
//     (samples_per_worker): the sample buffer, the probe it answers in a
//     products phase and the request payload being decoded: 3; one more
//     (its fused J_k^T xi_k) with fuse_local_products or bias_meter;
//   - CGD and ACGD, in float64: the mean gradient and the step sizes (2 d;
//     ACGD's accumulators 2 d more) and, over the solved player's n_s
//     coordinates, the warm start and right-hand side (2) and the Krylov
//     solver (CG 3, GMRES cgd_max_iterations + 1 basis vectors).
// Transient serialization buffers and the spectrum's Krylov basis are not
// counted; the default budget leaves room for them.
//
// Measured (tests/bench/README.md, "Left to do"): gameopt_server's peak on
// ConOpt, d = 16M float32, K = 4, RMSProp is 15.25 x 4 d bytes with the
// unbiased estimator (parameters, slot, mean gradient, and per worker its
// sample, its probe and its request in gRPC's buffers: the 3 above) and
// 12 x 4 d with the pooled one (one probe for all, so the 3 per sample
// overestimate it by K - 1 vectors).
//
// Thread-safe.
#ifndef GAMEOPT_SERVER_CORE_MEMORY_BUDGET_H_
#define GAMEOPT_SERVER_CORE_MEMORY_BUDGET_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/core/config.h"
#include "server/core/layout.h"

namespace gameopt {

inline constexpr int kAlgorithmVectors = 4;
inline constexpr int kBuffersPerWorkerSample = 3;

// Bytes a session of `config` (laid out as `layout`) holds, saturating at
// INT64_MAX (no overflow for any config).
int64_t EstimateSessionBytes(const SessionConfig& config,
                             const GameLayout& layout);

// Bytes of the largest task message a worker of the session receives: the
// parameters, plus one probe per gradient sample in a products phase
// (ConOpt, SGA), plus the names and shapes of every tensor each carries
// (saturating; an upper estimate).
int64_t EstimateTaskBytes(const SessionConfig& config,
                          const GameLayout& layout);

// The memory limit of this process: the cgroup's (v2 memory.max, v1
// memory.limit_in_bytes) when set, else the machine's physical memory.
// 0 when neither can be read.
int64_t MemoryLimitBytes();

// The default budget: kDefaultBudgetFraction of MemoryLimitBytes() (the
// rest for gRPC buffers, messages in flight, the process itself).
inline constexpr double kDefaultBudgetFraction = 0.75;
int64_t DefaultMemoryBudgetBytes();

class MemoryBudget {
 public:
  // `limit_bytes` <= 0: unlimited (nothing is accounted).
  explicit MemoryBudget(int64_t limit_bytes) : limit_(limit_bytes) {}

  // Takes `bytes` for `what` (e.g. "session s3 (d = 1000, float32, Adam)")
  // or ResourceExhausted naming both amounts and the --max_memory_mb flag.
  absl::Status Reserve(int64_t bytes, const std::string& what);
  // Takes `bytes` even past the limit (restored sessions: they were
  // accepted before).
  void ForceReserve(int64_t bytes);
  void Release(int64_t bytes);

  int64_t limit() const { return limit_; }
  int64_t used() const;

 private:
  const int64_t limit_;
  mutable absl::Mutex mu_;
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_MEMORY_BUDGET_H_
