// Stochastic Hamiltonian gradient descent (AlgorithmKind::kShgd; Loizou et
// al., ICML 2020): the formula on a random quadratic game with exact
// products, and the paper's stochastic bilinear game, where the biased
// estimate of grad H stalls away from the solution and the unbiased one
// reaches a neighbourhood of it.
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::ToEigen;

// Core and reference do the same float64 arithmetic in different orders;
// over 40 steps on O(1) values the difference stays near 1e-13.
constexpr double kTolerance = 1e-10;

// The stochastic bilinear game of the paper (Section 7.1), a finite sum of
// n terms over players x and y in R^d, x minimizing and y maximizing
//   g(x, y) = (1/n) sum_i [x^T A_i y + b_i^T x + c_i^T y],
// i.e. l_x = g, l_y = -g. Term i's field and Jacobian:
//   xi_i = (A_i y + b_i, -(A_i^T x + c_i)),  J_i = [[0, A_i], [-A_i^T, 0]],
//   J_i^T w = (-A_i w_y, A_i^T w_x).
// With A = mean A_i (invertible), b = mean b_i, c = mean c_i the solution
// is y* = -A^{-1} b, x* = -A^{-T} c. A_i = A + noise, A = I + 0.3 N (N
// standard Gaussian), noise 0.3 N, b_i = b0 + 0.5 N, c_i = c0 + 0.5 N (b0, c0
// standard Gaussian): J_i^T xi_i
// and J_i are correlated, so the LOCAL estimate (1/K) sum_k J_k^T xi_k is
// biased for grad H = J^T xi.
struct FiniteSumBilinear {
  int d = 0;
  std::vector<Eigen::MatrixXd> a;
  std::vector<Eigen::VectorXd> b, c;

