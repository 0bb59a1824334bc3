// Negative momentum, optimistic Adam, extrapolation from the past and LEAD
// on random quadratic games against the papers' update formulas, written
// out here independently of the core, and on the bilinear game.
#include <cmath>
#include <functional>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::RunCore;
using testing::ToEigen;

// Core and reference do the same float64 arithmetic in different orders
// (the momentum buffer against x_t - x_{t-1}, Adam's bias corrections
// arranged differently); over 40 steps on O(1) values the difference stays
// near 1e-13.
constexpr double kTolerance = 1e-10;
constexpr int kSteps = 40;

struct Case {
  std::vector<int> dims;
  uint64_t seed;
};

class GanMethods : public ::testing::TestWithParam<Case> {
 protected:
  GanMethods()
      : game_(QuadraticGame::Random(GetParam().dims, GetParam().seed)) {}

  SessionConfig Config(AlgorithmKind kind, OptimizerKind optimizer) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = 2;
    for (size_t p = 0; p < config.players.size(); ++p) {
      config.players[p].optimizer.kind = optimizer;
      config.players[p].optimizer.learning_rate = 0.05 - 0.01 * p;
    }
    return config;
  }

  // Per-coordinate learning rates, and the offset and size of player p.
  Eigen::VectorXd Rates(const SessionConfig& config) const {
    Eigen::VectorXd h(game_.dimension());
    for (size_t p = 0; p < game_.dims.size(); ++p) {
      h.segment(Offset(p), game_.dims[p])
          .setConstant(config.players[p].optimizer.learning_rate);
    }
    return h;
  }
  int Offset(size_t p) const {
    int offset = 0;
    for (size_t q = 0; q < p; ++q) offset += game_.dims[q];
    return offset;
  }

  Eigen::VectorXd Reference(const std::function<void(Eigen::VectorXd&)>& step) {
    Eigen::VectorXd x = game_.x0;
    for (int t = 0; t < kSteps; ++t) step(x);
    return x;
  }

  QuadraticGame game_;
};

// Gidel et al. 2019, alternating negative momentum: each player in turn,
// on the gradient at the point the previous players reached,
//   x_{t+1} = x_t - eta grad + beta (x_t - x_{t-1}),  x_{-1} = x_0.
TEST_P(GanMethods, AltGdWithNegativeMomentumIsTheAlternatingPaperUpdate) {
  constexpr double kBeta = -0.5;
  SessionConfig config =
      Config(AlgorithmKind::kAltGd, OptimizerKind::kMomentum);
  for (PlayerConfig& p : config.players) p.optimizer.momentum = kBeta;
  const Eigen::VectorXd h = Rates(config);
  Eigen::VectorXd previous = game_.x0;
  const Eigen::VectorXd expected = Reference([&](Eigen::VectorXd& x) {
    for (size_t p = 0; p < game_.dims.size(); ++p) {
      const int o = Offset(p), n = game_.dims[p];
      const Eigen::VectorXd now = x.segment(o, n);
      x.segment(o, n) +=
          -h.segment(o, n).cwiseProduct(game_.Xi(x).segment(o, n)) +
          kBeta * (now - previous.segment(o, n));
      previous.segment(o, n) = now;
    }
  });
  const Eigen::VectorXd core = RunCore(game_, config, kSteps);
  EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kTolerance)
      << "core " << core.transpose() << "\nreference " << expected.transpose();
}

// Simultaneous form: x_{t+1} = x_t - eta xi(x_t) + beta (x_t - x_{t-1}).
TEST_P(GanMethods, SimGdWithNegativeMomentumIsThePaperUpdate) {
  constexpr double kBeta = -0.3;
  SessionConfig config =
      Config(AlgorithmKind::kSimGd, OptimizerKind::kMomentum);
  for (PlayerConfig& p : config.players) p.optimizer.momentum = kBeta;
  const Eigen::VectorXd h = Rates(config);
  Eigen::VectorXd previous = game_.x0;
  const Eigen::VectorXd expected = Reference([&](Eigen::VectorXd& x) {
    const Eigen::VectorXd now = x;
    x += -h.cwiseProduct(game_.Xi(x)) + kBeta * (now - previous);
    previous = now;
  });
  EXPECT_LT(
      (RunCore(game_, config, kSteps) - expected).lpNorm<Eigen::Infinity>(),
      kTolerance);
}

