// The Arnoldi driver (server/core/spectrum.h) against Eigen's dense
// eigen-decomposition.
#include "server/core/spectrum.h"

#include <algorithm>
#include <complex>
#include <random>
#include <vector>

#include "Eigen/Dense"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

// Converged Ritz values of a well-conditioned random matrix agree with the
// dense (QR algorithm) eigenvalues to about tol * cond, far above float64
// rounding (~1e-15 |lambda|).
constexpr double kTol = 1e-10;
constexpr double kDenseAgreement = 1e-7;

Eigen::MatrixXd RandomMatrix(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) a(i, j) = normal(rng);
  }
  return a;
}

SpectrumEstimate Estimate(const Eigen::MatrixXd& a, SpectrumOptions options) {
  absl::StatusOr<SpectrumEstimate> estimate = EstimateSpectrum(
      a.rows(),
      [&](const Eigen::VectorXd& v) { return Eigen::VectorXd(a * v); },
      options);
  EXPECT_TRUE(estimate.ok()) << estimate.status();
  return *estimate;
}

// The dense eigenvalues sorted by `key`, largest first (ties as the driver
// reports them: by real part, then imaginary part, largest first).
template <typename Key>
std::vector<std::complex<double>> DenseSorted(const Eigen::MatrixXd& a,
                                              Key key) {
  Eigen::EigenSolver<Eigen::MatrixXd> solver(a, false);
  std::vector<std::complex<double>> values(solver.eigenvalues().begin(),
                                           solver.eigenvalues().end());
  std::stable_sort(values.begin(), values.end(), [&](auto x, auto y) {
    if (key(x) != key(y)) return key(x) > key(y);
    if (x.real() != y.real()) return x.real() > y.real();
    return x.imag() > y.imag();
  });
  return values;
}

// Each reported value is within `tolerance` (relative to the spectral
// radius) of the dense one of the same rank. Conjugate pairs tie in real
// part and modulus, so rank i is compared up to conjugation.
void ExpectMatches(const std::vector<RitzValue>& reported,
                   const std::vector<std::complex<double>>& dense, double scale,
                   double tolerance, const char* what) {
  ASSERT_FALSE(reported.empty()) << what;
  for (size_t i = 0; i < reported.size(); ++i) {
    const std::complex<double> z = reported[i].value;
    const double error =
        std::min(std::abs(z - dense[i]), std::abs(std::conj(z) - dense[i]));
    EXPECT_LE(error, tolerance * scale)
        << what << " #" << i << ": " << z << " vs dense " << dense[i];
  }
}

void ExpectSpectrumMatchesDense(const Eigen::MatrixXd& a,
                                const SpectrumEstimate& estimate,
                                double tolerance) {
  Eigen::EigenSolver<Eigen::MatrixXd> solver(a, false);
  const double radius = solver.eigenvalues().cwiseAbs().maxCoeff();
  ExpectMatches(estimate.largest_real,
                DenseSorted(a, [](auto z) { return z.real(); }), radius,
                tolerance, "largest real");
  ExpectMatches(estimate.largest_imag,
                DenseSorted(a, [](auto z) { return z.imag(); }), radius,
                tolerance, "largest imaginary");
  ExpectMatches(estimate.largest_modulus,
                DenseSorted(a, [](auto z) { return std::abs(z); }), radius,
                tolerance, "largest modulus");
}

TEST(ArnoldiDriver, RandomNonsymmetricMatricesMatchDenseWithRestarts) {
  for (uint64_t seed : {1, 2, 3}) {
    const Eigen::MatrixXd a = RandomMatrix(200, seed);
    SpectrumOptions options;
    options.k = 3;
    options.tol = kTol;
    options.max_applications = 5000;
    const SpectrumEstimate estimate = Estimate(a, options);
    EXPECT_TRUE(estimate.converged) << "seed " << seed;
    EXPECT_GT(estimate.restarts, 0) << "200 > Krylov dimension 28";
    EXPECT_EQ(estimate.largest_real.size(), 3u);
    ExpectSpectrumMatchesDense(a, estimate, kDenseAgreement);
    for (const RitzValue& r : estimate.largest_modulus) {
      // The residual estimate is the true residual of a Ritz pair; converged
      // means it is below tol |theta|.
      EXPECT_LE(r.residual, kTol * std::abs(r.value));
    }
  }
}

TEST(ArnoldiDriver, SmallestRealPartsMatchDenseOnlyWhenAsked) {
  for (uint64_t seed : {4, 5}) {
    const Eigen::MatrixXd a = RandomMatrix(200, seed);
    SpectrumOptions options;
    options.k = 3;
    options.tol = kTol;
    options.max_applications = 5000;
    EXPECT_TRUE(Estimate(a, options).smallest_real.empty());
    options.smallest_real = true;
    const SpectrumEstimate estimate = Estimate(a, options);
    EXPECT_TRUE(estimate.converged) << "seed " << seed;
    EXPECT_EQ(estimate.smallest_real.size(), 3u);
    const double radius = Eigen::EigenSolver<Eigen::MatrixXd>(a, false)
                              .eigenvalues()
                              .cwiseAbs()
                              .maxCoeff();
    ExpectMatches(estimate.smallest_real,
                  DenseSorted(a, [](auto z) { return -z.real(); }), radius,
                  kDenseAgreement, "smallest real");
    ExpectSpectrumMatchesDense(a, estimate, kDenseAgreement);
    for (const RitzValue& r : estimate.smallest_real) {
      EXPECT_LE(r.residual, kTol * std::abs(r.value));
    }
  }
}

