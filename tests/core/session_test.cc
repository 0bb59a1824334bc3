// The session state machine and round barrier, driven directly (no network)
// with a fake clock.
#include "server/core/session.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

constexpr absl::Duration kDeadline = absl::Seconds(10);

// A session over a 2-player quadratic game with helpers that compute each
// worker's answer: the exact gradient plus noise fixed by (worker, round),
// so different workers send different samples.
class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : game_(QuadraticGame::Random({2, 3}, 7)) {}

  std::unique_ptr<Session> Make(SessionConfig config) {
    config.phase_deadline = kDeadline;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s1", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return *std::move(session);
  }

  SessionConfig Config(AlgorithmKind kind, int workers, int quorum = 0) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = workers;
    config.quorum = quorum;
    return config;
  }

  Task Join(Session& session, int64_t id = 0) {
    Reply reply;
    session.Join(id, "", reply.Callback());
    EXPECT_TRUE(reply.called);
    EXPECT_TRUE(reply.result.ok()) << reply.result.status();
    return reply.result.ok() ? *reply.result : Task{};
  }

  Eigen::VectorXd Noise(int64_t worker, int64_t round, int sample = 0) {
    return testing::SeedNoise(worker * 1000003 + round * 101 + sample,
                              game_.dimension());
  }

  // The worker's honest answer to `task`.
  Submission Answer(Session& session, const Task& task,
                    SampleBuilder& builder) {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      for (int k = 0; k < task.num_samples; ++k) {
        s.gradients.push_back(builder.Make(
            game_.Xi(x) + Noise(task.worker_id, task.step, k), task.players));
      }
    } else {
      for (const auto& probe : task.probes) {
        const Eigen::VectorXd w = ToEigen(*probe);
        if (task.vjp) s.vjp.push_back(builder.Make(game_.J.transpose() * w));
        if (task.jvp) s.jvp.push_back(builder.Make(game_.J * w));
      }
    }
    return s;
  }

  void Submit(Session& session, const Task& task, const Submission& s,
              Reply& reply) {
    if (task.kind == Task::Kind::kGradient) {
      session.SubmitGradient(task.worker_id, s, reply.Callback());
    } else {
      session.SubmitProducts(task.worker_id, s, reply.Callback());
    }
  }

  // Plays `steps` steps with the session's K workers; each round the
  // workers submit in the order `order(round)` gives.
  std::string Play(Session& session, int steps,
                   const std::function<std::vector<int>(int64_t)>& order) {
    const int k = session.config().workers_per_round;
    std::vector<Task> tasks;
    for (int w = 0; w < k; ++w) tasks.push_back(Join(session));
    while (tasks[0].kind != Task::Kind::kDone && tasks[0].step < steps) {
      SampleBuilder builder(session.layout());
      std::vector<Reply> replies(k);
      const int64_t round = tasks[0].round;
      for (int w : order(round)) {
        Submit(session, tasks[w], Answer(session, tasks[w], builder),
               replies[w]);
      }
      for (int w = 0; w < k; ++w) {
        EXPECT_TRUE(replies[w].called);
        EXPECT_TRUE(replies[w].result.ok()) << replies[w].result.status();
        tasks[w] = *replies[w].result;
      }
    }
    const ParametersSnapshot params = session.Parameters();
    return std::string(static_cast<const char*>(params.values->data()),
                       params.values->bytes());
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_F(SessionTest, AggregationIsBitwiseIndependentOfArrivalOrder) {
  for (AlgorithmKind kind : {AlgorithmKind::kConOpt, AlgorithmKind::kSga,
                             AlgorithmKind::kExtragradient}) {
    SCOPED_TRACE(AlgorithmName(kind));
    SessionConfig config = Config(kind, 4);
    config.algorithm.estimator = EstimatorKind::kUnbiased;
    config.samples_per_worker = 2;
    auto ascending = Make(config);
    auto shuffled = Make(config);
    const std::string a = Play(*ascending, 8, [](int64_t) {
      return std::vector<int>{0, 1, 2, 3};
    });
    const std::string b = Play(*shuffled, 8, [](int64_t round) {
      std::vector<int> order{0, 1, 2, 3};
      std::mt19937 rng(static_cast<unsigned>(round));
      std::shuffle(order.begin(), order.end(), rng);
      return order;
    });
    EXPECT_EQ(ascending->Info().step, 8);
    EXPECT_TRUE(a == b) << "parameters differ in their bits";
  }
}

TEST_F(SessionTest, DeadlineProceedsWithQuorumAndDropsTheMissingWorker) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 3, /*quorum=*/2));
  const Task t1 = Join(*session), t2 = Join(*session), t3 = Join(*session);
  SampleBuilder builder(session->layout());
  Reply r1, r2;
  Submit(*session, t1, Answer(*session, t1, builder), r1);
  Submit(*session, t2, Answer(*session, t2, builder), r2);
  EXPECT_FALSE(r1.called);  // waiting for worker 3
  session->CheckDeadline();
  EXPECT_FALSE(r1.called);  // the deadline has not passed
  clock_.Advance(kDeadline + absl::Seconds(1));
  session->CheckDeadline();
  ASSERT_TRUE(r1.called && r2.called);
  ASSERT_TRUE(r1.result.ok()) << r1.result.status();
  EXPECT_EQ(r1.result->step, 1);
  const SessionInfo info = session->Info();
  EXPECT_EQ(info.workers[2].state, WorkerState::kDropped);
  EXPECT_EQ(info.workers[2].missed_deadlines, 1);

  // The straggler's late answer is refused with the current step; a rejoin
  // hands it the current task.
  Reply late;
  Submit(*session, t3, Answer(*session, t3, builder), late);
  ASSERT_TRUE(late.called);
  EXPECT_EQ(late.result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(late.result.status().message().find("step 1"),
            absl::string_view::npos)
      << late.result.status();
  const Task rejoined = Join(*session, t3.worker_id);
  EXPECT_EQ(rejoined.round, r1.result->round);
  EXPECT_EQ(session->Info().workers[2].state, WorkerState::kActive);
}

