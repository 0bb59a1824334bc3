// Fused local products (AlgorithmConfig::fuse_local_products): a step of
// ConOpt / SGA with the LOCAL estimator in one round gives bit-identical
// parameters to the two-round run.
#include <random>

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

class FusedProductsTest : public ::testing::Test {
 protected:
  FusedProductsTest() : game_(QuadraticGame::Random({2, 3}, 11)) {}

  SessionConfig Config(AlgorithmKind kind, bool fused) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = 2;
    config.samples_per_worker = 2;
    config.algorithm.estimator = EstimatorKind::kLocal;
    config.algorithm.fuse_local_products = fused;
    config.algorithm.gamma = 0.7;
    config.phase_deadline = absl::Seconds(10);
    return config;
  }

  // The gradient of `worker`'s sample k at step `step`: exact plus noise.
  Eigen::VectorXd Sample(const Eigen::VectorXd& x, int64_t worker, int64_t step,
                         int k) {
    std::mt19937_64 rng(worker * 1000003 + step * 101 + k);
    std::normal_distribution<double> normal(0.0, 0.3);
    Eigen::VectorXd g = game_.Xi(x);
    for (int i = 0; i < g.size(); ++i) g(i) += normal(rng);
    return g;
  }
  // Sample k's Jacobian: J scaled per sample (the minibatch's J_k).
  Eigen::MatrixXd Jacobian(int64_t worker, int64_t step, int k) {
    return game_.J * (1.0 + 0.01 * static_cast<double>(worker + k + step % 3));
  }

  Submission Answer(const Task& task, SampleBuilder& builder) {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      for (int k = 0; k < task.num_samples; ++k) {
        const Eigen::VectorXd g = Sample(x, task.worker_id, task.step, k);
        s.gradients.push_back(builder.Make(g, task.players));
        const Eigen::MatrixXd jk = Jacobian(task.worker_id, task.step, k);
        if (task.fused_vjp) s.vjp.push_back(builder.Make(jk.transpose() * g));
        if (task.fused_jvp) s.jvp.push_back(builder.Make(jk * g));
      }
      return s;
    }
    for (size_t k = 0; k < task.probes.size(); ++k) {
      const Eigen::VectorXd w = ToEigen(*task.probes[k]);
      const Eigen::MatrixXd jk =
          Jacobian(task.worker_id, task.step, static_cast<int>(k));
      if (task.vjp) s.vjp.push_back(builder.Make(jk.transpose() * w));
      if (task.jvp) s.jvp.push_back(builder.Make(jk * w));
    }
    return s;
  }

  // Plays `steps` steps with two workers; returns x's bytes and counts the
  // rounds.
  std::string Play(Session& session, int steps, int64_t* rounds) {
    std::vector<Task> tasks;
    for (int w = 0; w < 2; ++w) {
      Reply reply;
      session.Join(0, "", reply.Callback());
      EXPECT_TRUE(reply.result.ok()) << reply.result.status();
      tasks.push_back(*reply.result);
    }
    *rounds = 0;
    while (tasks[0].kind != Task::Kind::kDone && tasks[0].step < steps) {
      SampleBuilder builder(session.layout());
      if (!PlayRound(session, tasks,
                     [&](const Task& task) { return Answer(task, builder); })) {
        return "";
      }
      ++*rounds;
    }
    const ParametersSnapshot params = session.Parameters();
    return std::string(static_cast<const char*>(params.values->data()),
                       params.values->bytes());
  }

  std::unique_ptr<Session> Make(SessionConfig config) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *std::move(session) : nullptr;
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_F(FusedProductsTest, FusedRunIsBitIdenticalToTheTwoRoundLocalRun) {
  for (AlgorithmKind kind : {AlgorithmKind::kConOpt, AlgorithmKind::kSga}) {
    for (int lookahead : {0, 3}) {
      SCOPED_TRACE(absl::StrCat(AlgorithmName(kind), " lookahead ", lookahead));
      SessionConfig plain = Config(kind, false);
      plain.algorithm.lookahead_k = lookahead;
      SessionConfig fused = Config(kind, true);
      fused.algorithm.lookahead_k = lookahead;
      auto a = Make(plain);
      auto b = Make(fused);
      int64_t rounds_a = 0, rounds_b = 0;
      const std::string xa = Play(*a, 7, &rounds_a);
      const std::string xb = Play(*b, 7, &rounds_b);
      ASSERT_FALSE(xa.empty());
      EXPECT_TRUE(xa == xb);
      EXPECT_EQ(rounds_a, 14);
      EXPECT_EQ(rounds_b, 7);
      EXPECT_EQ(b->Info().stats.product_samples, 4);
      EXPECT_EQ(b->Info().step, 7);
    }
  }
}