  static FiniteSumBilinear Random(int d, int n, uint64_t seed) {
    FiniteSumBilinear g;
    g.d = d;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto gaussian = [&](int rows, int cols) {
      Eigen::MatrixXd m(rows, cols);
      for (int i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
      return m;
    };
    const Eigen::MatrixXd base =
        Eigen::MatrixXd::Identity(d, d) + 0.3 * gaussian(d, d);
    const Eigen::VectorXd b0 = gaussian(d, 1), c0 = gaussian(d, 1);
    for (int i = 0; i < n; ++i) {
      g.a.push_back(base + 0.3 * gaussian(d, d));
      g.b.push_back(b0 + 0.5 * gaussian(d, 1));
      g.c.push_back(c0 + 0.5 * gaussian(d, 1));
    }
    return g;
  }

  int n() const { return static_cast<int>(a.size()); }
  Eigen::VectorXd Xi(const Eigen::VectorXd& z, int i) const {
    Eigen::VectorXd out(2 * d);
    out.head(d) = a[i] * z.tail(d) + b[i];
    out.tail(d) = -(a[i].transpose() * z.head(d) + c[i]);
    return out;
  }
  Eigen::VectorXd JtW(const Eigen::VectorXd& w, int i) const {
    Eigen::VectorXd out(2 * d);
    out.head(d) = -a[i] * w.tail(d);
    out.tail(d) = a[i].transpose() * w.head(d);
    return out;
  }
  Eigen::VectorXd Solution() const {
    Eigen::MatrixXd mean_a = Eigen::MatrixXd::Zero(d, d);
    Eigen::VectorXd mean_b = Eigen::VectorXd::Zero(d);
    Eigen::VectorXd mean_c = Eigen::VectorXd::Zero(d);
    for (int i = 0; i < n(); ++i) {
      mean_a += a[i] / n();
      mean_b += b[i] / n();
      mean_c += c[i] / n();
    }
    Eigen::VectorXd z(2 * d);
    z.head(d) = -mean_a.transpose().lu().solve(mean_c);
    z.tail(d) = -mean_a.lu().solve(mean_b);
    return z;
  }
};

SessionConfig BilinearConfig(int d, EstimatorKind estimator, double lr) {
  QuadraticGame shape;
  shape.dims = {d, d};
  shape.x0 = Eigen::VectorXd::Zero(2 * d);
  SessionConfig config = QuadraticConfig(shape, AlgorithmKind::kShgd, lr);
  config.players[0].name = "x";
  config.players[1].name = "y";
  config.algorithm.estimator = estimator;
  config.workers_per_round = 2;
  return config;
}

// Plays `steps` steps with kSamples independent minibatches of one term
// each per round (the same term for a sample's gradient and products), as
// two workers drawing with replacement would. Returns the distance to the
// solution at the end.
double PlayBilinear(const FiniteSumBilinear& game, EstimatorKind estimator,
                    double lr, int steps, uint64_t seed) {
  absl::StatusOr<std::unique_ptr<Algorithm>> created =
      Algorithm::Create(BilinearConfig(game.d, estimator, lr));
  EXPECT_TRUE(created.ok()) << created.status();
  Algorithm& algorithm = **created;
  constexpr int kSamples = 2;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> term(0, game.n() - 1);
  std::vector<FlatVector> xi(kSamples, FlatVector(DType::kFloat64, 2 * game.d));
  std::vector<FlatVector> vjp = xi;
  int drawn[kSamples] = {};
  while (algorithm.step() < steps) {
    const Eigen::VectorXd point = ToEigen(*algorithm.point());
    std::vector<const FlatVector*> answers;
    if (algorithm.phase().kind == PhaseSpec::Kind::kGradient) {
      for (int k = 0; k < kSamples; ++k) {
        drawn[k] = term(rng);
        xi[k].as<double>() = game.Xi(point, drawn[k]);
        answers.push_back(&xi[k]);
      }
      EXPECT_TRUE(algorithm.CompleteGradient(answers).ok());
    } else {
      for (int k = 0; k < kSamples; ++k) {
        vjp[k].as<double>() =
            game.JtW(ToEigen(*algorithm.probes()[k]), drawn[k]);
        answers.push_back(&vjp[k]);
      }
      EXPECT_TRUE(algorithm.CompleteProducts(answers, {}).ok());
    }
  }
  return (ToEigen(*algorithm.parameters()) - game.Solution()).norm();
}

// Plays L-SVRHG as workers would: a step_seed phase draws its terms from
// (step, sample), so the rounds at x and at the snapshot see the same
// ones; a full_shard sample is the mean over all n terms (one worker's
// shard is the whole sum here), and so are its products. Returns the
// distance to the solution at the end; `rounds` counts the rounds.
double PlayLSvrhg(const FiniteSumBilinear& game, double lr, double p, int steps,
                  int* rounds, int* full_rounds) {
  SessionConfig config = BilinearConfig(game.d, EstimatorKind::kUnbiased, lr);
  config.algorithm.kind = AlgorithmKind::kLSvrhg;
  config.algorithm.svrhg_probability = p;
  config.seed = 5;
  absl::StatusOr<std::unique_ptr<Algorithm>> created =
      Algorithm::Create(config);
  EXPECT_TRUE(created.ok()) << created.status();
  Algorithm& algorithm = **created;
  constexpr int kSamples = 2;
  std::vector<FlatVector> xi(kSamples, FlatVector(DType::kFloat64, 2 * game.d));
  std::vector<FlatVector> vjp = xi;
  int drawn[kSamples] = {};
  *rounds = 0;
  *full_rounds = 0;
  while (algorithm.step() < steps) {
    const PhaseSpec& phase = algorithm.phase();
    const Eigen::VectorXd point = ToEigen(*algorithm.point());
    std::vector<const FlatVector*> answers;
    ++*rounds;
    if (phase.full_shard) ++*full_rounds;
    if (phase.kind == PhaseSpec::Kind::kGradient) {
      EXPECT_TRUE(phase.step_seed || phase.full_shard);
      for (int k = 0; k < kSamples; ++k) {
        std::mt19937_64 rng(algorithm.step() * kSamples + k);
        drawn[k] = std::uniform_int_distribution<int>(0, game.n() - 1)(rng);
        Eigen::VectorXd g = Eigen::VectorXd::Zero(2 * game.d);
        if (phase.full_shard) {
          for (int i = 0; i < game.n(); ++i) g += game.Xi(point, i) / game.n();
        } else {
          g = game.Xi(point, drawn[k]);
        }
        xi[k].as<double>() = g;
        answers.push_back(&xi[k]);
      }
      EXPECT_TRUE(algorithm.CompleteGradient(answers).ok());
    } else {
      for (int k = 0; k < kSamples; ++k) {
        const Eigen::VectorXd w = ToEigen(*algorithm.probes()[k]);
        Eigen::VectorXd product = Eigen::VectorXd::Zero(2 * game.d);
        if (phase.full_shard) {
          for (int i = 0; i < game.n(); ++i)
            product += game.JtW(w, i) / game.n();
        } else {
          product = game.JtW(w, drawn[k]);
        }
        vjp[k].as<double>() = product;
        answers.push_back(&vjp[k]);
      }
      EXPECT_TRUE(algorithm.CompleteProducts(answers, {}).ok());
    }
  }
  return (ToEigen(*algorithm.parameters()) - game.Solution()).norm();
}

TEST(Shgd, FollowsTheHamiltonianGradientOnAQuadraticGame) {
  const QuadraticGame game = QuadraticGame::Random({2, 3}, 7);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kShgd, 0.05);
  config.algorithm.estimator = EstimatorKind::kUnbiased;
  config.workers_per_round = 2;
  absl::StatusOr<std::unique_ptr<Algorithm>> created =
      Algorithm::Create(config);
  ASSERT_TRUE(created.ok()) << created.status();
  Algorithm& algorithm = **created;
  EXPECT_EQ(algorithm.phases_per_step(), 2);
  const int d = game.dimension();
  std::vector<FlatVector> samples(2, FlatVector(DType::kFloat64, d));
  Eigen::VectorXd reference = game.x0;
  for (int step = 0; step < 40; ++step) {
    std::vector<const FlatVector*> answers;
    for (FlatVector& s : samples) {
      s.as<double>() = game.Xi(ToEigen(*algorithm.point()));
      answers.push_back(&s);
    }
    ASSERT_TRUE(algorithm.CompleteGradient(answers).ok());
    ASSERT_EQ(algorithm.phase().kind, PhaseSpec::Kind::kProducts);
    for (int k = 0; k < 2; ++k) {
      samples[k].as<double>() =
          game.J.transpose() * ToEigen(*algorithm.probes()[k]);
    }
    ASSERT_TRUE(algorithm.CompleteProducts(answers, {}).ok());
    // x <- x - lr J^T xi(x): gradient descent on H = 1/2 |xi|^2.
    reference -= 0.05 * game.J.transpose() * game.Xi(reference);
  }
  EXPECT_LT((ToEigen(*algorithm.parameters()) - reference).norm(), kTolerance);
  // H's gradient vanishes only at the equilibrium; 40 steps of lr 0.05 get
  // most of the way there on this well-conditioned game.
  EXPECT_LT((reference - game.Equilibrium()).norm(),
            (game.x0 - game.Equilibrium()).norm());
}

