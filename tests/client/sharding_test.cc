// Tests client/worker/sharding.h, sharded_worker.h and sharded_session.h:
// an experiment sharded over 3 servers on loopback ends bitwise where one
// server ends, what cannot be sharded exactly is refused up front, and a
// sharded worker reports its scalars to every shard.
#include "client/worker/sharding.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "client/play.h"
#include "client/worker/session_builder.h"
#include "client/worker/sharded_session.h"
#include "client/worker/sharded_worker.h"
#include "gtest/gtest.h"
#include "server/service/server.h"

namespace gameopt {
namespace {

constexpr int kShards = 3;

// Four GameOptServers on 127.0.0.1:<free port>: one alone, three shards.
class ShardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i <= kShards; ++i) {
      GameOptServerOptions options;
      options.address = "127.0.0.1:0";
      options.log = nullptr;
      servers_.push_back(std::make_unique<GameOptServer>(options));
      ASSERT_TRUE(servers_.back()->Start().ok());
    }
  }

  std::string Shards() const {
    std::vector<std::string> addresses;
    for (int i = 1; i <= kShards; ++i) {
      addresses.push_back(servers_[i]->address());
    }
    return absl::StrJoin(addresses, ",");
  }

  // Plays `config` on one server and on the three shards: both final
  // parameter vectors.
  std::pair<Eigen::VectorXd, Eigen::VectorXd> PlayBoth(PlayConfig config) {
    config.live = false;
    config.server = servers_[0]->address();
    absl::StatusOr<PlayResult> one = Play(config);
    EXPECT_TRUE(one.ok()) << one.status();
    config.server = Shards();
    absl::StatusOr<PlayResult> sharded = Play(config);
    EXPECT_TRUE(sharded.ok()) << sharded.status();
    if (!one.ok() || !sharded.ok()) return {};
    EXPECT_EQ(sharded->shards, kShards);
    EXPECT_EQ(sharded->steps, config.steps);
    return {one->final_params, sharded->final_params};
  }

  std::vector<std::unique_ptr<GameOptServer>> servers_;
};

TEST(ShardPlan, SlicesEveryPlayerByFloorBounds) {
  const std::vector<PlayerSpec> players = {{"g", {{"w", {2, 3}}, {"b", {2}}}},
                                           {"d", {{"w", {7}}}}};
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(players, 3);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // floor(s * 8 / 3) and floor(s * 7 / 3).
  EXPECT_EQ(plan->Begin(0, 1), 2);
  EXPECT_EQ(plan->Begin(0, 2), 5);
  EXPECT_EQ(plan->Begin(0, 3), 8);
  EXPECT_EQ(plan->Begin(1, 1), 2);
  EXPECT_EQ(plan->Begin(1, 2), 4);
  EXPECT_EQ(plan->shard_layout(0).dimension(), 4);
  EXPECT_EQ(plan->shard_layout(1).dimension(), 5);
  EXPECT_EQ(plan->shard_layout(2).dimension(), 6);
  EXPECT_EQ(plan->shard_layout(1).TensorOffset("d", kShardTensorName), 3);

  const Eigen::VectorXd full = Eigen::VectorXd::LinSpaced(15, 0, 14);
  Eigen::VectorXd slice;
  plan->Gather(1, full, slice);
  EXPECT_EQ(slice, (Eigen::VectorXd(5) << 2, 3, 4, 10, 11).finished());
  Eigen::VectorXd rebuilt = Eigen::VectorXd::Zero(15);
  for (int s = 0; s < 3; ++s) {
    plan->Gather(s, full, slice);
    plan->Scatter(s, slice, rebuilt);
  }
  EXPECT_EQ(rebuilt, full);
}

TEST(ShardPlan, RefusesPlayersSmallerThanTheShardCount) {
  const absl::StatusOr<ShardPlan> plan =
      ShardPlan::Create({{"x", {{"x", {}}}}, {"y", {{"y", {4}}}}}, 2);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("'x' has 1 coordinates"),
            std::string::npos);
}