TEST(ArnoldiDriver, ResidualEstimatesBoundTheDistanceToTheSpectrum) {
  // Stopped early: the values are rough but each is within its residual of
  // an eigenvalue (Bauer-Fike, up to the eigenvector condition number; a
  // factor 100 of slack covers this matrix).
  const Eigen::MatrixXd a = RandomMatrix(150, 7);
  SpectrumOptions options;
  options.max_applications = 30;
  const SpectrumEstimate estimate = Estimate(a, options);
  EXPECT_FALSE(estimate.converged);
  EXPECT_EQ(estimate.applications, 30);
  Eigen::EigenSolver<Eigen::MatrixXd> solver(a, false);
  for (const RitzValue& r : estimate.largest_modulus) {
    double nearest = 1e300;
    for (auto z : solver.eigenvalues()) {
      nearest = std::min(nearest, std::abs(z - r.value));
    }
    EXPECT_LE(nearest, 100 * r.residual + 1e-12) << r.value;
  }
}

TEST(ArnoldiDriver, BilinearGameHasEigenvaluesPlusMinusI) {
  // l_1 = x y, l_2 = -x y: xi = (y, -x), J = [[0, 1], [-1, 0]].
  Eigen::MatrixXd j(2, 2);
  j << 0, 1, -1, 0;
  const SpectrumEstimate estimate = Estimate(j, SpectrumOptions{});
  EXPECT_TRUE(estimate.converged);
  ASSERT_EQ(estimate.largest_imag.size(), 1u) << "one pair, k clamped to 2";
  EXPECT_NEAR(estimate.largest_imag[0].value.real(), 0.0, 1e-8);
  EXPECT_NEAR(estimate.largest_imag[0].value.imag(), 1.0, 1e-8);
  ASSERT_EQ(estimate.largest_real.size(), 2u);
  for (const RitzValue& r : estimate.largest_real) {
    EXPECT_NEAR(std::abs(r.value.imag()), 1.0, 1e-8);
    EXPECT_NEAR(r.value.real(), 0.0, 1e-8);
  }
}

TEST(ArnoldiDriver, BilinearGameInManyDimensions) {
  // x^T A y with A = I_d: J = [[0, I], [-I, 0]], every eigenvalue +-i
  // (multiplicity d): an invariant Krylov space after two products, then
  // fresh random directions.
  const int d = 30;
  Eigen::MatrixXd j = Eigen::MatrixXd::Zero(2 * d, 2 * d);
  j.topRightCorner(d, d) = Eigen::MatrixXd::Identity(d, d);
  j.bottomLeftCorner(d, d) = -Eigen::MatrixXd::Identity(d, d);
  const SpectrumEstimate estimate = Estimate(j, SpectrumOptions{});
  EXPECT_TRUE(estimate.converged);
  for (const auto* group : {&estimate.largest_real, &estimate.largest_imag,
                            &estimate.largest_modulus}) {
    for (const RitzValue& r : *group) {
      EXPECT_NEAR(r.value.real(), 0.0, 1e-8);
      EXPECT_NEAR(std::abs(r.value.imag()), 1.0, 1e-8);
    }
  }
}

TEST(ArnoldiDriver, RandomQuadraticGamesMatchDenseJacobian) {
  // J of l_i = 1/2 x^T A_i x + b_i^T x; largest real and imaginary parts to
  // 1e-6 (the bar set for float32 sessions).
  for (uint64_t seed : {11, 12, 13}) {
    const testing::QuadraticGame game =
        testing::QuadraticGame::Random({40, 30, 20}, seed);
    SpectrumOptions options;
    options.k = 2;
    options.tol = 1e-9;
    // Largest real parts sit in a band of similar values: slow for
    // Arnoldi (about 560 products here).
    options.max_applications = 3000;
    const SpectrumEstimate estimate = Estimate(game.J, options);
    EXPECT_TRUE(estimate.converged);
    ExpectSpectrumMatchesDense(game.J, estimate, 1e-6);
  }
}

TEST(ArnoldiDriver, FullKrylovSpaceIsADenseDecomposition) {
  const Eigen::MatrixXd a = RandomMatrix(12, 5);
  SpectrumOptions options;
  options.k = 12;
  const SpectrumEstimate estimate = Estimate(a, options);
  EXPECT_EQ(estimate.applications, 12);
  EXPECT_TRUE(estimate.converged);
  ExpectSpectrumMatchesDense(a, estimate, 1e-12);
}

TEST(ArnoldiDriver, RejectsBadOptionsAndProducts) {
  SpectrumOptions options;
  options.k = 0;
  EXPECT_EQ(ArnoldiDriver::Create(5, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.tol = 0;
  EXPECT_EQ(ArnoldiDriver::Create(5, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.krylov_dim = 5;  // k = 3 wants up to 18 dimensions kept
  EXPECT_EQ(ArnoldiDriver::Create(100, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ArnoldiDriver::Create(0, SpectrumOptions{}).status().code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<ArnoldiDriver> driver =
      ArnoldiDriver::Create(4, SpectrumOptions{});
  ASSERT_TRUE(driver.ok());
  const Eigen::VectorXd before = driver->request();
  EXPECT_EQ(driver->Provide(Eigen::VectorXd::Zero(3)).code(),
            absl::StatusCode::kInvalidArgument);
  Eigen::VectorXd nan = Eigen::VectorXd::Zero(4);
  nan[2] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(driver->Provide(nan).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(driver->request(), before) << "bad products change nothing";
  EXPECT_EQ(driver->Result().applications, 0);
}

}  // namespace
}  // namespace gameopt
