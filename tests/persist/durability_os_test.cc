// Durable or refused under OS conditions (full disk, read-only state_dir,
// no descriptors), on the
// real gameopt_server binary (a child process, so its mount namespace and
// file-descriptor limit are its own): a state_dir that turns read-only after
// the start (a read-only bind mount in the server's private mount
// namespace; root ignores chmod) makes CreateSession and a new JoinSession
// FAILED_PRECONDITION naming "Read-only file system"; no file descriptors
// left (prlimit RLIMIT_NOFILE on the server, with the client's connection
// already open) makes them RESOURCE_EXHAUSTED naming "Too many open files".
// Neither adds a session or a worker, and once the condition goes away the
// next call succeeds.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "tests/load/server_process.h"
#include "tests/persist/persist_test_util.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

using testing::ServerProcess;

class DurabilityOsTest : public testing::StateDirTest {
 protected:
  static grpc::Status Create(v1::GameOptimizer::Stub& stub,
                             const std::string& id) {
    const testing::QuadraticGame game = testing::QuadraticGame::TwoPlayer(2);
    v1::CreateSessionRequest request;
    *request.mutable_config() = testing::QuadraticConfig(game, v1::SIMGD, 1, 3);
    request.set_session_id(id);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    return stub.CreateSession(&context, request, &response);
  }

  // Runs a shell command; its exit status.
  static int Shell(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Checks that Create("new") and a Join of "old" fail with `code` and a
  // message holding `cause`, and add nothing.
  static void ExpectRefused(v1::GameOptimizer::Stub& stub,
                            grpc::StatusCode code, const std::string& cause) {
    const grpc::Status created = Create(stub, "new");
    EXPECT_EQ(created.error_code(), code) << created.error_message();
    EXPECT_NE(created.error_message().find(cause), std::string::npos)
        << created.error_message();
    EXPECT_EQ(testing::GetSession(stub, "new").status().code(),
              absl::StatusCode::kNotFound);
    v1::TaskResponse task;
    const grpc::Status joined = testing::Join(stub, "old", &task);
    EXPECT_EQ(joined.error_code(), code) << joined.error_message();
    EXPECT_NE(joined.error_message().find(cause), std::string::npos)
        << joined.error_message();
    absl::StatusOr<v1::SessionStatus> old = testing::GetSession(stub, "old");
    ASSERT_TRUE(old.ok()) << old.status();
    EXPECT_EQ(old->workers_size(), 0);
  }

  // After the condition is gone: both calls succeed and are on disk.
  void ExpectAccepted(v1::GameOptimizer::Stub& stub) {
    EXPECT_TRUE(Create(stub, "new").ok());
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/new.ckpt"));
    v1::TaskResponse task;
    const grpc::Status joined = testing::Join(stub, "old", &task);
    EXPECT_TRUE(joined.ok()) << joined.error_message();
    absl::StatusOr<v1::SessionStatus> old = testing::GetSession(stub, "old");
    ASSERT_TRUE(old.ok()) << old.status();
    EXPECT_EQ(old->workers_size(), 1);
  }
};

TEST_F(DurabilityOsTest, ReadOnlyStateDirAfterStartRefusesAndRecovers) {
  if (Shell("unshare --mount --propagation private true 2>/dev/null") != 0) {
    GTEST_SKIP() << "no private mount namespace here (unshare --mount needs "
                    "CAP_SYS_ADMIN): cannot make state_dir read-only for a "
                    "root server";
  }
  // The server in its own mount namespace. Read-only: a read-only bind
  // mount of state_dir over itself there (a remount of the folder's own
  // mount would be EBUSY: the server holds LOCK open for writing), so only
  // the server sees it; unmounting it makes the folder writable again.
  const std::string wrapper = dir_ + "-wrapper.sh";
  {
    std::ofstream out(wrapper);
    out << "#!/bin/sh\nexec unshare --mount --propagation private \""
        << GAMEOPT_SERVER_BINARY << "\" \"$@\"\n";
  }
  ASSERT_EQ(chmod(wrapper.c_str(), 0755), 0);
  ServerProcess server;
  ASSERT_TRUE(server.Start(wrapper, {"--state_dir=" + dir_}));
  auto stub = testing::NewStub(server.target());
  ASSERT_TRUE(Create(*stub, "old").ok());
  const std::string in_server =
      "nsenter --mount --target " + std::to_string(server.pid()) + " ";
  ASSERT_EQ(Shell(in_server + "mount --bind " + dir_ + " " + dir_ + " && " +
                  in_server + "mount -o remount,bind,ro " + dir_),
            0);
  ExpectRefused(*stub, grpc::StatusCode::FAILED_PRECONDITION,
                "Read-only file system");
  ASSERT_EQ(Shell(in_server + "umount " + dir_), 0);
  ExpectAccepted(*stub);
  std::filesystem::remove(wrapper);
}

// The lowest file descriptor number `pid` has free: with RLIMIT_NOFILE at
// it, the process's next open() fails with EMFILE.
int LowestFreeFd(pid_t pid) {
  std::set<int> open;
  const std::string path = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    int fd = 0;
    if (absl::SimpleAtoi(entry.path().filename().string(), &fd)) {
      open.insert(fd);
    }
  }
  int fd = 0;
  while (open.count(fd) > 0) ++fd;
  return fd;
}

TEST_F(DurabilityOsTest, NoFileDescriptorsLeftRefusesAndRecovers) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(GAMEOPT_SERVER_BINARY, {"--state_dir=" + dir_}));
  auto stub = testing::NewStub(server.target());
  ASSERT_TRUE(Create(*stub, "old").ok());  // the connection is open
  struct rlimit before;
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, nullptr, &before), 0);
  struct rlimit none = before;
  none.rlim_cur = LowestFreeFd(server.pid());
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, &none, nullptr), 0);
  ExpectRefused(*stub, grpc::StatusCode::RESOURCE_EXHAUSTED,
                "Too many open files");
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, &before, nullptr), 0);
  ExpectAccepted(*stub);
}

}  // namespace
}  // namespace gameopt
