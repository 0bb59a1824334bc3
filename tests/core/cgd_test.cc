// CGD and ACGD (server/core/cgd.h) against closed forms and dense direct
// solves written here, the authors' bilinear experiment, the products
// rounds a step takes, and snapshots inside the Krylov loop.
#include "server/core/cgd.h"

#include <cmath>
#include <functional>

#include "Eigen/Dense"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::ToEigen;

// The Krylov solves run to a relative residual of 1e-13 (GMRES is exact
// after n iterations on an n-dimensional system); the core and the dense
// references then agree to rounding, about 1e-14 on O(1) values over the
// steps below.
constexpr double kDenseTolerance = 1e-10;
constexpr double kTightSolve = 1e-13;

// Drives `algorithm` with the exact products of the linear game
// xi(x) = J x + c, as `samples` identical workers would. `before_phase` runs
// before each round (for snapshots) and may replace the algorithm.
void Drive(const QuadraticGame& game, std::unique_ptr<Algorithm>& algorithm,
           int64_t steps,
           const std::function<void(std::unique_ptr<Algorithm>&)>&
               before_phase = nullptr,
           int samples = 2) {
  const int d = game.dimension();
  std::vector<FlatVector> buffers(samples, FlatVector(DType::kFloat64, d));
  int guard = 0;
  while (algorithm->step() < steps && guard++ < 100000) {
    if (before_phase) before_phase(algorithm);
    const PhaseSpec& phase = algorithm->phase();
    const Eigen::VectorXd point = ToEigen(*algorithm->point());
    std::vector<const FlatVector*> answers;
    if (phase.kind == PhaseSpec::Kind::kGradient) {
      for (auto& s : buffers) {
        s.as<double>() = game.Xi(point);
        answers.push_back(&s);
      }
      ASSERT_TRUE(algorithm->CompleteGradient(answers).ok());
    } else {
      // CGD asks for J w; ConOpt (the paper's comparison) for J^T w.
      ASSERT_NE(phase.jvp, phase.vjp);
      for (int k = 0; k < samples; ++k) {
        const Eigen::VectorXd w = ToEigen(*algorithm->probes()[k]);
        if (phase.jvp) {
          buffers[k].as<double>() = game.J * w;
        } else {
          buffers[k].as<double>() = game.J.transpose() * w;
        }
        answers.push_back(&buffers[k]);
      }
      ASSERT_TRUE((phase.jvp ? algorithm->CompleteProducts({}, answers)
                             : algorithm->CompleteProducts(answers, {}))
                      .ok());
    }
  }
}

// One competitive step by dense direct solves of BOTH players' systems:
//   (I - Hx B Hy C) dx = -Hx (xi_x - B Hy xi_y)
//   (I - Hy C Hx B) dy = -Hy (xi_y - C Hx xi_x)
Eigen::VectorXd DenseStep(const QuadraticGame& game, const Eigen::VectorXd& x,
                          const Eigen::VectorXd& h) {
  const int nx = game.dims[0], ny = game.dims[1];
  const Eigen::VectorXd xi = game.Xi(x);
  const Eigen::MatrixXd b = game.J.block(0, nx, nx, ny);
  const Eigen::MatrixXd c = game.J.block(nx, 0, ny, nx);
  const Eigen::MatrixXd hx = h.head(nx).asDiagonal();
  const Eigen::MatrixXd hy = h.tail(ny).asDiagonal();
  const Eigen::VectorXd dx =
      (Eigen::MatrixXd::Identity(nx, nx) - hx * b * hy * c)
          .partialPivLu()
          .solve(-hx * (xi.head(nx) - b * hy * xi.tail(ny)));
  const Eigen::VectorXd dy =
      (Eigen::MatrixXd::Identity(ny, ny) - hy * c * hx * b)
          .partialPivLu()
          .solve(-hy * (xi.tail(ny) - c * hx * xi.head(nx)));
  Eigen::VectorXd next = x;
  next.head(nx) += dx;
  next.tail(ny) += dy;
  return next;
}

