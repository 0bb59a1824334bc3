// LOLA and SOS (Letcher et al. 2019, n-player forms) on random n-player
// quadratic games l_i = 1/2 x^T A_i x + b_i^T x with general symmetric A_i,
// against the papers' formulas written densely here from the losses'
// Hessians (not from J): (O xi)_i = sum_{j != i} A_i[i, j] xi_j and
// chi_i = sum_{j != i} A_j[i, j] (A_i x + b_i)_j.
#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "Eigen/Dense"
#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "server/core/algorithms_lola.h"
#include "server/core/clock.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::BlockPlayersConfig;
using testing::ToEigen;

// Core and reference do the same float64 arithmetic in different orders;
// over kSteps steps on O(1) values the difference stays near 1e-13.
constexpr double kTolerance = 1e-10;
constexpr int kSteps = 30;

struct Game {
  std::vector<int> dims, offsets;
  std::vector<Eigen::MatrixXd> a;  // symmetric d x d
  std::vector<Eigen::VectorXd> b;
  Eigen::VectorXd x0;

  static Game Random(std::vector<int> dims, uint64_t seed) {
    Game g;
    g.dims = std::move(dims);
    int d = 0;
    for (int di : g.dims) {
      g.offsets.push_back(d);
      d += di;
    }
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto gaussian = [&](int r, int c) {
      Eigen::MatrixXd m(r, c);
      for (int j = 0; j < c; ++j) {
        for (int i = 0; i < r; ++i) m(i, j) = normal(rng);
      }
      return m;
    };
    for (size_t i = 0; i < g.dims.size(); ++i) {
      const Eigen::MatrixXd m = gaussian(d, d) / std::sqrt(d);
      Eigen::MatrixXd a = (m + m.transpose()) / 2;
      // Each player's own block positive definite: descent on it converges.
      a.block(g.offsets[i], g.offsets[i], g.dims[i], g.dims[i]) +=
          Eigen::MatrixXd::Identity(g.dims[i], g.dims[i]);
      g.a.push_back(a);
      g.b.push_back(gaussian(d, 1));
    }
    g.x0 = gaussian(d, 1);
    return g;
  }

  int n() const { return static_cast<int>(dims.size()); }
  int dimension() const { return static_cast<int>(x0.size()); }
  Eigen::VectorXd LossGradient(int i, const Eigen::VectorXd& x) const {
    return a[i] * x + b[i];
  }
  Eigen::VectorXd Xi(const Eigen::VectorXd& x) const {
    Eigen::VectorXd xi(x.size());
    for (int i = 0; i < n(); ++i) {
      xi.segment(offsets[i], dims[i]) =
          LossGradient(i, x).segment(offsets[i], dims[i]);
    }
    return xi;
  }
  // J = d xi / dx: block row i is A_i's block row i.
  Eigen::MatrixXd J() const {
    Eigen::MatrixXd j(dimension(), dimension());
    for (int i = 0; i < n(); ++i) {
      j.middleRows(offsets[i], dims[i]) = a[i].middleRows(offsets[i], dims[i]);
    }
    return j;
  }
  Eigen::MatrixXd Block(const Eigen::MatrixXd& m, int i, int j) const {
    return m.block(offsets[i], offsets[j], dims[i], dims[j]);
  }

  // The paper's direction at x: xi_0 - p alpha chi; `p` gets SOS's p
  // (1 for LOLA).
  Eigen::VectorXd Direction(const Eigen::VectorXd& x, double alpha, bool sos,
                            double sos_a, double sos_b, double* p) const {
    const Eigen::VectorXd xi = Xi(x);
    Eigen::VectorXd o_xi = Eigen::VectorXd::Zero(x.size());
    Eigen::VectorXd chi = Eigen::VectorXd::Zero(x.size());
    for (int i = 0; i < n(); ++i) {
      const Eigen::VectorXd gi = LossGradient(i, x);
      for (int j = 0; j < n(); ++j) {
        if (j == i) continue;
        // D_i D_j l_i: Hessian of l_i, rows of i, columns of j.
        o_xi.segment(offsets[i], dims[i]) +=
            Block(a[i], i, j) * xi.segment(offsets[j], dims[j]);
        // D_i D_j l_j times grad_j l_i.
        chi.segment(offsets[i], dims[i]) +=
            Block(a[j], i, j) * gi.segment(offsets[j], dims[j]);
      }
    }
    const Eigen::VectorXd xi0 = xi - alpha * o_xi;
    *p = 1.0;
    if (sos) {
      // Letcher et al. 2019, Algorithm 1.
      const double dot = (-alpha * chi).dot(xi0);
      const double p1 =
          dot >= 0 ? 1.0 : std::min(1.0, -sos_a * xi0.squaredNorm() / dot);
      const double p2 = xi.norm() < sos_b ? xi.squaredNorm() : 1.0;
      *p = std::min(p1, p2);
    }
    return xi0 - *p * alpha * chi;
  }
};

