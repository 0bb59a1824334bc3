// Tests bearer-token authorization of a real GameOptServer with TLS on
// 127.0.0.1 (server/service/auth.h and its use in every handler): every RPC
// for every role, allowed and denied, with the state untouched by a denied
// call; no token or a bad one; ListSessions filtered by the token; no token
// ever in the log.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"
#include "tests/service/tls_test_util.h"
#include "tests/tls/test_certs.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

class TlsAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(TestCerts::Get().ok()) << "make_test_certs.sh failed";
    GameOptServerOptions options = TlsOptions();
    options.log = log_.Sink();
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = TlsStub(server_->port());
  }

  // Deletes every session and creates kMine and kOther (as admin).
  void ResetSessions() {
    const v1::ListSessionsResponse listed = List(kAdminToken);
    for (const v1::SessionStatus& session : listed.sessions()) {
      v1::DeleteSessionRequest request;
      request.set_session_id(session.session_id());
      v1::DeleteSessionResponse response;
      ASSERT_TRUE(
          stub_->DeleteSession(Context(kAdminToken).get(), request, &response)
              .ok());
    }
    for (const char* id : {kMine, kOther}) {
      v1::CreateSessionRequest request;
      *request.mutable_config() =
          QuadraticConfig(QuadraticGame::TwoPlayer(1), v1::SIMGD, 1, 10);
      request.set_session_id(id);
      v1::CreateSessionResponse response;
      grpc::Status status =
          stub_->CreateSession(Context(kAdminToken).get(), request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ASSERT_EQ(response.session_id(), id);
    }
  }

  v1::ListSessionsResponse List(const std::string& token) {
    v1::ListSessionsResponse response;
    grpc::Status status = stub_->ListSessions(
        Context(token).get(), v1::ListSessionsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Every session's full status, as the admin sees it.
  std::string State() { return List(kAdminToken).SerializeAsString(); }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    ExpectNoTokenIn(log_.Text());
  }

  LogCapture log_;  // outlives the server
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

// Which RPCs a role may call on its own session (kMine); on kOther only
// admin may call any, and ListSessions is open to every role.
bool Allowed(const std::string& role, const std::string& rpc,
             const std::string& session) {
  if (role == "admin") return true;
  if (rpc == "ListSessions") return true;
  if (session != kMine) return false;
  static const std::map<std::string, std::vector<std::string>> kRights = {
      {"worker",
       {"JoinSession", "SubmitGradient", "SubmitJacobianProducts",
        "LeaveSession", "GetSession", "GetParameters", "GetMetrics",
        "GetSpectrum", "EstimateSpectrum"}},
      {"reader", {"GetSession", "GetParameters", "GetMetrics", "GetSpectrum"}},
  };
  const std::vector<std::string>& rights = kRights.at(role);
  return std::find(rights.begin(), rights.end(), rpc) != rights.end();
}

TEST_F(TlsAuthTest, EveryRoleIsAllowedAndDeniedAsSpecified) {
  const std::map<std::string, std::string> kTokens = {{"admin", kAdminToken},
                                                      {"worker", kWorkerToken},
                                                      {"reader", kReaderToken}};
  for (const auto& [rpc_name, rpc] : Rpcs()) {
    for (const auto& [role, token] : kTokens) {
      for (const char* session : {kMine, kOther}) {
        SCOPED_TRACE(absl::StrCat(role, " ", rpc_name, " on ", session));
        ResetSessions();
        const std::string before = State();
        const grpc::Status status = rpc(*stub_, Context(token).get(), session);
        if (Allowed(role, rpc_name, session)) {
          EXPECT_FALSE(Refused(status))
              << status.error_code() << " " << status.error_message();
        } else {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
              << status.error_message();
          EXPECT_EQ(State(), before) << "a denied call changed the state";
          EXPECT_THAT(log_.Text(), HasSubstr("denied a call from"));
        }
      }
    }
  }
}

TEST_F(TlsAuthTest, NoTokenOrABadOneIsUnauthenticated) {
  ResetSessions();
  const std::string before = State();
  for (const auto& [rpc_name, rpc] : Rpcs()) {
    for (const std::string& token :
         {std::string(), std::string("not-a-token-0123456789"),
          std::string(kAdminToken) + "x", std::string(kAdminToken, 10)}) {
      SCOPED_TRACE(absl::StrCat(rpc_name, " with token '", token, "'"));
      const grpc::Status status = rpc(*stub_, Context(token).get(), kMine);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << status.error_message();
    }
    // Not a bearer token at all.
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Basic ", kAdminToken));
    EXPECT_EQ(rpc(*stub_, &context, kMine).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(State(), before);
}

TEST_F(TlsAuthTest, ListSessionsShowsOnlyWhatTheTokenMayRead) {
  ResetSessions();
  for (const char* token : {kWorkerToken, kReaderToken}) {
    const v1::ListSessionsResponse listed = List(token);
    ASSERT_EQ(listed.sessions_size(), 1);
    EXPECT_EQ(listed.sessions(0).session_id(), kMine);
  }
  EXPECT_EQ(List(kAdminToken).sessions_size(), 2);
}

TEST_F(TlsAuthTest, AWorkerTokenPlaysItsSessionToTheEnd) {
  ResetSessions();
  // RunWorker (test_util.h) makes its own contexts: play through a channel
  // whose call credentials add the worker's token to every call.
  class TokenPlugin : public grpc::MetadataCredentialsPlugin {
   public:
    grpc::Status GetMetadata(
        grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
        std::multimap<grpc::string, grpc::string>* metadata) override {
      metadata->emplace("authorization", absl::StrCat("Bearer ", kWorkerToken));
      return grpc::Status::OK;
    }
  };
  const TestCerts& files = TestCerts::Get();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTestFile(files.Path("ca.pem"));
  auto channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_->port()),
      grpc::CompositeChannelCredentials(grpc::SslCredentials(ssl),
                                        grpc::MetadataCredentialsFromPlugin(
                                            std::make_unique<TokenPlugin>())));
  auto worker_stub = v1::GameOptimizer::NewStub(channel);
  const WorkerRun run =
      RunWorker(*worker_stub, kMine, QuadraticGame::TwoPlayer(1));
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_EQ(run.last_task.kind(), v1::DONE);
  EXPECT_EQ(run.last_task.step(), 10);
  const WorkerRun denied =
      RunWorker(*worker_stub, kOther, QuadraticGame::TwoPlayer(1));
  EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace gameopt::testing