TEST(Shgd, UnbiasedEstimateReachesTheSolutionWhereTheBiasedOneStalls) {
  const FiniteSumBilinear game = FiniteSumBilinear::Random(4, 20, 11);
  const double start = game.Solution().norm();  // from (x, y) = 0
  constexpr double kLr = 0.05;
  constexpr int kSteps = 4000;
  const double local =
      PlayBilinear(game, EstimatorKind::kLocal, kLr, kSteps, 1);
  const double unbiased =
      PlayBilinear(game, EstimatorKind::kUnbiased, kLr, kSteps, 1);
  const double small_lr =
      PlayBilinear(game, EstimatorKind::kUnbiased, kLr / 10, 10 * kSteps, 1);
  const double local_small_lr =
      PlayBilinear(game, EstimatorKind::kLocal, kLr / 10, 10 * kSteps, 1);
  std::printf(
      "start %.4g  local %.4g (lr/10: %.4g)  unbiased %.4g (lr/10: %.4g)\n",
      start, local, local_small_lr, unbiased, small_lr);
  EXPECT_LT(unbiased, 0.2 * start);
  EXPECT_GT(local, 0.3 * start);
  // The biased estimate's fixed point is not the solution: a smaller step
  // does not help it, while the unbiased neighbourhood shrinks with lr.
  EXPECT_GT(local_small_lr, 0.3 * start);
  EXPECT_LT(small_lr, unbiased);
}