// Daskalakis et al. 2018, Algorithm 1: u_t = m_hat_t / (sqrt(v_hat_t) +
// eps), x_{t+1} = x_t - 2 eta u_t + eta u_{t-1}, u_0 = 0.
TEST_P(GanMethods,
       OptimisticAdamIsAlgorithm1AndNotOptimisticGradientsIntoAdam) {
  constexpr double kB1 = 0.5, kB2 = 0.9, kEps = 1e-8;
  SessionConfig config =
      Config(AlgorithmKind::kOptimisticAdam, OptimizerKind::kAdam);
  for (PlayerConfig& p : config.players) {
    p.optimizer.beta1 = kB1;
    p.optimizer.beta2 = kB2;
    p.optimizer.epsilon = kEps;
  }
  const Eigen::VectorXd h = Rates(config);
  const int d = game_.dimension();
  Eigen::VectorXd m = Eigen::VectorXd::Zero(d), v = m, last_u = m;
  int t = 0;
  const Eigen::VectorXd expected = Reference([&](Eigen::VectorXd& x) {
    ++t;
    const Eigen::VectorXd g = game_.Xi(x);
    m = kB1 * m + (1 - kB1) * g;
    v = kB2 * v + (1 - kB2) * g.cwiseProduct(g);
    const Eigen::VectorXd m_hat = m / (1 - std::pow(kB1, t));
    const Eigen::VectorXd v_hat = v / (1 - std::pow(kB2, t));
    const Eigen::VectorXd u = m_hat.array() / (v_hat.array().sqrt() + kEps);
    x += -2.0 * h.cwiseProduct(u) + h.cwiseProduct(last_u);
    last_u = u;
  });
  // Adam's u is nearly sign(g) where |g| is small, which amplifies the
  // rounding of the two arrangements of the bias corrections to ~1e-10.
  constexpr double kAdamTolerance = 1e-8;
  const Eigen::VectorXd core = RunCore(game_, config, kSteps);
  EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kAdamTolerance)
      << "core " << core.transpose() << "\nreference " << expected.transpose();
  // OPTIMISTIC with Adam feeds 2 xi_t - xi_{t-1} to Adam: another method.
  config.algorithm.kind = AlgorithmKind::kOptimistic;
  EXPECT_GT((RunCore(game_, config, kSteps) - core).lpNorm<Eigen::Infinity>(),
            1e-3);
}

// Gidel et al. 2019: x'_t = x_t - eta xi(x'_{t-1}); x_{t+1} = x_t - eta
// xi(x'_t), one gradient per step, x'_0 = x_0.
TEST_P(GanMethods, ExtrapolationFromThePastIsThePaperUpdate) {
  const SessionConfig config =
      Config(AlgorithmKind::kExtrapolationFromThePast, OptimizerKind::kSgd);
  const Eigen::VectorXd h = Rates(config);
  Eigen::VectorXd past_gradient = Eigen::VectorXd::Zero(game_.dimension());
  const Eigen::VectorXd expected = Reference([&](Eigen::VectorXd& x) {
    const Eigen::VectorXd extrapolated = x - h.cwiseProduct(past_gradient);
    past_gradient = game_.Xi(extrapolated);
    x -= h.cwiseProduct(past_gradient);
  });
  const Eigen::VectorXd core = RunCore(game_, config, kSteps);
  EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kTolerance)
      << "core " << core.transpose() << "\nreference " << expected.transpose();
}

INSTANTIATE_TEST_SUITE_P(TwoAndThreePlayers, GanMethods,
                         ::testing::Values(Case{{2, 3}, 1}, Case{{1, 1}, 2},
                                           Case{{2, 1, 3}, 3},
                                           Case{{1, 2, 2}, 4}));

// Hemmat et al. 2020, players x and y (general sum: the random quadratic
// game's J has unrelated off-diagonal blocks):
//   x_{t+1} = x_t + beta dx - eta grad_x l_x - alpha D_xy l_x dy
//   y_{t+1} = y_t + beta dy - eta grad_y l_y - alpha D_yx l_y dx
class LeadTest : public ::testing::TestWithParam<Case> {};

