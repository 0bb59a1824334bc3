// Parameters stay finite (issue 15, item 6): a step whose result would
// overflow with a finite direction (x - lr * g, or g * g in the moments) is
// refused like a non-finite direction: x and the moments are kept, the step
// starts over, and a step that fits is then taken.
#include <limits>

#include "gtest/gtest.h"
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
};

class FiniteStepTest : public ::testing::TestWithParam<Case> {};

TEST_P(FiniteStepTest, OverflowingStepKeepsParameters) {
  const Case c = GetParam();
  QuadraticGame game = QuadraticGame::Random({1, 1}, 1);
  game.x0.setConstant(c.x0);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kSimGd, 1.0);
  for (PlayerConfig& p : config.players) p.optimizer.kind = c.optimizer;
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
        Case{OptimizerKind::kAdam, 1.0, 1e200}));

}  // namespace
}  // namespace gameopt
