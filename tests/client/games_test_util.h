// Shared helpers of the client/games tests: dense Jacobians by central
// finite differences and by exact products, and the product checks every
// game must pass.
#ifndef GAMEOPT_TESTS_CLIENT_GAMES_TEST_UTIL_H_
#define GAMEOPT_TESTS_CLIENT_GAMES_TEST_UTIL_H_

#include <cstdint>

#include "Eigen/Core"
#include "client/games/sampling.h"
#include "client/worker/game.h"
#include "gtest/gtest.h"

namespace gameopt {
namespace testing {

// Central differences in double: truncation error O(h^2) and rounding error
// O(1e-16 / h), both far below 1e-4 relative for smooth games at h = 1e-5.
inline constexpr double kFdStep = 1e-5;
// Exact products against central finite differences of Gradient().
inline constexpr double kFdTolerance = 1e-4;
// Two exact computations of one quantity (e.g. <Jvp(u), w> and
// <u, Vjp(w)>) differ only by rounding: a few hundred ulps of accumulation.
inline constexpr double kRoundingTolerance = 1e-12;

inline Eigen::VectorXd RandomVector(int64_t n, uint64_t seed) {
  RandomStream random(seed);
  Eigen::VectorXd v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = random.Gaussian();
  return v;
}

// ||actual - expected|| / ||expected|| (absolute when expected is 0).
inline double RelativeError(const Eigen::VectorXd& actual,
                            const Eigen::VectorXd& expected) {
  const double scale = expected.norm();
  const double error = (actual - expected).norm();
  return scale > 0 ? error / scale : error;
}

inline Eigen::MatrixXd FiniteDifferenceJacobian(Game& game,
                                                const Eigen::VectorXd& x,
                                                int sample,
                                                double step = kFdStep) {
  const int64_t n = x.size();
  Eigen::MatrixXd jacobian(n, n);
  for (int64_t k = 0; k < n; ++k) {
    Eigen::VectorXd plus = x, minus = x;
    plus[k] += step;
    minus[k] -= step;
    jacobian.col(k) =
        (game.Gradient(plus, sample) - game.Gradient(minus, sample)) /
        (2 * step);
  }
  return jacobian;
}

// J assembled column by column from Jvp of unit vectors.
inline Eigen::MatrixXd JacobianFromJvp(Game& game, const Eigen::VectorXd& x,
                                       int sample) {
  const int64_t n = x.size();
  Eigen::MatrixXd jacobian(n, n);
  for (int64_t k = 0; k < n; ++k) {
    jacobian.col(k) = game.Jvp(x, Eigen::VectorXd::Unit(n, k), sample);
  }
  return jacobian;
}

// Jvp(u) and Vjp(w) against a dense finite-difference Jacobian, for a few
// random u and w.
inline void ExpectProductsMatchFiniteDifferences(Game& game,
                                                 const Eigen::VectorXd& x,
                                                 int sample,
                                                 double step = kFdStep) {
  const Eigen::MatrixXd fd = FiniteDifferenceJacobian(game, x, sample, step);
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Eigen::VectorXd u = RandomVector(x.size(), seed);
    const Eigen::VectorXd w = RandomVector(x.size(), 100 + seed);
    EXPECT_LT(RelativeError(game.Jvp(x, u, sample), fd * u), kFdTolerance)
        << "Jvp, seed " << seed;
    EXPECT_LT(RelativeError(game.Vjp(x, w, sample), fd.transpose() * w),
              kFdTolerance)
        << "Vjp, seed " << seed;
  }
}

// <Jvp(u), w> == <u, Vjp(w)> for a few random u and w.
inline void ExpectProductsAreTransposes(Game& game, const Eigen::VectorXd& x,
                                        int sample) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Eigen::VectorXd u = RandomVector(x.size(), 200 + seed);
    const Eigen::VectorXd w = RandomVector(x.size(), 300 + seed);
    const Eigen::VectorXd ju = game.Jvp(x, u, sample);
    const Eigen::VectorXd jtw = game.Vjp(x, w, sample);
    const double scale = ju.norm() * w.norm() + u.norm() * jtw.norm();
    EXPECT_LE(std::abs(ju.dot(w) - u.dot(jtw)), kRoundingTolerance * scale)
        << "seed " << seed;
  }
}

}  // namespace testing
}  // namespace gameopt

#endif  // GAMEOPT_TESTS_CLIENT_GAMES_TEST_UTIL_H_
