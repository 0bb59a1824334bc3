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
    T scratch[kKernelBlock];
    for (int64_t begin = range_begin; begin < range_end;
         begin += kKernelBlock) {
      const int64_t n = std::min(range_end, begin + kKernelBlock) - begin;
      T buffer[kKernelBlock];
      Eigen::Map<Vec<T>> c(buffer, n);
      c = ConstVecMap<T>(vjp.Block<T>(0, begin, n, scratch), n);
      for (size_t i = 1; i < k; ++i) {
        c += ConstVecMap<T>(vjp.Block<T>(i, begin, n, scratch), n);
      }
      if (k > 1) {
        DifferenceOver<T>(buffer, nullptr, static_cast<T>(k), n, buffer);
      }
      c *= gamma;
      Squares& s = squares[begin / kKernelBlock];
      // xi before the direction is written over it (in place).
      s.xi = static_cast<double>(xi.segment(begin, n).squaredNorm());
      auto g = direction.segment(begin, n);
      g = xi.segment(begin, n) + c;
      s.correction = static_cast<double>(c.squaredNorm());
      s.direction = static_cast<double>(g.squaredNorm());
      const MagnitudeBits<T> bits = MaxMagnitudeBits(g.data(), n);
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
