// The C++ client library against a server with TLS and bearer tokens
// (client/worker/channel.h): Play and Worker with TLS roots and a token,
// mutual TLS with a client certificate, tokens over plaintext, and the
// clear errors of channel options that cannot work.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/play.h"
#include "client/worker/sharded_session.h"
#include "client/worker/worker.h"
#include "gtest/gtest.h"
#include "server/service/server.h"
#include "tests/tls/test_certs.h"

namespace gameopt {
namespace {

using testing::TestCerts;
using testing::WriteTestFile;

constexpr char kAdminToken[] = "client-admin-token-0001";
constexpr char kWorkerToken[] = "client-worker-token-0001";
constexpr char kReaderToken[] = "client-reader-token-0001";
constexpr char kSession[] = "bilinear-1";  // the worker's and reader's

std::string TokensFile() {
  const std::string path = TestCerts::Get().Path("client-tokens.txt");
  WriteTestFile(path, absl::StrCat(kAdminToken, " admin\n", kWorkerToken,
                                   " worker ", kSession, "\n", kReaderToken,
                                   " reader ", kSession, "\n"));
  return path;
}

class SecurePlayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(TestCerts::Get().ok()); }

  // With the tokens file; TLS with the test certificates unless !tls
  // (mutual TLS with `client_ca`).
  void StartServer(bool tls = true, bool client_ca = false) {
    GameOptServerOptions options;
    options.address = "127.0.0.1:0";
    options.log = nullptr;
    if (tls) {
      options.tls_cert_file = TestCerts::Get().Path("server.pem");
      options.tls_key_file = TestCerts::Get().Path("server.key");
    }
    if (client_ca) options.tls_client_ca_file = TestCerts::Get().Path("ca.pem");
    options.tokens_file = TokensFile();
    server_ = std::make_unique<GameOptServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }

  ChannelOptions Channel(const std::string& token, bool tls = true) const {
    ChannelOptions channel;
    if (tls) channel.tls_roots_file = TestCerts::Get().Path("ca.pem");
    channel.token = token;
    return channel;
  }

  std::shared_ptr<grpc::Channel> Connect(const ChannelOptions& options) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(server_->address(), options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  // The admin creates kSession (5 steps of bilinear SimGD).
  void CreateSession(const ChannelOptions& admin) {
    SessionOptions options;
    options.max_steps = 5;
    absl::StatusOr<ShardedSession> session = ShardedSession::Create(
        {Connect(admin)}, *game_, *BuildSessionConfig(*game_, options),
        absl::Seconds(10), {kSession});
    ASSERT_TRUE(session.ok()) << session.status();
    ASSERT_EQ(session->id(), kSession);
  }

  absl::Status RunWorker(const ChannelOptions& channel) {
    WorkerOptions options;
    options.max_retries = 0;  // UNAVAILABLE from a refused handshake: fail
    Worker worker(Connect(channel), kSession, game_.get(), options);
    return worker.Run();
  }

  std::unique_ptr<Game> game_ = *MakeGame("bilinear", GameOptions());
  std::unique_ptr<GameOptServer> server_;
};

TEST_F(SecurePlayTest, PlayOverTlsWithAnAdminToken) {
  StartServer();
  PlayConfig config;
  config.game = "bilinear";
  config.steps = 5;
  config.server = server_->address();
  config.channel = Channel(kAdminToken);
  config.live = false;
  absl::StatusOr<PlayResult> result = Play(config);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 5);
}

TEST_F(SecurePlayTest, WorkerTokenPlaysItsSessionReaderTokenMayNot) {
  StartServer();
  CreateSession(Channel(kAdminToken));
  EXPECT_EQ(RunWorker(Channel(kReaderToken)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(RunWorker(Channel("")).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(RunWorker(Channel(kWorkerToken, /*tls=*/false)).code(),
            absl::StatusCode::kUnavailable);  // plaintext to the TLS port
  EXPECT_TRUE(RunWorker(Channel(kWorkerToken)).ok());
  absl::StatusOr<ShardedSession> session = ShardedSession::Open(
      {Connect(Channel(kReaderToken))}, *game_, {kSession});
  ASSERT_TRUE(session.ok());
  absl::StatusOr<SessionParameters> params = session->GetParameters();
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->step, 5);
}

TEST_F(SecurePlayTest, MutualTlsWithAClientCertificate) {
  StartServer(/*tls=*/true, /*client_ca=*/true);
  ChannelOptions admin = Channel(kAdminToken);
  admin.tls_cert_file = TestCerts::Get().Path("client.pem");
  admin.tls_key_file = TestCerts::Get().Path("client.key");
  CreateSession(admin);
  ChannelOptions worker = admin;
  worker.token = kWorkerToken;
  EXPECT_TRUE(RunWorker(worker).ok());
}

TEST_F(SecurePlayTest, TokensOverPlaintext) {
  StartServer(/*tls=*/false);
  CreateSession(Channel(kAdminToken, /*tls=*/false));
  EXPECT_EQ(RunWorker(Channel("", /*tls=*/false)).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(RunWorker(Channel(kWorkerToken, /*tls=*/false)).ok());
}

TEST_F(SecurePlayTest, ChannelOptionsThatCannotWorkFailClearly) {
  ChannelOptions options;
  options.tls_roots_file = "/nonexistent/ca.pem";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel("127.0.0.1:1", options);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(channel.status().message().find("/nonexistent/ca.pem"),
            std::string::npos);
  options.tls_roots_file = TestCerts::Get().Path("ca.pem");
  options.tls_cert_file = TestCerts::Get().Path("client.pem");
  EXPECT_EQ(MakeChannel("127.0.0.1:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);  // no key
  options = ChannelOptions();
  options.tls_cert_file = TestCerts::Get().Path("client.pem");
  options.tls_key_file = TestCerts::Get().Path("client.key");
  EXPECT_EQ(MakeChannel("127.0.0.1:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);  // no roots
}

}  // namespace
}  // namespace gameopt
