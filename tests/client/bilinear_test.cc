#include "client/games/bilinear.h"

#include <complex>

#include "Eigen/Eigenvalues"
#include "gtest/gtest.h"
#include "tests/client/games_test_util.h"

namespace gameopt {
namespace {

using ::gameopt::testing::ExpectProductsAreTransposes;
using ::gameopt::testing::ExpectProductsMatchFiniteDifferences;
using ::gameopt::testing::JacobianFromJvp;
using ::gameopt::testing::RandomVector;

// Eigenvalues of a small dense matrix with entries of order 1 are accurate to
// a modest multiple of machine epsilon (about 2e-16).
constexpr double kEigenvalueTolerance = 1e-10;
// A = Q of a QR factorization: orthogonal up to rounding.
constexpr double kOrthogonalityTolerance = 1e-12;

TEST(BilinearGame, PlayersAndInitialPoint) {
  BilinearGame game(3, /*seed=*/7);
  ASSERT_EQ(game.players().size(), 2u);
  EXPECT_EQ(game.players()[0].name, "x");
  EXPECT_EQ(game.players()[1].tensors[0].shape, std::vector<int64_t>{3});
  EXPECT_EQ(game.Dimension(), 6);
  EXPECT_EQ(game.InitialParameters(), Eigen::VectorXd::Ones(6));
  EXPECT_DOUBLE_EQ(game.Metrics(game.InitialParameters())[0].second,
                   std::sqrt(6.0));
}

TEST(BilinearGame, ScalarGameIsXTimesY) {
  BilinearGame game(1, /*seed=*/0);
  const Eigen::Vector2d xi = game.Gradient(Eigen::Vector2d(2.0, 3.0), 0);
  EXPECT_EQ(xi, Eigen::Vector2d(3.0, -2.0));  // (d(xy)/dx, d(-xy)/dy)
}

TEST(BilinearGame, MatrixIsOrthogonalAndSeeded) {
  BilinearGame game(4, /*seed=*/11);
  const Eigen::MatrixXd& a = game.A();
  EXPECT_LT((a.transpose() * a - Eigen::MatrixXd::Identity(4, 4)).norm(),
            kOrthogonalityTolerance);
  EXPECT_EQ(a, BilinearGame(4, 11).A());
  EXPECT_NE(a, BilinearGame(4, 12).A());
}

TEST(BilinearGame, ProductsMatchFiniteDifferences) {
  for (int d : {1, 3}) {
    BilinearGame game(d, /*seed=*/5);
    const Eigen::VectorXd x = RandomVector(2 * d, 9);
    ExpectProductsMatchFiniteDifferences(game, x, 0);
    ExpectProductsAreTransposes(game, x, 0);
  }
}

TEST(BilinearGame, JacobianEigenvaluesArePlusMinusI) {
  for (int d : {1, 4}) {
    BilinearGame game(d, /*seed=*/3);
    const Eigen::MatrixXd jacobian =
        JacobianFromJvp(game, game.InitialParameters(), 0);
    Eigen::EigenSolver<Eigen::MatrixXd> solver(jacobian);
    int positive = 0;
    for (const std::complex<double>& lambda : solver.eigenvalues()) {
      EXPECT_NEAR(lambda.real(), 0.0, kEigenvalueTolerance);
      EXPECT_NEAR(std::abs(lambda.imag()), 1.0, kEigenvalueTolerance);
      positive += lambda.imag() > 0;
    }
    EXPECT_EQ(positive, d);
  }
}

TEST(BilinearGame, CloneIsIndependentAndEqual) {
  BilinearGame game(2, /*seed=*/4);
  std::unique_ptr<Game> clone = game.Clone();
  const Eigen::VectorXd x = RandomVector(4, 1);
  EXPECT_EQ(clone->Gradient(x, 0), game.Gradient(x, 0));
  EXPECT_EQ(clone->name(), "bilinear");
}

}  // namespace
}  // namespace gameopt