// f = alpha x y for x, g = -f for y: xi = (alpha y, -alpha x).
QuadraticGame ScalarBilinear(double alpha) {
  QuadraticGame game;
  game.dims = {1, 1};
  game.J.resize(2, 2);
  game.J << 0.0, alpha, -alpha, 0.0;
  game.c = Eigen::Vector2d::Zero();
  game.x0 = Eigen::Vector2d(0.5, 0.5);
  return game;
}

SessionConfig CgdConfig(const QuadraticGame& game, AlgorithmKind kind,
                        double eta, bool zero_sum) {
  SessionConfig config = QuadraticConfig(game, kind, eta);
  config.workers_per_round = 2;
  config.algorithm.cgd_zero_sum = zero_sum;
  config.algorithm.cgd_tolerance = kTightSolve;
  return config;
}

Eigen::VectorXd RunFor(const QuadraticGame& game, const SessionConfig& config,
                       int steps) {
  absl::StatusOr<std::unique_ptr<Algorithm>> algorithm =
      Algorithm::Create(config);
  EXPECT_TRUE(algorithm.ok()) << algorithm.status();
  Drive(game, *algorithm, steps);
  return ToEigen(*(*algorithm)->parameters());
}

// Closed form of one CGD step on f = alpha x y (worked by hand from the
// two systems with B = alpha, C = -alpha):
//   dx = -eta alpha (y + eta alpha x) / (1 + eta^2 alpha^2)
//   dy =  eta alpha (x - eta alpha y) / (1 + eta^2 alpha^2)
Eigen::Vector2d ClosedForm(double alpha, double eta, Eigen::Vector2d p) {
  const double k = 1.0 + eta * eta * alpha * alpha;
  const double x = p(0), y = p(1);
  return {x - eta * alpha * (y + eta * alpha * x) / k,
          y + eta * alpha * (x - eta * alpha * y) / k};
}

TEST(Cgd, ScalarBilinearMatchesClosedForm) {
  for (double alpha : {1.0, 3.0, 6.0}) {
    const QuadraticGame game = ScalarBilinear(alpha);
    Eigen::Vector2d expected = game.x0;
    for (int t = 0; t < 50; ++t) expected = ClosedForm(alpha, 0.2, expected);
    for (bool zero_sum : {true, false}) {
      const Eigen::VectorXd core =
          RunFor(game, CgdConfig(game, AlgorithmKind::kCgd, 0.2, zero_sum), 50);
      EXPECT_LT((core - expected).norm(), kDenseTolerance)
          << "alpha " << alpha << " zero_sum " << zero_sum;
    }
  }
}

// One Krylov iteration solves the 1-D system: 4 products rounds on the
// first step (rhs, one iteration, response), 6 from the second (and the
// warm start's 2).
TEST(Cgd, ScalarBilinearTakesOneIterationPerStep) {
  const QuadraticGame game = ScalarBilinear(1.0);
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(
      CgdConfig(game, AlgorithmKind::kCgd, 0.2, /*zero_sum=*/true));
  Drive(game, algorithm, 1);
  EXPECT_EQ(algorithm->stats().cgd_rounds, 4);
  EXPECT_EQ(algorithm->stats().cgd_iterations, 1);
  Drive(game, algorithm, 5);
  EXPECT_EQ(algorithm->stats().cgd_rounds, 6);
  EXPECT_EQ(algorithm->stats().cgd_iterations, 1);
}

// Schaefer and Anandkumar's bilinear experiment: f = alpha x y, x0 = y0 =
// 0.5, eta = 0.2, 50 iterations; their code reports the distance from the
// origin: alpha = 1: GDA 1.89, OGDA 0.26, ConOpt 5e-5, CGD 0.27; alpha = 3:
// GDA 1.5e3, ConOpt 0.707, CGD 3e-4; alpha = 6: only CGD converges. Each
// figure is checked to the digits printed (half a unit of the last one).
double Distance(double alpha, AlgorithmKind kind) {
  const QuadraticGame game = ScalarBilinear(alpha);
  SessionConfig config = CgdConfig(game, kind, 0.2, /*zero_sum=*/true);
  config.algorithm.gamma = 1.0;  // ConOpt: their gamma (see server/README.md)
  return RunFor(game, config, 50).norm();
}

