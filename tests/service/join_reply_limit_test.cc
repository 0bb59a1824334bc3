// A JoinSession whose reply could not be sent (larger
// than the server's --max_message_mb) leaves no worker registered. Such a
// session is refused at creation; it can still exist when a server with a
// smaller limit restores it from --state_dir.
#include <stdlib.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

// Two players of one float64 tensor each: 2 MiB of parameters, so a task
// fits in 4 MiB and not in 1 MiB.
constexpr int64_t kCoordinatesPerPlayer = 1 << 17;

v1::SessionConfig TwoMiBConfig() {
  v1::SessionConfig config;
  config.set_dtype(v1::FLOAT64);
  for (const char* name : {"gen", "disc"}) {
    v1::PlayerConfig* player = config.add_players();
    player->set_name(name);
    v1::Tensor* tensor = player->add_tensors();
    tensor->set_name("w");
    tensor->set_dtype(v1::FLOAT64);
    tensor->add_shape(kCoordinatesPerPlayer);
    tensor->mutable_data()->assign(8 * kCoordinatesPerPlayer, '\0');
    player->mutable_optimizer()->set_kind(v1::SGD);
    player->mutable_optimizer()->set_learning_rate(0.1);
  }
  config.mutable_algorithm()->set_kind(v1::SIMGD);
  config.set_workers_per_round(1);
  config.set_phase_deadline_seconds(-1);
  return config;
}

class JoinReplyLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/join_reply_limit_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    state_dir_ = pattern;
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void Start(int64_t max_message_mb) {
    if (server_ != nullptr) server_->Shutdown();
    GameOptServerOptions options = TestServerOptions();
    options.state_dir = state_dir_;
    options.max_message_mb = max_message_mb;
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub(server_->port());
  }

  std::string state_dir_;
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(JoinReplyLimitTest, JoinWhoseReplyCannotBeSentRegistersNoWorker) {
  Start(4);
  absl::StatusOr<std::string> id = CreateSession(*stub_, TwoMiBConfig());
  ASSERT_TRUE(id.ok()) << id.status();

  Start(1);  // the same state_dir, a smaller limit
  v1::TaskResponse response;
  grpc::Status joined = Join(*stub_, *id, &response, 0, "w");
  EXPECT_EQ(joined.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(joined.error_message().find("--max_message_mb"), std::string::npos)
      << joined.error_message();
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, *id);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->workers_size(), 0);

  Start(4);  // nothing was recorded either: the first worker gets id 1
  joined = Join(*stub_, *id, &response, 0, "w");
  ASSERT_TRUE(joined.ok()) << joined.error_message();
  EXPECT_EQ(response.worker_id(), 1);
}

}  // namespace
}  // namespace gameopt::testing
