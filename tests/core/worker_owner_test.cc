// Worker identity in the core (session.h, Caller): a worker is bound to the
// owner that joined it; other owners are refused, callers that act for any
// worker are not; an unowned worker (a server without tokens, an older
// checkpoint) is bound by the first owner that calls for it; snapshots keep
// the binding.
#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;

const Caller kA{"sha256:a", false};
const Caller kB{"sha256:b", false};
const Caller kAdmin{"sha256:admin", true};

class WorkerOwnerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Session> Make() {
    SessionConfig config = QuadraticConfig(QuadraticGame::Random({1, 1}, 2),
                                           AlgorithmKind::kSimGd);
    config.workers_per_round = 2;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok());
    return *std::move(session);
  }

  static absl::StatusCode JoinCode(Session& session, int64_t id,
                                   const Caller& caller) {
    Reply reply;
    session.Join(id, "", reply.Callback(), nullptr, false, caller);
    return reply.result.status().code();
  }

  FakeClock clock_;
};

constexpr absl::StatusCode kDenied = absl::StatusCode::kPermissionDenied;

TEST_F(WorkerOwnerTest, OnlyTheOwnerOrAnAdminActsForAWorker) {
  auto session = Make();
  ASSERT_EQ(JoinCode(*session, 0, kA), absl::StatusCode::kOk);
  EXPECT_EQ(session->Heartbeat(1, kB).status().code(), kDenied);
  EXPECT_EQ(session->Leave(1, kB).code(), kDenied);
  EXPECT_EQ(JoinCode(*session, 1, kB), kDenied);
  EXPECT_EQ(session->Info().workers[0].state, WorkerState::kActive);
  EXPECT_TRUE(session->Heartbeat(1, kA).ok());
  EXPECT_TRUE(session->Heartbeat(1, kAdmin).ok());
  EXPECT_TRUE(session->Heartbeat(1).ok());  // no tokens: no binding

  // A snapshot keeps the binding.
  const SessionSnapshot snapshot = session->Snapshot();
  ASSERT_EQ(snapshot.workers.size(), 1u);
  EXPECT_EQ(snapshot.workers[0].owner, kA.owner);
  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->Heartbeat(1, kB).status().code(), kDenied);
  EXPECT_TRUE((*restored)->Heartbeat(1, kA).ok());
}

TEST_F(WorkerOwnerTest, AnUnownedWorkerIsBoundByTheFirstOwnerNotByAnAdmin) {
  auto session = Make();
  ASSERT_EQ(JoinCode(*session, 0, Caller{}), absl::StatusCode::kOk);
  EXPECT_TRUE(session->Heartbeat(1, kAdmin).ok());  // binds nothing
  EXPECT_TRUE(session->Heartbeat(1, kB).ok());      // binds to B
  EXPECT_EQ(session->Heartbeat(1, kA).status().code(), kDenied);
  EXPECT_EQ(session->Snapshot().workers[0].owner, kB.owner);
}

TEST_F(WorkerOwnerTest, AnAdminsWorkerIsTheAdmins) {
  auto session = Make();
  ASSERT_EQ(JoinCode(*session, 0, kAdmin), absl::StatusCode::kOk);
  EXPECT_EQ(session->Heartbeat(1, kA).status().code(), kDenied);
}

}  // namespace
}  // namespace gameopt
