// The checkpoint files of GameOptServer with a state_dir (in-process
// servers on 127.0.0.1): a session survives a restart with its step,
// parameters and workers; a leftover temporary file is removed; a file cut
// short or corrupt fails Start with a message naming it; deleting a session
// deletes its checkpoint.
#include "server/service/checkpoint_store.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gameopt/v1/checkpoint.pb.h"
#include "gtest/gtest.h"
#include "tests/persist/persist_test_util.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

constexpr int64_t kSteps = 3;

class CheckpointStoreTest : public testing::StateDirTest {
 protected:
  // A server on dir_ that played one session of kSteps steps with one
  // worker, then shut down; its session id and final parameters.
  std::pair<std::string, std::string> PlayAndStop() {
    std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
    EXPECT_NE(server, nullptr);
    auto stub = testing::NewStub(server->port());
    const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(2);
    absl::StatusOr<std::string> session = testing::CreateSession(
        *stub, testing::QuadraticConfig(game, v1::SGA, 1, kSteps));
    EXPECT_TRUE(session.ok()) << session.status();
    testing::WorkerRun run = testing::RunWorker(*stub, *session, game);
    EXPECT_TRUE(run.status.ok()) << run.status.error_message();
    absl::StatusOr<v1::GetParametersResponse> params =
        testing::GetParameters(*stub, *session);
    EXPECT_TRUE(params.ok());
    server->Shutdown();
    return {*session, testing::VectorBytes(params->params())};
  }

  std::string Path(const std::string& session) const {
    return dir_ + "/" + session + ".ckpt";
  }
};

TEST_F(CheckpointStoreTest, SessionSurvivesARestart) {
  const auto [session, params] = PlayAndStop();
  ASSERT_TRUE(std::filesystem::exists(Path(session)));
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  absl::StatusOr<v1::SessionStatus> status =
      testing::GetSession(*stub, session);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->step(), kSteps);
  EXPECT_EQ(status->workers_size(), 1);
  absl::StatusOr<v1::GetParametersResponse> restored =
      testing::GetParameters(*stub, session);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(testing::VectorBytes(restored->params()), params);
  // New sessions do not reuse a restored id.
  const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(2);
  absl::StatusOr<std::string> fresh = testing::CreateSession(
      *stub, testing::QuadraticConfig(game, v1::SIMGD, 1, 1));
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(*fresh, session);
}

// Adaptive gamma's value and trajectory (the checkpoint's float64 state
// vector "adaptive_gamma") come back after a restart.
TEST_F(CheckpointStoreTest, AdaptiveGammaSurvivesARestart) {
  v1::SessionStatus before;
  std::string session;
  {
    std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
    ASSERT_NE(server, nullptr);
    auto stub = testing::NewStub(server->port());
    const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(2);
    v1::SessionConfig config =
        testing::QuadraticConfig(game, v1::CONOPT, 1, kSteps);
    v1::AlgorithmConfig* a = config.mutable_algorithm();
    a->set_gamma(1.0);
    v1::AdaptiveGamma* rule = a->mutable_adaptive_gamma();
    rule->set_enabled(true);
    rule->set_min_stationarity_ratio(1e6);  // lowers after every step
    v1::SpectrumSchedule* schedule = config.mutable_spectrum();
    schedule->set_every_steps(2);
    v1::SpectrumOptions* field = schedule->add_options();
    field->set_operator_(v1::ALGORITHM_FIELD);
    field->set_k(1);
    field->set_smallest_real(true);
    absl::StatusOr<std::string> created = testing::CreateSession(*stub, config);
    ASSERT_TRUE(created.ok()) << created.status();
    session = *created;
    testing::WorkerRun run = testing::RunWorker(*stub, session, game);
    ASSERT_TRUE(run.status.ok()) << run.status.error_message();
    absl::StatusOr<v1::SessionStatus> status =
        testing::GetSession(*stub, session);
    ASSERT_TRUE(status.ok()) << status.status();
    before = *status;
    server->Shutdown();
  }
  ASSERT_GE(before.gamma_trajectory_size(), kSteps);
  EXPECT_NE(before.gamma(), 1.0);
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  absl::StatusOr<v1::SessionStatus> after = testing::GetSession(*stub, session);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->gamma(), before.gamma());
  ASSERT_EQ(after->gamma_trajectory_size(), before.gamma_trajectory_size());
  for (int i = 0; i < before.gamma_trajectory_size(); ++i) {
    EXPECT_EQ(after->gamma_trajectory(i).SerializeAsString(),
              before.gamma_trajectory(i).SerializeAsString());
  }
  EXPECT_TRUE(after->config().algorithm().adaptive_gamma().enabled());
}

TEST_F(CheckpointStoreTest, LeftoverTemporaryFileIsRemoved) {
  const auto [session, params] = PlayAndStop();
  const std::string tmp = Path(session) + ".tmp";
  std::ofstream(tmp) << "half a write";
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(std::filesystem::exists(tmp));
  auto stub = testing::NewStub(server->port());
  EXPECT_TRUE(testing::GetSession(*stub, session).ok());
}

TEST_F(CheckpointStoreTest, FileCutShortFailsStartNamingIt) {
  const auto [session, params] = PlayAndStop();
  const std::string path = Path(session);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  GameOptServer server(Options());
  const absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
}

TEST_F(CheckpointStoreTest, CorruptByteFailsTheChecksum) {
  const auto [session, params] = PlayAndStop();
  const std::string path = Path(session);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  const std::streamoff middle =
      static_cast<std::streamoff>(std::filesystem::file_size(path) / 2);
  file.seekg(middle);
  const char byte = static_cast<char>(file.get() ^ 0x5a);
  file.seekp(middle);
  file.put(byte);
  file.close();
  GameOptServer server(Options());
  const absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
}

TEST_F(CheckpointStoreTest, DeletingASessionDeletesItsCheckpoint) {
  const auto [session, params] = PlayAndStop();
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  grpc::ClientContext context;
  v1::DeleteSessionRequest request;
  request.set_session_id(session);
  v1::DeleteSessionResponse response;
  ASSERT_TRUE(stub->DeleteSession(&context, request, &response).ok());
  EXPECT_FALSE(std::filesystem::exists(Path(session)));
  server->Shutdown();  // checkpoints the sessions left: none
  EXPECT_FALSE(std::filesystem::exists(Path(session)));
}

TEST_F(CheckpointStoreTest, SecondServerOnTheSameStateDirFailsToStart) {
  std::unique_ptr<GameOptServer> first = testing::StartServer(Options());
  ASSERT_NE(first, nullptr);
  GameOptServer second(Options());
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;
  first->Shutdown();  // releases the folder
  std::unique_ptr<GameOptServer> third = testing::StartServer(Options());
  EXPECT_NE(third, nullptr);
}

TEST(CheckpointFormat, UnknownVersionIsRefused) {
  v1::CheckpointFile file;
  file.set_format_version(kCheckpointFormatVersion + 1);
  absl::StatusOr<SessionSnapshot> decoded =
      DecodeCheckpoint(file.SerializeAsString());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("format version"),
            std::string::npos);
}

}  // namespace
}  // namespace gameopt
