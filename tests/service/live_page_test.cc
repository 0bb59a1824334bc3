// The live page's pieces without a network: the bounded history, the JSON
// encoding, and LivePage::Handle's routing. The page in a browser against
// the real binaries is tests/e2e/live_page_test.sh.
#include "server/service/live_page.h"

#include <cmath>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "server/core/registry.h"
#include "server/core/session_history.h"
#include "server/service/json_api.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

SessionInfo InfoAt(int64_t step, double xi) {
  SessionInfo info;
  info.id = "s1";
  info.step = step;
  info.stats.xi_norm = {xi, 2 * xi};
  info.stats.correction_norm = xi / 2;
  return info;
}

TEST(SessionHistory, RecordsOnePointPerNewStepWithTheMetricsNumbers) {
  SessionConfig config;
  config.algorithm.kind = AlgorithmKind::kConOpt;
  config.algorithm.gamma = 10.0;
  SessionHistory history(10);
  const absl::Time t0 = absl::FromUnixSeconds(100);
  history.Record(InfoAt(0, 1.0), config, t0);  // no step yet
  history.Record(InfoAt(1, 1.0), config, t0 + absl::Seconds(1));
  history.Record(InfoAt(1, 1.0), config, t0 + absl::Seconds(2));  // same step
  // The gamma recorded is the one the session's stats publish (adaptive gamma
  // moves it away from the configured 10), not the configuration's.
  SessionInfo moved = InfoAt(3, 0.5);
  moved.stats.gamma = 2.5;
  history.Record(moved, config, t0 + absl::Seconds(3));
  ASSERT_EQ(history.points().size(), 2u);
  const HistoryPoint& last = history.points().back();
  EXPECT_EQ(last.step, 3);
  EXPECT_DOUBLE_EQ(last.seconds, 3.0);
  EXPECT_DOUBLE_EQ(last.loss, 0.5 * (0.25 + 1.0));
  EXPECT_DOUBLE_EQ(last.correction_norm, 0.25);
  EXPECT_DOUBLE_EQ(last.gamma, 2.5);
  EXPECT_EQ(last.xi_norm.size(), 2u);
}

TEST(SessionHistory, StaysBoundedAndSpansTheWholeRun) {
  SessionConfig config;
  SessionHistory history(8);
  const absl::Time now = absl::Now();
  for (int64_t step = 1; step <= 1000; ++step) {
    history.Record(InfoAt(step, 1.0 / step), config, now);
    ASSERT_LE(history.points().size(), 8u);
  }
  EXPECT_GE(history.points().size(), 4u);
  EXPECT_LE(history.points().front().step, 1000 / 4);
  EXPECT_GE(history.points().back().step, 1000 - history.stride());
  for (size_t i = 1; i < history.points().size(); ++i) {
    EXPECT_LT(history.points()[i - 1].step, history.points()[i].step);
  }
}

TEST(JsonApi, EscapesStringsAndWritesNonFiniteAsNull) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonNumber(0.5), "0.5");
  EXPECT_EQ(JsonNumber(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(JsonNumber(std::nan("")), "null");
}

class LivePageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const testing::QuadraticGame game =
        testing::QuadraticGame::Random({2, 3}, 7);
    SessionConfig config =
        testing::QuadraticConfig(game, AlgorithmKind::kConOpt);
    config.name = "quad \"q\"";
    ASSERT_TRUE(registry_.Create(config).ok());
  }

  SessionRegistry registry_;
};

TEST_F(LivePageTest, SessionsJsonListsEachSessionWithItsPlayersAndHistory) {
  HistoryBook book(16);
  book.Sample(registry_.List(), absl::Now());
  const std::string json = SessionsJson(registry_, book);
  EXPECT_NE(json.find("\"id\":\"s1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"name\":\"quad \\\"q\\\"\""), std::string::npos);
  EXPECT_NE(json.find("\"algorithm\":\"conopt\""), std::string::npos);
  EXPECT_NE(json.find("\"players\":[\"p0\",\"p1\"]"), std::string::npos);
  EXPECT_NE(json.find("\"history\":{\"step\":[],"), std::string::npos);
  EXPECT_NE(json.find("\"xi_norm\":[[],[]]"), std::string::npos);
  EXPECT_NE(json.find("\"diagnostics\":null"), std::string::npos);
}

TEST_F(LivePageTest, SpectrumJsonSaysWhenNoEstimateExistsAndNamesUnknownIds) {
  absl::StatusOr<std::string> json = SpectrumJson(registry_, "s1");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, "{\"session\":\"s1\",\"available\":false}");
  absl::StatusOr<std::string> missing = SpectrumJson(registry_, "s9");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("s9"), std::string::npos);
}

TEST_F(LivePageTest, HandleServesThePageAndApiAndLeavesOtherPathsAlone) {
  LivePage page(&registry_, LivePage::Options());
  EXPECT_EQ(page.Handle("/", "").code, 200);
  EXPECT_NE(page.Handle("/ui", "").body.find("<canvas id=\"plot-loss\""),
            std::string::npos);
  const HttpResponse sessions = page.Handle("/api/sessions", "");
  EXPECT_EQ(sessions.code, 200);
  EXPECT_EQ(sessions.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(page.Handle("/api/spectrum", "").code, 400);
  EXPECT_EQ(page.Handle("/api/spectrum", "session=s9").code, 404);
  EXPECT_EQ(page.Handle("/api/spectrum", "session=s1").code, 200);
  EXPECT_EQ(page.Handle("/metrics", "").code, 0);
  EXPECT_EQ(page.Handle("/nothing", "").code, 0);
}

}  // namespace
}  // namespace gameopt
