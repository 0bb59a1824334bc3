// Tests the transport security of a real GameOptServer on 127.0.0.1
// (server/service/credentials.h, server.h): plaintext and untrusting
// clients refused on the TLS port, mutual TLS, the plaintext health port,
// tokens over plaintext, Start's errors for bad files, and the session ids
// CreateSession lets a caller choose (so a tokens file can name them).
#include <memory>
#include <string>

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

TEST(TlsServer, PlaintextAndUntrustingClientsAreRefused) {
  ASSERT_TRUE(TestCerts::Get().ok());
  std::unique_ptr<GameOptServer> server = StartServer(TlsOptions());
  ASSERT_NE(server, nullptr);
  auto plaintext = NewStub(server->port());
  grpc::Status status =
      Rpcs().at("ListSessions")(*plaintext, Context(kAdminToken).get(), "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  // A client that trusts another CA does not accept the server.
  auto untrusting = TlsStub(server->port(), "other-ca.pem");
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
