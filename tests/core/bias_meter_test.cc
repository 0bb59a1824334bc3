// The estimator's bias meter (AlgorithmConfig::bias_meter,
// server/core/bias_meter.h): pooled minus leave-one-out J^T xi on the
// step's samples, checked against the estimators written out here with
// each sample's dense Jacobian, and the step left unchanged bit for bit.
#include "server/core/bias_meter.h"

#include <functional>
#include <map>
#include <random>
#include <utility>

#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::PlayRound;
using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

// Float64 sums of a handful of 7-term products: rounding far below this.
constexpr double kRelative = 1e-10;

// The random quadratic game with per-sample noise: sample k of worker w at
// step t has its own Jacobian J_k = J + 0.4 E and gradient
// xi_k = J_k x + c + 0.4 e (E, e standard Gaussian from (w, t, k)), so J_k
// and xi_k are correlated and the pooled estimate is biased.
class BiasMeterTest : public ::testing::Test {
 protected:
  BiasMeterTest() : game_(QuadraticGame::Random({3, 4}, 5)) {}

  struct Drawn {
    Eigen::MatrixXd jacobian;
    Eigen::VectorXd noise;
  };
  Drawn Draw(int64_t worker, int64_t step, int k) const {
    std::mt19937_64 rng(worker * 1000003 + step * 101 + k);
    std::normal_distribution<double> normal(0.0, 0.4);
    const int d = game_.dimension();
    Drawn drawn{game_.J, Eigen::VectorXd(d)};
    for (int i = 0; i < d * d; ++i) drawn.jacobian.data()[i] += normal(rng);
    for (int i = 0; i < d; ++i) drawn.noise(i) = normal(rng);
    return drawn;
  }

  SessionConfig Config(AlgorithmKind kind, EstimatorKind estimator,
                       bool meter) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = 2;
    config.samples_per_worker = 2;
    config.algorithm.estimator = estimator;
    config.algorithm.bias_meter = meter;
    config.algorithm.gamma = 0.7;
    config.phase_deadline = absl::Seconds(10);
    return config;
  }

  Submission Answer(const Task& task, SampleBuilder& builder) {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      EXPECT_FALSE(task.fused_jvp);  // the meter needs J_k^T xi_k only
      for (int k = 0; k < task.num_samples; ++k) {
        const Drawn drawn = Draw(task.worker_id, task.step, k);
        const Eigen::VectorXd g = drawn.jacobian * x + game_.c + drawn.noise;
        s.gradients.push_back(builder.Make(g, task.players));
        if (task.fused_vjp) {
          s.vjp.push_back(builder.Make(drawn.jacobian.transpose() * g));
        }
        samples_[{task.worker_id, k}] = {drawn.jacobian, g};
      }
      return s;
    }
    for (size_t k = 0; k < task.probes.size(); ++k) {
      const Eigen::VectorXd w = ToEigen(*task.probes[k]);
      const Eigen::MatrixXd& jk =
          samples_.at({task.worker_id, static_cast<int>(k)}).jacobian;
      if (task.vjp) s.vjp.push_back(builder.Make(jk.transpose() * w));
      if (task.jvp) s.jvp.push_back(builder.Make(jk * w));
    }
    return s;
  }

  // Joins two workers (new ones, or rejoins `ids`).
  std::vector<Task> JoinAll(Session& session,
                            std::vector<int64_t> ids = {0, 0}) {
    std::vector<Task> tasks;
    for (int64_t id : ids) {
      Reply reply;
      session.Join(id, "", reply.Callback());
      EXPECT_TRUE(reply.result.ok()) << reply.result.status();
      if (reply.result.ok()) tasks.push_back(*reply.result);
    }
    return tasks;
  }

  // Both workers answer their tasks until `stop` holds; returns the rounds
  // played, or -1 on an error.
  int64_t Run(Session& session, std::vector<Task>& tasks,
              const std::function<bool()>& stop) {
    int64_t played = 0;
    while (tasks.size() == 2 && tasks[0].kind != Task::Kind::kDone && !stop()) {
      SampleBuilder builder(session.layout());
      if (!PlayRound(session, tasks,
                     [&](const Task& task) { return Answer(task, builder); })) {
        return -1;
      }
      ++played;
    }
    return played;
  }

  static std::string Bytes(const Session& session) {
    return testing::ParametersBytes(session);
  }

  // Plays until `steps` steps are done; returns x's bytes ("" on error).
  std::string Play(Session& session, int steps, int64_t* rounds = nullptr) {
    std::vector<Task> tasks = JoinAll(session);
    const int64_t played =
        Run(session, tasks, [&] { return tasks[0].step >= steps; });
    if (rounds != nullptr) *rounds = played;
    return played < 0 ? "" : Bytes(session);
  }

  std::unique_ptr<Session> Make(SessionConfig config) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *std::move(session) : nullptr;
  }

  struct Sample {
    Eigen::MatrixXd jacobian;
    Eigen::VectorXd gradient;
  };
  QuadraticGame game_;
  FakeClock clock_;
  // The last gradient round's samples, by (worker, k).
  std::map<std::pair<int64_t, int>, Sample> samples_;
};

