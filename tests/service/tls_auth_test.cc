// Tests TLS and bearer-token authorization of a real GameOptServer on
// 127.0.0.1 (server/service/auth.h, credentials.h, server.h): every RPC for
// every role, allowed and denied, with the state untouched by a denied call;
// plaintext and untrusted clients refused on the TLS port; mutual TLS; the
// plaintext health port; Start's errors for bad files.
//
// Certificates come from tests/tls/make_test_certs.sh (the openssl CLI) in a
// temporary folder (tests/tls/test_certs.h). The calls are made with raw gRPC
// (SslCredentials and ClientContext::AddMetadata), not the client library, so
// they check the wire contract itself: `authorization: Bearer <token>`.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"
#include "tests/tls/test_certs.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAdminToken[] = "admin-token-0123456789";
constexpr char kWorkerToken[] = "worker-token-0123456789";
constexpr char kReaderToken[] = "reader-token-0123456789";
// The sessions the worker and reader tokens name, and one they do not.
constexpr char kMine[] = "mine";
constexpr char kOther[] = "other";

// The tokens file of these tests: an admin, a worker and a reader of kMine.
const std::string& TokensFile() {
  static const std::string* const path = [] {
    auto* path = new std::string(TestCerts::Get().Path("tokens.txt"));
    WriteTestFile(*path, absl::StrCat("# test tokens\n", kAdminToken,
                                      " admin\n", kWorkerToken, "  worker ",
                                      kMine, "   # its session\n", kReaderToken,
                                      "\treader ", kMine, "\n"));
    return path;
  }();
  return *path;
}

GameOptServerOptions TlsOptions() {
  const TestCerts& files = TestCerts::Get();
  GameOptServerOptions options = TestServerOptions();
  options.tls_cert_file = files.Path("server.pem");
  options.tls_key_file = files.Path("server.key");
  options.tokens_file = TokensFile();
  return options;
}

// A stub over TLS trusting `roots` (a file of TestCerts), optionally with
// the client certificate.
std::unique_ptr<v1::GameOptimizer::Stub> TlsStub(
    int port, const std::string& roots = "ca.pem", bool client_cert = false) {
  const TestCerts& files = TestCerts::Get();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTestFile(files.Path(roots));
  if (client_cert) {
    ssl.pem_cert_chain = ReadTestFile(files.Path("client.pem"));
    ssl.pem_private_key = ReadTestFile(files.Path("client.key"));
  }
  return v1::GameOptimizer::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::SslCredentials(ssl)));
}

// A context with a short deadline and, unless empty, the bearer token.
std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return context;
}

// Every RPC of gameopt.v1.GameOptimizer, called on `session` with a minimal
// request: enough to pass or fail authorization, which comes first.
using Rpc =
    std::function<grpc::Status(v1::GameOptimizer::Stub&, grpc::ClientContext*,
                               const std::string& session)>;
const std::map<std::string, Rpc>& Rpcs() {
  static const auto* const rpcs = new std::map<std::string, Rpc>{
      {"CreateSession",
       [](auto& stub, auto* context, const std::string& session) {
         v1::CreateSessionRequest request;
         *request.mutable_config() =
             QuadraticConfig(QuadraticGame::TwoPlayer(1), v1::SIMGD, 1, 10);
         request.set_session_id(session + "-new");
         v1::CreateSessionResponse response;
         return stub.CreateSession(context, request, &response);
       }},
      {"GetSession",
       [](auto& stub, auto* context, const std::string& session) {
         v1::GetSessionRequest request;
         request.set_session_id(session);
         v1::SessionStatus response;
         return stub.GetSession(context, request, &response);
       }},
      {"DeleteSession",
       [](auto& stub, auto* context, const std::string& session) {
         v1::DeleteSessionRequest request;
         request.set_session_id(session);
         v1::DeleteSessionResponse response;
         return stub.DeleteSession(context, request, &response);
       }},
      {"JoinSession",
       [](auto& stub, auto* context, const std::string& session) {
         v1::JoinSessionRequest request;
         request.set_session_id(session);
         v1::TaskResponse response;
         return stub.JoinSession(context, request, &response);
       }},
      {"SubmitGradient",
       [](auto& stub, auto* context, const std::string& session) {
         v1::SubmitGradientRequest request;
         request.set_session_id(session);
         request.set_worker_id(1);
         v1::TaskResponse response;
         return stub.SubmitGradient(context, request, &response);
       }},
      {"SubmitJacobianProducts",
       [](auto& stub, auto* context, const std::string& session) {
         v1::SubmitJacobianProductsRequest request;
         request.set_session_id(session);
         request.set_worker_id(1);
         v1::TaskResponse response;
         return stub.SubmitJacobianProducts(context, request, &response);
       }},
      {"LeaveSession",
       [](auto& stub, auto* context, const std::string& session) {
         v1::LeaveSessionRequest request;
         request.set_session_id(session);
         request.set_worker_id(1);
         v1::LeaveSessionResponse response;
         return stub.LeaveSession(context, request, &response);
       }},
      {"GetParameters",
       [](auto& stub, auto* context, const std::string& session) {
         v1::GetParametersRequest request;
         request.set_session_id(session);
         v1::GetParametersResponse response;
         return stub.GetParameters(context, request, &response);
       }},
      {"ListSessions",
       [](auto& stub, auto* context, const std::string&) {
         v1::ListSessionsResponse response;
         return stub.ListSessions(context, v1::ListSessionsRequest(),
                                  &response);
       }},
  };
  return *rpcs;
}

