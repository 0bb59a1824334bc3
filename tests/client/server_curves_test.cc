// The server's curves of a played game (client/server_curves.h): the
// columns and rows built from SessionMetrics, and server_metrics.csv of a
// ConOpt run through a real server on loopback.
#include "client/server_curves.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/play.h"
#include "gtest/gtest.h"
#include "server/service/server.h"

namespace gameopt {
namespace {

// L = 1/2 (a^2 + b^2) recomputed from the CSV's 10 significant digits.
constexpr double kCsvRelative = 1e-8;

v1::SessionMetrics ConOptMetrics() {
  v1::SessionMetrics m;
  m.set_step(5);
  m.add_players("gen");
  m.add_players("disc");
  m.add_xi_norm(3);
  m.add_xi_norm(4);
  m.set_loss(12.5);
  m.set_correction_norm(0.5);
  m.set_steps_per_second(100);
  v1::PhaseLatency* gradient = m.add_phase_latency();
  gradient->set_phase_label("gradient");
  gradient->set_last_seconds(0.002);
  v1::PhaseLatency* consensus = m.add_phase_latency();
  consensus->set_phase_label("consensus");
  consensus->set_last_seconds(0.001);
  return m;
}

TEST(CurveRow, OneValuePerColumnForTheLastCompletedStep) {
  const v1::SessionMetrics m = ConOptMetrics();
  const std::vector<std::string> columns = CurveColumns(m);
  EXPECT_EQ(columns, (std::vector<std::string>{
                         "step", "xi_norm_gen", "xi_norm_disc", "loss",
                         "correction_norm", "latency_ms_gradient",
                         "latency_ms_consensus", "steps_per_second"}));
  EXPECT_EQ(CurveRow(m, columns),
            (std::vector<double>{4, 3, 4, 12.5, 0.5, 2, 1, 100}));
  // A phase the session does not have reads NaN.
  EXPECT_TRUE(std::isnan(CurveRow(m, {"latency_ms_extrapolation"})[0]));
}

TEST(CurveRow, ReportedScalarsAndLearningRatesGetColumns) {
  v1::SessionMetrics m = ConOptMetrics();
  v1::Scalar* loss = m.add_scalars();
  loss->set_name("loss/gen");
  loss->set_value(0.75);
  m.add_learning_rate(0.1);
  m.add_learning_rate(0.05);
  const std::vector<std::string> columns = CurveColumns(m);
  ASSERT_EQ(columns.size(), 11u);
  EXPECT_EQ(std::vector<std::string>(columns.end() - 3, columns.end()),
            (std::vector<std::string>{"scalar_loss/gen", "lr_gen", "lr_disc"}));
  const std::vector<double> row = CurveRow(m, columns);
  EXPECT_EQ(std::vector<double>(row.end() - 3, row.end()),
            (std::vector<double>{0.75, 0.1, 0.05}));
  // A scalar missing from a later step reads NaN.
  EXPECT_TRUE(std::isnan(CurveRow(ConOptMetrics(), {"scalar_loss/gen"})[0]));
}

std::vector<std::vector<double>> ReadCsv(const std::string& path,
                                         std::vector<std::string>* header) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  *header = absl::StrSplit(line, ',');
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    for (absl::string_view cell : absl::StrSplit(line, ',')) {
      double value = std::nan("");
      EXPECT_TRUE(absl::SimpleAtod(cell, &value)) << line;
      row.push_back(value);
    }
    rows.push_back(row);
  }
  return rows;
}

TEST(ServerCurves, PlayWritesOneRowPerStepAsTheServerSawIt) {
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  options.log = nullptr;
  GameOptServer server(options);
  ASSERT_TRUE(server.Start().ok());
  PlayConfig config;
  config.game = "bilinear";
  config.session.algorithm = "conopt";
  config.session.learning_rate = 0.2;
  config.session.workers = 2;
  config.steps = 12;
  config.server = server.address();
  config.live = false;
  config.plots = false;
  config.out_dir = ::testing::TempDir() + "/gameopt_server_curves_test";
  absl::StatusOr<PlayResult> result = Play(config);
  ASSERT_TRUE(result.ok()) << result.status();

  std::vector<std::string> header;
  const auto rows = ReadCsv(config.out_dir + "/server_metrics.csv", &header);
  EXPECT_EQ(header,
            (std::vector<std::string>{"step", "xi_norm_x", "xi_norm_y", "loss",
                                      "correction_norm", "latency_ms_gradient",
                                      "latency_ms_consensus",
                                      "steps_per_second", "lr_x", "lr_y"}));
  ASSERT_EQ(rows.size(), 12u);
  for (size_t t = 0; t < rows.size(); ++t) {
    const std::vector<double>& row = rows[t];
    ASSERT_EQ(row.size(), header.size());
    EXPECT_EQ(row[0], static_cast<double>(t));
    const double loss = 0.5 * (row[1] * row[1] + row[2] * row[2]);
    EXPECT_NEAR(row[3], loss, kCsvRelative * loss) << "step " << t;
    EXPECT_GT(row[4], 0) << "ConOpt's correction, step " << t;
    EXPECT_GE(row[5], 0);
    EXPECT_GE(row[6], 0);
  }
  // ConOpt converges on the bilinear game: |xi| shrinks.
  EXPECT_LT(rows.back()[3], rows.front()[3]);
}

}  // namespace
}  // namespace gameopt