TEST_F(FusedProductsTest, TheGradientTaskAsksForTheProducts) {
  auto conopt = Make(Config(AlgorithmKind::kConOpt, true));
  Reply reply;
  conopt->Join(0, "", reply.Callback());
  ASSERT_TRUE(reply.result.ok());
  EXPECT_EQ(reply.result->kind, Task::Kind::kGradient);
  EXPECT_TRUE(reply.result->fused_vjp);
  EXPECT_FALSE(reply.result->fused_jvp);
  auto sga = Make(Config(AlgorithmKind::kSga, true));
  Reply sga_reply;
  sga->Join(0, "", sga_reply.Callback());
  ASSERT_TRUE(sga_reply.result.ok());
  EXPECT_TRUE(sga_reply.result->fused_vjp);
  EXPECT_TRUE(sga_reply.result->fused_jvp);
  auto plain = Make(Config(AlgorithmKind::kSga, false));
  Reply plain_reply;
  plain->Join(0, "", plain_reply.Callback());
  ASSERT_TRUE(plain_reply.result.ok());
  EXPECT_FALSE(plain_reply.result->fused_vjp);
  EXPECT_FALSE(plain_reply.result->fused_jvp);
}

TEST_F(FusedProductsTest, MissingOrUnaskedProductsAreRejectedOrDropped) {
  auto session = Make(Config(AlgorithmKind::kSga, true));
  Reply joined;
  session->Join(0, "", joined.Callback());
  ASSERT_TRUE(joined.result.ok());
  const Task task = *joined.result;
  SampleBuilder builder(session->layout());
  Submission good = Answer(task, builder);
  Submission no_jvp = good;
  no_jvp.jvp.pop_back();
  Reply bad;
  session->SubmitGradient(task.worker_id, no_jvp, bad.Callback());
  ASSERT_TRUE(bad.called);
  EXPECT_EQ(bad.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.result.status().message().find("jvp"), std::string::npos)
      << bad.result.status();
  EXPECT_EQ(session->Info().submitted, 0);

  // An unfused session refuses products with a gradient.
  auto plain = Make(Config(AlgorithmKind::kConOpt, false));
  Reply plain_joined;
  plain->Join(0, "", plain_joined.Callback());
  Submission extra = Answer(plain_joined.result.value(), builder);
  extra.vjp = good.vjp;
  Reply refused;
  plain->SubmitGradient(plain_joined.result->worker_id, extra,
                        refused.Callback());
  EXPECT_EQ(refused.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.result.status().message().find("vjp"), std::string::npos);

  // DROP: the worker's samples and products leave the round together.
  SessionConfig drop_config = Config(AlgorithmKind::kConOpt, true);
  drop_config.invalid_sample_policy = InvalidSamplePolicy::kDrop;
  auto drop = Make(drop_config);
  std::vector<Task> tasks;
  for (int w = 0; w < 2; ++w) {
    Reply r;
    drop->Join(0, "", r.Callback());
    tasks.push_back(*r.result);
  }
  Submission nan = Answer(tasks[0], builder);
  Eigen::VectorXd bad_values = Eigen::VectorXd::Zero(game_.dimension());
  bad_values(0) = std::nan("");
  nan.vjp[1] = builder.Make(bad_values);
  Reply r0, r1;
  drop->SubmitGradient(tasks[0].worker_id, nan, r0.Callback());
  drop->SubmitGradient(tasks[1].worker_id, Answer(tasks[1], builder),
                       r1.Callback());
  ASSERT_TRUE(r1.result.ok()) << r1.result.status();
  EXPECT_EQ(drop->Info().step, 1);
  EXPECT_EQ(drop->Info().stats.gradient_samples, 2);
  EXPECT_EQ(drop->Info().stats.product_samples, 2);
}

TEST_F(FusedProductsTest, OnlyConOptAndSgaWithTheLocalEstimatorMayFuse) {
  for (AlgorithmKind kind :
       {AlgorithmKind::kSimGd, AlgorithmKind::kExtragradient}) {
    SessionConfig config = Config(kind, true);
    absl::Status status = ValidateConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("algorithm.fuse_local_products"),
              std::string::npos);
  }
  SessionConfig pooled = Config(AlgorithmKind::kConOpt, true);
  pooled.algorithm.estimator = EstimatorKind::kPooled;
  EXPECT_EQ(ValidateConfig(pooled).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateConfig(Config(AlgorithmKind::kSga, true)).ok());
}

TEST_F(FusedProductsTest, ARestoredFusedSessionContinuesBitIdentically) {
  auto whole = Make(Config(AlgorithmKind::kConOpt, true));
  int64_t rounds = 0;
  const std::string expected = Play(*whole, 6, &rounds);
  auto first = Make(Config(AlgorithmKind::kConOpt, true));
  Play(*first, 3, &rounds);
  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(first->Snapshot(), &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  // The workers rejoin by id (ids 1 and 2) and go on.
  std::vector<Task> tasks;
  for (int64_t id : {1, 2}) {
    Reply reply;
    (*restored)->Join(id, "", reply.Callback());
    ASSERT_TRUE(reply.result.ok()) << reply.result.status();
    tasks.push_back(*reply.result);
  }
  EXPECT_TRUE(tasks[0].fused_vjp);
  while (tasks[0].step < 6) {
    SampleBuilder builder((*restored)->layout());
    ASSERT_TRUE(PlayRound(**restored, tasks, [&](const Task& task) {
      return Answer(task, builder);
    }));
  }
  const ParametersSnapshot params = (*restored)->Parameters();
  EXPECT_TRUE(std::string(static_cast<const char*>(params.values->data()),
                          params.values->bytes()) == expected);
}

}  // namespace
}  // namespace gameopt
