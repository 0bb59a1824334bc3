// ConOpt's adaptive gamma (server/core/adaptive_gamma.h): the rule on given
// diagnostics and spectra, the cancellation a ConOpt step measures, and the
// rule's state through a session snapshot (checkpoints).
#include "server/core/adaptive_gamma.h"

#include <algorithm>
#include <complex>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

// Dot products and norms of O(1) vectors of a 5-dim game in float64,
// computed in another order: rounding only.
constexpr double kRounding = 1e-12;

AdaptiveGammaConfig Rule() {
  AdaptiveGammaConfig rule;
  rule.enabled = true;
  return rule;  // margin 0.3, max_cancellation 0.4, x0.5 / x2, [1e-3, 1e3]
}

StepDiagnostics Step(double kappa, double ratio = 0.5) {
  StepDiagnostics d = StationarityDiagnostics(1.0, ratio);
  d.cancellation = kappa;
  return d;
}

// A converged estimate whose smallest-real eigenvalues are `values`.
SpectrumEstimate Field(std::vector<std::complex<double>> values) {
  SpectrumEstimate estimate;
  estimate.converged = true;
  for (const auto& v : values) estimate.smallest_real.push_back({v, 0.0});
  return estimate;
}

TEST(AdaptiveGammaRule, LowersWhenTheCorrectionCancelsTheGradient) {
  AdaptiveGamma rule(Rule(), 4.0);
  rule.OnStep(1, Step(0.39));
  EXPECT_EQ(rule.gamma(), 4.0);
  rule.OnStep(2, Step(0.4));
  EXPECT_EQ(rule.gamma(), 2.0);
  ASSERT_EQ(rule.trajectory().size(), 1u);
  EXPECT_EQ(rule.trajectory()[0].step, 2);
  EXPECT_EQ(rule.trajectory()[0].gamma, 2.0);
  EXPECT_EQ(rule.trajectory()[0].reason, GammaChangeReason::kCancellation);
  rule.OnStep(3, Step(1.0));
  EXPECT_EQ(rule.gamma(), 1.0);
  // A step without diagnostics changes nothing.
  rule.OnStep(4, StepDiagnostics{});
  EXPECT_EQ(rule.gamma(), 1.0);
}

TEST(AdaptiveGammaRule, StaysWithinItsBounds) {
  AdaptiveGammaConfig config = Rule();
  config.min_gamma = 0.3;
  config.max_gamma = 1.5;
  AdaptiveGamma rule(config, 1.0);
  rule.OnStep(1, Step(1.0));
  rule.OnStep(2, Step(1.0));  // 0.5 -> 0.3, then stays
  rule.OnStep(3, Step(1.0));
  EXPECT_EQ(rule.gamma(), 0.3);
  EXPECT_EQ(rule.trajectory().size(), 2u);  // unchanged values not recorded
  // The first estimate is held back (the steps' kappa of 1), then 0.6,
  // 1.2, 1.5.
  for (int i = 0; i < 4; ++i) rule.OnFieldSpectrum(10 + i, Field({{-1, 0}}));
  EXPECT_EQ(rule.gamma(), 1.5);
}

TEST(AdaptiveGammaRule, StationarityTestIsOffUnlessConfigured) {
  AdaptiveGamma off(Rule(), 1.0);
  off.OnStep(1, Step(0.0, /*ratio=*/1e-6));
  EXPECT_EQ(off.gamma(), 1.0);

  AdaptiveGammaConfig config = Rule();
  config.min_stationarity_ratio = 0.01;
  AdaptiveGamma on(config, 1.0);
  on.OnStep(1, Step(0.0, /*ratio=*/0.02));
  EXPECT_EQ(on.gamma(), 1.0);
  on.OnStep(2, Step(0.0, /*ratio=*/1e-6));
  EXPECT_EQ(on.gamma(), 0.5);
  EXPECT_EQ(on.trajectory().back().reason, GammaChangeReason::kStationarity);
  // At xi = 0 the ratio is 0 by convention: not a spurious point.
  on.OnStep(3, StationarityDiagnostics(0.0, 0.0));
  EXPECT_EQ(on.gamma(), 0.5);
}

