// Tests server/service/game_optimizer_service.h through a real server on
// 127.0.0.1 and real stubs: retries, deadlines, quorum failures,
// cancellation, parameter versions, status and deletion. (Rounds of every
// algorithm: wire_rounds_test.cc.)
#include "server/service/game_optimizer_service.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/submission.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

// One SGD step on O(1) values computed by Eigen here and by the core there:
// they may differ only by FMA contraction, a few ulps of 1 (~2e-16 each).
constexpr double kOneStepTolerance = 1e-12;
// How long a waiting call may take to be answered once it can be.
constexpr absl::Duration kAnswerTimeout = absl::Seconds(5);

// A session of `workers` workers whose phases wait `deadline_seconds`.
struct Fixture {
  explicit Fixture(int workers, int quorum = 0, double deadline_seconds = -1,
                   const Clock* clock = RealClock()) {
    GameOptServerOptions options = TestServerOptions();
    options.clock = clock;
    server = StartServer(options);
    if (server == nullptr) return;
    stub = NewStub(server->port());
    config = QuadraticConfig(game, v1::SIMGD, workers, 0);
    config.set_quorum(quorum);
    config.set_phase_deadline_seconds(deadline_seconds);
    absl::StatusOr<std::string> id = CreateSession(*stub, config);
    if (id.ok()) session_id = *id;
  }
  // Joins as a new worker; the request that answers its first task.
  v1::SubmitGradientRequest JoinAndAnswer(const std::string& name) {
    v1::TaskResponse response;
    grpc::Status status = Join(*stub, session_id, &response, 0, name);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return GradientRequest(game, session_id, response.worker_id(),
                           response.task(), game.x0());
  }
  int64_t live() const { return server->service().live_reactors(); }
  bool Waiting(int n) {
    return WaitForSubmitted(*stub, session_id, n) &&
           WaitFor([&] { return live() == n; });
  }

  const QuadraticGame game = QuadraticGame::TwoPlayer(31);
  std::unique_ptr<GameOptServer> server;
  std::unique_ptr<v1::GameOptimizer::Stub> stub;
  v1::SessionConfig config;
  std::string session_id;
};

