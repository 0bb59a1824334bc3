// Tests worker identity (a worker id is bound to the token that joined it) on a
// real server with a tokens file: a worker id is bound to the token that joined
// it, so another worker token can neither submit, heartbeat, leave nor rejoin
// as that worker (nor take it by name), a denied call changes nothing, admins
// act for any worker, and the binding survives a restart from --state_dir. The
// calls are those of the previous release's workers (no new field).
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/auth.h"
#include "tests/service/test_util.h"
#include "tests/tls/test_certs.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAdmin[] = "identity-admin-0123456789";
constexpr char kWorkerA[] = "identity-worker-a-0123456789";
constexpr char kWorkerB[] = "identity-worker-b-0123456789";
constexpr char kReader[] = "identity-reader-0123456789";
constexpr char kOne[] = "one";  // workers_per_round 1
constexpr char kTwo[] = "two";  // workers_per_round 2

// A fresh folder for one test.
std::string FreshDir() {
  std::string pattern = ::testing::TempDir() + "/worker_identity_XXXXXX";
  return mkdtemp(pattern.data()) == nullptr ? "" : pattern;
}

std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  return context;
}

class WorkerIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = FreshDir();
    ASSERT_FALSE(dir.empty());
    tokens_ = dir + "/tokens.txt";
    WriteTestFile(tokens_,
                  absl::StrCat(kAdmin, " admin\n", kWorkerA, " worker ", kOne,
                               " ", kTwo, "\n", kWorkerB, " worker ", kOne, " ",
                               kTwo, "\n", kReader, " reader *\n"));
    state_dir_ = dir + "/state";
    ASSERT_EQ(mkdir(state_dir_.c_str(), 0700), 0);
    Start();
    for (auto [id, k] : {std::pair{kOne, 1}, std::pair{kTwo, 2}}) {
      v1::CreateSessionRequest request;
      *request.mutable_config() =
          QuadraticConfig(QuadraticGame::TwoPlayer(1), v1::SIMGD, k, 10);
      request.set_session_id(id);
      v1::CreateSessionResponse response;
      grpc::Status status =
          stub_->CreateSession(As(kAdmin).get(), request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void Start() {
    GameOptServerOptions options = TestServerOptions();
    options.tokens_file = tokens_;
    options.state_dir = state_dir_;
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub(server_->port());
  }

  grpc::Status JoinAs(const std::string& token, const std::string& session,
                      int64_t worker_id, v1::TaskResponse* response,
                      const std::string& name = "",
                      bool resume_by_name = false) {
    v1::JoinSessionRequest request;
    request.set_session_id(session);
    request.set_worker_id(worker_id);
    request.set_worker_name(name);
    request.set_resume_by_name(resume_by_name);
    return stub_->JoinSession(As(token).get(), request, response);
  }

  grpc::Status HeartbeatAs(const std::string& token, const std::string& session,
                           int64_t worker_id) {
    v1::HeartbeatRequest request;
    request.set_session_id(session);
    request.set_worker_id(worker_id);
    v1::HeartbeatResponse response;
    return stub_->Heartbeat(As(token).get(), request, &response);
  }

  grpc::Status LeaveAs(const std::string& token, const std::string& session,
                       int64_t worker_id) {
    v1::LeaveSessionRequest request;
    request.set_session_id(session);
    request.set_worker_id(worker_id);
    v1::LeaveSessionResponse response;
    return stub_->LeaveSession(As(token).get(), request, &response);
  }

  // The session as the admin sees it, without the clock-dependent fields.
  std::string State(const std::string& session) {
    v1::GetSessionRequest request;
    request.set_session_id(session);
    v1::SessionStatus status;
    EXPECT_TRUE(stub_->GetSession(As(kAdmin).get(), request, &status).ok());
    for (v1::WorkerStatus& w : *status.mutable_workers()) {
      w.clear_idle_seconds();
    }
    return status.SerializeAsString();
  }

  static void ExpectDenied(const grpc::Status& status, int64_t worker_id) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << status.error_message();
    EXPECT_THAT(status.error_message(),
                HasSubstr(absl::StrCat("worker ", worker_id, " ")));
  }

  std::string tokens_;
  std::string state_dir_;
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(WorkerIdentityTest, AnotherTokenCannotActForAWorkerAndChangesNothing) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::TaskResponse joined;
  ASSERT_TRUE(JoinAs(kWorkerA, kOne, 0, &joined, "a").ok());
  const int64_t a = joined.worker_id();
  Eigen::VectorXd x = game.x0();
  const v1::SubmitGradientRequest submission =
      GradientRequest(game, kOne, a, joined.task(), x);
  const std::string before = State(kOne);

  v1::TaskResponse response;
  ExpectDenied(stub_->SubmitGradient(As(kWorkerB).get(), submission, &response),
               a);
  ExpectDenied(HeartbeatAs(kWorkerB, kOne, a), a);
  ExpectDenied(LeaveAs(kWorkerB, kOne, a), a);
  ExpectDenied(JoinAs(kWorkerB, kOne, a, &response), a);
  EXPECT_EQ(State(kOne), before);

  // The worker's own token goes on; the admin acts for any worker.
  EXPECT_TRUE(HeartbeatAs(kWorkerA, kOne, a).ok());
  EXPECT_TRUE(HeartbeatAs(kAdmin, kOne, a).ok());
  grpc::Status status =
      stub_->SubmitGradient(As(kWorkerA).get(), submission, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().step(), 1);
  EXPECT_TRUE(JoinAs(kWorkerA, kOne, a, &response).ok());
}