TEST(CheckShardable, RefusesGlobalReductionsAndPartialRounds) {
  auto game = *MakeGame("quadratic", GameOptions());
  struct Case {
    const char* name;
    void (*edit)(SessionOptions&);
    const char* message;
  };
  const Case cases[] = {
      {"sga alignment", [](SessionOptions& o) { o.algorithm = "sga"; },
       "alignment"},
      {"cgd", [](SessionOptions& o) { o.algorithm = "cgd"; }, "Krylov"},
      {"acgd", [](SessionOptions& o) { o.algorithm = "acgd"; }, "Krylov"},
      {"lola", [](SessionOptions& o) { o.algorithm = "lola"; },
       "cross gradients"},
      {"sos", [](SessionOptions& o) { o.algorithm = "sos"; },
       "cross gradients"},
      {"l_svrhg", [](SessionOptions& o) { o.algorithm = "l_svrhg"; },
       "snapshot"},
      {"global norm clipping",
       [](SessionOptions& o) { o.clip_global_norm = 1.0; }, "clip_global_norm"},
      {"quorum",
       [](SessionOptions& o) {
         o.workers = 2;
         o.quorum = 1;
       },
       "quorum"},
      {"drop", [](SessionOptions& o) { o.drop_invalid_samples = true; },
       "DROP"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SessionOptions options;
    c.edit(options);
    const absl::Status status =
        CheckShardable(*BuildSessionConfig(*game, options));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status;
  }
  SessionOptions fixed_lambda;
  fixed_lambda.algorithm = "sga";
  fixed_lambda.sga_alignment = false;
  EXPECT_TRUE(CheckShardable(*BuildSessionConfig(*game, fixed_lambda)).ok());
}

TEST(ShardSessionConfigs, SplitsTheInitialValuesAndKeepsTheRest) {
  auto game = *MakeGame("quadratic", GameOptions());  // players 2 + 2
  SessionOptions options;
  options.algorithm = "conopt";
  const v1::SessionConfig config = *BuildSessionConfig(*game, options);
  const ShardPlan plan = *ShardPlan::Create(game->players(), 2);
  absl::StatusOr<std::vector<v1::SessionConfig>> shards =
      ShardSessionConfigs(config, plan);
  ASSERT_TRUE(shards.ok()) << shards.status();
  ASSERT_EQ(shards->size(), 2u);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(game->Dimension());
  for (int s = 0; s < 2; ++s) {
    const v1::SessionConfig& shard = (*shards)[s];
    EXPECT_EQ(shard.algorithm().SerializeAsString(),
              config.algorithm().SerializeAsString());
    ASSERT_EQ(shard.players_size(), 2);
    EXPECT_EQ(shard.players(1).name(), config.players(1).name());
    ASSERT_EQ(shard.players(1).tensors_size(), 1);
    EXPECT_EQ(shard.players(1).tensors(0).name(), kShardTensorName);
    EXPECT_EQ(shard.players(1).tensors(0).shape(0), 1);
    v1::Vector values;
    for (const v1::PlayerConfig& p : shard.players()) {
      v1::PlayerTensors* t = values.add_players();
      t->set_player(p.name());
      *t->mutable_tensors() = p.tensors();
    }
    Eigen::VectorXd slice(plan.shard_layout(s).dimension());
    ASSERT_TRUE(DecodeVector(values, plan.shard_layout(s), slice).ok());
    plan.Scatter(s, slice, x);
  }
  EXPECT_EQ(x, game->InitialParameters());
}

// The acceptance case of sharding: ConOpt (gamma 10, RMSProp) on the
// mixture of Gaussians, K = 2 workers. Bitwise: each coordinate's update is
// the same IEEE operations on the same numbers on either side (the server's
// algorithms are per-coordinate, the worker computes the products once on
// the full model), and both sides add up the workers' samples in worker-id
// order.
TEST_F(ShardingTest, ThreeShardConOptOnMogEqualsOneServerBitwise) {
  for (const char* estimator : {"pooled", "unbiased", "local"}) {
    SCOPED_TRACE(estimator);
    PlayConfig config;
    config.game = "mog";
    config.game_options.seed = 1;
    config.game_options.mog.batch = 128;
    config.session.algorithm = "conopt";
    config.session.gamma = 10.0;
    config.session.optimizer = "rmsprop";
    config.session.learning_rate = 1e-3;
    config.session.estimator = estimator;
    config.session.workers = 2;
    config.session.seed = 1;
    config.steps = 150;
    config.metrics_every = 50;
    const auto [one, sharded] = PlayBoth(config);
    ASSERT_GT(one.size(), 0);
    EXPECT_NE(one,
              (*MakeGame("mog", config.game_options))->InitialParameters());
    EXPECT_TRUE(one == sharded)
        << "max difference " << (one - sharded).cwiseAbs().maxCoeff();
  }
}

TEST_F(ShardingTest, EveryShardableAlgorithmMatchesOneServerBitwise) {
  struct Case {
    const char* algorithm;
    const char* optimizer;
    int lookahead;
    double momentum = 0.9;
  };
  for (const Case& c :
       {Case{"simgd", "momentum", 0}, Case{"altgd", "sgd", 4},
        Case{"sga", "sgd", 0}, Case{"extragradient", "adam", 0},
        Case{"optimistic", "nesterov", 0}, Case{"conopt", "rmsprop", 3},
        Case{"altgd", "momentum", 0, -0.5}, Case{"optimistic_adam", "adam", 0},
        Case{"extrapolation_from_the_past", "momentum", 2},
        Case{"shgd", "momentum", 0}}) {
    SCOPED_TRACE(c.algorithm);
    PlayConfig config;
    config.game = "quadratic";
    config.game_options.quadratic_dims = {5, 4, 3};
    config.game_options.quadratic_noise_std = 0.1;
    config.game_options.seed = 7;
    config.session.algorithm = c.algorithm;
    config.session.optimizer = c.optimizer;
    config.session.learning_rate = 0.05;
    config.session.sga_alignment = false;
    config.session.lookahead_k = c.lookahead;
    config.session.momentum = c.momentum;
    config.session.workers = 2;
    config.session.samples_per_worker = 2;
    config.session.seed = 3;
    config.steps = 100;
    const auto [one, sharded] = PlayBoth(config);
    ASSERT_GT(one.size(), 0);
    EXPECT_TRUE(one == sharded)
        << "max difference " << (one - sharded).cwiseAbs().maxCoeff();
  }
}

TEST_F(ShardingTest, UnshardableSessionIsRefusedBeforeAnythingIsCreated) {
  PlayConfig config;
  config.game = "quadratic";
  config.game_options.quadratic_dims = {4, 4};
  config.session.algorithm = "sga";
  config.server = Shards();
  config.live = false;
  const absl::StatusOr<PlayResult> result = Play(config);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("SGA's alignment"),
            std::string::npos);
  for (int i = 1; i <= kShards; ++i) {
    EXPECT_TRUE(servers_[i]->registry().List().empty());
  }
}