SessionConfig Config(const Game& game, AlgorithmKind kind) {
  std::vector<double> learning_rates;
  for (int i = 0; i < game.n(); ++i) learning_rates.push_back(0.1 - 0.02 * i);
  SessionConfig config =
      BlockPlayersConfig(game.dims, game.x0, kind, learning_rates);
  config.algorithm.lola_alpha = 0.3;
  config.algorithm.sos_b = 0.5;
  return config;
}

// Answers the algorithm's current phase with exact values, as two
// identical samples.
void Answer(const Game& game, Algorithm& algorithm) {
  const PhaseSpec& phase = algorithm.phase();
  const Eigen::VectorXd x = ToEigen(*algorithm.point());
  const int d = game.dimension();
  constexpr int kSamples = 2;
  std::vector<FlatVector> out(kSamples, FlatVector(DType::kFloat64, d));
  std::vector<const FlatVector*> ptrs;
  if (phase.kind == PhaseSpec::Kind::kGradient) {
    ASSERT_GE(phase.loss, 0) << "LOLA asks for cross gradients only";
    ASSERT_EQ(static_cast<int>(phase.players.size()), game.n());
    for (auto& s : out) {
      s.as<double>() = game.LossGradient(phase.loss, x);
      ptrs.push_back(&s);
    }
    ASSERT_TRUE(algorithm.CompleteGradient(ptrs).ok());
    return;
  }
  ASSERT_EQ(algorithm.probes().size(), static_cast<size_t>(kSamples));
  ASSERT_NE(phase.vjp, phase.jvp);
  const Eigen::MatrixXd j = game.J();
  for (int k = 0; k < kSamples; ++k) {
    const Eigen::VectorXd w = ToEigen(*algorithm.probes()[k]);
    out[k].as<double>() =
        phase.vjp ? Eigen::VectorXd(j.transpose() * w) : Eigen::VectorXd(j * w);
    ptrs.push_back(&out[k]);
  }
  const std::vector<const FlatVector*> none;
  ASSERT_TRUE(
      algorithm
          .CompleteProducts(phase.vjp ? ptrs : none, phase.jvp ? ptrs : none)
          .ok());
}

struct Case {
  std::vector<int> dims;
  uint64_t seed;
  AlgorithmKind kind;
};

class OpponentShapingTest : public ::testing::TestWithParam<Case> {};

TEST_P(OpponentShapingTest, IsThePaperUpdate) {
  const Game game = Game::Random(GetParam().dims, GetParam().seed);
  const SessionConfig config = Config(game, GetParam().kind);
  absl::StatusOr<std::unique_ptr<Algorithm>> created =
      Algorithm::Create(config);
  ASSERT_TRUE(created.ok()) << created.status();
  Algorithm& algorithm = **created;
  EXPECT_EQ(algorithm.phases_per_step(), 3 * game.n());
  Eigen::VectorXd x = game.x0;
  const bool sos = GetParam().kind == AlgorithmKind::kSos;
  double min_p = 1.0;
  for (int t = 0; t < kSteps; ++t) {
    double p = 0;
    const Eigen::VectorXd g =
        game.Direction(x, config.algorithm.lola_alpha, sos,
                       config.algorithm.sos_a, config.algorithm.sos_b, &p);
    for (int i = 0; i < game.n(); ++i) {
      x.segment(game.offsets[i], game.dims[i]) -=
          config.players[i].optimizer.learning_rate *
          g.segment(game.offsets[i], game.dims[i]);
    }
    while (algorithm.step() == t) {
      Answer(game, algorithm);
      if (::testing::Test::HasFatalFailure()) return;
    }
    EXPECT_NEAR(algorithm.stats().sos_p, p, kTolerance) << "step " << t;
    min_p = std::min(min_p, p);
    ASSERT_LT((ToEigen(*algorithm.parameters()) - x).norm(), kTolerance)
        << "step " << t;
  }
  // SOS's criterion took effect (else the case would test LOLA again).
  if (sos) {
    EXPECT_LT(min_p, 1.0);
  }
}