TEST(Shgd, UnbiasedEstimatorNeedsTwoSamples) {
  SessionConfig config = BilinearConfig(2, EstimatorKind::kUnbiased, 0.1);
  config.workers_per_round = 1;
  absl::StatusOr<std::unique_ptr<Algorithm>> created =
      Algorithm::Create(config);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(created.status().message().find("samples_per_worker >= 2"),
            std::string::npos)
      << created.status();
}

// L-SVRHG on the same game, lr and steps as SHGD above: the variance
// reduction takes it to the solution itself, where SHGD stops at a
// neighbourhood (0.33). About a fraction p of the steps recompute the full
// gradient (two full-shard rounds instead of four minibatch rounds).
TEST(LSvrhg, ConvergesToTheSolutionOfTheFiniteSumBilinearGame) {
  const FiniteSumBilinear game = FiniteSumBilinear::Random(4, 20, 11);
  int rounds = 0, full_rounds = 0;
  const double distance =
      PlayLSvrhg(game, 0.05, 0.1, 4000, &rounds, &full_rounds);
  std::printf("l_svrhg distance %.4g  rounds %d  full-shard rounds %d\n",
              distance, rounds, full_rounds);
  // Linear convergence (measured 1.6e-8 after 4000 steps, still
  // shrinking): five orders of magnitude below SHGD's neighbourhood.
  EXPECT_LT(distance, 1e-6);
  // Full-gradient steps: the first, then about p of the others.
  EXPECT_GT(full_rounds, 2 * 200);
  EXPECT_LT(full_rounds, 2 * 600);
}

// Answers the current phase of `algorithm` on the finite-sum game with
// terms drawn from (step, sample), full-shard phases over all terms.
void AnswerPhase(const FiniteSumBilinear& game, Algorithm& algorithm) {
  const PhaseSpec& phase = algorithm.phase();
  const Eigen::VectorXd point = ToEigen(*algorithm.point());
  std::vector<FlatVector> out(2, FlatVector(DType::kFloat64, 2 * game.d));
  std::vector<const FlatVector*> answers;
  for (int k = 0; k < 2; ++k) {
    std::mt19937_64 rng(algorithm.step() * 2 + k);
    const int term = std::uniform_int_distribution<int>(0, game.n() - 1)(rng);
    Eigen::VectorXd v = Eigen::VectorXd::Zero(2 * game.d);
    for (int i = 0; i < game.n(); ++i) {
      if (!phase.full_shard && i != term) continue;
      const double weight = phase.full_shard ? 1.0 / game.n() : 1.0;
      v += weight * (phase.kind == PhaseSpec::Kind::kGradient
                         ? game.Xi(point, i)
                         : game.JtW(ToEigen(*algorithm.probes()[k]), i));
    }
    out[k].as<double>() = v;
    answers.push_back(&out[k]);
  }
  if (phase.kind == PhaseSpec::Kind::kGradient) {
    ASSERT_TRUE(algorithm.CompleteGradient(answers).ok());
  } else {
    ASSERT_TRUE(algorithm.CompleteProducts(answers, {}).ok());
  }
}

