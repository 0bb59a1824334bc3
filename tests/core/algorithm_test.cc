// Every algorithm on random 2- and 3-player quadratic games against an
// independent dense-matrix computation, and on the bilinear game.
#include "server/core/algorithm.h"

#include <cmath>
#include <functional>

#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::RunCore;
using testing::ToEigen;

// Core and reference do the same float64 arithmetic in different orders;
// over 40 steps on O(1) values the difference stays near 1e-14.
constexpr double kDenseTolerance = 1e-10;
constexpr int kSteps = 40;

// Per-coordinate learning rates of the config's players.
Eigen::VectorXd LearningRates(const QuadraticGame& game,
                              const SessionConfig& config) {
  Eigen::VectorXd h(game.dimension());
  int offset = 0;
  for (size_t p = 0; p < game.dims.size(); ++p) {
    h.segment(offset, game.dims[p])
        .setConstant(config.players[p].optimizer.learning_rate);
    offset += game.dims[p];
  }
  return h;
}

struct Case {
  std::vector<int> dims;
  uint64_t seed;
};

class QuadraticGames : public ::testing::TestWithParam<Case> {
 protected:
  QuadraticGames()
      : game_(QuadraticGame::Random(GetParam().dims, GetParam().seed)) {}

  SessionConfig Config(AlgorithmKind kind) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = 2;  // RunCore sends two samples
    // Different learning rates per player.
    for (size_t p = 0; p < config.players.size(); ++p) {
      config.players[p].optimizer.learning_rate = 0.05 - 0.01 * p;
    }
    return config;
  }

  void ExpectMatches(const SessionConfig& config,
                     const std::function<void(Eigen::VectorXd&)>& step) {
    Eigen::VectorXd x = game_.x0;
    for (int t = 0; t < kSteps; ++t) step(x);
    const Eigen::VectorXd core = RunCore(game_, config, kSteps);
    EXPECT_LT((core - x).lpNorm<Eigen::Infinity>(), kDenseTolerance)
        << "core " << core.transpose() << "\nreference " << x.transpose();
  }

  QuadraticGame game_;
};

TEST_P(QuadraticGames, SimGdMatchesDenseReference) {
  const SessionConfig config = Config(AlgorithmKind::kSimGd);
  const Eigen::VectorXd h = LearningRates(game_, config);
  ExpectMatches(config,
                [&](Eigen::VectorXd& x) { x -= h.cwiseProduct(game_.Xi(x)); });
}

TEST_P(QuadraticGames, AltGdWithStagesMatchesDenseReference) {
  SessionConfig config = Config(AlgorithmKind::kAltGd);
  // The last player first, twice; then the others once each.
  const int n = static_cast<int>(game_.dims.size());
  config.algorithm.altgd_order.push_back({absl::StrCat("p", n - 1), 2});
  for (int p = 0; p < n - 1; ++p) {
    config.algorithm.altgd_order.push_back({absl::StrCat("p", p), 1});
  }
  const Eigen::VectorXd h = LearningRates(game_, config);
  ExpectMatches(config, [&](Eigen::VectorXd& x) {
    for (const AltGdStage& stage : config.algorithm.altgd_order) {
      const int p = std::stoi(stage.player.substr(1));
      int offset = 0;
      for (int q = 0; q < p; ++q) offset += game_.dims[q];
      for (int i = 0; i < stage.steps; ++i) {
        const Eigen::VectorXd xi = game_.Xi(x);
        x.segment(offset, game_.dims[p]) -=
            h.segment(offset, game_.dims[p])
                .cwiseProduct(xi.segment(offset, game_.dims[p]));
      }
    }
  });
}

TEST_P(QuadraticGames, ConOptMatchesDenseReferenceWithEveryEstimator) {
  for (EstimatorKind estimator : {EstimatorKind::kLocal, EstimatorKind::kPooled,
                                  EstimatorKind::kUnbiased}) {
    SCOPED_TRACE(EstimatorName(estimator));
    SessionConfig config = Config(AlgorithmKind::kConOpt);
    config.algorithm.gamma = 0.7;
    config.algorithm.estimator = estimator;
    const Eigen::VectorXd h = LearningRates(game_, config);
    ExpectMatches(config, [&](Eigen::VectorXd& x) {
      const Eigen::VectorXd xi = game_.Xi(x);
      x -= h.cwiseProduct(xi + 0.7 * game_.J.transpose() * xi);
    });
  }
}

