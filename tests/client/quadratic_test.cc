#include "client/games/quadratic.h"

#include <cmath>
#include <complex>

#include "Eigen/Eigenvalues"
#include "gtest/gtest.h"
#include "tests/client/games_test_util.h"

namespace gameopt {
namespace {

using ::gameopt::testing::ExpectProductsAreTransposes;
using ::gameopt::testing::ExpectProductsMatchFiniteDifferences;
using ::gameopt::testing::JacobianFromJvp;
using ::gameopt::testing::kRoundingTolerance;
using ::gameopt::testing::RandomVector;

// Residual of a partial-pivoting LU solve of a well-conditioned system of
// size < 10 with O(1) entries.
constexpr double kSolveTolerance = 1e-12;
// J + J^T = 2 diag(0.5 I + G G^T / d) >= I, so Re(lambda) >= 0.5 exactly;
// allow for the eigensolver's rounding.
constexpr double kMinRealPart = 0.5 - 1e-9;

TEST(QuadraticGame, PlayersAndLayout) {
  QuadraticGame game({2, 3, 1}, /*seed=*/1);
  ASSERT_EQ(game.players().size(), 3u);
  EXPECT_EQ(game.players()[2].name, "p2");
  EXPECT_EQ(game.players()[1].tensors[0].name, "x");
  EXPECT_EQ(game.players()[1].tensors[0].shape, std::vector<int64_t>{3});
  EXPECT_EQ(game.Dimension(), 6);
  EXPECT_EQ(game.offset(2), 5);
  EXPECT_EQ(game.InitialParameters(), Eigen::VectorXd::Ones(6));
}

TEST(QuadraticGame, JacobianMatchesTheLossMatrices) {
  QuadraticGame game({2, 3, 1}, /*seed=*/2);
  const Eigen::VectorXd x = RandomVector(6, 3);
  const Eigen::MatrixXd jacobian = JacobianFromJvp(game, x, 0);
  EXPECT_LT((jacobian - game.J()).norm(), kRoundingTolerance);
  const Eigen::VectorXd xi = game.Gradient(x, 0);
  for (int i = 0; i < game.num_players(); ++i) {
    const int o = game.offset(i), d = game.players()[i].tensors[0].shape[0];
    const Eigen::MatrixXd& a = game.A(i);
    EXPECT_LT((a - a.transpose()).norm(), kRoundingTolerance);
    EXPECT_LT((a.middleRows(o, d) - game.J().middleRows(o, d)).norm(),
              kRoundingTolerance);
    // xi_i = grad_{x_i} (1/2 x^T A_i x + b_i^T x).
    const Eigen::VectorXd expected = (a * x + game.b(i)).segment(o, d);
    EXPECT_LT((xi.segment(o, d) - expected).norm(), kRoundingTolerance);
  }
}

TEST(QuadraticGame, EquilibriumIsStableAndZeroesTheField) {
  QuadraticGame game({3, 2, 2}, /*seed=*/4);
  const Eigen::VectorXd& x_star = game.Equilibrium();
  EXPECT_LT(game.Gradient(x_star, 0).norm(), kSolveTolerance);
  EXPECT_LT(game.Metrics(x_star)[0].second, kSolveTolerance);
  Eigen::EigenSolver<Eigen::MatrixXd> solver(game.J());
  for (const std::complex<double>& lambda : solver.eigenvalues()) {
    EXPECT_GT(lambda.real(), kMinRealPart);
  }
  // The off-diagonal coupling makes the game non-potential: J is not
  // symmetric.
  EXPECT_GT((game.J() - game.J().transpose()).norm(), 0.1);
}

TEST(QuadraticGame, ProductsMatchFiniteDifferences) {
  QuadraticGame game({2, 2}, /*seed=*/5);
  const Eigen::VectorXd x = RandomVector(4, 6);
  ExpectProductsMatchFiniteDifferences(game, x, 0);
  ExpectProductsAreTransposes(game, x, 0);
}

TEST(QuadraticGame, NoisyMinibatchesAreSeededAndUnbiased) {
  constexpr double kNoise = 0.1;
  constexpr int kSlots = 400;
  // Each entry of J_k has std at most sqrt(2) * kNoise (the symmetrized
  // diagonal); the mean of kSlots draws is within 6 standard errors.
  const double kMeanTolerance =
      6 * std::sqrt(2.0) * kNoise / std::sqrt(double(kSlots));
  QuadraticGame game({2, 3}, /*seed=*/8, kNoise);
  QuadraticGame twin({2, 3}, /*seed=*/8, kNoise);
  game.DrawMinibatches(kSlots, /*seed=*/9);
  twin.DrawMinibatches(kSlots, /*seed=*/9);
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(5);
  EXPECT_EQ(game.Gradient(zero, 3), twin.Gradient(zero, 3));
  EXPECT_NE(game.Gradient(zero, 3), game.Gradient(zero, 4));
  Eigen::MatrixXd mean_jacobian = Eigen::MatrixXd::Zero(5, 5);
  Eigen::VectorXd mean_offset = Eigen::VectorXd::Zero(5);
  for (int k = 0; k < kSlots; ++k) {
    mean_jacobian += JacobianFromJvp(game, zero, k) / kSlots;
    mean_offset += game.Gradient(zero, k) / kSlots;
  }
  EXPECT_LT((mean_jacobian - game.J()).cwiseAbs().maxCoeff(), kMeanTolerance);
  EXPECT_LT((mean_offset - game.b()).cwiseAbs().maxCoeff(), kMeanTolerance);
  // Products on a slot are exact for that slot's J_k.
  ExpectProductsMatchFiniteDifferences(game, RandomVector(5, 1), 7);
  ExpectProductsAreTransposes(game, RandomVector(5, 1), 7);
}

TEST(QuadraticGame, SimultaneousGradientDescentConverges) {
  QuadraticGame game({2, 2, 2}, /*seed=*/10);
  // Step small enough for every eigenvalue: h < 2 Re(lambda) / |lambda|^2.
  constexpr double kStep = 0.05;
  constexpr double kConvergedDistance = 1e-6;
  Eigen::VectorXd x = game.InitialParameters();
  for (int step = 0; step < 2000; ++step) x -= kStep * game.Gradient(x, 0);
  EXPECT_LT(game.Metrics(x)[0].second, kConvergedDistance);
}

}  // namespace
}  // namespace gameopt