// Restored in each phase of the plan (at x, at the snapshot, full shard),
// the algorithm goes on bit for bit as the one it was exported from.
// The same for ConOpt with the variance-reduced correction, which also
// keeps the step's mean gradient across the rounds at the snapshot.
TEST(LSvrhg, RestoresInEveryPhase) {
  const FiniteSumBilinear game = FiniteSumBilinear::Random(3, 10, 2);
  SessionConfig svrhg = BilinearConfig(3, EstimatorKind::kUnbiased, 0.05);
  svrhg.algorithm.kind = AlgorithmKind::kLSvrhg;
  svrhg.algorithm.svrhg_probability = 0.3;
  SessionConfig conopt = svrhg;
  conopt.algorithm.kind = AlgorithmKind::kConOpt;
  conopt.algorithm.svrhg_correction = true;
  for (int run = 0; run < 12; ++run) {
    SCOPED_TRACE(run);
    const SessionConfig& config = run < 6 ? svrhg : conopt;
    const int target = run % 6;
    std::unique_ptr<Algorithm> a = *Algorithm::Create(config);
    // Past the first step, to the first time the plan is at `target`.
    while (a->step() < 2 || a->phase().index != target) {
      AnswerPhase(game, *a);
      ASSERT_LT(a->step(), 200);
    }
    std::unique_ptr<Algorithm> b = *Algorithm::Create(config);
    ASSERT_TRUE(b->ImportState(a->ExportState()).ok());
    EXPECT_EQ(b->phase().index, target);
    EXPECT_TRUE(ToEigen(*b->point()) == ToEigen(*a->point()));
    for (int round = 0; round < 30; ++round) {
      AnswerPhase(game, *a);
      AnswerPhase(game, *b);
    }
    EXPECT_EQ(a->phase().index, b->phase().index);
    EXPECT_TRUE(ToEigen(*a->parameters()) == ToEigen(*b->parameters()));
  }
}

// ConOpt with the variance-reduced correction and p = 1: the snapshot
// moves after every step, so every step is the full-shard one, g = xi(x)
// + gamma grad H(x) over all terms: exact ConOpt on the mean game.
TEST(ConOptSvrhgCorrection, WithPOneIsExactConOptOnTheMeanGame) {
  const FiniteSumBilinear game = FiniteSumBilinear::Random(3, 10, 4);
  constexpr double kLr = 0.05, kGamma = 0.7;
  SessionConfig config = BilinearConfig(3, EstimatorKind::kUnbiased, kLr);
  config.algorithm.kind = AlgorithmKind::kConOpt;
  config.algorithm.gamma = kGamma;
  config.algorithm.svrhg_correction = true;
  config.algorithm.svrhg_probability = 1.0;
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  Eigen::VectorXd z = Eigen::VectorXd::Zero(6);
  auto mean = [&](auto term) {
    Eigen::VectorXd out = Eigen::VectorXd::Zero(6);
    for (int i = 0; i < game.n(); ++i) out += term(i) / game.n();
    return out;
  };
  for (int step = 0; step < 40; ++step) {
    while (algorithm->step() == step) AnswerPhase(game, *algorithm);
    const Eigen::VectorXd xi = mean([&](int i) { return game.Xi(z, i); });
    z -= kLr * (xi + kGamma * mean([&](int i) { return game.JtW(xi, i); }));
    ASSERT_LT((ToEigen(*algorithm->parameters()) - z).norm(), kTolerance)
        << "step " << step;
  }
}

// Plays ConOpt (unbiased estimator) on the finite-sum game, terms drawn
// from (step, sample) as AnswerPhase does, with or without the
// variance-reduced correction; the distance to the solution averaged over
// the last `tail` steps.
double PlayConOpt(const FiniteSumBilinear& game, bool reduced, int steps,
                  int tail) {
  SessionConfig config = BilinearConfig(game.d, EstimatorKind::kUnbiased, 0.05);
  config.algorithm.kind = AlgorithmKind::kConOpt;
  config.algorithm.gamma = 1.0;
  config.algorithm.svrhg_correction = reduced;
  config.algorithm.svrhg_probability = 0.1;
  config.seed = 5;
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  double sum = 0;
  while (algorithm->step() < steps) {
    const int64_t step = algorithm->step();
    AnswerPhase(game, *algorithm);
    if (algorithm->step() != step && algorithm->step() > steps - tail) {
      sum += (ToEigen(*algorithm->parameters()) - game.Solution()).norm();
    }
  }
  return sum / tail;
}

