// Parameters stay finite: a step whose result would
// overflow with a finite direction (x - lr * g, or g * g in the moments) is
// refused like a non-finite direction: x and the moments are kept, the step
// starts over, and a step that fits is then taken.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "server/core/optimizer.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

struct Case {
  OptimizerKind optimizer;
  double x0;        // every initial coordinate
  double gradient;  // the overflowing sample's coordinates
  AlgorithmKind algorithm = AlgorithmKind::kSimGd;
  double momentum = 0.9;
};

class FiniteStepTest : public ::testing::TestWithParam<Case> {};

TEST_P(FiniteStepTest, OverflowingStepKeepsParameters) {
  const Case c = GetParam();
  QuadraticGame game = QuadraticGame::Random({1, 1}, 1);
  game.x0.setConstant(c.x0);
  SessionConfig config = QuadraticConfig(game, c.algorithm, 1.0);
  for (PlayerConfig& p : config.players) {
    p.optimizer.kind = c.optimizer;
    p.optimizer.momentum = c.momentum;
  }
  std::unique_ptr<Session> session =
      *Session::Create("s1", config, RealClock());
  SampleBuilder builder(session->layout());
  Reply join;
  session->Join(0, "w", join.Callback());
  ASSERT_TRUE(join.result.ok());
  const Eigen::VectorXd before = ToEigen(*join.result->params);

  Submission s;
  s.round = join.result->round;
  s.gradients.push_back(builder.Make(Eigen::VectorXd::Constant(2, c.gradient)));
  ASSERT_TRUE(std::isfinite(c.gradient));
  Reply refused;
  session->SubmitGradient(1, s, refused.Callback());
  ASSERT_TRUE(refused.result.ok()) << refused.result.status();
  EXPECT_EQ(refused.result->step, 0);  // the step starts over
  const Eigen::VectorXd kept = ToEigen(*session->Parameters().values);
  EXPECT_EQ(kept, before);
  EXPECT_TRUE(kept.allFinite());

  // A sample that fits is then applied.
  Submission fits;
  fits.round = refused.result->round;
  fits.gradients.push_back(builder.Make(Eigen::VectorXd::Constant(2, 1.0)));
  Reply next;
  session->SubmitGradient(1, fits, next.Callback());
  ASSERT_TRUE(next.result.ok()) << next.result.status();
  EXPECT_EQ(next.result->step, 1);
  EXPECT_TRUE(ToEigen(*session->Parameters().values).allFinite());
}

constexpr double kMax = std::numeric_limits<double>::max();

INSTANTIATE_TEST_SUITE_P(
    Optimizers, FiniteStepTest,
    ::testing::Values(
        // x - lr * g: 0.9 max + 0.9 max overflows.
        Case{OptimizerKind::kSgd, 0.9 * kMax, -0.9 * kMax},
        Case{OptimizerKind::kMomentum, 0.9 * kMax, -0.9 * kMax},
        Case{OptimizerKind::kNesterov, 0.5 * kMax, -0.5 * kMax},
        // g * g overflows in the moments with x small.
        Case{OptimizerKind::kRmsProp, 1.0, 1e200},
        Case{OptimizerKind::kAdam, 1.0, 1e200},
        // Negative momentum, optimistic Adam (its own update path) and
        // extrapolation from the past.
        Case{OptimizerKind::kMomentum, 0.9 * kMax, -0.9 * kMax,
             AlgorithmKind::kSimGd, -0.9},
        Case{OptimizerKind::kAdam, 1.0, 1e200, AlgorithmKind::kOptimisticAdam},
        Case{OptimizerKind::kSgd, 0.9 * kMax, -0.9 * kMax,
             AlgorithmKind::kExtrapolationFromThePast}));

