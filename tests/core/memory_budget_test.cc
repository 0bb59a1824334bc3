// Memory budget (server/core/memory_budget.h): a session
// whose parameters, optimizer slots and per-worker buffers do not fit what
// is left of the budget is refused with RESOURCE_EXHAUSTED naming both
// amounts, before anything is allocated; deleting a session gives its share
// back; the default budget comes from the cgroup or physical memory.
#include "server/core/memory_budget.h"

#include "gtest/gtest.h"
#include "server/core/registry.h"

namespace gameopt {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

// Two players of `each` coordinates, no initial values (zeros).
SessionConfig Config(int64_t each, DType dtype, OptimizerKind optimizer,
                     int workers = 1) {
  SessionConfig config;
  config.dtype = dtype;
  config.workers_per_round = workers;
  for (int p = 0; p < 2; ++p) {
    PlayerConfig player;
    player.name = absl::StrCat("p", p);
    TensorConfig tensor;
    tensor.name = "w";
    tensor.shape = {each};
    player.tensors.push_back(tensor);
    player.optimizer.kind = optimizer;
    player.optimizer.learning_rate = 0.01;
    config.players.push_back(player);
  }
  return config;
}

TEST(MemoryBudgetTest, EstimateCountsParametersSlotsAndWorkerBuffers) {
  const SessionConfig config =
      Config(1000, DType::kFloat64, OptimizerKind::kAdam, /*workers=*/3);
  const GameLayout layout = *GameLayout::Create(config.players);
  // (4 algorithm vectors + 2 Adam slots + 3 buffers x 3 workers) x 2000 x 8.
  EXPECT_EQ(EstimateSessionBytes(config, layout),
            (kAlgorithmVectors + 2 + kBuffersPerWorkerSample * 3) * 2000 * 8);
}

// CGD adds its float64 vectors: xi and the step sizes over all 2000
// coordinates, and over the solved player's 1000 the warm start, the
// right-hand side and GMRES's 50 + 1 basis vectors (CG: 3 vectors).
TEST(MemoryBudgetTest, EstimateCountsTheCgdSolver) {
  SessionConfig config = Config(1000, DType::kFloat32, OptimizerKind::kSgd);
  const GameLayout layout = *GameLayout::Create(config.players);
  const int64_t base = EstimateSessionBytes(config, layout);
  config.algorithm.kind = AlgorithmKind::kCgd;
  EXPECT_EQ(EstimateSessionBytes(config, layout),
            base + 8 * (2 * 2000 + (2 + 51) * 1000));
  config.algorithm.cgd_zero_sum = true;
  config.algorithm.kind = AlgorithmKind::kAcgd;
  EXPECT_EQ(EstimateSessionBytes(config, layout),
            base + 8 * (4 * 2000 + (2 + 3) * 1000));
}

TEST(MemoryBudgetTest, FusedProductsCountOneMoreBufferPerWorkerSample) {
  SessionConfig config =
      Config(1000, DType::kFloat64, OptimizerKind::kAdam, /*workers=*/3);
  config.algorithm.kind = AlgorithmKind::kConOpt;
  config.algorithm.bias_meter = true;
  const GameLayout layout = *GameLayout::Create(config.players);
  EXPECT_EQ(
      EstimateSessionBytes(config, layout),
      (kAlgorithmVectors + 2 + (kBuffersPerWorkerSample + 1) * 3) * 2000 * 8);
}

TEST(MemoryBudgetTest, HugeSessionIsRefusedBeforeAllocating) {
  // A 46-byte request asking for 2^30 float64 coordinates with Adam.
  SessionRegistry registry;
  MemoryBudget budget(3 * 1024 * kMiB);  // a 3 GiB container
  registry.set_memory_budget(&budget);
  absl::StatusOr<std::shared_ptr<Session>> session = registry.Create(
      Config(int64_t{1} << 29, DType::kFloat64, OptimizerKind::kAdam));
  ASSERT_EQ(session.status().code(), absl::StatusCode::kResourceExhausted)
      << session.status();
  EXPECT_NE(session.status().message().find("needs about"), std::string::npos)
      << session.status();
  EXPECT_NE(session.status().message().find("3072.0 MiB are left"),
            std::string::npos)
      << session.status();
  EXPECT_EQ(budget.used(), 0);
  EXPECT_TRUE(registry.List().empty());
}

TEST(MemoryBudgetTest, DeletingASessionGivesItsShareBack) {
  const SessionConfig config =
      Config(100000, DType::kFloat32, OptimizerKind::kMomentum);
  const int64_t one =
      EstimateSessionBytes(config, *GameLayout::Create(config.players));
  SessionRegistry registry;
  MemoryBudget budget(2 * one + one / 2);
  registry.set_memory_budget(&budget);
  absl::StatusOr<std::shared_ptr<Session>> a = registry.Create(config);
  absl::StatusOr<std::shared_ptr<Session>> b = registry.Create(config);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(budget.used(), 2 * one);
  EXPECT_EQ(registry.Create(config).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(registry.Delete((*a)->id()).ok());
  EXPECT_EQ(budget.used(), one);
  EXPECT_TRUE(registry.Create(config).ok());
}

TEST(MemoryBudgetTest, DefaultComesFromTheMachine) {
  const int64_t limit = MemoryLimitBytes();
  EXPECT_GT(limit, 0);
  EXPECT_EQ(DefaultMemoryBudgetBytes(),
            static_cast<int64_t>(limit * kDefaultBudgetFraction));
}

}  // namespace
}  // namespace gameopt

namespace gameopt {
namespace {

// A session whose tasks could never be sent (larger than
// the message limit) is refused at creation, not at the first join.
TEST(MemoryBudgetTest, SessionWhoseTasksCannotBeSentIsRefused) {
  SessionRegistry registry;
  registry.set_max_task_bytes(4 * kMiB);
  // 2 x 300k float32 = 2.3 MiB of parameters: fits with SimGD...
  EXPECT_TRUE(
      registry.Create(Config(300000, DType::kFloat32, OptimizerKind::kSgd))
          .ok());
  // ... but not with ConOpt's two probes per task (3 vectors, 6.9 MiB).
  SessionConfig conopt = Config(300000, DType::kFloat32, OptimizerKind::kSgd);
  conopt.algorithm.kind = AlgorithmKind::kConOpt;
  conopt.samples_per_worker = 2;
  absl::StatusOr<std::shared_ptr<Session>> refused = registry.Create(conopt);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("--max_message_mb"),
            std::string::npos)
      << refused.status();
  EXPECT_EQ(registry.List().size(), 1u);
}

}  // namespace
}  // namespace gameopt
