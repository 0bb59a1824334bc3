// Learning-rate schedules (server/core/lr_schedule.h): the closed forms
// against hand-computed values, validation, and sessions that follow them
// (also across a checkpoint restore).
#include "server/core/lr_schedule.h"

#include <cmath>

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

// Closed forms evaluated in double by hand: a few ulps apart at most.
constexpr double kRelTol = 1e-15;

void ExpectRates(double lr0, const LrSchedule& s,
                 const std::vector<double>& expected) {
  for (size_t t = 0; t < expected.size(); ++t) {
    EXPECT_NEAR(LearningRateAt(lr0, s, static_cast<int64_t>(t)), expected[t],
                kRelTol * std::abs(expected[t]))
        << "t = " << t;
  }
}

TEST(LearningRateAt, StepDecaysEveryStepSizeSteps) {
  LrSchedule s;
  s.kind = LrScheduleKind::kStep;
  s.gamma = 0.5;
  s.step_size = 3;
  ExpectRates(0.8, s, {0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2});
}

TEST(LearningRateAt, MultiStepDecaysAtEachMilestone) {
  LrSchedule s;
  s.kind = LrScheduleKind::kMultiStep;
  s.gamma = 0.1;
  s.milestones = {2, 5};
  ExpectRates(1.0, s, {1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01});
}

TEST(LearningRateAt, ExponentialDecaysEveryStep) {
  LrSchedule s;
  s.kind = LrScheduleKind::kExponential;
  s.gamma = 0.9;
  ExpectRates(2.0, s, {2.0, 1.8, 1.62, 1.458});
}

TEST(LearningRateAt, CosineFollowsTheHalfPeriodToEtaMin) {
  LrSchedule s;
  s.kind = LrScheduleKind::kCosine;
  s.t_max = 4;
  s.eta_min = 0.1;
  // 0.1 + 0.9 (1 + cos(pi t / 4)) / 2
  ExpectRates(1.0, s,
              {1.0, 0.1 + 0.45 * (1 + std::sqrt(0.5)), 0.55,
               0.1 + 0.45 * (1 - std::sqrt(0.5)), 0.1});
}

TEST(LearningRateAt, LinearRampsFromStartToEndFactor) {
  LrSchedule s;
  s.kind = LrScheduleKind::kLinear;
  s.start_factor = 0.25;
  s.end_factor = 1.0;
  s.total_steps = 3;
  ExpectRates(0.4, s, {0.1, 0.2, 0.3, 0.4, 0.4, 0.4});
}

TEST(LearningRateAt, ConstantIsTheBaseRateExactly) {
  LrSchedule s;
  EXPECT_EQ(LearningRateAt(0.0123, s, 0), 0.0123);
  EXPECT_EQ(LearningRateAt(0.0123, s, 1000000), 0.0123);
}

TEST(ValidateLrSchedule, NamesTheFieldOutOfRange) {
  struct Case {
    LrSchedule schedule;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](LrScheduleKind kind, auto change, std::string field) {
    LrSchedule s;
    s.kind = kind;
    if (kind == LrScheduleKind::kMultiStep) s.milestones = {1};
    change(s);
    cases.push_back({s, field});
  };
  add(
      LrScheduleKind::kStep, [](LrSchedule& s) { s.gamma = 0; }, "x.gamma");
  add(
      LrScheduleKind::kExponential, [](LrSchedule& s) { s.gamma = NAN; },
      "x.gamma");
  add(
      LrScheduleKind::kStep, [](LrSchedule& s) { s.step_size = 0; },
      "x.step_size");
  add(
      LrScheduleKind::kMultiStep,
      [](LrSchedule& s) {
        s.milestones = {3, 3};
      },
      "x.milestones[1]");
  add(
      LrScheduleKind::kMultiStep, [](LrSchedule& s) { s.milestones = {0}; },
      "x.milestones[0]");
  add(
      LrScheduleKind::kMultiStep, [](LrSchedule& s) { s.milestones = {}; },
      "x.milestones");
  add(
      LrScheduleKind::kCosine, [](LrSchedule& s) { s.t_max = 0; }, "x.t_max");
  add(
      LrScheduleKind::kCosine, [](LrSchedule& s) { s.eta_min = -1; },
      "x.eta_min");
  add(
      LrScheduleKind::kLinear, [](LrSchedule& s) { s.start_factor = 0; },
      "x.start_factor");
  add(
      LrScheduleKind::kLinear, [](LrSchedule& s) { s.end_factor = 1.5; },
      "x.end_factor");
  add(
      LrScheduleKind::kLinear, [](LrSchedule& s) { s.total_steps = 0; },
      "x.total_steps");
  for (const Case& c : cases) {
    absl::Status status = ValidateLrSchedule(c.schedule, "x");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message().rfind(c.field, 0), 0u) << status;
  }
}

TEST(ValidateConfig, NamesThePlayersScheduleField) {
  const QuadraticGame game = QuadraticGame::Random({1, 1}, 1);
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kSimGd);
  config.players[1].optimizer.schedule.kind = LrScheduleKind::kStep;
  config.players[1].optimizer.schedule.step_size = 0;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("players[1].optimizer.schedule.step_size"),
            std::string::npos)
      << status;
}