TEST(AdaptiveGammaRule, RaisesWhileTheFieldIsPoorlyDamped) {
  AdaptiveGamma rule(Rule(), 0.1);
  // 0.025 +- 0.5 i: the Dirac-GAN's J + 0.1 J^T J, zeta = 0.05.
  rule.OnFieldSpectrum(0, Field({{0.025, 0.5}, {0.025, -0.5}}));
  EXPECT_EQ(rule.gamma(), 0.2);
  EXPECT_EQ(rule.trajectory().back().reason, GammaChangeReason::kSpectrum);
  EXPECT_EQ(rule.trajectory().back().step, 0);
  // A negative real eigenvalue: zeta = -1.
  rule.OnFieldSpectrum(10, Field({{-0.1, 0}, {0.5, 0.1}}));
  EXPECT_EQ(rule.gamma(), 0.4);
  // 0.25 +- 0.5 i (gamma 1): zeta = 0.447 >= 0.3, no change.
  rule.OnFieldSpectrum(20, Field({{0.25, 0.5}, {0.25, -0.5}}));
  EXPECT_EQ(rule.gamma(), 0.4);
  // Not converged, or without smallest-real values: ignored.
  SpectrumEstimate rough = Field({{-1, 0}});
  rough.converged = false;
  rule.OnFieldSpectrum(30, rough);
  rule.OnFieldSpectrum(40, Field({}));
  EXPECT_EQ(rule.gamma(), 0.4);
}

TEST(AdaptiveGammaRule, DoesNotRaiseRightAfterSignsOfTheTrap) {
  AdaptiveGamma rule(Rule(), 1.0);
  rule.OnStep(1, Step(0.25));  // >= 0.4 / 2, below 0.4: no decrease
  EXPECT_EQ(rule.gamma(), 1.0);
  rule.OnFieldSpectrum(2, Field({{-1, 0}}));
  EXPECT_EQ(rule.gamma(), 1.0);  // held back
  // The peak resets at each estimate: calm steps since, so the next raises.
  rule.OnStep(3, Step(0.1));
  rule.OnFieldSpectrum(4, Field({{-1, 0}}));
  EXPECT_EQ(rule.gamma(), 2.0);
}

TEST(AdaptiveGammaRule, DampingIsTheSmallestCosineOfTheEigenvalues) {
  EXPECT_NEAR(Damping(Field({{3, 4}, {1, 0}}).smallest_real), 0.6, kRounding);
  EXPECT_EQ(Damping(Field({{0, 0}, {1, 0}}).smallest_real), 0.0);
  EXPECT_EQ(Damping(Field({{-2, 0}}).smallest_real), -1.0);
  EXPECT_EQ(Damping({}), std::numeric_limits<double>::infinity());
}

TEST(AdaptiveGammaRule, TrajectoryKeepsTheLastChanges) {
  AdaptiveGammaConfig config = Rule();
  config.min_gamma = 1e-300;
  AdaptiveGamma rule(config, 1.0);
  const int steps = kMaxGammaTrajectory + 10;
  for (int s = 1; s <= steps; ++s) rule.OnStep(s, Step(1.0));
  ASSERT_EQ(rule.trajectory().size(), size_t{kMaxGammaTrajectory});
  EXPECT_EQ(rule.trajectory().front().step, 11);
  EXPECT_EQ(rule.trajectory().back().step, steps);
  EXPECT_EQ(rule.trajectory().back().gamma, rule.gamma());
}

TEST(AdaptiveGammaRule, ExportImportRoundTripsAndRejectsBadState) {
  AdaptiveGamma rule(Rule(), 1.0);
  rule.OnStep(1, Step(0.9));
  rule.OnStep(2, Step(0.3));  // peak 0.9 then 0.3: peak stays 0.9
  const std::vector<double> state = rule.Export();

  AdaptiveGamma copy(Rule(), 1.0);
  ASSERT_TRUE(copy.Import(state).ok());
  EXPECT_EQ(copy.gamma(), 0.5);
  EXPECT_EQ(copy.Export(), state);
  // The peak came along: the next estimate is held back in both.
  rule.OnFieldSpectrum(3, Field({{-1, 0}}));
  copy.OnFieldSpectrum(3, Field({{-1, 0}}));
  EXPECT_EQ(copy.gamma(), rule.gamma());

  for (std::vector<double> bad :
       {std::vector<double>{}, std::vector<double>{0.5, 0.0, 1.0},
        std::vector<double>{1e9, 0.0}, std::vector<double>{0.5, 0.0, 1, 0.5, 7},
        std::vector<double>{0.5, 0.0, -1, 0.5, 0}}) {
    AdaptiveGamma target(Rule(), 1.0);
    const absl::Status status = target.Import(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_EQ(target.gamma(), 1.0);
  }
}

// One ConOpt step with exact products measures kappa = -gamma <xi, J^T xi>
// / |xi|^2 and moves gamma for the next step.
TEST(AdaptiveGammaAlgorithm, ConOptStepMeasuresCancellationAndAdapts) {
  const QuadraticGame game = QuadraticGame::Random({2, 3}, 19);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kConOpt);
  config.dtype = DType::kFloat64;
  config.algorithm.gamma = 2.0;
  config.algorithm.adaptive_gamma = Rule();
  config.algorithm.adaptive_gamma.max_cancellation = 1e-9;  // any kappa > 0
  config.spectrum.every_steps = 1;
  config.spectrum.requests.push_back(
      {SpectrumOperatorKind::kAlgorithmField, 1, 2000, 1e-8, true});
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  EXPECT_EQ(algorithm->stats().gamma, 2.0);

  const Eigen::VectorXd xi = game.Xi(game.x0);
  const double kappa =
      -2.0 * xi.dot(game.J.transpose() * xi) / xi.squaredNorm();
  FlatVector grad(DType::kFloat64, game.dimension());
  grad.as<double>() = xi;
  const FlatVector* samples[] = {&grad};
  ASSERT_TRUE(algorithm->CompleteGradient(samples).ok());
  FlatVector vjp(DType::kFloat64, game.dimension());
  vjp.as<double>() = game.J.transpose() * ToEigen(*algorithm->probes()[0]);
  const FlatVector* products[] = {&vjp};
  ASSERT_TRUE(algorithm->CompleteProducts(products, {}).ok());

  const StepDiagnostics& d = algorithm->stats().diagnostics;
  EXPECT_NEAR(d.cancellation, kappa, kRounding);
  if (kappa >= 1e-9) {
    EXPECT_EQ(algorithm->stats().gamma, 1.0);
    ASSERT_EQ(algorithm->stats().gamma_trajectory.size(), 1u);
    EXPECT_EQ(algorithm->stats().gamma_trajectory[0].step, 1);
  } else {
    EXPECT_EQ(algorithm->stats().gamma, 2.0);
  }
  // A poorly damped field raises it again.
  algorithm->ObserveFieldSpectrum(1, Field({{-1, 0}}));
  EXPECT_EQ(algorithm->stats().gamma, kappa >= 0.5e-9 ? 1.0 : 4.0);
}