TEST_F(BiasMeterTest, ReadsPooledMinusLeaveOneOutOfTheStepsSamples) {
  for (AlgorithmKind kind : {AlgorithmKind::kConOpt, AlgorithmKind::kSga}) {
    for (EstimatorKind estimator :
         {EstimatorKind::kPooled, EstimatorKind::kUnbiased}) {
      SCOPED_TRACE(
          absl::StrCat(AlgorithmName(kind), " ", EstimatorName(estimator)));
      auto session = Make(Config(kind, estimator, true));
      ASSERT_NE(session, nullptr);
      Play(*session, 3);
      // The estimators on the samples of step 2 (the last one played):
      // P = mean_k J_k^T (S / K), U = mean_k J_k^T (S - xi_k) / (K - 1).
      ASSERT_EQ(samples_.size(), 4u);
      const double k = 4.0;
      Eigen::VectorXd s = Eigen::VectorXd::Zero(game_.dimension());
      for (const auto& [id, sample] : samples_) s += sample.gradient;
      Eigen::VectorXd p = Eigen::VectorXd::Zero(game_.dimension());
      Eigen::VectorXd u = p;
      for (const auto& [id, sample] : samples_) {
        p += sample.jacobian.transpose() * (s / k) / k;
        u +=
            sample.jacobian.transpose() * ((s - sample.gradient) / (k - 1)) / k;
      }
      const StepDiagnostics d = session->Info().stats.diagnostics;
      ASSERT_TRUE(d.has_bias_meter);
      const double bias = (p - u).norm();
      EXPECT_NEAR(d.bias_norm, bias, kRelative * p.norm());
      EXPECT_NEAR(d.pooled_jt_xi_norm, p.norm(), kRelative * p.norm());
      EXPECT_NEAR(d.relative_bias, bias / p.norm(), kRelative);
      // Correlated noise: a bias well above rounding.
      EXPECT_GT(d.relative_bias, 1e-3);
      // The step's own J^T xi is the configured estimator's.
      const Eigen::VectorXd& used = estimator == EstimatorKind::kPooled ? p : u;
      EXPECT_NEAR(d.jt_xi_norm, used.norm(), kRelative * used.norm());
    }
  }
}

TEST_F(BiasMeterTest, TheStepIsBitIdenticalWithTheMeterOn) {
  for (AlgorithmKind kind : {AlgorithmKind::kConOpt, AlgorithmKind::kSga}) {
    for (EstimatorKind estimator :
         {EstimatorKind::kPooled, EstimatorKind::kUnbiased}) {
      SCOPED_TRACE(
          absl::StrCat(AlgorithmName(kind), " ", EstimatorName(estimator)));
      auto off = Make(Config(kind, estimator, false));
      auto on = Make(Config(kind, estimator, true));
      int64_t rounds_off = 0, rounds_on = 0;
      const std::string x_off = Play(*off, 6, &rounds_off);
      const std::string x_on = Play(*on, 6, &rounds_on);
      ASSERT_FALSE(x_off.empty());
      EXPECT_TRUE(x_off == x_on);
      EXPECT_EQ(rounds_off, 12);  // no extra round: the product is fused
      EXPECT_EQ(rounds_on, 12);
      EXPECT_FALSE(off->Info().stats.diagnostics.has_bias_meter);
      EXPECT_TRUE(on->Info().stats.diagnostics.has_bias_meter);
    }
  }
}

TEST_F(BiasMeterTest, OneSampleReportsNothing) {
  SessionConfig config =
      Config(AlgorithmKind::kConOpt, EstimatorKind::kPooled, true);
  config.workers_per_round = 1;
  config.samples_per_worker = 1;
  auto session = Make(config);
  ASSERT_NE(session, nullptr);
  Reply reply;
  session->Join(0, "", reply.Callback());
  ASSERT_TRUE(reply.result.ok());
  Task task = *reply.result;
  for (int round = 0; round < 4; ++round) {
    SampleBuilder builder(session->layout());
    Reply next;
    if (task.kind == Task::Kind::kGradient) {
      EXPECT_TRUE(task.fused_vjp);
      session->SubmitGradient(task.worker_id, Answer(task, builder),
                              next.Callback());
    } else {
      session->SubmitProducts(task.worker_id, Answer(task, builder),
                              next.Callback());
    }
    ASSERT_TRUE(next.result.ok()) << next.result.status();
    task = *next.result;
  }
  const SessionInfo info = session->Info();
  EXPECT_EQ(info.step, 2);
  EXPECT_TRUE(info.stats.diagnostics.available);
  EXPECT_FALSE(info.stats.diagnostics.has_bias_meter);
}