TEST(Cgd, ReproducesTheAuthorsBilinearExperiment) {
  EXPECT_NEAR(Distance(1, AlgorithmKind::kSimGd), 1.89, 0.005);
  // OGDA: 0.2546 here, where the first step is plain GD (xi_{-1} = xi_0);
  // their 0.26 is the variant with xi_{-1} = 0 (a first step of 2 h xi_0),
  // which this loop (written from that rule) reproduces.
  EXPECT_NEAR(Distance(1, AlgorithmKind::kOptimistic), 0.2546, 0.00005);
  Eigen::Vector2d p(0.5, 0.5), previous(0.0, 0.0);
  for (int t = 0; t < 50; ++t) {
    const Eigen::Vector2d xi(p(1), -p(0));
    p += -2 * 0.2 * xi + 0.2 * previous;
    previous = xi;
  }
  EXPECT_NEAR(p.norm(), 0.26, 0.005);
  EXPECT_NEAR(Distance(1, AlgorithmKind::kConOpt), 5e-5, 0.5e-5);
  EXPECT_NEAR(Distance(1, AlgorithmKind::kCgd), 0.27, 0.005);
  EXPECT_NEAR(Distance(3, AlgorithmKind::kSimGd), 1.5e3, 0.05e3);
  EXPECT_NEAR(Distance(3, AlgorithmKind::kConOpt), 0.707, 0.0005);
  EXPECT_NEAR(Distance(3, AlgorithmKind::kCgd), 3e-4, 0.5e-4);
  const double start = std::sqrt(0.5);
  EXPECT_LT(Distance(6, AlgorithmKind::kCgd), 1e-3 * start);
  for (AlgorithmKind kind : {AlgorithmKind::kSimGd, AlgorithmKind::kOptimistic,
                             AlgorithmKind::kConOpt}) {
    EXPECT_GT(Distance(6, kind), start) << AlgorithmName(kind);
  }
}

struct Case {
  std::vector<int> dims;
  uint64_t seed;
};

class GeneralSum : public ::testing::TestWithParam<Case> {};

// A random general-sum quadratic game (the off-diagonal blocks unrelated):
// GMRES against dense solves of both systems, players with different
// learning rates, the smaller player's system solved.
TEST_P(GeneralSum, CgdMatchesDenseSolve) {
  const QuadraticGame game =
      QuadraticGame::Random(GetParam().dims, GetParam().seed);
  SessionConfig config =
      CgdConfig(game, AlgorithmKind::kCgd, 0.1, /*zero_sum=*/false);
  config.players[1].optimizer.learning_rate = 0.07;
  const Eigen::VectorXd h =
      (Eigen::VectorXd(game.dimension())
           << Eigen::VectorXd::Constant(game.dims[0], 0.1),
       Eigen::VectorXd::Constant(game.dims[1], 0.07))
          .finished();
  Eigen::VectorXd expected = game.x0;
  for (int t = 0; t < 20; ++t) expected = DenseStep(game, expected, h);
  const Eigen::VectorXd core = RunFor(game, config, 20);
  EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kDenseTolerance)
      << "core " << core.transpose() << "\ndense " << expected.transpose();
}