TEST(AdaptiveGammaAlgorithm, SgaMeasuresCancellationOfItsCorrection) {
  const QuadraticGame game = QuadraticGame::Random({2, 3}, 19);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kSga);
  config.dtype = DType::kFloat64;
  config.algorithm.sga_alignment = false;
  config.algorithm.lambda0 = 0.7;
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  const Eigen::VectorXd xi = game.Xi(game.x0);
  FlatVector grad(DType::kFloat64, game.dimension());
  grad.as<double>() = xi;
  const FlatVector* samples[] = {&grad};
  ASSERT_TRUE(algorithm->CompleteGradient(samples).ok());
  const Eigen::VectorXd w = ToEigen(*algorithm->probes()[0]);
  FlatVector vjp(DType::kFloat64, game.dimension());
  FlatVector jvp(DType::kFloat64, game.dimension());
  vjp.as<double>() = game.J.transpose() * w;
  jvp.as<double>() = game.J * w;
  const FlatVector* a[] = {&vjp};
  const FlatVector* b[] = {&jvp};
  ASSERT_TRUE(algorithm->CompleteProducts(a, b).ok());
  const Eigen::VectorXd c = 0.7 * 0.5 * (game.J.transpose() * xi - game.J * xi);
  EXPECT_NEAR(algorithm->stats().diagnostics.cancellation,
              -xi.dot(c) / xi.squaredNorm(), kRounding);
}

// A session with adaptive gamma, its workers answering exactly (one worker
// per round; diagnostic rounds included).
class AdaptiveGammaSessionTest : public ::testing::Test {
 protected:
  AdaptiveGammaSessionTest() : game_(QuadraticGame::Random({2, 3}, 11)) {}