TEST_P(QuadraticGames, SgaWithAndWithoutAlignmentMatchesDenseReference) {
  for (bool alignment : {true, false}) {
    SCOPED_TRACE(alignment ? "aligned" : "fixed lambda");
    SessionConfig config = Config(AlgorithmKind::kSga);
    config.algorithm.lambda0 = 0.5;
    config.algorithm.sga_alignment = alignment;
    const Eigen::VectorXd h = LearningRates(game_, config);
    const double d = game_.dimension();
    ExpectMatches(config, [&](Eigen::VectorXd& x) {
      const Eigen::VectorXd xi = game_.Xi(x);
      const Eigen::VectorXd jt = game_.J.transpose() * xi;
      const Eigen::VectorXd at = 0.5 * (jt - game_.J * xi);
      double lambda = 0.5;
      if (alignment && xi.dot(jt) * at.dot(jt) / d + 0.1 < 0) lambda = -0.5;
      x -= h.cwiseProduct(xi + lambda * at);
    });
  }
}

TEST_P(QuadraticGames, ExtragradientMatchesDenseReference) {
  const SessionConfig config = Config(AlgorithmKind::kExtragradient);
  const Eigen::VectorXd h = LearningRates(game_, config);
  ExpectMatches(config, [&](Eigen::VectorXd& x) {
    const Eigen::VectorXd extrapolated = x - h.cwiseProduct(game_.Xi(x));
    x -= h.cwiseProduct(game_.Xi(extrapolated));
  });
}

TEST_P(QuadraticGames, ExtragradientMomentsAtExtrapolationAreAnOption) {
  for (bool advance : {true, false}) {
    SCOPED_TRACE(advance ? "moments advance twice" : "moments frozen");
    SessionConfig config = Config(AlgorithmKind::kExtragradient);
    config.algorithm.extragradient_moments_at_extrapolation = advance;
    for (auto& p : config.players) {
      p.optimizer.kind = OptimizerKind::kMomentum;
      p.optimizer.momentum = 0.5;
    }
    const Eigen::VectorXd h = LearningRates(game_, config);
    Eigen::VectorXd v = Eigen::VectorXd::Zero(game_.dimension());
    ExpectMatches(config, [&](Eigen::VectorXd& x) {
      const Eigen::VectorXd v_extra = 0.5 * v + game_.Xi(x);
      const Eigen::VectorXd extrapolated = x - h.cwiseProduct(v_extra);
      if (advance) v = v_extra;
      v = 0.5 * v + game_.Xi(extrapolated);
      x -= h.cwiseProduct(v);
    });
  }
}

TEST_P(QuadraticGames, OptimisticMatchesDenseReference) {
  const SessionConfig config = Config(AlgorithmKind::kOptimistic);
  const Eigen::VectorXd h = LearningRates(game_, config);
  Eigen::VectorXd previous;
  ExpectMatches(config, [&](Eigen::VectorXd& x) {
    const Eigen::VectorXd xi = game_.Xi(x);
    if (previous.size() == 0) previous = xi;
    x -= h.cwiseProduct(2.0 * xi - previous);
    previous = xi;
  });
}

TEST_P(QuadraticGames, LookaheadAroundConOptMatchesDenseReference) {
  SessionConfig config = Config(AlgorithmKind::kConOpt);
  config.algorithm.gamma = 0.3;
  config.algorithm.lookahead_k = 3;
  config.algorithm.lookahead_alpha = 0.4;
  const Eigen::VectorXd h = LearningRates(game_, config);
  Eigen::VectorXd slow = game_.x0;
  int t = 0;
  ExpectMatches(config, [&](Eigen::VectorXd& x) {
    const Eigen::VectorXd xi = game_.Xi(x);
    x -= h.cwiseProduct(xi + 0.3 * game_.J.transpose() * xi);
    if (++t % 3 == 0) {
      slow += 0.4 * (x - slow);
      x = slow;
    }
  });
}