TEST_F(WorkerIdentityTest, ResumeByNameFindsOnlyTheCallersOwnWorkers) {
  v1::TaskResponse a, b, again;
  ASSERT_TRUE(JoinAs(kWorkerA, kTwo, 0, &a, "rank-0", true).ok());
  // Another token with the same name gets a worker of its own.
  ASSERT_TRUE(JoinAs(kWorkerB, kTwo, 0, &b, "rank-0", true).ok());
  EXPECT_NE(b.worker_id(), a.worker_id());
  ASSERT_TRUE(JoinAs(kWorkerA, kTwo, 0, &again, "rank-0", true).ok());
  EXPECT_EQ(again.worker_id(), a.worker_id());
}

TEST_F(WorkerIdentityTest, BindingSurvivesARestartFromTheStateDir) {
  v1::TaskResponse joined;
  ASSERT_TRUE(JoinAs(kWorkerA, kOne, 0, &joined, "a").ok());
  const int64_t a = joined.worker_id();
  server_->Shutdown();
  server_.reset();
  Start();
  ExpectDenied(HeartbeatAs(kWorkerB, kOne, a), a);
  ExpectDenied(JoinAs(kWorkerB, kOne, a, &joined), a);
  EXPECT_TRUE(JoinAs(kWorkerA, kOne, a, &joined).ok());
  EXPECT_EQ(joined.worker_id(), a);
}

// The raw (in-place parsed) calls decide the caller's
// token and role before they read the payload.
TEST_F(WorkerIdentityTest, RawCallsAuthorizeBeforeParsingThePayload) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials());
  const std::string malformed("\x0a\x05on", 4);  // a string cut short
  for (const char* method :
       {"JoinSession", "SubmitGradient", "SubmitJacobianProducts"}) {
    const std::string name = absl::StrCat("/gameopt.v1.GameOptimizer/", method);
    EXPECT_EQ(GenericCall(channel, name, malformed).status().code(),
              absl::StatusCode::kUnauthenticated)
        << method;
    EXPECT_EQ(GenericCall(channel, name, malformed, "not-a-token-0123456789")
                  .status()
                  .code(),
              absl::StatusCode::kUnauthenticated)
        << method;
    EXPECT_EQ(GenericCall(channel, name, malformed, kReader).status().code(),
              absl::StatusCode::kPermissionDenied)
        << method;
    EXPECT_EQ(GenericCall(channel, name, malformed, kWorkerA).status().code(),
              absl::StatusCode::kInvalidArgument)
        << method;
  }
}

TEST(TokenIdentityTest, IsStableDistinctAndNotTheToken) {
  const std::string a = TokenIdentity(kWorkerA);
  EXPECT_EQ(a, TokenIdentity(kWorkerA));
  EXPECT_NE(a, TokenIdentity(kWorkerB));
  EXPECT_EQ(a.find(kWorkerA), std::string::npos);
  EXPECT_EQ(a.size(), 7 + 32u);  // "sha256:" and 16 bytes in hex
}

}  // namespace
}  // namespace gameopt::testing
