// Client strings in errors and log lines are bounded and escaped at the
// wire: every RPC field that carries a client string
// (session ids and names, player, tensor and scalar names, worker names),
// given 64 KiB, a newline followed by a forged log line, or control bytes,
// answers with a status message under 1 KiB without a line break (never
// gRPC's "metadata size exceeds limit"), and the server's log (captured
// through GameOptServerOptions::log) holds no line break or control byte.
// The spectrum JSON's not-found error is bounded the same way.
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/core/registry.h"
#include "server/service/json_api.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

constexpr size_t kShortMessage = 1024;

std::vector<std::string> NastyNames() {
  return {std::string(64 << 10, 'a'),
          "x\n2026-12-06 00:00:00 FORGED: session s deleted",
          "ctl\x01\x1b[2J\r'\"\x7f", std::string(300, '\n')};
}

void ExpectBounded(const grpc::Status& status, const std::string& what) {
  EXPECT_FALSE(status.ok()) << what;
  EXPECT_NE(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << what << ": " << status.error_message().substr(0, 200);
  EXPECT_LT(status.error_message().size(), kShortMessage) << what;
  EXPECT_EQ(status.error_message().find_first_of("\n\r"), std::string::npos)
      << what;
}

class BoundedErrorsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GameOptServerOptions options = testing::TestServerOptions();
    options.log = [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      log_.emplace_back(line);
    };
    server_ = testing::StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = testing::NewStub(server_->port());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(log_.empty());
    for (const std::string& line : log_) {
      for (char c : line) {
        ASSERT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            << "a log line holds a control byte: " << line.substr(0, 200);
      }
    }
  }

  grpc::Status Create(const v1::SessionConfig& config, const std::string& id) {
    v1::CreateSessionRequest request;
    *request.mutable_config() = config;
    request.set_session_id(id);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    return stub_->CreateSession(&context, request, &response);
  }

  absl::Mutex mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(BoundedErrorsServiceTest, EveryClientStringFieldGivesAShortError) {
  const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(3);
  const v1::SessionConfig config =
      testing::QuadraticConfig(game, v1::SIMGD, 1, 5);
  ASSERT_TRUE(Create(config, "s").ok());
  v1::TaskResponse joined;
  ASSERT_TRUE(testing::Join(*stub_, "s", &joined, 0, "w").ok());
  const int64_t worker = joined.worker_id();
  const v1::SubmitGradientRequest good =
      testing::GradientRequest(game, "s", worker, joined.task(),
                               Eigen::VectorXd::Zero(game.dimension()));
  for (const std::string& name : NastyNames()) {
    ExpectBounded(Create(config, name), "session id");
    v1::SessionConfig player = config;
    player.mutable_players(0)->set_name(name);
    ExpectBounded(Create(player, ""), "player name");
    v1::SessionConfig tensor = config;
    tensor.mutable_players(0)->mutable_tensors(0)->set_name(name);
    ExpectBounded(Create(tensor, ""), "tensor name");
    v1::TaskResponse task;
    ExpectBounded(testing::Join(*stub_, "s", &task, 0, name), "worker name");
    ExpectBounded(testing::Join(*stub_, name, &task), "join session id");
    {
      v1::DeleteSessionRequest request;
      request.set_session_id(name);
      v1::DeleteSessionResponse response;
      grpc::ClientContext context;
      ExpectBounded(stub_->DeleteSession(&context, request, &response),
                    "delete session id");
    }
    ExpectBounded(
        [&] {
          v1::GetSessionRequest request;
          request.set_session_id(name);
          v1::SessionStatus response;
          grpc::ClientContext context;
          return stub_->GetSession(&context, request, &response);
        }(),
        "get session id");
    // Submissions: names the layout does not know, and with an unknown
    // dtype (whose error names the player and the tensor as sent).
    for (bool bad_dtype : {false, true}) {
      v1::SubmitGradientRequest p = good;
      v1::PlayerTensors* players = p.mutable_gradients(0)->mutable_players(0);
      players->set_player(name);
      if (bad_dtype) players->mutable_tensors(0)->set_dtype(v1::DType(99));
      ExpectBounded(testing::Submit(*stub_, p, &task), "submission player");
      v1::SubmitGradientRequest t = good;
      v1::Tensor* sent =
          t.mutable_gradients(0)->mutable_players(0)->mutable_tensors(0);
      sent->set_name(name);
      if (bad_dtype) sent->set_dtype(v1::DType(99));
      ExpectBounded(testing::Submit(*stub_, t, &task), "submission tensor");
    }
    v1::SubmitGradientRequest scalar = good;
    v1::Scalar* s = scalar.add_scalars();
    s->set_name(name);
    s->set_value(1);
    ExpectBounded(testing::Submit(*stub_, scalar, &task), "scalar name");
  }
  // Nothing was added by any of it.
  absl::StatusOr<v1::SessionStatus> status = testing::GetSession(*stub_, "s");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->workers_size(), 1);
}

TEST(BoundedErrorsJsonTest, SpectrumOfAnUnknownSessionIsShort) {
  SessionRegistry registry;
  for (const std::string& id : NastyNames()) {
    absl::StatusOr<std::string> json = SpectrumJson(registry, id);
    EXPECT_EQ(json.status().code(), absl::StatusCode::kNotFound);
    EXPECT_LT(json.status().message().size(), kShortMessage);
    EXPECT_EQ(json.status().message().find_first_of("\n\r"),
              absl::string_view::npos);
  }
}

}  // namespace
}  // namespace gameopt
