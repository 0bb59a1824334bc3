// Coordinate-wise kernels of the hot path that no single class owns, and
// the blocking every long-vector kernel of the core shares.
//
// Long vectors are processed in blocks of kKernelBlock coordinates, all the
// inputs and outputs of a block together in L1, and the blocks split across
// threads with ParallelFor (parallel.h). Each coordinate goes through the
// same operations in the same order as the plain Eigen expressions the
// comments give, so the results are bit-identical to them and to each other
// whatever the thread count. Reductions (norms) sum fixed blocks in order.
#ifndef GAMEOPT_SERVER_CORE_KERNELS_H_
#define GAMEOPT_SERVER_CORE_KERNELS_H_

#include <cstdint>

#include "Eigen/Core"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "server/core/flat_vector.h"

namespace gameopt {

// Coordinates per block: 2 KiB of float32, so that the up to 8 arrays a
// kernel streams (Adam: g, x, m, v; an estimator: K samples and a sum) fit
// in a 32 KiB L1 together (measured: 512 beat 2048 by 20-40% at 16M).
inline constexpr int64_t kKernelBlock = 512;

// Calls fn(begin, end) for the consecutive blocks [begin, end) of [0, n),
// each at most kKernelBlock long, the blocks split across threads.
void ForEachBlock(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn);

// direction = xi + gamma * mean_k(vjp[k]), the consensus direction
// g = xi + gamma J^T xi, without storing the mean; per coordinate
//   m = vjp_0 + vjp_1 + ... + vjp_{K-1};  m /= K (if K > 1);
//   c = gamma * m;  g = xi + c.
// `direction` is resized to xi's length when it differs; it may be xi
// itself (in place). K >= 1; every vector has xi's length and dtype T.
// Returns the correction's norm |c|, accumulated in double over fixed
// blocks.
template <typename T>
double ConsensusDirection(const Eigen::Ref<const Vec<T>>& xi,
                          absl::Span<const FlatVector* const> vjp, T gamma,
                          Vec<T>& direction);

extern template double ConsensusDirection<float>(
    const Eigen::Ref<const Vec<float>>&, absl::Span<const FlatVector* const>,
    float, Vec<float>&);
extern template double ConsensusDirection<double>(
    const Eigen::Ref<const Vec<double>>&, absl::Span<const FlatVector* const>,
    double, Vec<double>&);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_KERNELS_H_