// StepStaysFinite is exact: for values of every magnitude up to the
// type's end (where its cheap bound proves nothing and the exact dry run
// decides), it answers whether Step would leave x and the moments finite,
// for every optimizer, in float and double, after a few steps of history.
template <typename T>
void CheckStepStaysFiniteIsExact(OptimizerKind kind, bool eps_inside_sqrt,
                                 double momentum = 0.9) {
  constexpr int64_t kSize = 64;
  std::mt19937_64 rng(static_cast<uint64_t>(kind) * 2 + eps_inside_sqrt);
  const double max_log = std::log10(std::numeric_limits<T>::max());
  auto draw = [&](double top_log) {
    // Sign, then a magnitude 10^u with u uniform in the top 3 decades.
    std::uniform_real_distribution<double> u(top_log - 3.0, top_log);
    const double sign = (rng() & 1) ? 1.0 : -1.0;
    return static_cast<T>(sign * std::pow(10.0, u(rng)));
  };
  int refused = 0, accepted = 0;
  for (int trial = 0; trial < 400; ++trial) {
    OptimizerConfig config;
    config.kind = kind;
    config.learning_rate = std::pow(10.0, -4.0 + (trial % 5));
    config.eps_inside_sqrt = eps_inside_sqrt;
    config.momentum = momentum;
    BaseOptimizer<T> optimizer(config, kSize);
    // Values far from the end for the history, then up to the end.
    const double top = trial % 4 == 0 ? 3.0 : max_log - (trial % 3) * 0.05;
    Vec<T> x(kSize), g(kSize);
    for (int64_t i = 0; i < kSize; ++i) {
      x[i] = draw(3.0);
      g[i] = draw(3.0);
    }
    double max_x = -1.0;
    optimizer.Step(g, x, /*advance_state=*/true, &max_x);
    ASSERT_EQ(max_x, static_cast<double>(x.cwiseAbs().maxCoeff()));
    for (int64_t i = 0; i < kSize; ++i) {
      x[i] = draw(top);
      g[i] = draw(top);
    }
    const bool predicted = optimizer.StepStaysFinite(g, x);
    // The same answer from a bound the caller measured: max |g| itself, or
    // a looser one (a longer vector's maximum).
    const double max_g = static_cast<double>(g.cwiseAbs().maxCoeff());
    ASSERT_EQ(optimizer.StepStaysFinite(g, x, max_g), predicted);
    ASSERT_EQ(optimizer.StepStaysFinite(g, x, 4.0 * max_g), predicted);
    const double max_now = static_cast<double>(x.cwiseAbs().maxCoeff());
    ASSERT_EQ(optimizer.StepStaysFinite(g, x, max_g, max_now), predicted);
    BaseOptimizer<T> copy = optimizer;
    Vec<T> after = x;
    copy.Step(g, after);
    bool finite = after.allFinite();
    for (const Vec<T>* slot : copy.slots()) finite &= slot->allFinite();
    ASSERT_EQ(predicted, finite) << "trial " << trial;
    (finite ? accepted : refused) += 1;
  }
  // Both answers were exercised.
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
}

TEST(StepStaysFinite, AgreesWithTheStepItselfAtEveryMagnitude) {
  for (OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
        OptimizerKind::kRmsProp, OptimizerKind::kAdam}) {
    SCOPED_TRACE(static_cast<int>(kind));
    CheckStepStaysFiniteIsExact<float>(kind, false);
    CheckStepStaysFiniteIsExact<double>(kind, false);
  }
  // Negative momentum: the bound takes |mu|.
  CheckStepStaysFiniteIsExact<float>(OptimizerKind::kMomentum, false, -0.9);
  CheckStepStaysFiniteIsExact<double>(OptimizerKind::kMomentum, false, -0.9);
  CheckStepStaysFiniteIsExact<float>(OptimizerKind::kRmsProp, true);
  CheckStepStaysFiniteIsExact<double>(OptimizerKind::kRmsProp, true);
}

// Negative momentum: v' = mu v + g has |v'| up to |mu| |v| + |g|, so a
// large buffer and a large gradient of the opposite sign overflow.
TEST(StepStaysFinite, NegativeMomentumBoundsTheBufferByItsMagnitude) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kMomentum;
  config.momentum = -0.9;
  config.learning_rate = 1e-4;
  BaseOptimizer<double> optimizer(config, 1);
  Vec<double> x = Vec<double>::Zero(1);
  Vec<double> g = Vec<double>::Constant(1, 0.9 * kMax);
  optimizer.Step(g, x);        // v = 0.9 max
  g.setConstant(-0.3 * kMax);  // v' = -0.81 max - 0.3 max
  EXPECT_FALSE(optimizer.StepStaysFinite(g, x));
  BaseOptimizer<double> copy = optimizer;
  copy.Step(g, x);
  EXPECT_FALSE(copy.slots()[0]->allFinite());
}

