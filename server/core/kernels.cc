#include "server/core/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "server/core/parallel.h"
#include "server/core/target_clones.h"

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

namespace {

template <typename T>
GAMEOPT_TARGET_CLONES void DifferenceOverLoop(const T* a, const T* b, T divisor,
                                              int64_t n, T* out) {
  if (b == nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] / divisor;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = (a[i] - b[i]) / divisor;
  }
}

}  // namespace

template <typename T>
void DifferenceOver(const T* a, const T* b, T divisor, int64_t n, T* out) {
  DifferenceOverLoop(a, b, divisor, n, out);
}

template void DifferenceOver<float>(const float*, const float*, float, int64_t,
                                    float*);
template void DifferenceOver<double>(const double*, const double*, double,
                                     int64_t, double*);

namespace {

template <typename T, int kNum>
GAMEOPT_TARGET_CLONES void UnbiasedProbesLoop(T* x, int64_t n,
                                              T* __restrict mean) {
  const T num = kNum;
  const T others = kNum - 1;
  for (int64_t i = 0; i < n; ++i) {
    T sum = x[i];
    for (int k = 1; k < kNum; ++k) sum += x[k * kKernelBlock + i];
    mean[i] = sum / num;
    for (int k = 0; k < kNum; ++k) {
      x[k * kKernelBlock + i] = (sum - x[k * kKernelBlock + i]) / others;
    }
  }
}

}  // namespace

template <typename T>
void UnbiasedProbesOverSamples(T* x, size_t num, int64_t n, T* mean) {
  switch (num) {
    case 2:
      return UnbiasedProbesLoop<T, 2>(x, n, mean);
    case 3:
      return UnbiasedProbesLoop<T, 3>(x, n, mean);
    case 4:
      return UnbiasedProbesLoop<T, 4>(x, n, mean);
    default:
      break;
  }
  T sum[kKernelBlock];
  std::memcpy(sum, x, n * sizeof(T));
  for (size_t k = 1; k < num; ++k) {
    const T* sample = x + k * kKernelBlock;
    for (int64_t i = 0; i < n; ++i) sum[i] += sample[i];
  }
  DifferenceOver<T>(sum, nullptr, static_cast<T>(num), n, mean);
  for (size_t k = 0; k < num; ++k) {
    T* sample = x + k * kKernelBlock;
    DifferenceOver<T>(sum, sample, static_cast<T>(num - 1), n, sample);
  }
}

template void UnbiasedProbesOverSamples<float>(float*, size_t, int64_t, float*);
template void UnbiasedProbesOverSamples<double>(double*, size_t, int64_t,
                                                double*);

namespace {

// The magnitude's bits of a T: the sign bit cleared. They order like the
// magnitudes, with inf above every finite value and NaN above inf.
template <typename T>
using MagnitudeBits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

// max |p[i]| over [0, n) as magnitude bits. Integer compares, so it
// vectorizes (for each instruction set: target_clones.h).
template <typename T>
GAMEOPT_TARGET_CLONES MagnitudeBits<T> MaxMagnitudeBits(const T* __restrict p,
                                                        int64_t n) {
  using Bits = MagnitudeBits<T>;
  constexpr Bits kMagnitude =
      static_cast<Bits>(sizeof(T) == 4 ? 0x7fffffffull : 0x7fffffffffffffffull);
  Bits most = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, p + i, sizeof(T));
    bits &= kMagnitude;
    most = bits > most ? bits : most;
  }
  return most;
}

// Raises `most` to `bits` (max is exact and commutative: the result does
// not depend on the order in which threads arrive).
template <typename Bits>
void RaiseTo(std::atomic<Bits>& most, Bits bits) {
  Bits seen = most.load(std::memory_order_relaxed);
  while (bits > seen && !most.compare_exchange_weak(seen, bits)) {
  }
}

template <typename T>
double FromMagnitudeBits(MagnitudeBits<T> bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return static_cast<double>(value);
}

}  // namespace

template <typename T>
double MaxAbs(const T* v, int64_t n) {
  std::atomic<MagnitudeBits<T>> most{0};
  ParallelFor(n, [&](int64_t begin, int64_t end) {
    RaiseTo(most, MaxMagnitudeBits(v + begin, end - begin));
  });
  return FromMagnitudeBits<T>(most.load());
}

template <typename T>
double MaxAbsOnThisThread(const T* v, int64_t n) {
  return FromMagnitudeBits<T>(MaxMagnitudeBits(v, n));
}

template <typename T>
double SquaredNorm(const T* v, int64_t n) {
  const int64_t num_blocks = (n + kKernelBlock - 1) / kKernelBlock;
  if (num_blocks <= 1) {
    return static_cast<double>(Eigen::Map<const Vec<T>>(v, n).squaredNorm());
  }
  std::vector<double> squares(num_blocks);
  ForEachBlock(n, [&](int64_t begin, int64_t end) {
    squares[begin / kKernelBlock] = static_cast<double>(
        Eigen::Map<const Vec<T>>(v + begin, end - begin).squaredNorm());
  });
  double sum = 0.0;
  for (double s : squares) sum += s;
  return sum;
}