TEST_F(SessionTest, DeadlineWithoutQuorumAbortsNamingTheMissingWorkers) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 3));
  const Task t1 = Join(*session), t2 = Join(*session), t3 = Join(*session);
  SampleBuilder builder(session->layout());
  const Submission s1 = Answer(*session, t1, builder);
  Reply r1;
  Submit(*session, t1, s1, r1);
  clock_.Advance(kDeadline + absl::Seconds(1));
  session->CheckDeadline();
  ASSERT_TRUE(r1.called);
  EXPECT_EQ(r1.result.status().code(), absl::StatusCode::kAborted);
  const std::string message(r1.result.status().message());
  EXPECT_NE(message.find("missing: 2 (worker-2), 3 (worker-3)"),
            std::string::npos)
      << message;
  // The round stays open with its submission: the retry waits again, and
  // the round closes when the others come.
  Reply retry, r2, r3;
  Submit(*session, t1, s1, retry);
  EXPECT_FALSE(retry.called);
  Submit(*session, t2, Answer(*session, t2, builder), r2);
  Submit(*session, t3, Answer(*session, t3, builder), r3);
  ASSERT_TRUE(retry.called && r2.called && r3.called);
  EXPECT_EQ(retry.result->step, 1);
}

TEST_F(SessionTest, RetriedSubmissionIsAnsweredAgainButAppliedOnce) {
  auto reference = Make(Config(AlgorithmKind::kSimGd, 2));
  auto session = Make(Config(AlgorithmKind::kSimGd, 2));
  const std::string expected = Play(*reference, 1, [](int64_t) {
    return std::vector<int>{0, 1};
  });

  const Task t1 = Join(*session), t2 = Join(*session);
  SampleBuilder builder(session->layout());
  const Submission s1 = Answer(*session, t1, builder);
  Submission different = s1;  // a retry's payload is not looked at again
  different.gradients = {builder.Make(Eigen::VectorXd::Ones(5), t1.players)};
  Reply first, second, other;
  Submit(*session, t1, s1, first);
  Submit(*session, t1, different, second);
  Submit(*session, t2, Answer(*session, t2, builder), other);
  ASSERT_TRUE(first.called && second.called && other.called);
  EXPECT_EQ(first.result->round, second.result->round);
  const ParametersSnapshot params = session->Parameters();
  EXPECT_EQ(std::string(static_cast<const char*>(params.values->data()),
                        params.values->bytes()),
            expected);
  // A retry after the round closed (the reply was lost) gets the current
  // task at once.
  Reply lost;
  Submit(*session, t1, s1, lost);
  ASSERT_TRUE(lost.called);
  ASSERT_TRUE(lost.result.ok());
  EXPECT_EQ(lost.result->round, first.result->round);
  EXPECT_EQ(session->Info().step, 1);
}