// The slots' maxima a Step measured are forgotten when the slots are
// restored: Adam with a restored first moment near the type's end
// overflows x, which stale maxima (of a small moment) would have "proved"
// finite.
TEST(StepStaysFinite, SeesRestoredSlots) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kAdam;
  config.learning_rate = 1.0;
  BaseOptimizer<float> optimizer(config, 4);
  Vec<float> x = Vec<float>::Ones(4), g = Vec<float>::Ones(4);
  optimizer.Step(g, x);  // m = 0.1, v = 0.001: measured
  const float big = 0.5f * std::numeric_limits<float>::max();
  ASSERT_TRUE(
      optimizer
          .RestoreState(1, {Vec<float>::Constant(4, big), Vec<float>::Zero(4)})
          .ok());
  x.setOnes();
  EXPECT_FALSE(optimizer.StepStaysFinite(g, x));
  BaseOptimizer<float> copy = optimizer;
  copy.Step(g, x);
  EXPECT_FALSE(x.allFinite());
}

// ConOpt's direction is checked from what its one pass over the products
// measured (ConsensusDirection's max |g|): finite products whose consensus
// direction overflows float32 in one player's block are refused, naming
// that player, with x kept and the step started over; the next step that
// fits is taken.
TEST(ConOptDirection, OverflowingDirectionIsRefusedNamingThePlayer) {
  QuadraticGame game = QuadraticGame::Random({2, 3}, 5);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kConOpt, 1e-3);
  config.dtype = DType::kFloat32;
  config.algorithm.gamma = 10.0;
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  const std::vector<float> before(
      algorithm->parameters()->as<float>().data(),
      algorithm->parameters()->as<float>().data() + game.dimension());
  auto run_step = [&](float product) {
    FlatVector grad(DType::kFloat32, game.dimension());
    grad.as<float>().setConstant(1.0f);
    const FlatVector* samples[] = {&grad};
    EXPECT_TRUE(algorithm->CompleteGradient(samples).ok());
    // Finite products; gamma * product overflows in player p1's block.
    FlatVector vjp(DType::kFloat32, game.dimension());
    vjp.as<float>().setConstant(1.0f);
    vjp.as<float>().tail(3).setConstant(product);
    const FlatVector* products[] = {&vjp};
    return algorithm->CompleteProducts(products, {});
  };
  const absl::Status refused = run_step(std::numeric_limits<float>::max());
  EXPECT_EQ(refused.code(), absl::StatusCode::kOutOfRange) << refused;
  EXPECT_NE(refused.message().find("player 'p1'"), std::string::npos)
      << refused;
  EXPECT_NE(refused.message().find("not finite"), std::string::npos) << refused;
  EXPECT_EQ(algorithm->step(), 0);
  EXPECT_EQ(algorithm->phase().kind, PhaseSpec::Kind::kGradient);
  for (int64_t i = 0; i < game.dimension(); ++i) {
    EXPECT_EQ(algorithm->parameters()->as<float>()[i], before[i]) << i;
  }
  ASSERT_TRUE(run_step(2.0f).ok());
  EXPECT_EQ(algorithm->step(), 1);
  // g = 1 + 10 * 1 (p0) and 1 + 10 * 2 (p1), one RMSProp-free SGD step.
  for (int64_t i = 0; i < game.dimension(); ++i) {
    const float g = i < 2 ? 1.0f + 10.0f * 1.0f : 1.0f + 10.0f * 2.0f;
    EXPECT_EQ(algorithm->parameters()->as<float>()[i], before[i] - 1e-3f * g)
        << i;
  }
}

}  // namespace
}  // namespace gameopt