class ScheduledSessionTest : public ::testing::Test {
 protected:
  ScheduledSessionTest() : game_(QuadraticGame::Random({2, 3}, 5)) {}

  SessionConfig Config(AlgorithmKind kind) {
    SessionConfig config = QuadraticConfig(game_, kind, 0.1);
    for (PlayerConfig& p : config.players) {
      p.optimizer.schedule.kind = LrScheduleKind::kStep;
      p.optimizer.schedule.gamma = 0.5;
      p.optimizer.schedule.step_size = 2;
    }
    config.players[1].optimizer.schedule.kind = LrScheduleKind::kExponential;
    config.players[1].optimizer.schedule.gamma = 0.8;
    return config;
  }

  // Exact gradients from one worker until `steps` steps are complete.
  void Play(Session& session, Task& task, int steps) {
    while (task.kind != Task::Kind::kDone && task.step < steps) {
      SampleBuilder builder(session.layout());
      Submission s;
      s.round = task.round;
      s.step = task.step;
      s.phase = task.phase;
      s.gradients.push_back(
          builder.Make(game_.Xi(ToEigen(*task.params)), task.players));
      Reply reply;
      session.SubmitGradient(task.worker_id, s, reply.Callback());
      ASSERT_TRUE(reply.result.ok()) << reply.result.status();
      task = *reply.result;
    }
  }

  std::unique_ptr<Session> Make(const SessionConfig& config, Task* task) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", config, &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    Reply reply;
    (*session)->Join(0, "", reply.Callback());
    *task = *reply.result;
    return *std::move(session);
  }

  // lr of player p at step t under Config().
  double Rate(int p, int64_t t) {
    return p == 0 ? 0.1 * std::pow(0.5, static_cast<double>(t / 2))
                  : 0.1 * std::pow(0.8, static_cast<double>(t));
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_F(ScheduledSessionTest, SgdFollowsEachPlayersSchedule) {
  Task task;
  auto session = Make(Config(AlgorithmKind::kSimGd), &task);
  Play(*session, task, 5);
  Eigen::VectorXd x = game_.x0;
  for (int64_t t = 0; t < 5; ++t) {
    const Eigen::VectorXd xi = game_.Xi(x);
    x.head(2) -= Rate(0, t) * xi.head(2);
    x.tail(3) -= Rate(1, t) * xi.tail(3);
  }
  const Eigen::VectorXd got = ToEigen(*session->Parameters().values);
  EXPECT_LT((got - x).norm(), 1e-13 * x.norm());
  const std::vector<double> rates = session->Info().learning_rates;
  ASSERT_EQ(rates.size(), 2u);
  EXPECT_DOUBLE_EQ(rates[0], Rate(0, 5));
  EXPECT_DOUBLE_EQ(rates[1], Rate(1, 5));
}

TEST_F(ScheduledSessionTest, ExtragradientsHalfStepsShareTheStepsRate) {
  Task task;
  auto session = Make(Config(AlgorithmKind::kExtragradient), &task);
  Play(*session, task, 4);
  Eigen::VectorXd x = game_.x0;
  for (int64_t t = 0; t < 4; ++t) {
    Eigen::VectorXd xi = game_.Xi(x);
    Eigen::VectorXd y = x;
    y.head(2) -= Rate(0, t) * xi.head(2);
    y.tail(3) -= Rate(1, t) * xi.tail(3);
    xi = game_.Xi(y);
    x.head(2) -= Rate(0, t) * xi.head(2);
    x.tail(3) -= Rate(1, t) * xi.tail(3);
  }
  const Eigen::VectorXd got = ToEigen(*session->Parameters().values);
  EXPECT_LT((got - x).norm(), 1e-13 * x.norm());
}

TEST_F(ScheduledSessionTest, ARestoredSessionContinuesTheSchedule) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam}) {
    SessionConfig config = Config(AlgorithmKind::kSimGd);
    for (PlayerConfig& p : config.players) p.optimizer.kind = kind;
    Task task;
    auto whole = Make(config, &task);
    Play(*whole, task, 7);
    Task first_task;
    auto first = Make(config, &first_task);
    Play(*first, first_task, 3);
    absl::StatusOr<std::unique_ptr<Session>> restored =
        Session::Restore(first->Snapshot(), &clock_);
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ((*restored)->Info().learning_rates[1], Rate(1, 3));
    Reply reply;
    (*restored)->Join(first_task.worker_id, "", reply.Callback());
    ASSERT_TRUE(reply.result.ok()) << reply.result.status();
    Task resumed = *reply.result;
    Play(**restored, resumed, 7);
    const auto a = whole->Parameters().values;
    const auto b = (*restored)->Parameters().values;
    EXPECT_TRUE(std::string(static_cast<const char*>(a->data()), a->bytes()) ==
                std::string(static_cast<const char*>(b->data()), b->bytes()));
  }
}

}  // namespace
}  // namespace gameopt