TEST_F(ShardingTest, WorkersJoinAnExperimentByIdsOrByName) {
  auto game = *MakeGame("quadratic", GameOptions());
  SessionOptions options;
  options.name = "shared-experiment";
  options.algorithm = "conopt";
  options.workers = 2;
  options.max_steps = 20;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 1; i <= 2; ++i) {
    channels.push_back(MakeChannel(servers_[i]->address()));
  }
  absl::StatusOr<ShardedSession> created = ShardedSession::Create(
      channels, *game, *BuildSessionConfig(*game, options));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->num_shards(), 2);
  absl::StatusOr<ShardedSession> by_id =
      ShardedSession::Open(channels, *game, SplitList(created->id()));
  absl::StatusOr<ShardedSession> by_name = ShardedSession::OpenByName(
      channels, *game, "shared-experiment", absl::Seconds(5));
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->id(), created->id());
  auto first = game->Clone();
  auto second = game->Clone();
  absl::Status a, b;
  std::thread thread([&] { a = by_id->RunWorker(first.get(), {}); });
  b = by_name->RunWorker(second.get(), {});
  thread.join();
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_TRUE(b.ok()) << b;
  absl::StatusOr<SessionParameters> params = created->GetParameters();
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->step, 20);
  // Finished sessions are no longer found by name.
  EXPECT_EQ(ShardedSession::OpenByName(channels, *game, "shared-experiment",
                                       absl::ZeroDuration())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ShardingTest, ShardedWorkerReportsScalarsToEveryShard) {
  auto game = *MakeGame("quadratic", GameOptions());
  SessionOptions options;
  options.max_steps = 3;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 1; i <= 2; ++i) {
    channels.push_back(MakeChannel(servers_[i]->address()));
  }
  absl::StatusOr<ShardedSession> session = ShardedSession::Create(
      channels, *game, *BuildSessionConfig(*game, options));
  ASSERT_TRUE(session.ok()) << session.status();
  WorkerOptions worker_options;
  worker_options.report_scalars = [](const v1::Task& task) {
    return std::vector<std::pair<std::string, double>>{
        {"loss/p0", static_cast<double>(task.step())}};
  };
  ASSERT_TRUE(session->RunWorker(game.get(), worker_options).ok());
  for (int s = 0; s < 2; ++s) {
    v1::GetSessionRequest get;
    get.set_session_id(session->ids()[s]);
    v1::SessionStatus status;
    grpc::ClientContext context;
    ASSERT_TRUE(v1::GameOptimizer::NewStub(channels[s])
                    ->GetSession(&context, get, &status)
                    .ok());
    ASSERT_EQ(status.scalars_size(), 1) << "shard " << s;
    EXPECT_EQ(status.scalars(0).name(), "loss/p0");
    EXPECT_EQ(status.scalars(0).value(), 2.0);  // the last step's
  }
}

TEST_F(ShardingTest, ShardedWorkerRefusesBadArgumentsBeforeAnyCall) {
  auto game = *MakeGame("quadratic", GameOptions());
  std::vector<std::shared_ptr<grpc::Channel>> channels = {
      MakeChannel(servers_[1]->address()), MakeChannel(servers_[2]->address())};
  WorkerOptions rejoin;
  rejoin.worker_id = 3;
  absl::Status status =
      ShardedWorker(channels, {"a", "b"}, game.get(), rejoin).Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("worker_id 3"), std::string::npos) << status;
  status = ShardedWorker(channels, {"a"}, game.get()).Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("1 ids for 2 servers"), std::string::npos)
      << status;
  status = ShardedWorker({}, {}, game.get()).Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // Nothing reached the servers: the ids "a" and "b" name no session, so a
  // call would have failed with NOT_FOUND instead.
}

}  // namespace
}  // namespace gameopt