TEST_F(SessionTest, InvalidSubmissionsFailWithTheirCodeAndLeaveTheRound) {
  auto reference = Make(Config(AlgorithmKind::kSimGd, 2));
  auto session = Make(Config(AlgorithmKind::kSimGd, 2));
  const std::string expected = Play(*reference, 1, [](int64_t) {
    return std::vector<int>{0, 1};
  });
  const Task t1 = Join(*session), t2 = Join(*session);
  SampleBuilder builder(session->layout());
  const Submission good = Answer(*session, t1, builder);

  auto expect_error = [&](const Submission& s, absl::StatusCode code,
                          const std::string& needle, int64_t worker = 1,
                          bool products = false) {
    Reply reply;
    if (products) {
      session->SubmitProducts(worker, s, reply.Callback());
    } else {
      session->SubmitGradient(worker, s, reply.Callback());
    }
    ASSERT_TRUE(reply.called);
    EXPECT_EQ(reply.result.status().code(), code) << reply.result.status();
    EXPECT_NE(reply.result.status().message().find(needle), std::string::npos)
        << reply.result.status();
  };

  Eigen::VectorXd nan = game_.Xi(game_.x0);
  nan(3) = std::nan("");  // player p1, tensor x, index 1
  Submission bad = good;
  bad.gradients = {builder.Make(nan)};
  expect_error(bad, absl::StatusCode::kInvalidArgument,
               "gradients[0] player 'p1' tensor 'x': value at index 1 is not "
               "finite");

  bad = good;
  const int64_t wrong_shape[] = {4};
  bad.gradients[0][1].tensors[0].shape = wrong_shape;
  expect_error(bad, absl::StatusCode::kInvalidArgument,
               "shape [4] does not match the session's [3]");

  bad = good;
  bad.gradients[0][1].tensors.clear();
  expect_error(bad, absl::StatusCode::kInvalidArgument,
               "player 'p1': tensor 'x' is missing");

  bad = good;
  bad.gradients[0][1].player = "p7";
  expect_error(bad, absl::StatusCode::kInvalidArgument,
               "player 'p7' is not a player of this session");

  bad = good;
  bad.gradients[0][1].tensors[0].bytes.remove_suffix(8);
  expect_error(bad, absl::StatusCode::kInvalidArgument, "16 bytes of data");

  bad = good;
  bad.gradients.push_back(good.gradients[0]);
  expect_error(bad, absl::StatusCode::kInvalidArgument,
               "the task asks for 1 sample(s), got 2");

  expect_error(good, absl::StatusCode::kFailedPrecondition,
               "call SubmitGradient", 1, /*products=*/true);
  expect_error(good, absl::StatusCode::kNotFound, "worker 9", 9);

  bad = good;
  bad.step = 3;
  expect_error(bad, absl::StatusCode::kInvalidArgument, "do not match round");

  bad = good;
  bad.round = 5;
  expect_error(bad, absl::StatusCode::kFailedPrecondition, "not open yet");

  // None of it touched the round: a clean round gives the reference bits.
  EXPECT_EQ(session->Info().submitted, 0);
  Reply r1, r2;
  Submit(*session, t1, good, r1);
  Submit(*session, t2, Answer(*session, t2, builder), r2);
  ASSERT_TRUE(r1.called && r2.called);
  const ParametersSnapshot params = session->Parameters();
  EXPECT_EQ(std::string(static_cast<const char*>(params.values->data()),
                        params.values->bytes()),
            expected);
}

