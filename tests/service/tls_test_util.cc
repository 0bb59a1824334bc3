#include "tests/service/tls_test_util.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"
#include "tests/tls/test_certs.h"

namespace gameopt::testing {

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
std::unique_ptr<v1::GameOptimizer::Stub> TlsStub(int port,
                                                 const std::string& roots,
                                                 bool client_cert) {
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
      {"GetMetrics",
       [](auto& stub, auto* context, const std::string& session) {
         v1::GetMetricsRequest request;
         request.set_session_id(session);
         v1::GetMetricsResponse response;
         return stub.GetMetrics(context, request, &response);
       }},
      {"GetSpectrum",
       [](auto& stub, auto* context, const std::string& session) {
         v1::GetSpectrumRequest request;
         request.set_session_id(session);
         v1::GetSpectrumResponse response;
         return stub.GetSpectrum(context, request, &response);
       }},
      {"EstimateSpectrum",
       [](auto& stub, auto* context, const std::string& session) {
         // k out of range: an allowed caller gets INVALID_ARGUMENT at once
         // instead of waiting for workers that this test does not run.
         v1::EstimateSpectrumRequest request;
         request.set_session_id(session);
         request.mutable_options()->set_k(1000);
         v1::Spectrum response;
         return stub.EstimateSpectrum(context, request, &response);
       }},
  };
  return *rpcs;
}

LogSink LogCapture::Sink() {
  return [this](absl::string_view line) {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(line);
  };
}

std::string LogCapture::Text() const {
  absl::MutexLock lock(&mu_);
  return absl::StrJoin(lines_, "\n");
}

void ExpectNoTokenIn(const std::string& log) {
  for (const char* token : {kAdminToken, kWorkerToken, kReaderToken}) {
    EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr(token)));
  }
}

}  // namespace gameopt::testing