  SessionConfig Config() const {
    SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kConOpt, 0.02);
    config.dtype = DType::kFloat64;
    config.algorithm.gamma = 1.0;
    config.algorithm.adaptive_gamma = Rule();
    // Raise at every estimate, lower after every step: both kinds of change.
    config.algorithm.adaptive_gamma.margin = 1.0;
    config.algorithm.adaptive_gamma.min_stationarity_ratio = 1e6;
    config.spectrum.every_steps = 2;
    config.spectrum.requests.push_back(
        {SpectrumOperatorKind::kAlgorithmField, 1, 2000, 1e-8, true});
    return config;
  }

  // The worker answers its task; returns the next one.
  Task Answer(Session& session, const Task& task) const {
    SampleBuilder builder(session.layout());
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      s.gradients.push_back(builder.Make(game_.Xi(x), task.players));
    }
    for (const auto& probe : task.probes) {
      const Eigen::VectorXd w = ToEigen(*probe);
      if (task.vjp) s.vjp.push_back(builder.Make(game_.J.transpose() * w));
      if (task.jvp) s.jvp.push_back(builder.Make(game_.J * w));
    }
    Reply reply;
    if (task.kind == Task::Kind::kGradient) {
      session.SubmitGradient(task.worker_id, s, reply.Callback());
    } else {
      session.SubmitProducts(task.worker_id, s, reply.Callback());
    }
    EXPECT_TRUE(reply.called && reply.result.ok()) << reply.result.status();
    return *reply.result;
  }

  static Task Join(Session& session, int64_t worker_id = 0) {
    Reply reply;
    session.Join(worker_id, "", reply.Callback());
    EXPECT_TRUE(reply.called && reply.result.ok());
    return *reply.result;
  }

  static std::string Bytes(const Session& session) {
    return testing::ParametersBytes(session);
  }

  static void ExpectSameGamma(const StepStats& a, const StepStats& b) {
    EXPECT_EQ(a.gamma, b.gamma);
    ASSERT_EQ(a.gamma_trajectory.size(), b.gamma_trajectory.size());
    for (size_t i = 0; i < a.gamma_trajectory.size(); ++i) {
      EXPECT_EQ(a.gamma_trajectory[i].step, b.gamma_trajectory[i].step);
      EXPECT_EQ(a.gamma_trajectory[i].gamma, b.gamma_trajectory[i].gamma);
      EXPECT_EQ(a.gamma_trajectory[i].reason, b.gamma_trajectory[i].reason);
    }
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_F(AdaptiveGammaSessionTest, SnapshotCarriesGammaAndItsTrajectory) {
  std::unique_ptr<Session> first = *Session::Create("s1", Config(), &clock_);
  Task task = Join(*first);
  // Run to the first round of a scheduled estimate: a restored session
  // starts one at once (spectrum_rounds.h), so both run it alike.
  while (first->Info().step < 6 ||
         first->Info().phase_label != "spectrum: gradient") {
    task = Answer(*first, task);
  }
  const SessionInfo before = first->Info();
  ASSERT_FALSE(before.stats.gamma_trajectory.empty());
  bool raised = false, lowered = false;
  for (const GammaChange& c : before.stats.gamma_trajectory) {
    raised |= c.reason == GammaChangeReason::kSpectrum;
    lowered |= c.reason == GammaChangeReason::kStationarity;
  }
  EXPECT_TRUE(raised && lowered);

  const SessionSnapshot snapshot = first->Snapshot();
  bool stored = false;
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    stored |= v.name == "adaptive_gamma";
  }
  EXPECT_TRUE(stored);

  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  ExpectSameGamma((*restored)->Info().stats, before.stats);

  // Both go on alike: same gammas, same parameters, bit for bit.
  Task other = Join(**restored, task.worker_id);  // rejoins
  for (int r = 0; r < 20; ++r) {
    task = Answer(*first, task);
    other = Answer(**restored, other);
  }
  EXPECT_EQ(Bytes(**restored), Bytes(*first));
  ExpectSameGamma((*restored)->Info().stats, first->Info().stats);
}

TEST_F(AdaptiveGammaSessionTest, SnapshotFromBeforeTheRuleRestartsIt) {
  std::unique_ptr<Session> first = *Session::Create("s1", Config(), &clock_);
  Task task = Join(*first);
  for (int r = 0; r < 12; ++r) task = Answer(*first, task);
  // Inside a step (the consensus products round).
  while (first->Info().phase_label != "consensus") {
    task = Answer(*first, task);
  }
  SessionSnapshot snapshot = first->Snapshot();
  std::vector<NamedVector>& vectors = snapshot.algorithm.vectors;
  vectors.erase(std::remove_if(vectors.begin(), vectors.end(),
                               [](const NamedVector& v) {
                                 return v.name == "adaptive_gamma";
                               }),
                vectors.end());
  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_FALSE(first->Info().stats.gamma_trajectory.empty());
  EXPECT_EQ((*restored)->Info().stats.gamma, 1.0);
  EXPECT_TRUE((*restored)->Info().stats.gamma_trajectory.empty());
}

TEST(AdaptiveGammaConfig, ValidationNamesWhatToFix) {
  const QuadraticGame game = QuadraticGame::Random({2, 3}, 3);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kConOpt);
  config.algorithm.adaptive_gamma.enabled = true;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("ALGORITHM_FIELD"), std::string::npos)
      << status;
  config.spectrum.every_steps = 10;
  config.spectrum.requests.push_back(
      {SpectrumOperatorKind::kAlgorithmField, 1, 2000, 1e-8, true});
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);

  SessionConfig sga = config;
  sga.algorithm.kind = AlgorithmKind::kSga;
  EXPECT_NE(ValidateConfig(sga).message().find("needs algorithm conopt"),
            std::string::npos);
  SessionConfig bounds = config;
  bounds.algorithm.gamma = 5000;
  EXPECT_NE(ValidateConfig(bounds).message().find("min_gamma <= gamma"),
            std::string::npos);
  SessionConfig factor = config;
  factor.algorithm.adaptive_gamma.decrease = 1.0;
  EXPECT_NE(ValidateConfig(factor).message().find(
                "algorithm.adaptive_gamma.decrease"),
            std::string::npos);
}

}  // namespace
}  // namespace gameopt