// ACGD: per-coordinate step sizes from the RMS of the gradients, written
// here from the formula of cgd.h.
TEST_P(GeneralSum, AcgdMatchesDenseSolve) {
  const QuadraticGame game =
      QuadraticGame::Random(GetParam().dims, GetParam().seed);
  SessionConfig config =
      CgdConfig(game, AlgorithmKind::kAcgd, 0.05, /*zero_sum=*/false);
  config.algorithm.acgd_beta = 0.9;
  config.algorithm.acgd_epsilon = 1e-3;
  Eigen::VectorXd expected = game.x0;
  Eigen::VectorXd v = Eigen::VectorXd::Zero(game.dimension());
  for (int t = 1; t <= 20; ++t) {
    const Eigen::VectorXd xi = game.Xi(expected);
    v = 0.9 * v + 0.1 * xi.cwiseProduct(xi);
    Eigen::VectorXd h(game.dimension());
    for (int i = 0; i < h.size(); ++i) {
      h(i) = 0.05 * std::sqrt(1 - std::pow(0.9, t)) / (std::sqrt(v(i)) + 1e-3);
    }
    expected = DenseStep(game, expected, h);
  }
  const Eigen::VectorXd core = RunFor(game, config, 20);
  EXPECT_LT((core - expected).lpNorm<Eigen::Infinity>(), kDenseTolerance)
      << "core " << core.transpose() << "\ndense " << expected.transpose();
}

INSTANTIATE_TEST_SUITE_P(Games, GeneralSum,
                         ::testing::Values(Case{{3, 5}, 1}, Case{{4, 2}, 2},
                                           Case{{6, 6}, 3}));

// Zero sum (g = -f): J = [[P, Q], [-Q^T, R]] with P, R symmetric, and
// conjugate gradient on the symmetric positive definite operator.
TEST(Cgd, ZeroSumWithConjugateGradientMatchesDenseSolve) {
  QuadraticGame game = QuadraticGame::Random({4, 3}, 7);
  const Eigen::MatrixXd q = game.J.block(0, 4, 4, 3);
  game.J.block(4, 0, 3, 4) = -q.transpose();
  game.J.block(0, 0, 4, 4) =
      0.5 * (game.J.block(0, 0, 4, 4) + game.J.block(0, 0, 4, 4).transpose());
  game.J.block(4, 4, 3, 3) =
      0.5 * (game.J.block(4, 4, 3, 3) + game.J.block(4, 4, 3, 3).transpose());
  for (AlgorithmKind kind : {AlgorithmKind::kCgd, AlgorithmKind::kAcgd}) {
    const SessionConfig cg = CgdConfig(game, kind, 0.1, /*zero_sum=*/true);
    const SessionConfig gmres = CgdConfig(game, kind, 0.1, false);
    const Eigen::VectorXd a = RunFor(game, cg, 20);
    EXPECT_LT((a - RunFor(game, gmres, 20)).lpNorm<Eigen::Infinity>(),
              kDenseTolerance);
    if (kind == AlgorithmKind::kCgd) {
      Eigen::VectorXd expected = game.x0;
      const Eigen::VectorXd h = Eigen::VectorXd::Constant(7, 0.1);
      for (int t = 0; t < 20; ++t) expected = DenseStep(game, expected, h);
      EXPECT_LT((a - expected).lpNorm<Eigen::Infinity>(), kDenseTolerance);
    }
  }
}

// A step's products rounds: rhs, (warm start: 2), 2 per Krylov iteration,
// the response; every probe zero outside one player's block, the same for
// every sample; Task.phase counts up within the step.
TEST(Cgd, RoundsPerStepFollowTheSolver) {
  const QuadraticGame game = QuadraticGame::Random({3, 5}, 4);
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(
      CgdConfig(game, AlgorithmKind::kCgd, 0.1, /*zero_sum=*/false));
  int rounds = 0;
  int64_t step = 0;
  int last_phase = 0;
  std::vector<int> rounds_per_step;
  Drive(game, algorithm, 4, [&](std::unique_ptr<Algorithm>& a) {
    if (a->step() != step) {
      rounds_per_step.push_back(rounds);
      EXPECT_EQ(a->stats().cgd_rounds, rounds);
      const int warm = step == 0 ? 0 : 2;
      EXPECT_EQ(rounds, 1 + warm + 2 * a->stats().cgd_iterations + 1);
      EXPECT_LT(a->stats().cgd_residual, kTightSolve);
      step = a->step();
      rounds = 0;
      last_phase = 0;
    }
    if (a->phase().kind != PhaseSpec::Kind::kProducts) return;
    ++rounds;
    EXPECT_EQ(a->phase().index, last_phase + 1);
    last_phase = a->phase().index;
    EXPECT_EQ(a->probes()[0], a->probes()[1]);
    const Eigen::VectorXd probe = ToEigen(*a->probes()[0]);
    EXPECT_TRUE(probe.head(3).isZero(0.0) || probe.tail(5).isZero(0.0));
  });
  ASSERT_EQ(rounds_per_step.size(), 3u);
  // GMRES on the 3-dimensional system: at most 3 iterations.
  EXPECT_LE(rounds_per_step[0], 1 + 2 * 3 + 1);
}

