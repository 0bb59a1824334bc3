// Reported scalars (server/core/scalars.h): validation, and the session's
// per-step mean by name.
#include "server/core/scalars.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

TEST(ValidateScalars, AcceptsWellFormedEntries) {
  const std::string longest(kMaxScalarNameLength, 'a');
  std::vector<ScalarView> ok = {
      {"loss/generator", 1.0}, {"a.b:c-d_E9", -2.5}, {longest, 0.0}};
  EXPECT_TRUE(ValidateScalars(ok).ok());
  EXPECT_TRUE(ValidateScalars({}).ok());
}

TEST(ValidateScalars, RejectsNamingTheOffendingEntry) {
  const std::string too_long(kMaxScalarNameLength + 1, 'a');
  struct Case {
    std::vector<ScalarView> scalars;
    std::string expected;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : std::vector<Case>{
           {{{"ok", 1}, {"", 1}}, "scalars[1].name"},
           {{{"has space", 1}}, "scalars[0].name"},
           {{{too_long, 1}}, "scalars[0].name"},
           {{{"a", 1}, {"l", nan}}, "scalars[1] ('l').value"},
           {{{"l", -inf}}, "scalars[0] ('l').value"},
           {{{"l", 1}, {"m", 2}, {"l", 3}}, "scalars[2]"},
       }) {
    absl::Status status = ValidateScalars(c.scalars);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(c.expected), std::string::npos) << status;
  }
  std::vector<ScalarView> many(kMaxScalars + 1, ScalarView{"x", 1});
  EXPECT_EQ(ValidateScalars(many).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ScalarAccumulator, AveragesPerNameOverTheEntriesThatReportedIt) {
  ScalarAccumulator acc;
  acc.Add({{"b", 1.0}, {"a", 2.0}});
  acc.Add({{"b", 4.0}});
  const std::vector<NamedValue> means = acc.Means();
  ASSERT_EQ(means.size(), 2u);
  EXPECT_EQ(means[0].name, "a");
  EXPECT_EQ(means[0].value, 2.0);
  EXPECT_EQ(means[1].name, "b");
  EXPECT_EQ(means[1].value, 2.5);
}

class SessionScalarsTest : public ::testing::Test {
 protected:
  SessionScalarsTest() : game_(QuadraticGame::Random({2, 2}, 3)) {}

  std::unique_ptr<Session> Make(AlgorithmKind kind, int workers) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = workers;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok());
    return *std::move(session);
  }

  Task Join(Session& session) {
    Reply reply;
    session.Join(0, "", reply.Callback());
    EXPECT_TRUE(reply.result.ok());
    return *reply.result;
  }

  Submission Gradient(const Task& task, SampleBuilder& builder,
                      std::vector<ScalarView> scalars) {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    s.gradients.push_back(
        builder.Make(game_.Xi(ToEigen(*task.params)), task.players));
    s.scalars = std::move(scalars);
    return s;
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_F(SessionScalarsTest, ShowsTheLastStepsMeanPerName) {
  auto session = Make(AlgorithmKind::kSimGd, 2);
  Task a = Join(*session), b = Join(*session);
  SampleBuilder builder(session->layout());
  Reply ra, rb;
  session->SubmitGradient(
      a.worker_id, Gradient(a, builder, {{"loss/p0", 1.0}, {"only_a", 7.0}}),
      ra.Callback());
  EXPECT_TRUE(session->Info().scalars.empty());  // step not complete
  session->SubmitGradient(b.worker_id, Gradient(b, builder, {{"loss/p0", 2.0}}),
                          rb.Callback());
  ASSERT_TRUE(rb.result.ok());
  std::vector<NamedValue> scalars = session->Info().scalars;
  ASSERT_EQ(scalars.size(), 2u);
  EXPECT_EQ(scalars[0].name, "loss/p0");
  EXPECT_EQ(scalars[0].value, 1.5);
  EXPECT_EQ(scalars[1].name, "only_a");
  EXPECT_EQ(scalars[1].value, 7.0);
  // The next step replaces them; a step without scalars shows none.
  Reply ra2, rb2;
  session->SubmitGradient(a.worker_id, Gradient(*ra.result, builder, {}),
                          ra2.Callback());
  session->SubmitGradient(b.worker_id, Gradient(*rb.result, builder, {}),
                          rb2.Callback());
  ASSERT_TRUE(rb2.result.ok());
  EXPECT_TRUE(session->Info().scalars.empty());
}

TEST_F(SessionScalarsTest, AveragesOverEveryGradientRoundOfTheStep) {
  // Extragradient: two gradient rounds per step.
  auto session = Make(AlgorithmKind::kExtragradient, 1);
  Task task = Join(*session);
  SampleBuilder builder(session->layout());
  Reply first;
  session->SubmitGradient(task.worker_id, Gradient(task, builder, {{"l", 1.0}}),
                          first.Callback());
  ASSERT_TRUE(first.result.ok());
  EXPECT_TRUE(session->Info().scalars.empty());
  Reply second;
  session->SubmitGradient(task.worker_id,
                          Gradient(*first.result, builder, {{"l", 4.0}}),
                          second.Callback());
  ASSERT_TRUE(second.result.ok());
  ASSERT_EQ(session->Info().scalars.size(), 1u);
  EXPECT_EQ(session->Info().scalars[0].value, 2.5);
}

TEST_F(SessionScalarsTest, InvalidScalarsAreRejectedAndChangeNothing) {
  auto session = Make(AlgorithmKind::kSimGd, 1);
  Task task = Join(*session);
  SampleBuilder builder(session->layout());
  Reply bad;
  session->SubmitGradient(
      task.worker_id,
      Gradient(
          task, builder,
          {{"fine", 1.0}, {"bad", std::numeric_limits<double>::quiet_NaN()}}),
      bad.Callback());
  EXPECT_EQ(bad.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.result.status().message().find("scalars[1] ('bad')"),
            std::string::npos)
      << bad.result.status();
  EXPECT_EQ(session->Info().step, 0);
  EXPECT_EQ(session->Info().submitted, 0);
  Reply good;
  session->SubmitGradient(task.worker_id,
                          Gradient(task, builder, {{"fine", 3.0}}),
                          good.Callback());
  ASSERT_TRUE(good.result.ok());
  ASSERT_EQ(session->Info().scalars.size(), 1u);
  EXPECT_EQ(session->Info().scalars[0].value, 3.0);
}

}  // namespace
}  // namespace gameopt
