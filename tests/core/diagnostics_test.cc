// The per-step diagnostics of ConOpt and SGA (server/core/diagnostics.h)
// against a dense computation on a random quadratic game, after one step
// driven with exact products.
#include "server/core/diagnostics.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;

// Norms of O(1) vectors of a 5-dim game, summed in other orders: float64
// rounding only.
constexpr double kDenseTolerance = 1e-12;

// The algorithm after its first step on `game` with exact products from two
// identical samples.
std::unique_ptr<Algorithm> OneStep(const QuadraticGame& game,
                                   const SessionConfig& config) {
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  testing::DriveCore(game, algorithm.get(), 1);
  return algorithm;
}

class StepDiagnosticsTest : public ::testing::Test {
 protected:
  StepDiagnosticsTest() : game_(QuadraticGame::Random({2, 3}, 19)) {
    xi_ = game_.Xi(game_.x0);
    const Eigen::MatrixXd s = 0.5 * (game_.J + game_.J.transpose());
    const Eigen::MatrixXd a = 0.5 * (game_.J - game_.J.transpose());
    jt_xi_norm_ = (game_.J.transpose() * xi_).norm();
    s_xi_norm_ = (s * xi_).norm();
    a_xi_norm_ = (a.transpose() * xi_).norm();
  }

  SessionConfig Config(AlgorithmKind kind) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = 2;
    return config;
  }

  QuadraticGame game_;
  Eigen::VectorXd xi_;
  double jt_xi_norm_, s_xi_norm_, a_xi_norm_;
};

TEST_F(StepDiagnosticsTest, ConOptReportsXiAgainstJtXiButNoRotationIndex) {
  for (double gamma : {0.0, 0.7, 10.0}) {
    SessionConfig config = Config(AlgorithmKind::kConOpt);
    config.algorithm.gamma = gamma;
    const StepDiagnostics d = OneStep(game_, config)->stats().diagnostics;
    ASSERT_TRUE(d.available) << gamma;
    EXPECT_NEAR(d.xi_norm, xi_.norm(), kDenseTolerance);
    EXPECT_NEAR(d.jt_xi_norm, jt_xi_norm_, kDenseTolerance * 10) << gamma;
    EXPECT_NEAR(d.stationarity_ratio, jt_xi_norm_ / xi_.norm(),
                kDenseTolerance * 10);
    EXPECT_FALSE(d.has_rotation_index);
  }
}

TEST_F(StepDiagnosticsTest, SgaReportsTheRotationIndexOfSAndA) {
  const StepDiagnostics d =
      OneStep(game_, Config(AlgorithmKind::kSga))->stats().diagnostics;
  ASSERT_TRUE(d.available);
  ASSERT_TRUE(d.has_rotation_index);
  EXPECT_NEAR(d.jt_xi_norm, jt_xi_norm_, kDenseTolerance);
  EXPECT_NEAR(d.s_xi_norm, s_xi_norm_, kDenseTolerance);
  EXPECT_NEAR(d.a_xi_norm, a_xi_norm_, kDenseTolerance);
  EXPECT_NEAR(d.rotation_index, a_xi_norm_ / s_xi_norm_, kDenseTolerance);
}

TEST_F(StepDiagnosticsTest, OtherAlgorithmsReportNone) {
  EXPECT_FALSE(OneStep(game_, Config(AlgorithmKind::kSimGd))
                   ->stats()
                   .diagnostics.available);
}

TEST(StepDiagnostics, RatiosAtZero) {
  EXPECT_EQ(StationarityDiagnostics(0.0, 0.0).stationarity_ratio, 0.0);
  StepDiagnostics d = StationarityDiagnostics(2.0, 1.0);
  EXPECT_EQ(d.stationarity_ratio, 0.5);
  AddRotationIndex(0.0, 2.0, d);  // pure rotation: S xi = 0
  EXPECT_EQ(d.rotation_index, std::numeric_limits<double>::infinity());
  AddRotationIndex(0.0, 0.0, d);
  EXPECT_EQ(d.rotation_index, 0.0);
  AddRotationIndex(4.0, 2.0, d);
  EXPECT_EQ(d.rotation_index, 0.5);
}

}  // namespace
}  // namespace gameopt
