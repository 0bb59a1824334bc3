// Session::Snapshot / Session::Restore: a session resumed from a snapshot
// continues bit for bit as the session it was taken from would have, for
// every algorithm, base optimizers with slots, lookahead and both dtypes,
// also when the snapshot is taken mid-round or mid-step.
#include <random>

#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::SeedNoise;
using testing::SubmitAnswer;
using testing::ToEigen;

constexpr int kWorkers = 2;
constexpr int kRounds = 14;  // rounds of the whole run
// The snapshot is taken once worker 1 (not 2) has submitted to this round:
// odd, so two-phase algorithms are inside a step (products phase,
// extragradient's extrapolated point).
constexpr int kSnapshotRound = 7;

struct Case {
  std::string name;
  AlgorithmKind algorithm;
  OptimizerKind optimizer;
  int lookahead_k = 0;
  double momentum = 0.9;
  // A snapshot round inside the step (LEAD's three phases: 7 is its first
  // products phase, 8 its second).
  int snapshot_round = kSnapshotRound;
};

// Names the case in test listings (ctest shows the parameter).
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SnapshotTest : public ::testing::TestWithParam<std::tuple<Case, DType>> {
 protected:
  SnapshotTest() : game_(QuadraticGame::Random({2, 3}, 11)) {}

  SessionConfig Config() const {
    const Case& c = std::get<0>(GetParam());
    SessionConfig config = QuadraticConfig(game_, c.algorithm, 0.02);
    config.dtype = std::get<1>(GetParam());
    config.workers_per_round = kWorkers;
    config.seed = 5;
    config.algorithm.lookahead_k = c.lookahead_k;
    if (c.algorithm == AlgorithmKind::kLSvrhg) {
      config.algorithm.estimator = EstimatorKind::kUnbiased;
      config.algorithm.svrhg_probability = 0.5;
    }
    for (PlayerConfig& p : config.players) {
      p.optimizer.kind = c.optimizer;
      p.optimizer.momentum = c.momentum;
    }
    return config;
  }

  // The worker's answer: the exact gradient or products plus noise drawn
  // from the task's seed, as a real worker's minibatch would be.
  Submission Answer(const Task& task, SampleBuilder& builder) const {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    const Eigen::VectorXd noise = SeedNoise(task.seed, game_.dimension());
    if (task.kind == Task::Kind::kGradient) {
      // LOLA's and SOS's cross-gradient rounds: any full vector serves
      // (the restore is checked bit for bit, not against a formula).
      if (task.loss >= 0) s.loss_player = absl::StrCat("p", task.loss);
      s.gradients.push_back(
          builder.Make(game_.Xi(x) + (task.loss + 1) * noise, task.players));
    }
    for (const auto& probe : task.probes) {
      const Eigen::VectorXd w = ToEigen(*probe);
      if (task.vjp) s.vjp.push_back(builder.Make(game_.J.transpose() * w));
      if (task.jvp) s.jvp.push_back(builder.Make(game_.J * w + noise));
    }
    return s;
  }

  // Workers [first, kWorkers) answer their tasks of the open round; the
  // round closes with the last and every reply gives the next task.
  void FinishRound(Session& session, std::vector<Task>& tasks,
                   std::vector<Reply>& replies, int first = 0) {
    SampleBuilder builder(session.layout());
    for (int w = first; w < kWorkers; ++w) {
      SubmitAnswer(session, tasks[w], Answer(tasks[w], builder), replies[w]);
    }
    for (int w = 0; w < kWorkers; ++w) {
      ASSERT_TRUE(replies[w].called);
      ASSERT_TRUE(replies[w].result.ok()) << replies[w].result.status();
      tasks[w] = *replies[w].result;
      replies[w] = Reply();
    }
  }

  static std::string Bytes(const Session& session) {
    return testing::ParametersBytes(session);
  }

  std::unique_ptr<Session> Make() {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s1", Config(), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return *std::move(session);
  }

  static std::vector<Task> JoinAll(Session& session) {
    std::vector<Task> tasks;
    for (int w = 0; w < kWorkers; ++w) {
      Reply reply;
      session.Join(0, "", reply.Callback());
      EXPECT_TRUE(reply.called && reply.result.ok());
      tasks.push_back(*reply.result);
    }
    return tasks;
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_P(SnapshotTest, RestoredSessionContinuesBitForBit) {
  // Uninterrupted.
  std::unique_ptr<Session> reference = Make();
  std::vector<Task> tasks = JoinAll(*reference);
  std::vector<Reply> replies(kWorkers);
  for (int r = 0; r < kRounds; ++r) FinishRound(*reference, tasks, replies);

  // Interrupted in the snapshot round after worker 1's submission, which
  // the snapshot leaves out; the server goes away and comes back.
  const int snapshot_round = std::get<0>(GetParam()).snapshot_round;
  std::unique_ptr<Session> first = Make();
  tasks = JoinAll(*first);
  for (int r = 0; r < snapshot_round; ++r) FinishRound(*first, tasks, replies);
  SampleBuilder builder(first->layout());
  const Submission early = Answer(tasks[0], builder);
  SubmitAnswer(*first, tasks[0], early, replies[0]);
  const SessionSnapshot snapshot = first->Snapshot();
  // (`first` stays alive: `early`'s views point into its layout.)
  first->Close(absl::UnavailableError("server shutting down"));
  EXPECT_TRUE(replies[0].called);
  EXPECT_EQ(replies[0].result.status().code(), absl::StatusCode::kUnavailable)
      << replies[0].result.status();
  replies[0] = Reply();

  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  Session& session = **restored;
  EXPECT_EQ(session.Info().round, snapshot_round);
  EXPECT_EQ(session.Info().submitted, 0);
  // Worker 1 retries the same submission: applied as the round's first.
  SubmitAnswer(session, tasks[0], early, replies[0]);
  EXPECT_FALSE(replies[0].called) << replies[0].result.status();
  FinishRound(session, tasks, replies, /*first=*/1);
  for (int r = snapshot_round + 1; r < kRounds; ++r) {
    FinishRound(session, tasks, replies);
  }
  EXPECT_EQ(session.Info().round, reference->Info().round);
  EXPECT_EQ(session.Info().params_version, reference->Info().params_version);
  EXPECT_EQ(Bytes(session), Bytes(*reference));
}

const Case kCases[] = {
    {"simgd_sgd", AlgorithmKind::kSimGd, OptimizerKind::kSgd},
    {"altgd_momentum", AlgorithmKind::kAltGd, OptimizerKind::kMomentum},
    {"conopt_rmsprop", AlgorithmKind::kConOpt, OptimizerKind::kRmsProp},
    {"sga_adam", AlgorithmKind::kSga, OptimizerKind::kAdam},
    {"extragradient_adam", AlgorithmKind::kExtragradient, OptimizerKind::kAdam},
    {"optimistic_nesterov", AlgorithmKind::kOptimistic,
     OptimizerKind::kNesterov},
    {"lookahead_conopt_adam", AlgorithmKind::kConOpt, OptimizerKind::kAdam,
     /*lookahead_k=*/2},
    {"altgd_negative_momentum", AlgorithmKind::kAltGd, OptimizerKind::kMomentum,
     0, /*momentum=*/-0.5},
    {"optimistic_adam", AlgorithmKind::kOptimisticAdam, OptimizerKind::kAdam},
    {"extrapolation_from_the_past_momentum",
     AlgorithmKind::kExtrapolationFromThePast, OptimizerKind::kMomentum},
    {"lead_momentum_products1", AlgorithmKind::kLead, OptimizerKind::kMomentum},
    {"lead_sgd_products2", AlgorithmKind::kLead, OptimizerKind::kSgd, 0, 0.9,
     /*snapshot_round=*/8},
    // Round 7 is inside step 1's warm start or Krylov loop.
    {"cgd", AlgorithmKind::kCgd, OptimizerKind::kSgd},
    {"lookahead_acgd", AlgorithmKind::kAcgd, OptimizerKind::kSgd,
     /*lookahead_k=*/2},
    // Six rounds per step with two players: round 7 is step 1's second
    // cross-gradient round, 8 its first VJP round, 11 its last JVP round.
    {"lola_cross_gradient", AlgorithmKind::kLola, OptimizerKind::kSgd, 0, 0.9,
     /*snapshot_round=*/7},
    {"sos_vjp_momentum", AlgorithmKind::kSos, OptimizerKind::kMomentum, 0, 0.9,
     /*snapshot_round=*/8},
    {"lola_last_jvp_adam", AlgorithmKind::kLola, OptimizerKind::kAdam, 0, 0.9,
     /*snapshot_round=*/11},
    {"shgd_momentum", AlgorithmKind::kShgd, OptimizerKind::kMomentum},
    // p 0.5: the snapshot moves within the run; round 7 is in a step.
    {"l_svrhg_adam", AlgorithmKind::kLSvrhg, OptimizerKind::kAdam},
    {"l_svrhg_sgd_round8", AlgorithmKind::kLSvrhg, OptimizerKind::kSgd, 0, 0.9,
     /*snapshot_round=*/8},
};

INSTANTIATE_TEST_SUITE_P(
    AllAlgorithms, SnapshotTest,
    ::testing::Combine(::testing::ValuesIn(kCases),
                       ::testing::Values(DType::kFloat32, DType::kFloat64)),
    [](const auto& info) {
      return std::get<0>(info.param).name +
             (std::get<1>(info.param) == DType::kFloat32 ? "_f32" : "_f64");
    });

// A snapshot that does not fit the config is refused with what is wrong.
TEST(SnapshotRestore, MissingParametersAreDataLoss) {
  FakeClock clock;
  const QuadraticGame game = QuadraticGame::Random({2, 2}, 3);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(
      "s1", QuadraticConfig(game, AlgorithmKind::kSimGd), &clock);
  ASSERT_TRUE(session.ok());
  SessionSnapshot snapshot = (*session)->Snapshot();
  snapshot.algorithm.vectors.clear();
  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock);
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(restored.status().message().find("'x'"), std::string::npos);
}

}  // namespace
}  // namespace gameopt
