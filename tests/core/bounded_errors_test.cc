// Client strings in errors are bounded and escaped (server/core/quote.h):
// whatever names a request carries (players, tensors, AltGD stages, optimizer
// kinds, submissions), the error is INVALID_ARGUMENT with a short message and
// no line break, so it neither exceeds gRPC's metadata limit nor forges a log
// line.
#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;

constexpr size_t kShortMessage = 1024;

std::vector<std::string> NastyNames() {
  return {std::string(64 << 10, 'a'), "two\nlines", "quote' \"\x01\x7f",
          std::string(300, '\n')};
}

void ExpectBounded(const absl::Status& status, const std::string& what) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << what;
  EXPECT_LT(status.message().size(), kShortMessage) << what;
  EXPECT_EQ(status.message().find('\n'), absl::string_view::npos) << what;
}

TEST(BoundedErrorsTest, ConfigNamesAreQuoted) {
  const QuadraticGame game = QuadraticGame::Random({1, 1}, 5);
  for (const std::string& name : NastyNames()) {
    SessionConfig player = QuadraticConfig(game, AlgorithmKind::kSimGd);
    player.players[0].name = name;
    ExpectBounded(Session::Create("s", player, RealClock()).status(), "player");
    SessionConfig tensor = QuadraticConfig(game, AlgorithmKind::kSimGd);
    tensor.players[0].tensors[0].name = name;
    ExpectBounded(Session::Create("s", tensor, RealClock()).status(), "tensor");
    SessionConfig altgd = QuadraticConfig(game, AlgorithmKind::kAltGd);
    altgd.algorithm.altgd_order = {AltGdStage{name, 1}};
    ExpectBounded(Session::Create("s", altgd, RealClock()).status(), "altgd");
    ExpectBounded(ParseOptimizer(name).status(), "optimizer");
  }
}

TEST(BoundedErrorsTest, SubmissionNamesAreQuoted) {
  const QuadraticGame game = QuadraticGame::Random({1, 1}, 5);
  std::unique_ptr<Session> session = *Session::Create(
      "s", QuadraticConfig(game, AlgorithmKind::kSimGd), RealClock());
  Reply join;
  session->Join(0, "w", join.Callback());
  ASSERT_TRUE(join.result.ok());
  SampleBuilder builder(session->layout());
  for (const std::string& name : NastyNames()) {
    for (bool tensor : {false, true}) {
      Submission s;
      s.round = join.result->round;
      s.gradients.push_back(builder.Make(Eigen::VectorXd::Ones(2)));
      if (tensor) {
        s.gradients[0][0].tensors[0].name = name;
      } else {
        s.gradients[0][0].player = name;
      }
      Reply reply;
      session->SubmitGradient(1, s, reply.Callback());
      ExpectBounded(reply.result.status(), tensor ? "tensor" : "player");
    }
  }
}

}  // namespace
}  // namespace gameopt
