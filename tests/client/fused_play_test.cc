// Fused local products end to end: the C++ worker library (Worker and, over
// two servers, ShardedWorker) answers fused GRADIENT tasks, and the run
// ends bit-identical to the two-round LOCAL run.
#include "client/play.h"
#include "gtest/gtest.h"
#include "tests/client/local_server.h"

namespace gameopt {
namespace {

PlayConfig FusedConfig(const std::string& algorithm, bool fused, bool float64,
                       int shards) {
  PlayConfig config;
  config.game = "quadratic";  // deterministic: no minibatch noise
  config.game_options.quadratic_dims = {3, 2};
  config.game_options.seed = 5;
  config.session.algorithm = algorithm;
  config.session.estimator = "local";
  config.session.fuse_local_products = fused;
  config.session.learning_rate = 0.05;
  config.session.gamma = 0.5;
  config.session.workers = 2;
  config.session.samples_per_worker = 2;
  config.session.float64 = float64;
  config.session.lookahead_k = 3;
  // Sharded SGA needs a fixed lambda (sharding.h).
  config.session.sga_alignment = shards == 1;
  config.steps = 20;
  config.shards = shards;
  config.live = false;
  return config;
}

TEST(FusedLocalProducts, WorkersGiveTheTwoRoundResultBitForBit) {
  for (const std::string algorithm : {"conopt", "sga"}) {
    for (bool float64 : {true, false}) {
      for (int shards : {1, 2}) {
        SCOPED_TRACE(absl::StrCat(algorithm, float64 ? " float64" : " float32",
                                  " shards ", shards));
        absl::StatusOr<PlayResult> plain =
            Play(FusedConfig(algorithm, false, float64, shards));
        absl::StatusOr<PlayResult> fused =
            Play(FusedConfig(algorithm, true, float64, shards));
        ASSERT_TRUE(plain.ok()) << plain.status();
        ASSERT_TRUE(fused.ok()) << fused.status();
        EXPECT_EQ(fused->steps, 20);
        ASSERT_EQ(plain->final_params.size(), fused->final_params.size());
        EXPECT_TRUE(plain->final_params == fused->final_params)
            << plain->final_params.transpose() << "\n"
            << fused->final_params.transpose();
        // The game moved.
        EXPECT_FALSE(plain->final_params.isZero());
      }
    }
  }
}

TEST(FusedLocalProducts, ASessionThatCannotFuseIsRefusedNamingTheField) {
  PlayConfig config = FusedConfig("conopt", true, true, 1);
  config.session.estimator = "pooled";
  absl::StatusOr<PlayResult> result = Play(config);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("fuse_local_products"),
            std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace gameopt