TEST(GameOptimizerService, RetriedSubmissionIsAnsweredAgainAndAppliedOnce) {
  Fixture f(/*workers=*/2);
  ASSERT_FALSE(f.session_id.empty());
  const v1::SubmitGradientRequest a = f.JoinAndAnswer("alice");
  const v1::SubmitGradientRequest b = f.JoinAndAnswer("bob");
  auto first = SubmitAsync(*f.stub, a);
  ASSERT_TRUE(f.Waiting(1));
  auto retry = SubmitAsync(*f.stub, a);  // while the first still waits
  ASSERT_TRUE(WaitFor([&] { return f.live() == 2; }));
  v1::TaskResponse for_b;
  ASSERT_TRUE(Submit(*f.stub, b, &for_b).ok());
  ASSERT_TRUE(first->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  ASSERT_TRUE(retry->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  ASSERT_TRUE(first->status.ok()) << first->status.error_message();
  ASSERT_TRUE(retry->status.ok()) << retry->status.error_message();
  EXPECT_EQ(first->response.task().round(), 1);
  EXPECT_EQ(first->response.SerializeAsString(),
            retry->response.SerializeAsString());
  v1::TaskResponse late;  // after the round closed: answered at once
  ASSERT_TRUE(Submit(*f.stub, a, &late).ok());
  EXPECT_EQ(late.SerializeAsString(), first->response.SerializeAsString());

  absl::StatusOr<v1::SessionStatus> status = GetSession(*f.stub, f.session_id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->step(), 1);
  EXPECT_EQ(status->round(), 1);
  Recording recording;
  recording.Add(a);
  recording.Add(b);
  ExpectMatchesCore(*f.stub, f.session_id, f.config, recording, 2);
  EXPECT_TRUE(WaitFor([&] { return f.live() == 0; }));
}

TEST(GameOptimizerService, StragglerIsDroppedAtTheDeadlineAndQuorumProceeds) {
  FakeClock clock;
  Fixture f(/*workers=*/2, /*quorum=*/1, /*deadline_seconds=*/10, &clock);
  ASSERT_FALSE(f.session_id.empty());
  const v1::SubmitGradientRequest a = f.JoinAndAnswer("alice");
  f.JoinAndAnswer("bob");  // and never submits
  auto call = SubmitAsync(*f.stub, a);
  ASSERT_TRUE(f.Waiting(1));
  clock.Advance(absl::Seconds(9));
  absl::SleepFor(GameOptServer::kMaxDeadlinePoll * 3);
  EXPECT_FALSE(call->done.HasBeenNotified());  // not before the deadline
  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  EXPECT_EQ(call->response.task().step(), 1);

  absl::StatusOr<v1::SessionStatus> status = GetSession(*f.stub, f.session_id);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->workers_size(), 2);
  EXPECT_EQ(status->workers(1).name(), "bob");
  EXPECT_EQ(status->workers(1).state(), "dropped");
  EXPECT_EQ(status->workers(1).missed_deadlines(), 1);
  // x1 = x0 - lr * (alice's gradient), bob's absent sample left out.
  const Eigen::VectorXd expected =
      f.game.x0() - 0.05 * DecodeVector(f.game, a.gradients(0));
  absl::StatusOr<v1::GetParametersResponse> params =
      GetParameters(*f.stub, f.session_id);
  ASSERT_TRUE(params.ok());
  EXPECT_LT((DecodeVector(f.game, params->params()) - expected).norm(),
            kOneStepTolerance);
}

TEST(GameOptimizerService, MissedQuorumAbortsWaitersNamingTheMissingWorker) {
  FakeClock clock;
  Fixture f(/*workers=*/2, /*quorum=*/0, /*deadline_seconds=*/10, &clock);
  ASSERT_FALSE(f.session_id.empty());
  const v1::SubmitGradientRequest a = f.JoinAndAnswer("alice");
  const v1::SubmitGradientRequest b = f.JoinAndAnswer("bob");
  auto call = SubmitAsync(*f.stub, a);
  ASSERT_TRUE(f.Waiting(1));
  clock.Advance(absl::Seconds(11));
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  EXPECT_EQ(call->status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(call->status.error_message(), HasSubstr("2 (bob)"));
  EXPECT_THAT(call->status.error_message(), HasSubstr("quorum"));
  EXPECT_TRUE(WaitFor([&] { return f.live() == 0; }));

  // The round stays open with alice's sample: bob closes it, alice's retry
  // gets the next task, and the step is applied once.
  v1::TaskResponse for_b, for_a;
  ASSERT_TRUE(Submit(*f.stub, b, &for_b).ok());
  ASSERT_TRUE(Submit(*f.stub, a, &for_a).ok());
  EXPECT_EQ(for_a.task().round(), 1);
  EXPECT_EQ(for_b.task().round(), 1);
  Recording recording;
  recording.Add(a);
  recording.Add(b);
  ExpectMatchesCore(*f.stub, f.session_id, f.config, recording, 2);
}

// The service hands the request's gRPC slices to the session, which keeps
// a gradient sent in its dtype where it arrived (server/core/sample_set.h):
// no decode buffer next to the receive buffers. Values of the other dtype
// are decoded into the session's.
TEST(GameOptimizerService, SamplesInTheSessionsDtypeStayInTheRequest) {
  Fixture f(/*workers=*/1);  // SimGD, float64
  ASSERT_FALSE(f.session_id.empty());
  v1::TaskResponse response;
  ASSERT_TRUE(Join(*f.stub, f.session_id, &response, 0, "alice").ok());
  for (v1::DType dtype : {v1::FLOAT64, v1::FLOAT32}) {
    SCOPED_TRACE(v1::DType_Name(dtype));
    const int64_t packed = PackedSamples();
    const int64_t referenced = ReferencedSamples();
    const v1::Task task = response.task();
    const v1::SubmitGradientRequest request = GradientRequest(
        f.game, f.session_id, response.worker_id(), task, f.game.x0(), dtype);
    ASSERT_TRUE(Submit(*f.stub, request, &response).ok());
    EXPECT_EQ(response.task().step(), task.step() + 1);
    const int64_t expected = dtype == v1::FLOAT64 ? task.num_samples() : 0;
    EXPECT_EQ(PackedSamples() - packed, expected);
    EXPECT_EQ(ReferencedSamples() - referenced, expected);
  }
}

TEST(GameOptimizerService, CancelledCallsLeaveNoReactorBehind) {
  Fixture f(/*workers=*/2);
  ASSERT_FALSE(f.session_id.empty());
  const v1::SubmitGradientRequest a = f.JoinAndAnswer("alice");
  const v1::SubmitGradientRequest b = f.JoinAndAnswer("bob");

  auto cancelled = SubmitAsync(*f.stub, a);
  ASSERT_TRUE(f.Waiting(1));
  cancelled->context.TryCancel();
  ASSERT_TRUE(cancelled->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  EXPECT_EQ(cancelled->status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return f.live() == 0; }));

  auto expired = SubmitAsync(*f.stub, a, absl::Milliseconds(200));
  ASSERT_TRUE(expired->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  EXPECT_EQ(expired->status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitFor([&] { return f.live() == 0; }));

  // Alice's submission stayed in the round.
  v1::TaskResponse for_b;
  ASSERT_TRUE(Submit(*f.stub, b, &for_b).ok());
  EXPECT_EQ(for_b.task().round(), 1);
  Recording recording;
  recording.Add(a);
  recording.Add(b);
  ExpectMatchesCore(*f.stub, f.session_id, f.config, recording, 2);
}

TEST(GameOptimizerService, SendsParametersOnlyWhenTheWorkerLacksThem) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const QuadraticGame game = QuadraticGame::TwoPlayer(41);
  auto stub = NewStub(server->port());
  absl::StatusOr<std::string> id =
      CreateSession(*stub, QuadraticConfig(game, v1::CONOPT, 1, 0));
  ASSERT_TRUE(id.ok()) << id.status();
  v1::TaskResponse join, products, gradient, next_products;
  ASSERT_TRUE(Join(*stub, *id, &join).ok());
  EXPECT_TRUE(join.task().params_included());
  const Eigen::VectorXd x0 = DecodeVector(game, join.task().params());
  EXPECT_TRUE(x0 == game.x0());
  ASSERT_TRUE(
      Submit(*stub,
             GradientRequest(game, *id, join.worker_id(), join.task(), x0),
             &products)
          .ok());
  ASSERT_TRUE(
      Submit(*stub,
             ProductsRequest(game, *id, join.worker_id(), products.task()),
             &gradient)
          .ok());
  ASSERT_EQ(gradient.task().kind(), v1::GRADIENT);
  EXPECT_TRUE(gradient.task().params_included());  // a new point
  const Eigen::VectorXd x1 = DecodeVector(game, gradient.task().params());
  ASSERT_TRUE(
      Submit(*stub,
             GradientRequest(game, *id, join.worker_id(), gradient.task(), x1),
             &next_products)
          .ok());
  ASSERT_EQ(next_products.task().kind(), v1::PRODUCTS);
  EXPECT_EQ(next_products.task().params_version(),
            gradient.task().params_version());
  EXPECT_FALSE(next_products.task().params_included());  // same point
  EXPECT_EQ(next_products.task().probes_size(), 1);
}

// LOLA's first task asks for the cross gradients of the first player's
// loss (CROSS_GRADIENT, loss_player); a worker that answers it as a
// GRADIENT task (no loss_player) gets FAILED_PRECONDITION naming the task
// kind, and its submission changes nothing; echoing loss_player goes on.
TEST(GameOptimizerService, LolaAsksForCrossGradientsAndRefusesOldWorkers) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const QuadraticGame game = QuadraticGame::TwoPlayer(43);
  auto stub = NewStub(server->port());
  v1::SessionConfig config = QuadraticConfig(game, v1::LOLA, 1, 0);
  config.mutable_algorithm()->set_lola_alpha(0.2);
  absl::StatusOr<std::string> id = CreateSession(*stub, config);
  ASSERT_TRUE(id.ok()) << id.status();
  v1::TaskResponse join, next;
  ASSERT_TRUE(Join(*stub, *id, &join).ok());
  ASSERT_EQ(join.task().kind(), v1::CROSS_GRADIENT);
  EXPECT_EQ(join.task().loss_player(), game.players()[0].name);
  EXPECT_EQ(join.task().players_size(), 2);
  const Eigen::VectorXd x0 = DecodeVector(game, join.task().params());
  v1::SubmitGradientRequest request =
      GradientRequest(game, *id, join.worker_id(), join.task(), x0);
  request.clear_loss_player();  // as a worker that knows only GRADIENT
  const grpc::Status refused = Submit(*stub, request, &next);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("CROSS_GRADIENT"), std::string::npos)
      << refused.error_message();
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub, *id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->submitted(), 0);
  EXPECT_EQ(status->config().algorithm().lola_alpha(), 0.2);
  request.set_loss_player(join.task().loss_player());
  ASSERT_TRUE(Submit(*stub, request, &next).ok());
  EXPECT_EQ(next.task().kind(), v1::CROSS_GRADIENT);
  EXPECT_EQ(next.task().loss_player(), game.players()[1].name);
}

