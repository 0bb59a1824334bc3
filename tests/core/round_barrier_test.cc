// RoundBarrier (server/core/round_barrier.h): who owes the open round an
// answer, and from it close, quorum, missing and drop, without a session.
#include "server/core/round_barrier.h"

#include <vector>

#include "gtest/gtest.h"

namespace gameopt {
namespace {

using Kind = RoundBarrier::Kind;

// K workers joined, a gradient round open.
RoundBarrier Joined(int workers_per_round, int quorum, int joined) {
  RoundBarrier barrier(workers_per_round, quorum);
  for (int64_t id = 1; id <= joined; ++id) barrier.Join(id);
  return barrier;
}

TEST(RoundBarrier, GradientRoundClosesWithKSubmissions) {
  RoundBarrier barrier = Joined(3, 0, 3);
  EXPECT_EQ(barrier.Quorum(), 3);
  for (int64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(barrier.Owes(id)) << id;
    EXPECT_FALSE(barrier.ShouldClose()) << id;
    barrier.Submit(id);
    EXPECT_FALSE(barrier.Owes(id)) << id;
  }
  EXPECT_TRUE(barrier.ShouldClose());
  EXPECT_EQ(barrier.submitted(), (std::vector<int64_t>{1, 2, 3}));
  barrier.Open(Kind::kGradient);
  EXPECT_EQ(barrier.count(), 0);
  EXPECT_TRUE(barrier.Owes(2));
}

TEST(RoundBarrier, SubmittersAreKeptSortedWhateverTheOrder) {
  RoundBarrier barrier = Joined(3, 0, 3);
  barrier.Submit(3);
  barrier.Submit(1);
  barrier.Submit(2);
  EXPECT_EQ(barrier.submitted(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(RoundBarrier, WaitsForWorkersThatNeverJoined) {
  RoundBarrier barrier = Joined(3, 2, 2);
  barrier.Submit(1);
  barrier.Submit(2);
  // Everyone present answered and the quorum is there, but the third seat
  // was never taken: the round waits (the deadline decides).
  EXPECT_FALSE(barrier.ShouldClose());
  EXPECT_TRUE(barrier.QuorumReached());
  const RoundBarrier::Missing missing = barrier.missing();
  EXPECT_TRUE(missing.workers.empty());
  EXPECT_EQ(missing.never_joined, 1);
}

TEST(RoundBarrier, DeparturesDoNotStallAGradientRound) {
  RoundBarrier barrier = Joined(3, 2, 3);
  barrier.SetState(3, WorkerState::kLeft);
  EXPECT_FALSE(barrier.Owes(3));
  barrier.Submit(1);
  EXPECT_FALSE(barrier.ShouldClose());  // below the quorum of 2
  barrier.Submit(2);
  EXPECT_TRUE(barrier.ShouldClose());  // all active in, quorum, K joined
  // A left worker is not missing by id; its seat counts as one no worker
  // holds.
  const RoundBarrier::Missing missing = barrier.missing();
  EXPECT_TRUE(missing.workers.empty());
  EXPECT_EQ(missing.never_joined, 1);
}

TEST(RoundBarrier, ADroppedWorkerIsMissingButNotWaitedFor) {
  RoundBarrier barrier = Joined(3, 2, 3);
  barrier.SetState(2, WorkerState::kDropped);
  EXPECT_TRUE(barrier.Owes(2));  // it may still answer
  barrier.Submit(1);
  barrier.Submit(3);
  EXPECT_TRUE(barrier.ShouldClose());
  EXPECT_EQ(barrier.missing().workers, (std::vector<int64_t>{2}));
  // The deadline drops only active workers: 2 is dropped already.
  EXPECT_TRUE(barrier.DropMissing().empty());
}

TEST(RoundBarrier, DeadlineDropsTheActiveWorkersThatOweAnAnswer) {
  RoundBarrier barrier = Joined(4, 2, 4);
  barrier.SetState(4, WorkerState::kLeft);
  barrier.Submit(1);
  EXPECT_FALSE(barrier.QuorumReached());
  barrier.Submit(3);
  EXPECT_TRUE(barrier.QuorumReached());
  EXPECT_EQ(barrier.missing().workers, (std::vector<int64_t>{2}));
  EXPECT_EQ(barrier.DropMissing(), (std::vector<int64_t>{2}));
  EXPECT_EQ(barrier.state(2), WorkerState::kDropped);
  EXPECT_EQ(barrier.state(4), WorkerState::kLeft);
  EXPECT_EQ(barrier.active(), 2);
  EXPECT_TRUE(barrier.ShouldClose());
}

TEST(RoundBarrier, ProductsRoundWaitsForTheSampleHoldersOnly) {
  RoundBarrier barrier = Joined(3, 0, 3);
  for (int64_t id = 1; id <= 3; ++id) barrier.Submit(id);
  // Worker 2's samples were all invalid (dropped): it holds none.
  barrier.ClearHolders();
  barrier.AddHolder(1, 0, 2);
  barrier.AddHolder(2, 2, 0);
  barrier.AddHolder(3, 2, 2);
  barrier.Open(Kind::kProducts);
  EXPECT_EQ(barrier.holders().size(), 2u);
  EXPECT_EQ(barrier.holders().at(3), 2);
  EXPECT_FALSE(barrier.HasRole(2));
  EXPECT_FALSE(barrier.Owes(2));
  EXPECT_EQ(barrier.Quorum(), 2);  // the configured 3, at most the holders
  barrier.Submit(3);
  EXPECT_FALSE(barrier.ShouldClose());
  EXPECT_EQ(barrier.missing().workers, (std::vector<int64_t>{1}));
  EXPECT_EQ(barrier.missing().never_joined, 0);  // gradient rounds only
  barrier.Submit(1);
  EXPECT_TRUE(barrier.ShouldClose());
}

TEST(RoundBarrier, ProductsRoundWithoutActiveHoldersWaitsForTheDeadline) {
  RoundBarrier barrier = Joined(2, 0, 2);
  barrier.AddHolder(1, 0, 1);
  barrier.Open(Kind::kProducts);
  barrier.SetState(1, WorkerState::kDropped);
  EXPECT_EQ(barrier.Quorum(), 1);
  EXPECT_FALSE(barrier.ShouldClose());  // nobody answered
  EXPECT_FALSE(barrier.QuorumReached());
  barrier.Submit(1);                    // the dropped holder answers after all
  EXPECT_FALSE(barrier.ShouldClose());  // no active worker has a role
  EXPECT_TRUE(barrier.QuorumReached());
}

TEST(RoundBarrier, UnjoinTakesBackTheSeat) {
  RoundBarrier barrier = Joined(2, 0, 2);
  EXPECT_EQ(barrier.joined_ever(), 2);
  barrier.Unjoin(2);
  EXPECT_FALSE(barrier.Knows(2));
  EXPECT_FALSE(barrier.Owes(2));
  EXPECT_EQ(barrier.joined_ever(), 1);
  barrier.Submit(1);
  EXPECT_FALSE(barrier.ShouldClose());  // K = 2 never joined
  EXPECT_EQ(barrier.missing().never_joined, 1);
}

TEST(RoundBarrier, ForgetKeepsJoinedEverAndDropsTheHolding) {
  RoundBarrier barrier = Joined(2, 1, 2);
  barrier.AddHolder(2, 0, 1);
  barrier.SetState(2, WorkerState::kLeft);
  barrier.Forget(2);
  EXPECT_EQ(barrier.joined_ever(), 2);
  EXPECT_FALSE(barrier.Holds(2));
  barrier.Submit(1);
  EXPECT_TRUE(barrier.ShouldClose());  // all active in, quorum 1, K joined
}

TEST(RoundBarrier, RestoredWorkersAreNotCountedAsJoins) {
  RoundBarrier barrier(2, 0);
  barrier.Restore(1, WorkerState::kActive);
  barrier.Restore(2, WorkerState::kDropped);
  EXPECT_EQ(barrier.joined_ever(), 0);
  barrier.set_joined_ever(2);
  EXPECT_EQ(barrier.active(), 1);
  barrier.Submit(1);
  EXPECT_FALSE(barrier.ShouldClose());  // gradient: below the quorum of 2
  barrier.Submit(2);
  EXPECT_TRUE(barrier.ShouldClose());  // K submissions
}

TEST(WorkerState, NamesRoundTrip) {
  for (WorkerState state :
       {WorkerState::kActive, WorkerState::kDropped, WorkerState::kLeft}) {
    EXPECT_EQ(ParseWorkerState(WorkerStateName(state)), state);
  }
  EXPECT_EQ(std::string(WorkerStateName(WorkerState::kDropped)), "dropped");
  EXPECT_FALSE(ParseWorkerState("Active").has_value());
  EXPECT_FALSE(ParseWorkerState("").has_value());
}

}  // namespace
}  // namespace gameopt