// The server's log lines. Thread-safe.
class LogCapture {
 public:
  LogSink Sink() {
    return [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  std::string Text() const {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// No log line may hold a token, whatever was denied or allowed.
void ExpectNoTokenIn(const std::string& log) {
  for (const char* token : {kAdminToken, kWorkerToken, kReaderToken}) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr(token)));
  }
}

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
        "LeaveSession", "GetSession", "GetParameters"}},
      {"reader", {"GetSession", "GetParameters"}},
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

TEST_F(TlsAuthTest, PlaintextAndUntrustingClientsAreRefused) {
  auto plaintext = NewStub(server_->port());
  grpc::Status status =
      Rpcs().at("ListSessions")(*plaintext, Context(kAdminToken).get(), "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  // A client that trusts another CA does not accept the server.
  auto untrusting = TlsStub(server_->port(), "other-ca.pem");
  status =
      Rpcs().at("ListSessions")(*untrusting, Context(kAdminToken).get(), "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST(TlsServer, HealthNeedsNoTokenAndTheHealthPortStaysPlaintext) {
  ASSERT_TRUE(TestCerts::Get().ok());
  GameOptServerOptions options = TlsOptions();
  options.health_address = "127.0.0.1:0";
  std::unique_ptr<GameOptServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const std::string kServing("\x08\x01", 2);  // HealthCheckResponse SERVING
  const std::string kCheck = "/grpc.health.v1.Health/Check";
  absl::StatusOr<std::string> plain = GenericCall(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->health_port()),
                          grpc::InsecureChannelCredentials()),
      kCheck, "");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, kServing);
  // The health port serves nothing of the API.
  auto health_port_stub = NewStub(server->health_port());
  EXPECT_EQ(
      Rpcs()
          .at("ListSessions")(*health_port_stub, Context(kAdminToken).get(), "")
          .error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
  // On the API port health answers over TLS, without a token.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTestFile(TestCerts::Get().Path("ca.pem"));
  absl::StatusOr<std::string> tls = GenericCall(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                          grpc::SslCredentials(ssl)),
      kCheck, "");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(*tls, kServing);
}

