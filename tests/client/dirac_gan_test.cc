#include "client/games/dirac_gan.h"

#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/client/games_test_util.h"

namespace gameopt {
namespace {

using ::gameopt::testing::ExpectProductsAreTransposes;
using ::gameopt::testing::ExpectProductsMatchFiniteDifferences;

// Closed-form Jacobian entries (f'(0) = 1/2, f''(0) = -1/4) are computed
// with a handful of flops.
constexpr double kClosedFormTolerance = 1e-14;
// Mescheder et al. 2018's setting: step 0.2, 500 steps from (1, 1).
constexpr double kStep = 0.2;
constexpr int kSteps = 500;
// Converged: the linear rate |1 - h lambda|^500 of the regularized variants
// is below 1e-10 (instance noise: the iterate jitters around 0 with a
// spread of about h * sigma / sqrt(batch) / sqrt(h Re(lambda)) ~ 0.03).
constexpr double kConvergedDistance = 1e-3;
constexpr double kNoisyConvergedDistance = 0.2;
// Not converged: GAN stalls at distance 3.6 (saturation), NS-GAN settles on
// a cycle of radius ~0.62 (its continuous flow dissipates at 4th order,
// SimGD's discretization adds energy at 2nd), WGAN diverges and WGAN-GP
// sticks at the kink psi = 0+, theta = -2 lambda.
constexpr double kNotConvergedDistance = 0.5;

const DiracVariant kAllVariants[] = {
    DiracVariant::kGan,    DiracVariant::kNsGan, DiracVariant::kWgan,
    DiracVariant::kWganGp, DiracVariant::kR1,    DiracVariant::kInstanceNoise};

DiracGan MakeDirac(DiracVariant variant) {
  DiracGanOptions options;
  options.variant = variant;
  options.batch = 16;
  return DiracGan(options);
}

// Runs SimGD (gamma = 0) or consensus optimization, a fresh minibatch per
// step, and returns the final distance from the equilibrium.
double Train(DiracGan& game, double gamma) {
  Eigen::VectorXd x = game.InitialParameters();
  for (int step = 0; step < kSteps; ++step) {
    game.DrawMinibatches(1, step);
    const Eigen::VectorXd xi = game.Gradient(x, 0);
    x -= kStep * (xi + gamma * game.Vjp(x, xi, 0));
  }
  return game.Metrics(x)[0].second;
}

TEST(DiracGan, VariantNamesRoundTrip) {
  for (DiracVariant variant : kAllVariants) {
    absl::StatusOr<DiracVariant> parsed =
        ParseDiracVariant(DiracVariantName(variant));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, variant);
  }
  EXPECT_EQ(ParseDiracVariant("lsgan").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DiracGan, PlayersAreScalars) {
  DiracGan game = MakeDirac(DiracVariant::kR1);
  EXPECT_EQ(game.name(), "dirac-r1");
  ASSERT_EQ(game.players().size(), 2u);
  EXPECT_EQ(game.players()[0].tensors[0].name, "theta");
  EXPECT_EQ(game.players()[1].tensors[0].name, "psi");
  EXPECT_TRUE(game.players()[1].tensors[0].shape.empty());
  EXPECT_EQ(game.Dimension(), 2);
  EXPECT_EQ(game.InitialParameters(), Eigen::Vector2d(1.0, 1.0));
  EXPECT_DOUBLE_EQ(game.Metrics(Eigen::Vector2d(3, 4))[0].second, 5.0);
}

TEST(DiracGan, ProductsMatchFiniteDifferencesForEveryVariant) {
  // psi away from 0, where WGAN-GP's |psi| has its kink.
  const Eigen::Vector2d x(0.7, -0.4);
  for (DiracVariant variant : kAllVariants) {
    SCOPED_TRACE(DiracVariantName(variant));
    DiracGan game = MakeDirac(variant);
    game.DrawMinibatches(2, /*seed=*/42);
    for (int sample : {0, 1}) {
      ExpectProductsMatchFiniteDifferences(game, x, sample);
      ExpectProductsAreTransposes(game, x, sample);
    }
  }
}

TEST(DiracGan, GradientOfGanAtInitialPoint) {
  // xi = (psi f'(psi theta), -theta f'(psi theta)), f'(t) = 1/(1 + e^t).
  DiracGan game = MakeDirac(DiracVariant::kGan);
  const double f1 = 1.0 / (1.0 + std::exp(1.0));
  EXPECT_LT((game.Gradient(Eigen::Vector2d(1, 1), 0) - Eigen::Vector2d(f1, -f1))
                .norm(),
            kClosedFormTolerance);
}

TEST(DiracGan, JacobianAtEquilibriumMatchesThePaper) {
  const Eigen::Vector2d zero(0.0, 0.0);
  const double gamma = 1.0;  // the default penalty weight
  struct Case {
    DiracVariant variant;
    Eigen::Matrix2d expected;
  };
  Eigen::Matrix2d gan, wgan, r1;
  gan << 0, 0.5, -0.5, 0;  // eigenvalues +-i/2: SimGD circles out
  wgan << 0, 1, -1, 0;
  r1 << 0, 0.5, -0.5, gamma;
  for (const Case& c :
       {Case{DiracVariant::kGan, gan}, Case{DiracVariant::kNsGan, gan},
        Case{DiracVariant::kWgan, wgan}, Case{DiracVariant::kR1, r1}}) {
    SCOPED_TRACE(DiracVariantName(c.variant));
    DiracGan game = MakeDirac(c.variant);
    EXPECT_LT((game.Jacobian(zero, 0) - c.expected).norm(),
              kClosedFormTolerance);
  }
}

TEST(DiracGan, InstanceNoiseIsSeededPerSlot) {
  DiracGan game = MakeDirac(DiracVariant::kInstanceNoise);
  DiracGan other = MakeDirac(DiracVariant::kInstanceNoise);
  const Eigen::Vector2d x(0.3, 0.2);
  game.DrawMinibatches(2, 5);
  other.DrawMinibatches(2, 5);
  EXPECT_EQ(game.Gradient(x, 1), other.Gradient(x, 1));
  EXPECT_NE(game.Gradient(x, 0), game.Gradient(x, 1));
  other.DrawMinibatches(2, 6);
  EXPECT_NE(game.Gradient(x, 0), other.Gradient(x, 0));
}

TEST(DiracGan, SimultaneousGradientDescentMatchesThePaper) {
  for (DiracVariant variant : {DiracVariant::kGan, DiracVariant::kNsGan,
                               DiracVariant::kWgan, DiracVariant::kWganGp}) {
    DiracGan game = MakeDirac(variant);
    EXPECT_GT(Train(game, 0.0), kNotConvergedDistance)
        << DiracVariantName(variant);
  }
  DiracGan r1 = MakeDirac(DiracVariant::kR1);
  EXPECT_LT(Train(r1, 0.0), kConvergedDistance);
  DiracGan noise = MakeDirac(DiracVariant::kInstanceNoise);
  EXPECT_LT(Train(noise, 0.0), kNoisyConvergedDistance);
}

TEST(DiracGan, ConsensusOptimizationConverges) {
  DiracGan game = MakeDirac(DiracVariant::kGan);
  EXPECT_LT(Train(game, /*gamma=*/1.0), kConvergedDistance);
}

}  // namespace
}  // namespace gameopt
