// JoinSessionRequest.resume_by_name: a restarted worker process that keeps
// its name rejoins as the same worker.
#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;

class ResumeByNameTest : public ::testing::Test {
 protected:
  std::unique_ptr<Session> Make(int workers) {
    SessionConfig config = QuadraticConfig(QuadraticGame::Random({1, 1}, 2),
                                           AlgorithmKind::kSimGd);
    config.workers_per_round = workers;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok());
    return *std::move(session);
  }

  absl::StatusOr<Task> Join(Session& session, int64_t id, std::string name,
                            bool resume) {
    Reply reply;
    session.Join(id, std::move(name), reply.Callback(), nullptr, resume);
    EXPECT_TRUE(reply.called);
    return reply.result;
  }

  FakeClock clock_;
};

TEST_F(ResumeByNameTest, RejoinsAsTheWorkerWithThatNameInAnyState) {
  auto session = Make(2);
  ASSERT_EQ(Join(*session, 0, "rank0", true)->worker_id, 1);  // new
  ASSERT_EQ(Join(*session, 0, "rank1", true)->worker_id, 2);
  // Active: the same id again (no third worker).
  EXPECT_EQ(Join(*session, 0, "rank1", true)->worker_id, 2);
  // Left: back as the same id, active.
  ASSERT_TRUE(session->Leave(1).ok());
  EXPECT_EQ(Join(*session, 0, "rank0", true)->worker_id, 1);
  SessionInfo info = session->Info();
  ASSERT_EQ(info.workers.size(), 2u);
  EXPECT_EQ(info.workers[0].state, WorkerState::kActive);
  // Without the flag, the same name joins as a new worker (and the session
  // is full).
  EXPECT_EQ(Join(*session, 0, "rank0", false).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(ResumeByNameTest, AnUnknownOrEmptyNameJoinsAsNew) {
  auto session = Make(3);
  ASSERT_EQ(Join(*session, 0, "a", true)->worker_id, 1);
  EXPECT_EQ(Join(*session, 0, "b", true)->worker_id, 2);
  EXPECT_EQ(Join(*session, 0, "", true)->worker_id, 3);
}

TEST_F(ResumeByNameTest, ADroppedWorkerNeedsRoomAsARejoinByIdDoes) {
  auto session = Make(1);
  ASSERT_EQ(Join(*session, 0, "rank0", true)->worker_id, 1);
  ASSERT_TRUE(session->Leave(1).ok());
  ASSERT_EQ(Join(*session, 0, "other", true)->worker_id, 2);
  // Worker 1 left and worker 2 is active: no room for it, by name or by id.
  absl::StatusOr<Task> by_name = Join(*session, 0, "rank0", true);
  absl::StatusOr<Task> by_id = Join(*session, 1, "rank0", false);
  EXPECT_EQ(by_name.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(by_id.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(by_name.status().message(), by_id.status().message());
}

}  // namespace
}  // namespace gameopt