TEST_F(BiasMeterTest, RefusedWhereThereIsNoEstimateToMeter) {
  struct Case {
    AlgorithmKind kind;
    EstimatorKind estimator;
    const char* why;
  };
  for (const Case& c :
       {Case{AlgorithmKind::kConOpt, EstimatorKind::kLocal, "local"},
        Case{AlgorithmKind::kSga, EstimatorKind::kLocal, "local"},
        Case{AlgorithmKind::kSimGd, EstimatorKind::kPooled, "products"},
        Case{AlgorithmKind::kExtragradient, EstimatorKind::kPooled,
             "products"}}) {
    SessionConfig config = Config(c.kind, c.estimator, true);
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", config, &clock_);
    ASSERT_FALSE(session.ok()) << AlgorithmName(c.kind);
    EXPECT_EQ(session.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(session.status().message().find("algorithm.bias_meter"),
              std::string::npos)
        << session.status();
    EXPECT_NE(session.status().message().find(c.why), std::string::npos)
        << session.status();
  }
}

TEST_F(BiasMeterTest, ARestoreInsideTheStepSkipsOneReadingAndNothingElse) {
  // Checkpoints hold no new state: the option is in the config, and the
  // samples' own products of an open step are not kept (as the other
  // submissions of the open round), so the step restored in its products
  // phase has no reading; the next one has, and the run is unchanged.
  const SessionConfig config =
      Config(AlgorithmKind::kConOpt, EstimatorKind::kUnbiased, true);
  auto whole = Make(config);
  const std::string expected = Play(*whole, 4);
  ASSERT_FALSE(expected.empty());

  auto first = Make(config);
  std::vector<Task> tasks = JoinAll(*first);
  Run(*first, tasks, [&] {
    return tasks[0].step == 2 && tasks[0].kind == Task::Kind::kProducts;
  });
  EXPECT_TRUE(first->Info().stats.diagnostics.has_bias_meter);  // step 1
  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(first->Snapshot(), &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_TRUE((*restored)->config().algorithm.bias_meter);
  tasks = JoinAll(**restored, {1, 2});
  ASSERT_EQ(tasks.size(), 2u);
  ASSERT_EQ(tasks[0].kind, Task::Kind::kProducts);
  Run(**restored, tasks, [&] { return tasks[0].step == 3; });
  EXPECT_FALSE((*restored)->Info().stats.diagnostics.has_bias_meter);
  Run(**restored, tasks, [&] { return tasks[0].step == 4; });
  EXPECT_TRUE((*restored)->Info().stats.diagnostics.has_bias_meter);
  EXPECT_TRUE(Bytes(**restored) == expected);
}

TEST(MeasureBias, FormulasOnTwoScalarSamples) {
  // d = 1, K = 2: J_1 = 2, J_2 = 3, xi_1 = 1, xi_2 = 5, S = 6.
  // P = (2 * 3 + 3 * 3) / 2 = 7.5; U = (2 * 5 + 3 * 1) / 2 = 6.5.
  auto vec = [](double v) {
    FlatVector f(DType::kFloat64, 1);
    f.as<double>()(0) = v;
    return f;
  };
  const FlatVector pooled_a1 = vec(2 * 3.0), pooled_a2 = vec(3 * 3.0);
  const FlatVector unbiased_a1 = vec(2 * 5.0), unbiased_a2 = vec(3 * 1.0);
  const FlatVector own1 = vec(2 * 1.0), own2 = vec(3 * 5.0);
  const std::vector<const FlatVector*> own = {&own1, &own2};
  for (const auto& [estimator, answers] :
       {std::make_pair(EstimatorKind::kPooled,
                       std::vector<const FlatVector*>{&pooled_a1, &pooled_a2}),
        std::make_pair(
            EstimatorKind::kUnbiased,
            std::vector<const FlatVector*>{&unbiased_a1, &unbiased_a2})}) {
    const std::optional<BiasMeterReading> r =
        MeasureBias(estimator, answers, own);
    ASSERT_TRUE(r.has_value());
    EXPECT_DOUBLE_EQ(r->pooled_norm, 7.5);
    EXPECT_DOUBLE_EQ(r->bias_norm, 1.0);
    EXPECT_DOUBLE_EQ(r->relative_bias, 1.0 / 7.5);
  }
  EXPECT_FALSE(MeasureBias(EstimatorKind::kLocal, {&own1, &own2}, own));
  EXPECT_FALSE(MeasureBias(EstimatorKind::kPooled, {&pooled_a1}, {&own1}));
  EXPECT_FALSE(
      MeasureBias(EstimatorKind::kPooled, {&pooled_a1, &pooled_a2}, {&own1}));
}

}  // namespace
}  // namespace gameopt