TEST_P(QuadraticGames, GlobalNormClippingRescalesTheDirection) {
  SessionConfig config = Config(AlgorithmKind::kSimGd);
  config.algorithm.clip_global_norm = 0.1;
  const Eigen::VectorXd h = LearningRates(game_, config);
  ExpectMatches(config, [&](Eigen::VectorXd& x) {
    Eigen::VectorXd g = game_.Xi(x);
    if (g.norm() > 0.1) g *= 0.1 / g.norm();
    x -= h.cwiseProduct(g);
  });
}

INSTANTIATE_TEST_SUITE_P(TwoAndThreePlayers, QuadraticGames,
                         ::testing::Values(Case{{2, 3}, 1}, Case{{1, 1}, 2},
                                           Case{{2, 1, 3}, 3},
                                           Case{{1, 2, 2}, 4}));

// ---- The bilinear game x*y -------------------------------------------------

QuadraticGame Bilinear() {
  QuadraticGame game;
  game.dims = {1, 1};
  game.J.resize(2, 2);
  game.J << 0, 1, -1, 0;  // xi = (y, -x): eigenvalues +-i
  game.c = Eigen::Vector2d::Zero();
  game.x0 = Eigen::Vector2d(1, 1);
  return game;
}

double FinalDistance(AlgorithmKind kind, int steps,
                     const std::function<void(SessionConfig&)>& tweak = {}) {
  const QuadraticGame game = Bilinear();
  SessionConfig config = QuadraticConfig(game, kind, /*learning_rate=*/0.2);
  if (tweak) tweak(config);
  return RunCore(game, config, steps).norm();
}

// "Converged": the bar set for the bilinear game.
constexpr double kConverged = 1e-6;

TEST(BilinearGame, SimGdSpiralsOut) {
  const double start = std::sqrt(2.0);
  EXPECT_GT(FinalDistance(AlgorithmKind::kSimGd, 50), 2 * start);
}

TEST(BilinearGame, ConOptConverges) {
  EXPECT_LT(FinalDistance(AlgorithmKind::kConOpt, 200,
                          [](SessionConfig& c) { c.algorithm.gamma = 1.0; }),
            kConverged);
}

TEST(BilinearGame, SgaConverges) {
  EXPECT_LT(FinalDistance(AlgorithmKind::kSga, 200), kConverged);
}

TEST(BilinearGame, ExtragradientConverges) {
  EXPECT_LT(FinalDistance(AlgorithmKind::kExtragradient, 2000), kConverged);
}

TEST(BilinearGame, OptimisticConverges) {
  EXPECT_LT(FinalDistance(AlgorithmKind::kOptimistic, 2000), kConverged);
}

TEST(BilinearGame, Float32SessionFollowsTheSameTrajectory) {
  // float32 state: agrees with float64 to float precision over 20 steps.
  constexpr double kFloatTolerance = 1e-5;
  const QuadraticGame game = Bilinear();
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kConOpt, 0.2);
  const Eigen::VectorXd x64 = RunCore(game, config, 20);
  config.dtype = DType::kFloat32;
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  EXPECT_EQ(algorithm->parameters()->dtype(), DType::kFloat32);
  // Drive it by hand: gradient, then J^T w.
  while (algorithm->step() < 20) {
    const Eigen::VectorXd point = ToEigen(*algorithm->point());
    FlatVector s(DType::kFloat32, 2);
    if (algorithm->phase().kind == PhaseSpec::Kind::kGradient) {
      s.as<float>() = game.Xi(point).cast<float>();
      const FlatVector* samples[] = {&s};
      ASSERT_TRUE(algorithm->CompleteGradient(samples).ok());
    } else {
      const Eigen::VectorXd w = ToEigen(*algorithm->probes()[0]);
      s.as<float>() = (game.J.transpose() * w).cast<float>();
      const FlatVector* products[] = {&s};
      ASSERT_TRUE(algorithm->CompleteProducts(products, {}).ok());
    }
  }
  EXPECT_LT((ToEigen(*algorithm->parameters()) - x64).norm(), kFloatTolerance);
}

}  // namespace
}  // namespace gameopt
