// Tests client/sweep.h: a grid played as concurrent sessions on one server
// gives each session the result it has alone.
#include "client/sweep.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/service/server.h"

namespace gameopt {
namespace {

TEST(ExpandGrid, FirstAxisSlowest) {
  const std::vector<SweepLabels> points =
      ExpandGrid({{"gamma", {"0.1", "1"}}, {"algorithm", {"simgd", "conopt"}}});
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(LabelText(points[0]), "gamma=0.1 algorithm=simgd");
  EXPECT_EQ(LabelText(points[1]), "gamma=0.1 algorithm=conopt");
  EXPECT_EQ(LabelSlug(points[3]), "gamma-1_algorithm-conopt");
  EXPECT_EQ(ExpandGrid({}).size(), 1u);
}

// A stochastic game (minibatch noise, two workers, two samples each), so
// that a session that took another's minibatches or rounds would show.
PlayConfig Point(const std::string& algorithm, double gamma,
                 const std::string& server) {
  PlayConfig config;
  config.game = "quadratic";
  config.game_options.quadratic_dims = {3, 3};
  config.game_options.quadratic_noise_std = 0.2;
  config.session.algorithm = algorithm;
  config.session.gamma = gamma;
  config.session.learning_rate = 0.05;
  config.session.workers = 2;
  config.session.samples_per_worker = 2;
  config.session.seed = 11;
  config.steps = 300;
  config.server = server;
  config.live = false;
  return config;
}

TEST(RunSweep, SixConcurrentSessionsEachEqualTheirRunAlone) {
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  options.log = nullptr;
  GameOptServer shared(options);
  ASSERT_TRUE(shared.Start().ok());
  std::vector<SweepPoint> points;
  for (const SweepLabels& labels :
       ExpandGrid({{"gamma", {"0.1", "1", "10"}},
                   {"algorithm", {"simgd", "conopt"}}})) {
    points.push_back(
        {labels, Point(labels[1].second, std::stod(labels[0].second),
                       shared.address())});
  }
  ASSERT_EQ(points.size(), 6u);
  const std::vector<SweepRun> runs = RunSweep(points, /*parallel=*/0);
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(shared.registry().List().size(), 0u);  // each deleted its own

  for (size_t i = 0; i < runs.size(); ++i) {
    SCOPED_TRACE(LabelText(runs[i].labels));
    ASSERT_TRUE(runs[i].result.ok()) << runs[i].result.status();
    EXPECT_EQ(runs[i].result->steps, 300);
    // The same point alone, on a server of its own.
    GameOptServer alone_server(options);
    ASSERT_TRUE(alone_server.Start().ok());
    PlayConfig alone = points[i].config;
    alone.server = alone_server.address();
    absl::StatusOr<PlayResult> result = Play(alone);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->final_params == runs[i].result->final_params);
    EXPECT_EQ(result->final_metrics, runs[i].result->final_metrics);
  }
  // The sessions did differ: SimGD ignores gamma, ConOpt does not.
  EXPECT_TRUE(runs[0].result->final_params == runs[2].result->final_params);
  EXPECT_FALSE(runs[1].result->final_params == runs[3].result->final_params);

  const std::string table = SweepTable(runs);
  EXPECT_NE(table.find("gamma  algorithm  steps"), std::string::npos) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 7) << table;
  const std::string csv = ::testing::TempDir() + "/gameopt_sweep_test.csv";
  ASSERT_TRUE(WriteSweepCsv(runs, csv).ok());
}

TEST(SweepTable, FailedRunsShowTheirError) {
  std::vector<SweepRun> runs(1);
  runs[0].labels = {{"lr", "-1"}};
  runs[0].result = absl::InvalidArgumentError("learning_rate must be > 0");
  const std::string table = SweepTable(runs);
  EXPECT_NE(table.find("FAILED: INVALID_ARGUMENT: learning_rate"),
            std::string::npos)
      << table;
}

}  // namespace
}  // namespace gameopt
