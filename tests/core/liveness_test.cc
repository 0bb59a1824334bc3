// Liveness (server/core/liveness.h): a worker that makes
// no call for its lease is dropped within the lease, not at the phase
// deadline, and the round proceeds under the quorum rules; Heartbeat keeps
// a computing worker active and brings a dropped one back; a waiting call
// cancelled by the transport drops its worker at once; Info says why.
#include "server/core/liveness.h"

#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;

constexpr absl::Duration kLease = absl::Seconds(5);

class LivenessTest : public ::testing::Test {
 protected:
  LivenessTest() : game_(QuadraticGame::Random({1, 1}, 2)) {
    SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kSimGd);
    config.workers_per_round = 2;
    config.quorum = 1;
    config.phase_deadline = absl::Minutes(10);
    config.worker_lease = kLease;
    session_ = *Session::Create("s1", config, &clock_);
    for (Reply& join : joins_) {
      session_->Join(0, "", join.Callback());
      EXPECT_TRUE(join.result.ok()) << join.result.status();
    }
  }

  Submission Answer(const Task& task) {
    SampleBuilder builder(session_->layout());
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.gradients.push_back(builder.Make(Eigen::VectorXd::Ones(2)));
    builders_.push_back(std::move(builder));
    return s;
  }

  WorkerInfo Worker(int64_t id) const {
    for (const WorkerInfo& w : session_->Info().workers) {
      if (w.id == id) return w;
    }
    ADD_FAILURE() << "no worker " << id;
    return {};
  }

  QuadraticGame game_;
  FakeClock clock_;
  std::unique_ptr<Session> session_;
  Reply joins_[2];
  std::vector<SampleBuilder> builders_;
};

TEST_F(LivenessTest, SilentWorkerIsDroppedAtItsLeaseAndTheRoundProceeds) {
  Reply waiting;
  session_->SubmitGradient(1, Answer(*joins_[0].result), waiting.Callback());
  EXPECT_FALSE(waiting.called);  // waits for worker 2
  // The next thing to do is worker 2's lease, not the phase deadline.
  EXPECT_EQ(session_->NextDeadline(), clock_.Now() + kLease);
  clock_.Advance(kLease - absl::Milliseconds(1));
  session_->CheckDeadline();
  EXPECT_FALSE(waiting.called);
  EXPECT_EQ(Worker(2).state, WorkerState::kActive);
  clock_.Advance(absl::Milliseconds(1));
  session_->CheckDeadline();
  EXPECT_EQ(Worker(2).state, WorkerState::kDropped);
  EXPECT_NE(Worker(2).reason.find("lease"), std::string::npos)
      << Worker(2).reason;
  EXPECT_EQ(Worker(2).missed_deadlines, 0);
  // Quorum 1 and every active worker in: the round closed.
  ASSERT_TRUE(waiting.called);
  ASSERT_TRUE(waiting.result.ok()) << waiting.result.status();
  EXPECT_EQ(waiting.result->step, 1);
}

TEST_F(LivenessTest, WaitingWorkerHoldsNoLease) {
  Reply waiting;
  session_->SubmitGradient(1, Answer(*joins_[0].result), waiting.Callback());
  session_->Heartbeat(2).IgnoreError();
  clock_.Advance(3 * kLease);
  ASSERT_TRUE(session_->Heartbeat(2).ok());
  session_->CheckDeadline();
  EXPECT_EQ(Worker(1).state, WorkerState::kActive);  // its call is in flight
}

TEST_F(LivenessTest, HeartbeatKeepsAComputingWorkerActiveAndRevivesIt) {
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(kLease / 2);
    absl::StatusOr<WorkerState> state = session_->Heartbeat(2);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(*state, WorkerState::kActive);
    session_->CheckDeadline();
    EXPECT_EQ(Worker(2).state, WorkerState::kActive);
  }
  clock_.Advance(kLease);
  session_->CheckDeadline();
  EXPECT_EQ(Worker(2).state, WorkerState::kDropped);
  absl::StatusOr<WorkerState> revived = session_->Heartbeat(2);
  ASSERT_TRUE(revived.ok());
  EXPECT_EQ(*revived, WorkerState::kActive);
  EXPECT_EQ(Worker(2).reason, "");
  EXPECT_EQ(session_->Heartbeat(9).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LivenessTest, CancelledWaitingCallDropsItsWorkerAtOnce) {
  Reply waiting;
  CallId call = 0;
  session_->SubmitGradient(1, Answer(*joins_[0].result), waiting.Callback(),
                           &call);
  ASSERT_NE(call, 0u);
  session_->Cancel(call);
  ASSERT_TRUE(waiting.called);
  EXPECT_EQ(waiting.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Worker(1).state, WorkerState::kDropped);
  EXPECT_EQ(Worker(1).reason, kCancelledReason);
  // Its submission stays; a retry of it makes it active again.
  Reply retry;
  session_->SubmitGradient(1, Answer(*joins_[0].result), retry.Callback());
  EXPECT_EQ(Worker(1).state, WorkerState::kActive);
}

TEST_F(LivenessTest, NoLeaseMeansOnlyTheDeadlineDrops) {
  SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kSimGd);
  config.workers_per_round = 2;
  config.worker_lease = absl::InfiniteDuration();
  config.phase_deadline = absl::Minutes(10);
  std::unique_ptr<Session> session = *Session::Create("s2", config, &clock_);
  Reply join;
  session->Join(0, "", join.Callback());
  EXPECT_EQ(session->NextDeadline(), clock_.Now() + absl::Minutes(10));
  clock_.Advance(absl::Minutes(9));
  session->CheckDeadline();
  EXPECT_EQ(session->Info().workers[0].state, WorkerState::kActive);
}

}  // namespace
}  // namespace gameopt

namespace gameopt {
namespace {

// The worker table stays bounded under join/leave churn
// (3,000 cycles left 3,000 entries before), so its checkpoint does too.
TEST(WorkerTableTest, StaysBoundedUnderJoinLeaveChurn) {
  const testing::QuadraticGame game = testing::QuadraticGame::Random({1, 1}, 4);
  SessionConfig config = testing::QuadraticConfig(game, AlgorithmKind::kSimGd);
  config.workers_per_round = 2;
  FakeClock clock;
  std::unique_ptr<Session> session = *Session::Create("s1", config, &clock);
  testing::Reply stays;
  session->Join(0, "stays", stays.Callback());
  for (int i = 0; i < 3000; ++i) {
    testing::Reply join;
    session->Join(0, "", join.Callback());
    ASSERT_TRUE(join.result.ok()) << i << ": " << join.result.status();
    ASSERT_TRUE(session->Leave(join.result->worker_id).ok());
  }
  const SessionInfo info = session->Info();
  // 64 + K inactive (pruned at each join), the one that left after the
  // last join, and the active one.
  EXPECT_LE(info.workers.size(),
            static_cast<size_t>(kMaxInactiveWorkers + 2 + 1 + 1));
  EXPECT_EQ(info.workers.front().name, "stays");        // active ones are kept
  EXPECT_EQ(session->Snapshot().next_worker_id, 3002);  // ids not reused
  // The newest left worker can still rejoin by id.
  testing::Reply rejoin;
  session->Join(3001, "", rejoin.Callback());
  EXPECT_TRUE(rejoin.result.ok()) << rejoin.result.status();
}

}  // namespace
}  // namespace gameopt
