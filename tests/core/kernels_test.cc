// The reductions of server/core/kernels.h: MaxAbs is exact and SquaredNorm
// sums fixed blocks in order, so both give the same result for any thread
// count. (The coordinate-wise kernels' bit-identity is checked by
// tests/bench/hot_path_test.cc.)
#include "server/core/kernels.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/parallel.h"

namespace gameopt {
namespace {

// Above kParallelMinCoordinates, and not a multiple of any block.
constexpr int64_t kLong = (int64_t{1} << 20) + 12345;

Vec<float> Random(int64_t d, uint64_t seed) {
  Vec<float> v(d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < d; ++i) v[i] = normal(rng);
  return v;
}

// DifferenceOver against one IEEE subtraction and division per value, on
// random bit patterns (subnormals, huge values, inf and NaN included),
// for divisors that are powers of two (multiplied by the reciprocal) and
// that are not.
template <typename T, typename Bits>
void ExpectDifferenceOverDivides() {
  std::mt19937_64 rng(13);
  const auto random = [&] {
    const Bits bits = static_cast<Bits>(rng());
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
  };
  constexpr int64_t n = 3000;
  std::vector<T> a(n), b(n), got(n);
  for (int64_t i = 0; i < n; ++i) {
    a[i] = random();
    // Small differences too: a and b close together.
    b[i] = i % 3 == 0 ? a[i] * T(0.75) : random();
  }
  for (T divisor : {T(1), T(2), T(3), T(4), T(5), T(6), T(8), T(0.25)}) {
    for (bool with_b : {false, true}) {
      DifferenceOver<T>(a.data(), with_b ? b.data() : nullptr, divisor, n,
                        got.data());
      for (int64_t i = 0; i < n; ++i) {
        const T want = with_b ? (a[i] - b[i]) / divisor : a[i] / divisor;
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(got[i]));
        } else {
          ASSERT_EQ(std::memcmp(&got[i], &want, sizeof(T)), 0)
              << "divisor " << divisor << " value " << a[i];
        }
      }
    }
  }
}

TEST(Kernels, DifferenceOverDividesBitForBit) {
  ExpectDifferenceOverDivides<float, uint32_t>();
  ExpectDifferenceOverDivides<double, uint64_t>();
}

TEST(Kernels, ReductionsAreTheSameForAnyThreadCount) {
  Vec<float> values = Random(kLong, 7);
  // The maximum is exact; the sum of squares within rounding of the
  // double-precision sum (float32 sums per block of 512).
  constexpr double kRelative = 1e-6;
  const double squared = values.cast<double>().squaredNorm();
  const double max_abs = static_cast<double>(values.cwiseAbs().maxCoeff());
  double sums[2];
  for (int threads : {1, 64}) {
    SetMaxParallelism(threads);
    EXPECT_EQ(MaxAbs(values.data(), kLong), max_abs) << threads;
    EXPECT_EQ(MaxAbsOnThisThread(values.data(), kLong), max_abs) << threads;
    sums[threads == 1 ? 0 : 1] = SquaredNorm(values.data(), kLong);
  }
  SetMaxParallelism(0);
  EXPECT_EQ(sums[0], sums[1]);
  EXPECT_NEAR(sums[0], squared, kRelative * squared);
  // One block: exactly Eigen's squaredNorm.
  EXPECT_EQ(SquaredNorm(values.data(), kKernelBlock),
            static_cast<double>(values.head(kKernelBlock).squaredNorm()));
}

TEST(Kernels, MaxAbsRanksInfAndNanAboveEveryFiniteValue) {
  Vec<float> values = Random(kLong, 8);
  values[kLong - 1] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(MaxAbs(values.data(), kLong),
            std::numeric_limits<double>::infinity());
  values[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(MaxAbs(values.data(), kLong)));
  EXPECT_EQ(MaxAbs(values.data(), 0), 0.0);
  // Combining two ranges' maxima keeps NaN, whichever side it is on.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(MaxOfMaxAbs(nan, 2.0)));
  EXPECT_TRUE(std::isnan(MaxOfMaxAbs(2.0, nan)));
  EXPECT_EQ(MaxOfMaxAbs(1.0, 2.0), 2.0);
  EXPECT_EQ(MaxOfMaxAbs(2.0, 1.0), 2.0);
}

}  // namespace
}  // namespace gameopt