// With the correction's variance reduced ConOpt settles closer to the
// solution; xi's own minibatch noise remains, so it does not converge.
TEST(ConOptSvrhgCorrection, SettlesCloserThanTheUnbiasedEstimateAlone) {
  const FiniteSumBilinear game = FiniteSumBilinear::Random(4, 20, 11);
  const double plain = PlayConOpt(game, false, 3000, 1000);
  const double reduced = PlayConOpt(game, true, 3000, 1000);
  std::printf("conopt unbiased: mean distance %.4g, svrhg_correction %.4g\n",
              plain, reduced);
  // Deterministic (seeded draws); measured 0.55 against 0.75.
  EXPECT_LT(reduced, 0.85 * plain);
}

// Each config is refused by Algorithm::Create with INVALID_ARGUMENT and a
// message holding its words.
void ExpectRefused(
    const std::vector<std::pair<SessionConfig, const char*>>& cases) {
  for (const auto& [config, words] : cases) {
    absl::StatusOr<std::unique_ptr<Algorithm>> created =
        Algorithm::Create(config);
    ASSERT_FALSE(created.ok()) << words;
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(created.status().message().find(words), std::string::npos)
        << created.status();
  }
}

TEST(ConOptSvrhgCorrection, RefusalsNameWhatToChange) {
  SessionConfig pooled = BilinearConfig(2, EstimatorKind::kPooled, 0.1);
  pooled.algorithm.kind = AlgorithmKind::kConOpt;
  pooled.algorithm.svrhg_correction = true;
  SessionConfig simgd = BilinearConfig(2, EstimatorKind::kUnbiased, 0.1);
  simgd.algorithm.kind = AlgorithmKind::kSimGd;
  simgd.algorithm.svrhg_correction = true;
  SessionConfig meter = pooled;
  meter.algorithm.estimator = EstimatorKind::kUnbiased;
  meter.algorithm.bias_meter = true;
  ExpectRefused({{pooled, "conopt with svrhg_correction: its variance"},
                 {simgd, "use algorithm conopt"},
                 {meter, "with a fixed gamma"}});
}

TEST(LSvrhg, NeedsTheUnbiasedEstimatorAndAProbability) {
  SessionConfig pooled = BilinearConfig(2, EstimatorKind::kPooled, 0.1);
  pooled.algorithm.kind = AlgorithmKind::kLSvrhg;
  SessionConfig zero = BilinearConfig(2, EstimatorKind::kUnbiased, 0.1);
  zero.algorithm.kind = AlgorithmKind::kLSvrhg;
  zero.algorithm.svrhg_probability = 0.0;
  SessionConfig quorum = BilinearConfig(2, EstimatorKind::kUnbiased, 0.1);
  quorum.algorithm.kind = AlgorithmKind::kLSvrhg;
  quorum.workers_per_round = 3;
  quorum.quorum = 2;
  ExpectRefused({{pooled, "set estimator unbiased"},
                 {zero, "svrhg_probability"},
                 {quorum, "use quorum 0"}});
}

// SHGD has no fused round (its products need the others' gradients with
// the unbiased estimator, and the step is the products alone) and no bias
// meter: both are refused naming conopt and sga.
TEST(Shgd, FusedProductsAndTheBiasMeterAreInvalidArgument) {
  SessionConfig fused = BilinearConfig(2, EstimatorKind::kLocal, 0.1);
  fused.algorithm.fuse_local_products = true;
  SessionConfig meter = BilinearConfig(2, EstimatorKind::kPooled, 0.1);
  meter.algorithm.bias_meter = true;
  for (const SessionConfig& config : {fused, meter}) {
    absl::StatusOr<std::unique_ptr<Algorithm>> created =
        Algorithm::Create(config);
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(created.status().message().find("conopt or sga"),
              std::string::npos)
        << created.status();
  }
}

}  // namespace
}  // namespace gameopt