TEST_F(SessionTest, DropPolicyLeavesTheBadSampleOutOfTheRound) {
  SessionConfig config = Config(AlgorithmKind::kSimGd, 2);
  config.invalid_sample_policy = InvalidSamplePolicy::kDrop;
  auto session = Make(config);
  const Task t1 = Join(*session), t2 = Join(*session);
  SampleBuilder builder(session->layout());
  Eigen::VectorXd nan = game_.Xi(game_.x0);
  nan(0) = std::numeric_limits<double>::infinity();
  Submission bad = Answer(*session, t1, builder);
  bad.gradients = {builder.Make(nan)};
  const Submission good = Answer(*session, t2, builder);
  Reply r1, r2;
  Submit(*session, t1, bad, r1);
  Submit(*session, t2, good, r2);
  ASSERT_TRUE(r1.called && r2.called);
  ASSERT_TRUE(r1.result.ok());
  EXPECT_EQ(session->Info().stats.gradient_samples, 1);
  // x1 = x0 - lr * (worker 2's sample alone).
  const Eigen::VectorXd expected =
      game_.x0 - 0.05 * (game_.Xi(game_.x0) + Noise(2, 0));
  EXPECT_LT((ToEigen(*session->Parameters().values) - expected).norm(), 1e-15);
}

// Two finite float32 samples of 3e38 sum past float32's range. The step is
// refused with nothing written (parameters and step count stay), the round
// repeats, and honest samples afterwards move the session as usual.
TEST_F(SessionTest, OverflowingMeanRestartsTheStepAndKeepsParametersFinite) {
  for (AlgorithmKind kind :
       {AlgorithmKind::kSimGd, AlgorithmKind::kAltGd,
        AlgorithmKind::kOptimistic, AlgorithmKind::kExtragradient}) {
    SCOPED_TRACE(AlgorithmName(kind));
    SessionConfig config = Config(kind, 2);
    config.dtype = DType::kFloat32;
    auto session = Make(config);
    const auto params = [&] {
      const ParametersSnapshot p = session->Parameters();
      return std::string(static_cast<const char*>(p.values->data()),
                         p.values->bytes());
    };
    Task t1 = Join(*session), t2 = Join(*session);
    const std::string before = params();
    SampleBuilder builder(session->layout());
    const Eigen::VectorXd huge =
        Eigen::VectorXd::Constant(game_.dimension(), 3e38);
    Submission s1 = Answer(*session, t1, builder);
    Submission s2 = Answer(*session, t2, builder);
    s1.gradients = {builder.Make(huge, t1.players)};
    s2.gradients = {builder.Make(huge, t2.players)};
    Reply r1, r2;
    Submit(*session, t1, s1, r1);
    Submit(*session, t2, s2, r2);
    ASSERT_TRUE(r1.called && r2.called);
    ASSERT_TRUE(r1.result.ok()) << r1.result.status();
    EXPECT_EQ(r1.result->step, 0);
    EXPECT_EQ(r1.result->phase, 0);
    EXPECT_GT(r1.result->round, t1.round);
    EXPECT_EQ(params(), before);
    // Honest rounds go on from the same point and complete the step.
    t1 = *r1.result;
    t2 = *r2.result;
    while (t1.step == 0) {
      Reply h1, h2;
      Submit(*session, t1, Answer(*session, t1, builder), h1);
      Submit(*session, t2, Answer(*session, t2, builder), h2);
      ASSERT_TRUE(h1.called && h1.result.ok()) << h1.result.status();
      ASSERT_TRUE(h2.called && h2.result.ok()) << h2.result.status();
      t1 = *h1.result;
      t2 = *h2.result;
    }
    EXPECT_NE(params(), before);
    EXPECT_TRUE(ToEigen(*session->Parameters().values).allFinite());
  }
}

