#include "server/core/kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "server/core/parallel.h"

namespace gameopt {

static_assert(kParallelAlign % kKernelBlock == 0,
              "parallel ranges must consist of whole blocks");

void ForEachBlock(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn) {
  ParallelFor(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kKernelBlock) {
      fn(b, std::min(end, b + kKernelBlock));
    }
  });
}

template <typename T>
double ConsensusDirection(const Eigen::Ref<const Vec<T>>& xi,
                          absl::Span<const FlatVector* const> vjp, T gamma,
                          Vec<T>& direction) {
  const int64_t d = xi.size();
  if (direction.size() != d) direction.resize(d);
  const int64_t num_blocks = (d + kKernelBlock - 1) / kKernelBlock;
  std::vector<double> squares(num_blocks, 0.0);
  const size_t k = vjp.size();
  ForEachBlock(d, [&](int64_t begin, int64_t end) {
    const int64_t n = end - begin;
    T buffer[kKernelBlock];
    Eigen::Map<Vec<T>> c(buffer, n);
    c = vjp[0]->as<T>().segment(begin, n);
    for (size_t i = 1; i < k; ++i) c += vjp[i]->as<T>().segment(begin, n);
    if (k > 1) c /= static_cast<T>(k);
    c *= gamma;
    direction.segment(begin, n) = xi.segment(begin, n) + c;
    squares[begin / kKernelBlock] = static_cast<double>(c.squaredNorm());
  });
  double sum = 0.0;
  for (double s : squares) sum += s;
  return std::sqrt(sum);
}

template double ConsensusDirection<float>(const Eigen::Ref<const Vec<float>>&,
                                          absl::Span<const FlatVector* const>,
                                          float, Vec<float>&);
template double ConsensusDirection<double>(const Eigen::Ref<const Vec<double>>&,
                                           absl::Span<const FlatVector* const>,
                                           double, Vec<double>&);

}  // namespace gameopt