TEST(GameOptimizerService, ReportsSessionsAndDeletesThem) {
  Fixture f(/*workers=*/2);
  ASSERT_FALSE(f.session_id.empty());
  const v1::SubmitGradientRequest a = f.JoinAndAnswer("alice");
  f.JoinAndAnswer("bob");
  auto waiting = SubmitAsync(*f.stub, a);
  ASSERT_TRUE(f.Waiting(1));

  grpc::ClientContext list_context;
  v1::ListSessionsResponse list;
  ASSERT_TRUE(
      f.stub->ListSessions(&list_context, v1::ListSessionsRequest(), &list)
          .ok());
  ASSERT_EQ(list.sessions_size(), 1);
  const v1::SessionStatus& status = list.sessions(0);
  EXPECT_EQ(status.session_id(), f.session_id);
  EXPECT_EQ(status.submitted(), 1);
  EXPECT_EQ(status.config().workers_per_round(), 2);
  EXPECT_EQ(status.config().algorithm().kind(), v1::SIMGD);
  EXPECT_EQ(status.config().players(0).tensors(0).shape_size(), 2);
  EXPECT_TRUE(status.config().players(0).tensors(0).data().empty());
  ASSERT_EQ(status.workers_size(), 2);
  EXPECT_EQ(status.workers(0).name(), "alice");
  EXPECT_EQ(status.workers(0).last_round(), 0);

  grpc::ClientContext leave_context;
  v1::LeaveSessionRequest leave;
  leave.set_session_id(f.session_id);
  leave.set_worker_id(2);
  v1::LeaveSessionResponse left;
  ASSERT_TRUE(f.stub->LeaveSession(&leave_context, leave, &left).ok());
  absl::StatusOr<v1::SessionStatus> after = GetSession(*f.stub, f.session_id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->workers(1).state(), "left");
  EXPECT_EQ(after->workers(1).worker_state(), v1::WORKER_STATE_LEFT);

  grpc::ClientContext delete_context;
  v1::DeleteSessionRequest request;
  request.set_session_id(f.session_id);
  v1::DeleteSessionResponse deleted;
  ASSERT_TRUE(f.stub->DeleteSession(&delete_context, request, &deleted).ok());
  ASSERT_TRUE(waiting->done.WaitForNotificationWithTimeout(kAnswerTimeout));
  EXPECT_EQ(waiting->status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(waiting->status.error_message(), HasSubstr("deleted"));
  EXPECT_EQ(GetSession(*f.stub, f.session_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(WaitFor([&] { return f.live() == 0; }));
}

}  // namespace
}  // namespace gameopt::testing
