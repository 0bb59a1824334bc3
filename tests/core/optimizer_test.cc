// Base optimizers against values computed independently (by hand for SGD
// and momentum, with a few lines of plain Python arithmetic for the rest),
// three steps each, on x0 = (1, -2) with fixed gradients.
#include "server/core/optimizer.h"

#include <vector>

#include "gtest/gtest.h"

namespace gameopt {
namespace {

// The expectations are printed to 15 significant digits.
constexpr double kTolerance = 1e-13;

const double kGradients[3][2] = {{0.5, -1.0}, {0.25, 0.5}, {-1.0, 2.0}};

std::vector<Vec<double>> RunThreeSteps(const OptimizerConfig& config) {
  BaseOptimizer<double> opt(config, 2);
  Vec<double> x(2);
  x << 1.0, -2.0;
  std::vector<Vec<double>> out;
  for (const auto& g : kGradients) {
    Vec<double> grad(2);
    grad << g[0], g[1];
    opt.Step(grad, x);
    out.push_back(x);
  }
  return out;
}

void ExpectSteps(const OptimizerConfig& config,
                 const double (&expected)[3][2]) {
  const std::vector<Vec<double>> got = RunThreeSteps(config);
  for (int t = 0; t < 3; ++t) {
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(got[t](i), expected[t][i], kTolerance)
          << "step " << t + 1 << " coordinate " << i;
    }
  }
}

OptimizerConfig Config(OptimizerKind kind) {
  OptimizerConfig config;
  config.kind = kind;
  config.learning_rate = 0.1;
  return config;
}

TEST(BaseOptimizer, SgdMatchesHandComputedSteps) {
  ExpectSteps(Config(OptimizerKind::kSgd),
              {{0.95, -1.9}, {0.925, -1.95}, {1.025, -2.15}});
}

TEST(BaseOptimizer, HeavyBallMomentumMatchesHandComputedSteps) {
  ExpectSteps(Config(OptimizerKind::kMomentum),
              {{0.95, -1.9}, {0.88, -1.86}, {0.917, -2.024}});
}

TEST(BaseOptimizer, NesterovMatchesHandComputedSteps) {
  ExpectSteps(Config(OptimizerKind::kNesterov),
              {{0.905, -1.81}, {0.817, -1.824}, {0.9503, -2.1716}});
}

TEST(BaseOptimizer, RmsPropPyTorchPresetIsTheDefault) {
  const OptimizerConfig defaults;
  const OptimizerConfig pytorch =
      WithRmsPropPreset(OptimizerConfig(), RmsPropPreset::kPyTorch);
  EXPECT_EQ(defaults.rmsprop_preset, RmsPropPreset::kPyTorch);
  EXPECT_EQ(defaults.rmsprop_decay, pytorch.rmsprop_decay);
  EXPECT_EQ(defaults.epsilon, pytorch.epsilon);
  EXPECT_EQ(defaults.eps_inside_sqrt, pytorch.eps_inside_sqrt);
  EXPECT_EQ(defaults.initial_accumulator, pytorch.initial_accumulator);
}

TEST(BaseOptimizer, RmsPropPyTorchMatchesReferenceSteps) {
  ExpectSteps(WithRmsPropPreset(Config(OptimizerKind::kRmsProp),
                                RmsPropPreset::kPyTorch),
              {{1.99999960037722e-07, -1.00000009999999},
               {-0.44901297442183, -1.44901331474435},
               {0.425726616071326, -2.32375294349598}});
}

TEST(BaseOptimizer, RmsPropTensorFlow1MatchesReferenceSteps) {
  ExpectSteps(WithRmsPropPreset(Config(OptimizerKind::kRmsProp),
                                RmsPropPreset::kTensorFlow1),
              {{0.948012475511806, -1.900000000005},
               {0.920714920991803, -1.95198752449319},
               {1.02887044146694, -2.1321384641303}});
}

TEST(BaseOptimizer, AdamMatchesReferenceSteps) {
  ExpectSteps(Config(OptimizerKind::kAdam),
              {{0.900000002, -1.900000001},
               {0.806782040477462, -1.8733662973709},
               {0.827417742885411, -1.91909947602602}});
}

TEST(BaseOptimizer, StepWithoutAdvancingLeavesMomentsUnchanged) {
  BaseOptimizer<double> opt(Config(OptimizerKind::kAdam), 2);
  Vec<double> g(2), x(2), peek(2);
  g << 0.5, -1.0;
  x << 1.0, -2.0;
  peek = x;
  opt.Step(g, peek, /*advance_state=*/false);
  EXPECT_EQ(opt.steps(), 0);
  EXPECT_EQ(opt.slots()[0]->squaredNorm(), 0.0);
  opt.Step(g, x);  // the real first step lands where the peek did
  EXPECT_EQ(x, peek);
  EXPECT_EQ(opt.steps(), 1);
}

TEST(BaseOptimizer, ClipValueClampsParametersAfterTheUpdate) {
  OptimizerConfig config = Config(OptimizerKind::kSgd);
  config.clip_value = 0.5;
  BaseOptimizer<double> opt(config, 2);
  Vec<double> g(2), x(2);
  g << -10.0, 10.0;
  x << 0.0, 0.0;
  opt.Step(g, x);
  EXPECT_EQ(x(0), 0.5);
  EXPECT_EQ(x(1), -0.5);
}

TEST(BaseOptimizer, Float32StateTracksFloat64) {
  // Same update in float: float's 6e-8 relative rounding, amplified by
  // Adam's division by sqrt(v) in the first steps, stays below 1e-5.
  constexpr double kFloatTolerance = 1e-5;
  BaseOptimizer<float> opt(Config(OptimizerKind::kAdam), 2);
  Vec<float> x(2);
  x << 1.0f, -2.0f;
  for (const auto& g : kGradients) {
    Vec<float> grad(2);
    grad << static_cast<float>(g[0]), static_cast<float>(g[1]);
    opt.Step(grad, x);
  }
  EXPECT_NEAR(x(0), 0.827417742885411, kFloatTolerance);
  EXPECT_NEAR(x(1), -1.91909947602602, kFloatTolerance);
}

}  // namespace
}  // namespace gameopt