// A restore in every phase of a step (a fresh algorithm imports the
// exported state) continues exactly as the uninterrupted run.
TEST_P(OpponentShapingTest, ResumesFromEveryPhase) {
  const Game game = Game::Random(GetParam().dims, GetParam().seed);
  const SessionConfig config = Config(game, GetParam().kind);
  std::unique_ptr<Algorithm> plain = *Algorithm::Create(config);
  std::unique_ptr<Algorithm> restored = *Algorithm::Create(config);
  constexpr int kRestoredSteps = 4;
  while (plain->step() < kRestoredSteps) {
    Answer(game, *plain);
    if (::testing::Test::HasFatalFailure()) return;
  }
  while (restored->step() < kRestoredSteps) {
    const AlgorithmState state = restored->ExportState();
    std::unique_ptr<Algorithm> fresh = *Algorithm::Create(config);
    ASSERT_TRUE(fresh->ImportState(state).ok())
        << "phase " << restored->phase().index;
    restored = std::move(fresh);
    Answer(game, *restored);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_LT(
      (ToEigen(*restored->parameters()) - ToEigen(*plain->parameters())).norm(),
      kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    TwoAndThreePlayers, OpponentShapingTest,
    ::testing::Values(Case{{2, 3}, 11, AlgorithmKind::kLola},
                      Case{{2, 3}, 11, AlgorithmKind::kSos},
                      Case{{1, 1}, 5, AlgorithmKind::kSos},
                      Case{{2, 1, 3}, 7, AlgorithmKind::kLola},
                      Case{{2, 1, 3}, 7, AlgorithmKind::kSos}));

TEST(OpponentShaping, RestoreWithoutTheLossGradientsIsDataLoss) {
  const Game game = Game::Random({1, 2}, 3);
  const SessionConfig config = Config(game, AlgorithmKind::kLola);
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  Answer(game, *algorithm);  // now in phase 1
  AlgorithmState state = algorithm->ExportState();
  state.vectors.erase(std::remove_if(state.vectors.begin(), state.vectors.end(),
                                     [](const NamedVector& v) {
                                       return v.name == "lola.loss_gradient.0";
                                     }),
                      state.vectors.end());
  std::unique_ptr<Algorithm> fresh = *Algorithm::Create(config);
  const absl::Status status = fresh->ImportState(state);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("lola.loss_gradient.0"), std::string::npos)
      << status;
}

// Through a Session: a worker answering the cross-gradient tasks (echoing
// Task::loss) plays steps that match the paper's update; an old worker's
// plain gradient in a cross-gradient round is refused with
// FailedPrecondition, naming the task kind, and changes nothing; a wrong
// loss_player is InvalidArgument.
TEST(OpponentShapingSession, CrossGradientTasksAndOldWorkers) {
  const Game game = Game::Random({2, 1}, 9);
  SessionConfig config = Config(game, AlgorithmKind::kLola);
  config.workers_per_round = 1;
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<Session>> created =
      Session::Create("s", config, &clock);
  ASSERT_TRUE(created.ok()) << created.status();
  Session& session = **created;
  testing::Reply joined;
  session.Join(0, "w", joined.Callback());
  ASSERT_TRUE(joined.result.ok()) << joined.result.status();
  Task task = *joined.result;
  ASSERT_EQ(task.kind, Task::Kind::kGradient);
  EXPECT_EQ(task.loss, 0);
  testing::SampleBuilder builder(session.layout());

  // The old worker: its own gradient, no loss echoed.
  Submission old;
  old.round = task.round;
  old.step = task.step;
  old.phase = task.phase;
  old.gradients.push_back(
      builder.Make(game.Xi(ToEigen(*task.params)), task.players));
  testing::Reply refused;
  session.SubmitGradient(task.worker_id, old, refused.Callback());
  ASSERT_TRUE(refused.called);
  EXPECT_EQ(refused.result.status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.result.status().message().find("CROSS_GRADIENT"),
            std::string::npos)
      << refused.result.status();
  EXPECT_EQ(session.Info().phase, 0);
  old.loss_player = "p1";
  testing::Reply wrong;
  session.SubmitGradient(task.worker_id, old, wrong.Callback());
  EXPECT_EQ(wrong.result.status().code(), absl::StatusCode::kInvalidArgument)
      << wrong.result.status();
  EXPECT_EQ(session.Info().phase, 0);

  Eigen::VectorXd x = game.x0;
  const Eigen::MatrixXd j = game.J();
  for (int t = 0; t < 2; ++t) {
    double p;
    const Eigen::VectorXd g =
        game.Direction(x, config.algorithm.lola_alpha, false, 0, 0, &p);
    for (int i = 0; i < game.n(); ++i) {
      x.segment(game.offsets[i], game.dims[i]) -=
          config.players[i].optimizer.learning_rate *
          g.segment(game.offsets[i], game.dims[i]);
    }
    for (int round = 0; round < 3 * game.n(); ++round) {
      Submission s;
      s.round = task.round;
      s.step = task.step;
      s.phase = task.phase;
      testing::Reply reply;
      if (task.kind == Task::Kind::kGradient) {
        s.loss_player = session.layout().players()[task.loss].name;
        s.gradients.push_back(builder.Make(
            game.LossGradient(task.loss, ToEigen(*task.params)), task.players));
        session.SubmitGradient(task.worker_id, s, reply.Callback());
      } else {
        const Eigen::VectorXd w = ToEigen(*task.probes.at(0));
        if (task.vjp) s.vjp.push_back(builder.Make(j.transpose() * w));
        if (task.jvp) s.jvp.push_back(builder.Make(j * w));
        session.SubmitProducts(task.worker_id, s, reply.Callback());
      }
      ASSERT_TRUE(reply.called);
      ASSERT_TRUE(reply.result.ok()) << reply.result.status();
      task = *reply.result;
    }
    EXPECT_EQ(task.step, t + 1);
    EXPECT_LT((ToEigen(*task.params) - x).norm(), kTolerance);
  }
}

TEST(SosP, IsTheCriterionOfThePaper) {
  // dot >= 0 and |xi| >= b: the full shaping term.
  EXPECT_EQ(SosP(0.5, 4.0, 1.0, 0.5, 0.1), 1.0);
  // dot < 0: p1 = min(1, -a |xi_0|^2 / dot) = 0.5 * 1 / 2.
  EXPECT_DOUBLE_EQ(SosP(-2.0, 1.0, 1.0, 0.5, 0.1), 0.25);
  // Near a fixed point |xi| < b: p2 = |xi|^2.
  EXPECT_DOUBLE_EQ(SosP(1.0, 1.0, 0.05, 0.5, 0.1), 0.0025);
}

TEST(OpponentShaping, ValidationSaysWhatToFix) {
  const Game game = Game::Random({1, 1}, 1);
  struct Bad {
    void (*edit)(SessionConfig&);
    const char* says;
  };
  const Bad cases[] = {
      {[](SessionConfig& c) { c.algorithm.lola_alpha = -1; },
       "algorithm.lola_alpha"},
      {[](SessionConfig& c) { c.algorithm.sos_a = 1.0; }, "algorithm.sos_a"},
      {[](SessionConfig& c) { c.algorithm.sos_b = 0.0; }, "algorithm.sos_b"},
      {[](SessionConfig& c) { c.algorithm.estimator = EstimatorKind::kLocal; },
       "leave the estimator unset"},
      {[](SessionConfig& c) { c.players.pop_back(); }, "at least 2 players"},
  };
  for (const Bad& bad : cases) {
    SessionConfig config = Config(game, AlgorithmKind::kSos);
    bad.edit(config);
    const absl::Status status = ValidateConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.says;
    EXPECT_NE(status.message().find(bad.says), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace gameopt
