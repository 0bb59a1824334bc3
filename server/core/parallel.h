// ParallelFor: splits a coordinate-wise kernel over long vectors across a
// small fixed pool of threads (one per core, the caller included).
//
// Determinism: ParallelFor only decides which thread computes which
// coordinates. Kernels that compute every coordinate with the same
// operations in the same order, whatever the range it falls in (all of
// kernels.h, the base optimizers, the estimators, DecodeSample), give
// bit-identical results for any thread count; a reduction must combine
// fixed blocks in a fixed order (see kernels.h), never per-range partials.
//
// Thread-safe. One ParallelFor uses the pool at a time: a call made while
// another is running (a second session closing a round) runs inline on its
// caller, so calls never wait for each other and never oversubscribe.
#ifndef GAMEOPT_SERVER_CORE_PARALLEL_H_
#define GAMEOPT_SERVER_CORE_PARALLEL_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace gameopt {

// Vectors shorter than this run on the calling thread: below about 256K
// float32 coordinates (1 MiB) waking a helper costs more than it saves.
inline constexpr int64_t kParallelMinCoordinates = int64_t{1} << 18;
// Range boundaries are multiples of this many coordinates: whole cache
// lines, and whole blocks of the blocked kernels (kernels.h).
inline constexpr int64_t kParallelAlign = 2048;

// Threads a ParallelFor may use, the caller included: at most the pool's
// size (std::thread::hardware_concurrency()), which is the default. The
// long kernels run when a round closes, while gRPC's threads wait for the
// next messages, so every core is free for them.
int MaxParallelism();
// For benchmarks and tests: 1 = inline only; clamped to the pool's size;
// 0 restores the default.
void SetMaxParallelism(int threads);

// Calls fn(begin, end) on disjoint ranges that cover [0, n), each range's
// boundaries multiples of kParallelAlign (but for n itself), possibly on
// several threads, and returns when all have run. n below
// kParallelMinCoordinates (or one allowed thread) gives one call
// fn(0, n) on the calling thread. `fn` must not call ParallelFor.
void ParallelFor(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn);

// The smallest index that `fn(begin, end)` finds over ParallelFor(n)'s
// ranges, each answer an index into [begin, end) or -1 for none; -1 when
// no range finds one. The same for any thread count when each range's
// answer depends on that range only (the first bad value of a decode).
int64_t ParallelFirst(int64_t n,
                      absl::FunctionRef<int64_t(int64_t, int64_t)> fn);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_PARALLEL_H_