TEST_F(SessionTest, InvalidConfigsAreRejectedNamingTheField) {
  struct BadConfig {
    std::function<void(SessionConfig&)> edit;
    std::string needle;
  };
  const std::vector<BadConfig> cases = {
      {[](SessionConfig& c) { c.players.pop_back(); }, "at least 2 players"},
      {[](SessionConfig& c) { c.players[1].name = "p0"; },
       "players[1].name 'p0' is used by another player"},
      {[](SessionConfig& c) { c.players[0].name = "a b"; }, "players[0].name"},
      {[](SessionConfig& c) { c.players[0].tensors[0].shape = {0}; },
       "players[0].tensors[0].shape [0]"},
      {[](SessionConfig& c) { c.players[1].optimizer.learning_rate = 0; },
       "players[1].optimizer.learning_rate"},
      {[](SessionConfig& c) {
         c.players[0].optimizer.kind = OptimizerKind::kMomentum;
         c.players[0].optimizer.momentum = 1.0;
       },
       "players[0].optimizer.momentum"},
      {[](SessionConfig& c) { c.quorum = 3; }, "quorum"},
      {[](SessionConfig& c) { c.workers_per_round = 0; }, "workers_per_round"},
      {[](SessionConfig& c) {
         c.algorithm.kind = AlgorithmKind::kConOpt;
         c.algorithm.estimator = EstimatorKind::kUnbiased;
         c.workers_per_round = 1;
       },
       "set samples_per_worker >= 2"},
      {[](SessionConfig& c) { c.algorithm.gamma = -1; }, "algorithm.gamma"},
      {[](SessionConfig& c) {
         c.algorithm.altgd_order = {{"nobody", 1}};
       },
       "algorithm.altgd_order[0].player 'nobody'"},
      {[](SessionConfig& c) {
         c.algorithm.lookahead_k = 2;
         c.algorithm.lookahead_alpha = 1.5;
       },
       "algorithm.lookahead_alpha"},
      {[](SessionConfig& c) { c.players[0].tensors[0].initial_values = "abc"; },
       "initial_values has 3 bytes"},
      {[](SessionConfig& c) {
         double v[2] = {1.0, std::nan("")};
         c.players[0].tensors[0].initial_values = testing::Bytes(v, 2);
       },
       "not finite at index 1"},
      {[](SessionConfig& c) { c.phase_deadline = absl::ZeroDuration(); },
       "phase_deadline"},
  };
  for (const BadConfig& bad : cases) {
    SessionConfig config = Config(AlgorithmKind::kSimGd, 2);
    bad.edit(config);
    const absl::Status status = Session::Create("s", config, &clock_).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.needle;
    EXPECT_NE(status.message().find(bad.needle), std::string::npos) << status;
  }
}

TEST_F(SessionTest, AFullSessionRefusesAnotherWorker) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 2));
  Join(*session);
  Join(*session);
  Reply third;
  session->Join(0, "late", third.Callback());
  ASSERT_TRUE(third.called);
  EXPECT_EQ(third.result.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(SessionTest, MaxStepsEndsWithDone) {
  SessionConfig config = Config(AlgorithmKind::kConOpt, 1);
  config.max_steps = 3;
  auto session = Make(config);
  Play(*session, 100, [](int64_t) { return std::vector<int>{0}; });
  EXPECT_TRUE(session->Info().done);
  EXPECT_EQ(session->Info().step, 3);
  EXPECT_EQ(Join(*session).kind, Task::Kind::kDone);
}

TEST_F(SessionTest, OneWorkerWithTwoMicrobatchesFeedsTheUnbiasedEstimator) {
  SessionConfig config = Config(AlgorithmKind::kConOpt, 1);
  config.algorithm.estimator = EstimatorKind::kUnbiased;
  config.samples_per_worker = 2;
  auto session = Make(config);
  Play(*session, 3, [](int64_t) { return std::vector<int>{0}; });
  EXPECT_EQ(session->Info().step, 3);
  EXPECT_EQ(session->Info().stats.gradient_samples, 2);
  EXPECT_EQ(session->Info().stats.product_samples, 2);
}

TEST_F(SessionTest, LeavingWorkerDoesNotStallTheRound) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 2, /*quorum=*/1));
  const Task t1 = Join(*session), t2 = Join(*session);
  ASSERT_TRUE(session->Leave(t2.worker_id).ok());
  SampleBuilder builder(session->layout());
  Reply r1;
  Submit(*session, t1, Answer(*session, t1, builder), r1);
  ASSERT_TRUE(r1.called);
  EXPECT_EQ(r1.result->step, 1);
  EXPECT_EQ(session->Info().workers[1].state, WorkerState::kLeft);
}

