// Durable or refused (a checkpoint is either written and synced or the
// call fails), with in-process servers on
// 127.0.0.1 and a real state_dir: a CreateSession or new JoinSession whose
// checkpoint cannot be written (the write goes to /dev/full: no space left)
// fails naming the cause and leaves no session or worker behind, and its
// partial file is gone; the good checkpoint beside it stays and loads. Ids
// with '.' and ids deleted and created again are checkpointed. An
// unwritable state_dir fails the start. Format 2 files round-trip in any
// chunk size, every truncation and every flipped byte is DataLoss (never a
// crash), and format 1 files of earlier servers still load.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gameopt/v1/checkpoint.pb.h"
#include "gtest/gtest.h"
#include "server/service/checkpoint_format.h"
#include "tests/persist/persist_test_util.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

class DurabilityTest : public testing::StateDirTest {
 protected:
  std::string Path(const std::string& session) const {
    return dir_ + "/" + session + ".ckpt";
  }

  // The next write of `session`'s checkpoint fails with ENOSPC: its
  // temporary file is a link to /dev/full.
  void FillDiskFor(const std::string& session) const {
    ASSERT_EQ(symlink("/dev/full", (Path(session) + ".tmp").c_str()), 0);
  }

  static grpc::Status Create(v1::GameOptimizer::Stub& stub,
                             const std::string& id, int64_t max_steps = 3) {
    const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(2);
    v1::CreateSessionRequest request;
    *request.mutable_config() =
        testing::QuadraticConfig(game, v1::SIMGD, 1, max_steps);
    request.set_session_id(id);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    return stub.CreateSession(&context, request, &response);
  }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST_F(DurabilityTest, CreateOnFullDiskFailsAndLeavesNoSession) {
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  FillDiskFor("full");
  const grpc::Status status = Create(*stub, "full");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("No space left"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(testing::GetSession(*stub, "full").status().code(),
            absl::StatusCode::kNotFound);
  // The partial file is gone; other sessions, and this id, are written.
  EXPECT_FALSE(std::filesystem::exists(Path("full") + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(Path("full")));
  EXPECT_TRUE(Create(*stub, "other").ok());
  EXPECT_TRUE(Create(*stub, "full").ok());
  EXPECT_TRUE(std::filesystem::exists(Path("full")));
}

TEST_F(DurabilityTest, JoinOnFullDiskFailsAndRegistersNoWorker) {
  std::string good;
  {
    std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
    ASSERT_NE(server, nullptr);
    auto stub = testing::NewStub(server->port());
    ASSERT_TRUE(Create(*stub, "j").ok());
    good = ReadAll(Path("j"));
    FillDiskFor("j");
    v1::TaskResponse task;
    const grpc::Status status = testing::Join(*stub, "j", &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(status.error_message().find("checkpoint"), std::string::npos)
        << status.error_message();
    absl::StatusOr<v1::SessionStatus> session = testing::GetSession(*stub, "j");
    ASSERT_TRUE(session.ok());
    EXPECT_EQ(session->workers_size(), 0);
    EXPECT_EQ(ReadAll(Path("j")), good);  // the good checkpoint stays
    // Space again: the next join is recorded.
    ASSERT_TRUE(testing::Join(*stub, "j", &task).ok());
    EXPECT_NE(ReadAll(Path("j")), good);
    server->Shutdown();
  }
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  absl::StatusOr<v1::SessionStatus> session = testing::GetSession(*stub, "j");
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->workers_size(), 1);
}

TEST_F(DurabilityTest, DottedIdsAndRecreatedIdsAreCheckpointed) {
  {
    std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
    ASSERT_NE(server, nullptr);
    auto stub = testing::NewStub(server->port());
    for (const char* id : {"a.b", ".", "..", "x.ckpt", "-._"}) {
      ASSERT_TRUE(Create(*stub, id).ok()) << id;
      EXPECT_TRUE(std::filesystem::exists(Path(id))) << id;
    }
    ASSERT_TRUE(Create(*stub, "again", 3).ok());
    grpc::ClientContext context;
    v1::DeleteSessionRequest request;
    request.set_session_id("again");
    v1::DeleteSessionResponse response;
    ASSERT_TRUE(stub->DeleteSession(&context, request, &response).ok());
    EXPECT_FALSE(std::filesystem::exists(Path("again")));
    ASSERT_TRUE(Create(*stub, "again", 7).ok());
    EXPECT_TRUE(std::filesystem::exists(Path("again")));
    v1::TaskResponse task;
    ASSERT_TRUE(testing::Join(*stub, "again", &task).ok());
    server->Shutdown();
  }
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  for (const char* id : {"a.b", ".", "..", "x.ckpt", "-._"}) {
    EXPECT_TRUE(testing::GetSession(*stub, id).ok()) << id;
  }
  absl::StatusOr<v1::SessionStatus> again = testing::GetSession(*stub, "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->config().max_steps(), 7);
  EXPECT_EQ(again->workers_size(), 1);
}

TEST_F(DurabilityTest, UnwritableStateDirFailsStart) {
  // /proc takes no files (as root too, where permissions do not stop us).
  GameOptServerOptions options = Options();
  options.state_dir = "/proc";
  GameOptServer server(options);
  const absl::Status status = server.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/proc"), std::string::npos) << status;
}

// ---- The file format -----------------------------------------------------

class CheckpointFormatTest : public DurabilityTest {
 protected:
  // A finished ConOpt/RMSProp session's snapshot, read from its file.
  SessionSnapshot Played() {
    {
      std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
      EXPECT_NE(server, nullptr);
      auto stub = testing::NewStub(server->port());
      v1::CreateSessionRequest request;
      *request.mutable_config() = testing::PersistSessionConfig(2, 1);
      request.set_session_id("f");
      v1::CreateSessionResponse response;
      grpc::ClientContext context;
      EXPECT_TRUE(stub->CreateSession(&context, request, &response).ok());
      testing::RunGameWorkers(absl::StrCat("127.0.0.1:", server->port()), "f",
                              1, nullptr);
      server->Shutdown();
    }
    absl::StatusOr<SessionSnapshot> snapshot = Read(ReadAll(Path("f")));
    EXPECT_TRUE(snapshot.ok()) << snapshot.status();
    return *snapshot;
  }

  absl::StatusOr<SessionSnapshot> Read(const std::string& bytes) {
    const std::string path = dir_ + "/probe.bin";
    { std::ofstream(path, std::ios::binary) << bytes; }
    const int fd = open(path.c_str(), O_RDONLY);
    absl::StatusOr<SessionSnapshot> out =
        ReadCheckpoint(fd, static_cast<int64_t>(bytes.size()));
    close(fd);
    return out;
  }

  std::string Write(const SessionSnapshot& snapshot, int64_t chunk) {
    const std::string path = dir_ + "/written.bin";
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_TRUE(WriteCheckpoint(fd, snapshot, chunk).ok());
    close(fd);
    return ReadAll(path);
  }

  static std::string Values(const SessionSnapshot& s) {
    std::string out;
    for (const NamedVector& v : s.algorithm.vectors) {
      absl::StrAppend(&out, v.name, ":",
                      std::string(static_cast<const char*>(v.value->data()),
                                  v.value->bytes()),
                      ";");
    }
    return out;
  }
};

TEST_F(CheckpointFormatTest, RoundTripsInAnyChunkSize) {
  const SessionSnapshot snapshot = Played();
  ASSERT_FALSE(snapshot.algorithm.vectors.empty());
  for (int64_t chunk : {int64_t{1}, int64_t{3}, int64_t{8}, int64_t{1000},
                        kCheckpointChunkBytes}) {
    absl::StatusOr<SessionSnapshot> back = Read(Write(snapshot, chunk));
    ASSERT_TRUE(back.ok()) << chunk << ": " << back.status();
    EXPECT_EQ(Values(*back), Values(snapshot)) << chunk;
    EXPECT_EQ(back->round, snapshot.round);
    EXPECT_EQ(back->workers.size(), snapshot.workers.size());
  }
}

TEST_F(CheckpointFormatTest, EveryTruncationAndFlippedByteIsDataLoss) {
  const std::string bytes = Write(Played(), 16);
  for (size_t n = 0; n < bytes.size(); n += n < 256 ? 1 : 3) {
    EXPECT_EQ(Read(bytes.substr(0, n)).status().code(),
              absl::StatusCode::kDataLoss)
        << "cut at " << n;
  }
  // Every byte of the magic and the header, then every fifth.
  for (size_t i = 0; i < bytes.size(); i += i < 256 ? 1 : 5) {
    std::string flipped = bytes;
    flipped[i] ^= 0x41;
    EXPECT_FALSE(Read(flipped).ok()) << "byte " << i;
  }
  EXPECT_EQ(Read(bytes + "x").status().code(), absl::StatusCode::kDataLoss);
}

// Worker states are WorkerState values in the core and their names in the
// file (CheckpointWorker.state), as every earlier server wrote them; a name
// no server writes is DataLoss.
TEST_F(CheckpointFormatTest, WorkerStatesTravelAsTheirNames) {
  SessionSnapshot snapshot = Played();
  ASSERT_EQ(snapshot.workers.size(), 1u);
  const WorkerState states[] = {WorkerState::kActive, WorkerState::kDropped,
                                WorkerState::kLeft};
  for (WorkerState state : states) {
    snapshot.workers[0].state = state;
    v1::CheckpointFile file;
    ASSERT_TRUE(file.ParseFromString(EncodeCheckpoint(snapshot)));
    v1::Checkpoint checkpoint;
    ASSERT_TRUE(checkpoint.ParseFromString(file.checkpoint()));
    EXPECT_EQ(checkpoint.workers(0).state(), WorkerStateName(state));
    absl::StatusOr<SessionSnapshot> back = Read(Write(snapshot, 1000));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->workers[0].state, state);
  }
  // A file whose worker state is not a known name, checksum intact.
  v1::CheckpointFile file;
  ASSERT_TRUE(file.ParseFromString(EncodeCheckpoint(snapshot)));
  v1::Checkpoint checkpoint;
  ASSERT_TRUE(checkpoint.ParseFromString(file.checkpoint()));
  checkpoint.mutable_workers(0)->set_state("Active");
  file.set_checkpoint(checkpoint.SerializeAsString());
  uint64_t fnv = 14695981039346656037ULL;  // FNV-1a 64, as the file has it
  for (unsigned char c : file.checkpoint()) {
    fnv = (fnv ^ c) * 1099511628211ULL;
  }
  file.set_checksum(fnv);
  const absl::StatusOr<SessionSnapshot> bad = Read(file.SerializeAsString());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_NE(bad.status().message().find("state 'Active'"), std::string::npos)
      << bad.status();
}

TEST_F(CheckpointFormatTest, FormatOneFilesStillLoad) {
  const SessionSnapshot snapshot = Played();
  absl::StatusOr<SessionSnapshot> back = Read(EncodeCheckpoint(snapshot));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(Values(*back), Values(snapshot));
  // And a server starts from one.
  { std::ofstream(Path("f"), std::ios::binary) << EncodeCheckpoint(snapshot); }
  std::filesystem::remove(dir_ + "/probe.bin");
  std::filesystem::remove(dir_ + "/written.bin");
  std::unique_ptr<GameOptServer> server = testing::StartServer(Options());
  ASSERT_NE(server, nullptr);
  auto stub = testing::NewStub(server->port());
  absl::StatusOr<v1::SessionStatus> status = testing::GetSession(*stub, "f");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->step(), snapshot.algorithm.step);
}

}  // namespace
}  // namespace gameopt
