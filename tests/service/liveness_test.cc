// Liveness through a real server on 127.0.0.1 (server/core/liveness.h), on the
// real clock: a worker that stops calling is dropped at its lease, within
// seconds, and the round proceeds under the quorum; status says dropped and
// why; Heartbeat keeps it and brings it back; a waiting call cancelled by the
// client's transport (what a killed process's closed connection does) drops its
// worker at once.
#include <string>

#include "client/worker/keepalive.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

constexpr double kLeaseSeconds = 1.0;
constexpr absl::Duration kNoticed = absl::Seconds(5);  // generous, loaded CI

class LivenessServiceTest : public ::testing::Test {
 protected:
  void Start(int quorum, double lease_seconds) {
    server_ = StartServer(TestServerOptions());
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub(server_->port());
    v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
    config.set_quorum(quorum);
    config.set_worker_lease_seconds(lease_seconds);
    absl::StatusOr<std::string> id = CreateSession(*stub_, config);
    ASSERT_TRUE(id.ok()) << id.status();
    session_ = *id;
  }

  v1::SubmitGradientRequest JoinAndAnswer() {
    v1::TaskResponse response;
    EXPECT_TRUE(Join(*stub_, session_, &response).ok());
    return GradientRequest(game_, session_, response.worker_id(),
                           response.task(), game_.x0());
  }

  v1::WorkerStatus Worker(int64_t id) {
    absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, session_);
    EXPECT_TRUE(status.ok());
    for (const v1::WorkerStatus& w : status->workers()) {
      if (w.worker_id() == id) return w;
    }
    return {};
  }

  grpc::Status Heartbeat(int64_t worker, v1::HeartbeatResponse* response) {
    v1::HeartbeatRequest request;
    request.set_session_id(session_);
    request.set_worker_id(worker);
    grpc::ClientContext context;
    return stub_->Heartbeat(&context, request, response);
  }

  const QuadraticGame game_ = QuadraticGame::TwoPlayer(7);
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
  std::string session_;
};

TEST_F(LivenessServiceTest, SilentWorkerIsDroppedWithinSecondsAndRoundGoesOn) {
  Start(/*quorum=*/1, kLeaseSeconds);
  const v1::SubmitGradientRequest a = JoinAndAnswer();
  JoinAndAnswer();  // worker 2 then goes silent, as a dead process
  const absl::Time start = absl::Now();
  auto call = SubmitAsync(*stub_, a);
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kNoticed));
  EXPECT_LT(absl::Now() - start, kNoticed);
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  EXPECT_EQ(call->response.task().step(), 1);
  const v1::WorkerStatus silent = Worker(2);
  EXPECT_EQ(silent.state(), "dropped");
  EXPECT_EQ(silent.worker_state(), v1::WORKER_STATE_DROPPED);
  EXPECT_THAT(silent.state_reason(), HasSubstr("lease"));
  EXPECT_GE(silent.idle_seconds(), kLeaseSeconds);
  // Its keepalive brings it back.
  v1::HeartbeatResponse response;
  ASSERT_TRUE(Heartbeat(2, &response).ok());
  EXPECT_EQ(response.state(), "active");
  EXPECT_EQ(response.worker_state(), v1::WORKER_STATE_ACTIVE);
  EXPECT_DOUBLE_EQ(response.worker_lease_seconds(), kLeaseSeconds);
  EXPECT_EQ(Worker(2).state(), "active");
  EXPECT_EQ(Worker(2).worker_state(), v1::WORKER_STATE_ACTIVE);
}

TEST_F(LivenessServiceTest, HeartbeatsKeepAComputingWorkerActive) {
  Start(/*quorum=*/1, kLeaseSeconds);
  JoinAndAnswer();
  for (int i = 0; i < 6; ++i) {
    absl::SleepFor(absl::Seconds(kLeaseSeconds / 3));
    v1::HeartbeatResponse response;
    ASSERT_TRUE(Heartbeat(1, &response).ok());
    EXPECT_EQ(response.state(), "active");
  }
  EXPECT_EQ(Worker(1).state(), "active");
}

TEST_F(LivenessServiceTest, CancelledWaitingCallDropsItsWorkerAtOnce) {
  Start(/*quorum=*/0, /*lease_seconds=*/-1.0);  // no lease: the cancel alone
  const v1::SubmitGradientRequest a = JoinAndAnswer();
  JoinAndAnswer();
  auto call = SubmitAsync(*stub_, a);
  ASSERT_TRUE(WaitForSubmitted(*stub_, session_, 1));
  call->context.TryCancel();
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kNoticed));
  ASSERT_TRUE(
      WaitFor([&] { return Worker(1).state() == "dropped"; }, kNoticed));
  EXPECT_THAT(Worker(1).state_reason(), HasSubstr("cancelled"));
  EXPECT_EQ(Worker(2).state(), "active");
}

TEST_F(LivenessServiceTest, LeaseIsSpelledOutInStatus) {
  Start(/*quorum=*/0, /*lease_seconds=*/0.0);
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, session_);
  ASSERT_TRUE(status.ok());
  EXPECT_DOUBLE_EQ(status->config().worker_lease_seconds(), 10.0);
}

}  // namespace
}  // namespace gameopt::testing

namespace gameopt::testing {
namespace {

// The C++ worker library's keepalive (client/worker/keepalive.h): armed
// while the worker computes, its heartbeats keep the worker active past
// its lease; disarmed (and silent), the worker is dropped.
TEST_F(LivenessServiceTest, WorkerLibraryKeepaliveRenewsTheLease) {
  constexpr double kLease = 3.0;  // above Keepalive::kFirstInterval
  Start(/*quorum=*/1, kLease);
  JoinAndAnswer();
  Keepalive keepalive(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials()),
      session_);
  keepalive.Arm(1);
  absl::SleepFor(absl::Seconds(1.5 * kLease));
  EXPECT_EQ(Worker(1).state(), "active");
  EXPECT_GE(keepalive.sent(), 2);
  keepalive.Disarm();
  EXPECT_TRUE(WaitFor([&] { return Worker(1).state() == "dropped"; },
                      absl::Seconds(2 * kLease)));
}

}  // namespace
}  // namespace gameopt::testing