TEST_F(SessionTest, WorkerJoiningMidStepWaitsForTheNextGradientPhase) {
  SessionConfig config = Config(AlgorithmKind::kConOpt, 2, /*quorum=*/1);
  auto session = Make(config);
  const Task t1 = Join(*session);
  SampleBuilder builder(session->layout());
  Reply r1;
  Submit(*session, t1, Answer(*session, t1, builder), r1);
  clock_.Advance(kDeadline + absl::Seconds(1));
  session->CheckDeadline();  // proceeds with the quorum of 1
  ASSERT_TRUE(r1.called && r1.result.ok());
  ASSERT_EQ(r1.result->kind, Task::Kind::kProducts);
  Reply joined;
  session->Join(0, "newcomer", joined.Callback());
  EXPECT_FALSE(joined.called);  // holds no sample of this step
  Reply r2;
  Submit(*session, *r1.result, Answer(*session, *r1.result, builder), r2);
  ASSERT_TRUE(r2.called && joined.called);
  EXPECT_EQ(joined.result->kind, Task::Kind::kGradient);
  EXPECT_EQ(joined.result->step, 1);
}

TEST_F(SessionTest, CancelAnswersTheCallButKeepsTheSubmission) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 2));
  const Task t1 = Join(*session), t2 = Join(*session);
  SampleBuilder builder(session->layout());
  const Submission s1 = Answer(*session, t1, builder);
  Reply r1;
  CallId call = 0;
  session->SubmitGradient(t1.worker_id, s1, r1.Callback(), &call);
  ASSERT_NE(call, 0u);
  session->Cancel(call);
  ASSERT_TRUE(r1.called);
  EXPECT_EQ(r1.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(session->Info().submitted, 1);
  Reply retry, r2;
  Submit(*session, t1, s1, retry);
  Submit(*session, t2, Answer(*session, t2, builder), r2);
  ASSERT_TRUE(retry.called && retry.result.ok());
  EXPECT_EQ(retry.result->step, 1);
}

TEST_F(SessionTest, CloseAnswersEveryWaitingCall) {
  auto session = Make(Config(AlgorithmKind::kSimGd, 2));
  const Task t1 = Join(*session);
  SampleBuilder builder(session->layout());
  Reply r1;
  Submit(*session, t1, Answer(*session, t1, builder), r1);
  EXPECT_FALSE(r1.called);
  session->Close(absl::UnavailableError("server shutting down"));
  ASSERT_TRUE(r1.called);
  EXPECT_EQ(r1.result.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SessionTest, ParamsVersionChangesOnlyWhenThePointMoves) {
  auto session = Make(Config(AlgorithmKind::kConOpt, 1));
  const Task gradient = Join(*session);
  SampleBuilder builder(session->layout());
  Reply r1;
  Submit(*session, gradient, Answer(*session, gradient, builder), r1);
  ASSERT_TRUE(r1.result.ok());
  EXPECT_EQ(r1.result->kind, Task::Kind::kProducts);
  EXPECT_EQ(r1.result->params_version, gradient.params_version);
  Reply r2;
  Submit(*session, *r1.result, Answer(*session, *r1.result, builder), r2);
  ASSERT_TRUE(r2.result.ok());
  EXPECT_NE(r2.result->params_version, gradient.params_version);
}

}  // namespace
}  // namespace gameopt