namespace {

// c = gamma * mean_k(p[k]) and g = xi + c over one block: the sum in k's
// order, then / K, then * gamma, each rounded as the pass-by-pass Eigen
// expressions round it, in one pass with the sum in registers.
template <typename T, int kNum>
GAMEOPT_TARGET_CLONES void ConsensusLoop(const T* const* p, const T* xi,
                                         T gamma, int64_t n, T* __restrict c,
                                         T* g) {
  const T num = kNum;
  for (int64_t i = 0; i < n; ++i) {
    T sum = p[0][i];
    for (int k = 1; k < kNum; ++k) sum += p[k][i];
    if (kNum > 1) sum = sum / num;
    sum = sum * gamma;
    c[i] = sum;
    g[i] = xi[i] + sum;
  }
}

template <typename T>
void ConsensusBlock(const T* const* p, size_t k, const T* xi, T gamma,
                    int64_t n, T* c, T* g) {
  switch (k) {
    case 1:
      return ConsensusLoop<T, 1>(p, xi, gamma, n, c, g);
    case 2:
      return ConsensusLoop<T, 2>(p, xi, gamma, n, c, g);
    case 3:
      return ConsensusLoop<T, 3>(p, xi, gamma, n, c, g);
    case 4:
      return ConsensusLoop<T, 4>(p, xi, gamma, n, c, g);
    default:
      break;
  }
  Eigen::Map<Vec<T>> sum(c, n);
  sum = ConstVecMap<T>(p[0], n);
  for (size_t i = 1; i < k; ++i) sum += ConstVecMap<T>(p[i], n);
  DifferenceOver<T>(c, nullptr, static_cast<T>(k), n, c);
  sum *= gamma;
  VecMap<T>(g, n) = ConstVecMap<T>(xi, n) + sum;
}

}  // namespace

template <typename T>
ConsensusNorms ConsensusDirection(const Eigen::Ref<const Vec<T>>& xi,
                                  const SampleSet& vjp, T gamma,
                                  Eigen::Ref<Vec<T>> direction) {
  const int64_t d = xi.size();
  const int64_t num_blocks = (d + kKernelBlock - 1) / kKernelBlock;
  struct Squares {
    double correction, xi, direction;
  };
  std::vector<Squares> squares(num_blocks);
  std::atomic<MagnitudeBits<T>> most{0};
  const size_t k = vjp.size();
  ParallelFor(d, [&](int64_t range_begin, int64_t range_end) {
    MagnitudeBits<T> mine = 0;
    T* scratch = KernelScratch<T>(k);
    std::vector<const T*> products(k);
    for (int64_t begin = range_begin; begin < range_end;
         begin += kKernelBlock) {
      const int64_t n = std::min(range_end, begin + kKernelBlock) - begin;
      for (size_t i = 0; i < k; ++i) {
        products[i] = vjp.Block<T>(i, begin, n, scratch + i * kKernelBlock);
      }
      Squares& s = squares[begin / kKernelBlock];
      // xi before the direction is written over it (in place).
      s.xi = static_cast<double>(xi.segment(begin, n).squaredNorm());
      T buffer[kKernelBlock];
      T* g = direction.data() + begin;
      ConsensusBlock<T>(products.data(), k, xi.data() + begin, gamma, n, buffer,
                        g);
      s.correction =
          static_cast<double>(ConstVecMap<T>(buffer, n).squaredNorm());
      s.direction = static_cast<double>(ConstVecMap<T>(g, n).squaredNorm());
      const MagnitudeBits<T> bits = MaxMagnitudeBits(g, n);
      mine = bits > mine ? bits : mine;
    }
    RaiseTo(most, mine);
  });
  Squares sum{0.0, 0.0, 0.0};
  for (const Squares& s : squares) {
    sum.correction += s.correction;
    sum.xi += s.xi;
    sum.direction += s.direction;
  }
  ConsensusNorms norms;
  norms.correction = std::sqrt(sum.correction);
  norms.xi = std::sqrt(sum.xi);
  norms.direction = std::sqrt(sum.direction);
  norms.direction_max_abs = FromMagnitudeBits<T>(most.load());
  return norms;
}

template double MaxAbs<float>(const float*, int64_t);
template double MaxAbs<double>(const double*, int64_t);
template double MaxAbsOnThisThread<float>(const float*, int64_t);
template double MaxAbsOnThisThread<double>(const double*, int64_t);
template double SquaredNorm<float>(const float*, int64_t);
template double SquaredNorm<double>(const double*, int64_t);
template ConsensusNorms ConsensusDirection<float>(
    const Eigen::Ref<const Vec<float>>&, const SampleSet&, float,
    Eigen::Ref<Vec<float>>);
template ConsensusNorms ConsensusDirection<double>(
    const Eigen::Ref<const Vec<double>>&, const SampleSet&, double,
    Eigen::Ref<Vec<double>>);

}  // namespace gameopt