TEST_P(LeadTest, IsThePaperUpdateWithAndWithoutMomentum) {
  const QuadraticGame game =
      QuadraticGame::Random(GetParam().dims, GetParam().seed);
  const int nx = game.dims[0], ny = game.dims[1];
  const Eigen::MatrixXd d_xy = game.J.block(0, nx, nx, ny);
  const Eigen::MatrixXd d_yx = game.J.block(nx, 0, ny, nx);
  for (double beta : {0.0, 0.4, -0.3}) {
    SCOPED_TRACE(beta);
    constexpr double kAlpha = 0.7, kEtaX = 0.05, kEtaY = 0.03;
    SessionConfig config = QuadraticConfig(game, AlgorithmKind::kLead);
    config.workers_per_round = 2;
    config.algorithm.lead_alpha = kAlpha;
    config.players[0].optimizer.learning_rate = kEtaX;
    config.players[1].optimizer.learning_rate = kEtaY;
    if (beta != 0.0) {
      for (PlayerConfig& p : config.players) {
        p.optimizer.kind = OptimizerKind::kMomentum;
        p.optimizer.momentum = beta;
      }
    }
    Eigen::VectorXd x = game.x0.head(nx), y = game.x0.tail(ny);
    Eigen::VectorXd dx = Eigen::VectorXd::Zero(nx),
                    dy = Eigen::VectorXd::Zero(ny);
    for (int t = 0; t < kSteps; ++t) {
      Eigen::VectorXd z(nx + ny);
      z << x, y;
      const Eigen::VectorXd xi = game.Xi(z);
      const Eigen::VectorXd x_next =
          x + beta * dx - kEtaX * xi.head(nx) - kAlpha * d_xy * dy;
      const Eigen::VectorXd y_next =
          y + beta * dy - kEtaY * xi.tail(ny) - kAlpha * d_yx * dx;
      dx = x_next - x;
      dy = y_next - y;
      x = x_next;
      y = y_next;
    }
    Eigen::VectorXd expected(nx + ny);
    expected << x, y;
    const Eigen::VectorXd core = RunCore(game, config, kSteps);
    EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kTolerance)
        << "core " << core.transpose() << "\nreference "
        << expected.transpose();
  }
}

INSTANTIATE_TEST_SUITE_P(TwoPlayers, LeadTest,
                         ::testing::Values(Case{{2, 3}, 1}, Case{{1, 1}, 2},
                                           Case{{3, 2}, 5}));

TEST(LeadTest, PlanIsAGradientAndOneJvpPerPlayer) {
  const QuadraticGame game = QuadraticGame::Random({2, 3}, 1);
  std::unique_ptr<Algorithm> lead =
      *Algorithm::Create(QuadraticConfig(game, AlgorithmKind::kLead));
  EXPECT_EQ(lead->phases_per_step(), 3);
}

// ---- Validation: what each method needs, said to the caller -------------

absl::Status Validate(AlgorithmKind kind, OptimizerKind optimizer,
                      const std::vector<int>& dims = {1, 1},
                      const std::function<void(SessionConfig&)>& tweak = {}) {
  SessionConfig config = QuadraticConfig(QuadraticGame::Random(dims, 1), kind);
  for (PlayerConfig& p : config.players) p.optimizer.kind = optimizer;
  if (tweak) tweak(config);
  return ValidateConfig(config);
}

void ExpectRefused(const absl::Status& status, const std::string& says) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(says), std::string::npos) << status;
}

TEST(GanMethodsValidation, MomentumMayBeNegativeButNotNesterov) {
  auto mu = [](double value) {
    return [value](SessionConfig& c) {
      for (PlayerConfig& p : c.players) p.optimizer.momentum = value;
    };
  };
  EXPECT_TRUE(Validate(AlgorithmKind::kAltGd, OptimizerKind::kMomentum, {1, 1},
                       mu(-0.9))
                  .ok());
  ExpectRefused(Validate(AlgorithmKind::kAltGd, OptimizerKind::kMomentum,
                         {1, 1}, mu(-1.0)),
                "(-1, 1)");
  ExpectRefused(Validate(AlgorithmKind::kSimGd, OptimizerKind::kNesterov,
                         {1, 1}, mu(-0.5)),
                "optimizer momentum");
}