// A snapshot at every phase of a step (inside the Krylov loop included),
// restored into a new algorithm: the run continues bit for bit.
TEST(Cgd, SnapshotInsideTheKrylovLoopRestores) {
  const QuadraticGame game = QuadraticGame::Random({4, 3}, 5);
  for (AlgorithmKind kind : {AlgorithmKind::kCgd, AlgorithmKind::kAcgd}) {
    for (bool zero_sum : {false, true}) {
      SessionConfig config = CgdConfig(game, kind, 0.05, zero_sum);
      config.algorithm.cgd_tolerance = 1e-6;  // warm starts then save rounds
      std::unique_ptr<Algorithm> reference = *Algorithm::Create(config);
      Drive(game, reference, 6);
      std::unique_ptr<Algorithm> restored = *Algorithm::Create(config);
      int snapshots = 0;
      Drive(game, restored, 6, [&](std::unique_ptr<Algorithm>& a) {
        if (a->step() < 2) return;
        const AlgorithmState state = a->ExportState();
        std::unique_ptr<Algorithm> fresh = *Algorithm::Create(config);
        ASSERT_TRUE(fresh->ImportState(state).ok());
        EXPECT_EQ(fresh->phase().label, a->phase().label);
        a = std::move(fresh);
        ++snapshots;
      });
      EXPECT_GT(snapshots, 20);
      EXPECT_EQ(ToEigen(*restored->parameters()),
                ToEigen(*reference->parameters()))
          << AlgorithmName(kind) << " zero_sum " << zero_sum;
    }
  }
}

TEST(Cgd, ValidationTellsTheCallerWhatToFix) {
  const QuadraticGame game = QuadraticGame::Random({2, 2}, 6);
  auto refused = [&](const std::function<void(SessionConfig&)>& edit,
                     absl::string_view words) {
    SessionConfig config = CgdConfig(game, AlgorithmKind::kCgd, 0.1, false);
    edit(config);
    const absl::Status status = ValidateConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << words;
    EXPECT_NE(status.message().find(words), absl::string_view::npos)
        << status.message();
  };
  refused(
      [](SessionConfig& c) {
        c.players.push_back(c.players[0]);
        c.players[2].name = "p2";
      },
      "two players");
  refused(
      [](SessionConfig& c) {
        c.players[1].optimizer.kind = OptimizerKind::kAdam;
      },
      "set the optimizer to sgd");
  refused(
      [](SessionConfig& c) { c.algorithm.estimator = EstimatorKind::kLocal; },
      "leave the estimator unset or pooled");
  refused([](SessionConfig& c) { c.algorithm.cgd_tolerance = 0; },
          "cgd_tolerance");
  refused([](SessionConfig& c) { c.algorithm.cgd_max_iterations = 0; },
          "cgd_max_iterations");
  refused(
      [](SessionConfig& c) {
        c.algorithm.kind = AlgorithmKind::kAcgd;
        c.algorithm.acgd_beta = 1.0;
      },
      "acgd_beta");
  EXPECT_TRUE(
      ValidateConfig(CgdConfig(game, AlgorithmKind::kAcgd, 0.1, true)).ok());
}

}  // namespace
}  // namespace gameopt