TEST(TlsServer, MutualTlsRefusesAClientWithoutCertificate) {
  ASSERT_TRUE(TestCerts::Get().ok());
  GameOptServerOptions options = TlsOptions();
  options.tls_client_ca_file = TestCerts::Get().Path("ca.pem");
  std::unique_ptr<GameOptServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const Rpc& list = Rpcs().at("ListSessions");
  auto anonymous = TlsStub(server->port());
  EXPECT_EQ(list(*anonymous, Context(kAdminToken).get(), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto certified = TlsStub(server->port(), "ca.pem", /*client_cert=*/true);
  grpc::Status status = list(*certified, Context(kAdminToken).get(), "");
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The certificate does not replace the token.
  EXPECT_EQ(list(*certified, Context("").get(), "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(TlsServer, TokensWorkOverPlaintextWithAWarning) {
  ASSERT_TRUE(TestCerts::Get().ok());
  LogCapture log;
  GameOptServerOptions options = TestServerOptions();
  options.tokens_file = TokensFile();
  options.log = log.Sink();
  std::unique_ptr<GameOptServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto stub = NewStub(server->port());
  const Rpc& list = Rpcs().at("ListSessions");
  EXPECT_TRUE(list(*stub, Context(kReaderToken).get(), "").ok());
  EXPECT_EQ(list(*stub, Context("").get(), "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server->Shutdown();
  EXPECT_THAT(log.Text(), HasSubstr("tokens over plaintext travel in clear"));
  ExpectNoTokenIn(log.Text());
}

TEST(TlsServer, WithoutTokensFileEveryCallIsAllowed) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  auto stub = NewStub(server->port());
  EXPECT_TRUE(Rpcs().at("CreateSession")(*stub, Context("").get(), "s").ok());
}

// Start's error for `options`, which must fail.
std::string StartError(const GameOptServerOptions& options) {
  GameOptServer server(options);
  absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(TlsServer, StartNamesTheFlagAndFileThatIsWrong) {
  ASSERT_TRUE(TestCerts::Get().ok());
  const TestCerts& files = TestCerts::Get();
  GameOptServerOptions options = TlsOptions();
  options.tls_cert_file = files.Path("missing.pem");
  EXPECT_THAT(StartError(options), HasSubstr("--tls_cert"));
  EXPECT_THAT(StartError(options), HasSubstr("missing.pem"));

  options = TlsOptions();
  options.tls_key_file = files.Path("tokens.txt");  // not PEM
  EXPECT_THAT(StartError(options), HasSubstr("--tls_key"));

  options = TlsOptions();
  options.tls_key_file.clear();
  EXPECT_THAT(StartError(options), HasSubstr("--tls_key"));

  options = TlsOptions();
  options.tls_cert_file.clear();
  options.tls_key_file.clear();
  options.tls_client_ca_file = files.Path("ca.pem");
  EXPECT_THAT(StartError(options), HasSubstr("--tls_cert"));

  options = TlsOptions();
  options.tokens_file = files.Path("no-tokens.txt");
  EXPECT_THAT(StartError(options), HasSubstr("--tokens_file"));

  WriteTestFile(files.Path("bad-tokens.txt"),
                "# fine\nsecret-token-0123456789 superuser\n");
  options.tokens_file = files.Path("bad-tokens.txt");
  const std::string error = StartError(options);
  EXPECT_THAT(error, HasSubstr("line 2"));
  EXPECT_THAT(error, HasSubstr("superuser"));
  EXPECT_THAT(error, ::testing::Not(HasSubstr("secret-token")));
}

TEST(TlsServer, StartFailsWhenTheKeyIsNotTheCertificates) {
  ASSERT_TRUE(TestCerts::Get().ok());
  GameOptServerOptions options = TlsOptions();
  options.tls_key_file = TestCerts::Get().Path("client.key");
  GameOptServer server(options);
  const absl::Status status = server.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("--tls_key"));
}

TEST(TlsServer, CreateSessionTakesAChosenIdOnce) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  auto stub = NewStub(server->port());
  v1::CreateSessionRequest request;
  *request.mutable_config() =
      QuadraticConfig(QuadraticGame::TwoPlayer(1), v1::SIMGD, 1, 10);
  request.set_session_id("s1");
  v1::CreateSessionResponse response;
  ASSERT_TRUE(stub->CreateSession(Context("").get(), request, &response).ok());
  EXPECT_EQ(response.session_id(), "s1");
  EXPECT_EQ(
      stub->CreateSession(Context("").get(), request, &response).error_code(),
      grpc::StatusCode::ALREADY_EXISTS);
  request.set_session_id("bad id!");
  EXPECT_EQ(
      stub->CreateSession(Context("").get(), request, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  // A fresh id skips the taken "s1".
  request.clear_session_id();
  ASSERT_TRUE(stub->CreateSession(Context("").get(), request, &response).ok());
  EXPECT_EQ(response.session_id(), "s2");
}

}  // namespace
}  // namespace gameopt::testing