TEST(GanMethodsValidation, EachMethodSaysWhatToFix) {
  ExpectRefused(Validate(AlgorithmKind::kOptimisticAdam, OptimizerKind::kSgd),
                "must be adam");
  EXPECT_TRUE(
      Validate(AlgorithmKind::kOptimisticAdam, OptimizerKind::kAdam).ok());
  ExpectRefused(Validate(AlgorithmKind::kLead, OptimizerKind::kAdam),
                "use optimizer momentum");
  ExpectRefused(Validate(AlgorithmKind::kLead, OptimizerKind::kSgd, {1, 1, 1}),
                "needs exactly 2 players");
  ExpectRefused(Validate(AlgorithmKind::kLead, OptimizerKind::kSgd, {1, 1},
                         [](SessionConfig& c) { c.algorithm.lead_alpha = -1; }),
                "lead_alpha");
  for (AlgorithmKind kind :
       {AlgorithmKind::kOptimisticAdam,
        AlgorithmKind::kExtrapolationFromThePast, AlgorithmKind::kLead}) {
    ExpectRefused(
        Validate(kind,
                 kind == AlgorithmKind::kOptimisticAdam ? OptimizerKind::kAdam
                                                        : OptimizerKind::kSgd,
                 {1, 1},
                 [](SessionConfig& c) {
                   c.algorithm.estimator = EstimatorKind::kUnbiased;
                 }),
        "leave the estimator unset");
  }
}

// ---- The bilinear game x*y: SimGD spirals out, these do not --------------

double BilinearDistance(AlgorithmKind kind, OptimizerKind optimizer, int steps,
                        const std::function<void(SessionConfig&)>& tweak = {}) {
  QuadraticGame game;
  game.dims = {1, 1};
  game.J.resize(2, 2);
  game.J << 0, 1, -1, 0;
  game.c = Eigen::Vector2d::Zero();
  game.x0 = Eigen::Vector2d(1, 1);
  SessionConfig config = QuadraticConfig(game, kind, /*learning_rate=*/0.2);
  for (PlayerConfig& p : config.players) p.optimizer.kind = optimizer;
  if (tweak) tweak(config);
  return RunCore(game, config, steps).norm();
}

constexpr double kConverged = 1e-6;

TEST(BilinearGame, AlternatingNegativeMomentumConverges) {
  // Without momentum, alternating steps circle at a bounded distance.
  EXPECT_GT(BilinearDistance(AlgorithmKind::kAltGd, OptimizerKind::kSgd, 3000),
            0.5);
  auto negative = [](SessionConfig& c) {
    for (PlayerConfig& p : c.players) p.optimizer.momentum = -0.5;
  };
  EXPECT_LT(BilinearDistance(AlgorithmKind::kAltGd, OptimizerKind::kMomentum,
                             3000, negative),
            kConverged);
}

TEST(BilinearGame, ExtrapolationFromThePastConverges) {
  EXPECT_LT(BilinearDistance(AlgorithmKind::kExtrapolationFromThePast,
                             OptimizerKind::kSgd, 2000),
            kConverged);
}

TEST(BilinearGame, LeadConverges) {
  EXPECT_LT(
      BilinearDistance(AlgorithmKind::kLead, OptimizerKind::kSgd, 500,
                       [](SessionConfig& c) { c.algorithm.lead_alpha = 0.5; }),
      kConverged);
}

TEST(BilinearGame, OptimisticAdamApproachesTheEquilibrium) {
  // Adam's normalized steps keep a length of about lr near the
  // equilibrium: with the paper's GAN betas (0.5, 0.9) it ends within
  // about 10 lr of it (from 1.41), closer than simultaneous Adam.
  auto betas = [](SessionConfig& c) {
    for (PlayerConfig& p : c.players) {
      p.optimizer.learning_rate = 0.01;
      p.optimizer.beta1 = 0.5;
      p.optimizer.beta2 = 0.9;
    }
  };
  const double optimistic = BilinearDistance(AlgorithmKind::kOptimisticAdam,
                                             OptimizerKind::kAdam, 2000, betas);
  EXPECT_LT(optimistic, 0.15);
  EXPECT_LT(optimistic,
            0.75 * BilinearDistance(AlgorithmKind::kSimGd, OptimizerKind::kAdam,
                                    2000, betas));
}

}  // namespace
}  // namespace gameopt
