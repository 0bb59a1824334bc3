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

#include <cmath>
#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "server/core/flat_vector.h"
#include "server/core/sample_set.h"

namespace gameopt {

// Coordinates per block: 2 KiB of float32, so that the up to 8 arrays a
// kernel streams (Adam: g, x, m, v; an estimator: K samples and a sum) fit
// in a 32 KiB L1 together (measured: 512 beat 2048 by 20-40% at 16M).
inline constexpr int64_t kKernelBlock = 512;

// `blocks` blocks of kKernelBlock values of scratch for the calling
// thread's kernel (for samples decoded into L1; sample_set.h), grown only.
template <typename T>
T* KernelScratch(size_t blocks) {
  static thread_local std::vector<T> scratch;
  if (scratch.size() < blocks * kKernelBlock) {
    scratch.resize(blocks * kKernelBlock);
  }
  return scratch.data();
}

// out[i] = (a[i] - b[i]) / divisor, or a[i] / divisor when b is null,
// for i in [0, n), on the calling thread: one IEEE subtraction and
// division per value, so every vector width gives the same bits; compiled
// per instruction set (target_clones.h: AVX2 halves the SSE2 divisions'
// time, measured on this machine). out may be a.
template <typename T>
void DifferenceOver(const T* a, const T* b, T divisor, int64_t n, T* out);

// The unbiased estimator's block for `num` samples decoded kKernelBlock
// apart in `x` (sample k's n values at x + k * kKernelBlock): S = x_0 +
// ... + x_{num-1} in that order, mean[i] = S / num, and probe k's values
// (S - x_k) / (num - 1) written over sample k's: bit for bit what MeanOf
// and ProbeBlock give. For 2 to 4 samples in one loop with S in registers
// (FormProbesInPlace at 16M x 4: 62 -> 46 ms on one thread, measured).
template <typename T>
void UnbiasedProbesOverSamples(T* x, size_t num, int64_t n, T* mean);

// Calls fn(begin, end) for the consecutive blocks [begin, end) of [0, n),
// each at most kKernelBlock long, the blocks split across threads.
void ForEachBlock(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn);

// max |v[i]| over [0, n) as a double: exact (a float32 or float64 value),
// NaN when v holds a NaN, else +inf when it holds an inf; 0 when n = 0.
// Compares the magnitudes' bits as integers (vectorized for the widest
// instruction set the CPU has), split across threads for long vectors.
template <typename T>
double MaxAbs(const T* v, int64_t n);
// The same on the calling thread only (for a kernel's own ranges), and the
// maximum of two such results (NaN above everything).
template <typename T>
double MaxAbsOnThisThread(const T* v, int64_t n);
inline double MaxOfMaxAbs(double a, double b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return b > a ? b : a;
}

// sum_i v[i]^2 over [0, n): each block of kKernelBlock coordinates summed
// in T (Eigen's squaredNorm), the blocks' sums added in double in order,
// so the result is the same for any thread count. A vector of at most one
// block gives exactly Eigen's squaredNorm. Split across threads.
template <typename T>
double SquaredNorm(const T* v, int64_t n);

// What ConsensusDirection measures in its pass, for the diagnostics and
// the step's checks (TypedAlgorithm::ApplyDirection) without passes of
// their own. Norms as SquaredNorm sums them (then the square root).
struct ConsensusNorms {
  double correction = 0.0;  // |c| = |gamma * mean_k(vjp[k])|
  double xi = 0.0;          // |xi| (the input, before an in-place write)
  double direction = 0.0;   // |g|
  // max_i |g_i| as MaxAbs gives it: NaN or inf when g is not finite.
  double direction_max_abs = 0.0;
};

// direction = xi + gamma * mean_k(vjp[k]), the consensus direction
// g = xi + gamma J^T xi, without storing the mean; per coordinate
//   m = vjp_0 + vjp_1 + ... + vjp_{K-1};  m /= K (if K > 1);
//   c = gamma * m;  g = xi + c.
// `direction` has xi's length; it may be xi itself (in place, also as a
// view of the same buffer). K >= 1; every vector has xi's length and
// dtype T (packed ones are decoded a block at a time, estimator.h).
// Returns the norms of c, xi and g and max |g|, from the same pass.
template <typename T>
ConsensusNorms ConsensusDirection(const Eigen::Ref<const Vec<T>>& xi,
                                  const SampleSet& vjp, T gamma,
                                  Eigen::Ref<Vec<T>> direction);
// The same into a vector resized to xi's length when it differs.
template <typename T>
ConsensusNorms ConsensusDirection(const Eigen::Ref<const Vec<T>>& xi,
                                  const SampleSet& vjp, T gamma,
                                  Vec<T>& direction) {
  if (direction.size() != xi.size()) direction.resize(xi.size());
  return ConsensusDirection<T>(xi, vjp, gamma, Eigen::Ref<Vec<T>>(direction));
}

extern template double MaxAbs<float>(const float*, int64_t);
extern template double MaxAbs<double>(const double*, int64_t);
extern template double MaxAbsOnThisThread<float>(const float*, int64_t);
extern template double MaxAbsOnThisThread<double>(const double*, int64_t);
extern template double SquaredNorm<float>(const float*, int64_t);
extern template double SquaredNorm<double>(const double*, int64_t);
extern template ConsensusNorms ConsensusDirection<float>(
    const Eigen::Ref<const Vec<float>>&, const SampleSet&, float,
    Eigen::Ref<Vec<float>>);
extern template ConsensusNorms ConsensusDirection<double>(
    const Eigen::Ref<const Vec<double>>&, const SampleSet&, double,
    Eigen::Ref<Vec<double>>);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_KERNELS_H_
