// Tests server/service/server.h and server/main.cc: health, reflection,
// message limits, shutdown with workers waiting, and the real binary.
#include "server/service/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

// A correctness bound, not a benchmark: shutdown and SIGTERM
// must not wait for barriers or long client deadlines.
constexpr absl::Duration kShutdownBound = absl::Seconds(1);

std::shared_ptr<grpc::Channel> Channel(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureChannelCredentials());
}

TEST(GameOptServer, HealthReportsServing) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  // HealthCheckResponse{status: SERVING (1)} is field 1, varint 1.
  const std::string kServing("\x08\x01", 2);
  absl::StatusOr<std::string> overall =
      GenericCall(Channel(server->port()), "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, kServing);
  // HealthCheckRequest{service: "gameopt.v1.GameOptimizer"}: field 1, bytes.
  const std::string name = "gameopt.v1.GameOptimizer";
  absl::StatusOr<std::string> service = GenericCall(
      Channel(server->port()), "/grpc.health.v1.Health/Check",
      std::string("\x0a", 1) + static_cast<char>(name.size()) + name);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, kServing);
}

TEST(GameOptServer, ReflectionListsTheService) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  // ServerReflectionRequest{list_services: "*"}: field 7, bytes.
  absl::StatusOr<std::string> response = GenericCall(
      Channel(server->port()),
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x01*", 3));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(*response, HasSubstr("gameopt.v1.GameOptimizer"));
}

// The health-only port serves health only, not
// reflection (a process-wide switch in gRPC, turned off for that port).
TEST(GameOptServer, HealthPortServesNoReflection) {
  GameOptServerOptions options = TestServerOptions();
  options.health_address = "127.0.0.1:0";
  std::unique_ptr<GameOptServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const std::string kReflection =
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  const std::string kListServices("\x3a\x01*", 3);
  absl::StatusOr<std::string> health_port =
      GenericCall(Channel(server->health_port()), kReflection, kListServices);
  EXPECT_EQ(health_port.status().code(), absl::StatusCode::kUnimplemented)
      << health_port.status();
  absl::StatusOr<std::string> health = GenericCall(
      Channel(server->health_port()), "/grpc.health.v1.Health/Check", "");
  EXPECT_TRUE(health.ok()) << health.status();
  // The API port still has it.
  EXPECT_TRUE(
      GenericCall(Channel(server->port()), kReflection, kListServices).ok());
}

TEST(GameOptServer, MessageLimitIsClampedToGrpcsIntLimit) {
  GameOptServerOptions options = TestServerOptions();
  options.max_message_mb = int64_t{1} << 40;
  GameOptServer server(options);
  EXPECT_EQ(server.max_message_bytes(), INT_MAX);
  options.max_message_mb = 1024;
  EXPECT_EQ(GameOptServer(options).max_message_bytes(), 1 << 30);
}

TEST(GameOptServer, StartRejectsBadOptionsAndSecondCalls) {
  GameOptServerOptions options = TestServerOptions();
  options.max_message_mb = 0;
  EXPECT_EQ(GameOptServer(options).Start().code(),
            absl::StatusCode::kInvalidArgument);
  options = TestServerOptions();
  options.address = "not an address";
  EXPECT_EQ(GameOptServer(options).Start().code(),
            absl::StatusCode::kUnavailable);
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(GameOptServer, InProcessChannelServes) {
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  auto stub = v1::GameOptimizer::NewStub(server->InProcessChannel());
  const QuadraticGame game = QuadraticGame::TwoPlayer(61);
  absl::StatusOr<std::string> id =
      CreateSession(*stub, QuadraticConfig(game, v1::SIMGD, 1, 3));
  ASSERT_TRUE(id.ok()) << id.status();
  const WorkerRun run = RunWorker(*stub, *id, game);
  EXPECT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_EQ(run.last_task.kind(), v1::DONE);
}

TEST(GameOptServer, ShutdownWithEightWaitingWorkersTakesUnderASecond) {
  constexpr int kWaiting = 8;
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const QuadraticGame game = QuadraticGame::TwoPlayer(71);
  auto stub = NewStub(server->port());
  // One more worker per round than will ever submit: the barrier stays shut.
  absl::StatusOr<std::string> id =
      CreateSession(*stub, QuadraticConfig(game, v1::SIMGD, kWaiting + 1, 0));
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<std::unique_ptr<AsyncCall>> calls;
  for (int i = 0; i < kWaiting; ++i) {
    v1::TaskResponse joined;
    ASSERT_TRUE(Join(*stub, *id, &joined).ok());
    calls.push_back(
        SubmitAsync(*stub, GradientRequest(game, *id, joined.worker_id(),
                                           joined.task(), game.x0())));
  }
  ASSERT_TRUE(WaitForSubmitted(*stub, *id, kWaiting));
  ASSERT_TRUE(
      WaitFor([&] { return server->service().live_reactors() == kWaiting; }));

  const absl::Time start = absl::Now();
  server->Shutdown();
  const absl::Duration shutdown = absl::Now() - start;
  EXPECT_LT(shutdown, kShutdownBound);
  for (const auto& call : calls) {
    ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kShutdownBound));
    EXPECT_EQ(call->status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(call->status.error_message(), HasSubstr("shutting down"));
  }
  EXPECT_EQ(server->service().live_reactors(), 0);
  server->Shutdown();  // idempotent
}

// ---- The gameopt_server binary ---------------------------------------------

// A child process, killed and reaped if the test ends before it exits.
struct Child {
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (stdout_fd >= 0) close(stdout_fd);
  }
  pid_t pid = -1;
  int stdout_fd = -1;
};

void Spawn(const std::vector<std::string>& args, Child* child) {
  std::vector<char*> argv;
  for (const std::string& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  child->pid = pid;
  child->stdout_fd = fds[0];
}

// The first line the child prints, or "" after `timeout`.
std::string ReadLine(int fd, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  std::string line;
  while (absl::Now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

// The child's wait status, or -1 if it is still running after `timeout`.
int WaitExit(pid_t pid, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return -1;
}

TEST(GameOptServerBinary, ServesARoundAndExitsCleanlyOnSigterm) {
  Child child;
  Spawn({GAMEOPT_SERVER_BINARY, "--address=127.0.0.1:0", "--max_message_mb=64"},
        &child);
  ASSERT_GT(child.pid, 0);
  const std::string line = ReadLine(child.stdout_fd, absl::Seconds(10));
  const std::string kPrefix = "gameopt_server listening on 127.0.0.1:";
  ASSERT_EQ(line.rfind(kPrefix, 0), 0u) << "got '" << line << "'";
  const int port = std::stoi(line.substr(kPrefix.size()));
  auto stub = NewStub(port);

  // A round of a one-worker session.
  const QuadraticGame game = QuadraticGame::TwoPlayer(81);
  absl::StatusOr<std::string> id =
      CreateSession(*stub, QuadraticConfig(game, v1::CONOPT, 1, 1));
  ASSERT_TRUE(id.ok()) << id.status();
  const WorkerRun run = RunWorker(*stub, *id, game);
  EXPECT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_EQ(run.last_task.kind(), v1::DONE);
  EXPECT_EQ(run.submissions, 2);

  // A worker left waiting at a barrier that will never open.
  absl::StatusOr<std::string> waiting_id =
      CreateSession(*stub, QuadraticConfig(game, v1::SIMGD, 2, 0));
  ASSERT_TRUE(waiting_id.ok());
  v1::TaskResponse joined;
  ASSERT_TRUE(Join(*stub, *waiting_id, &joined).ok());
  auto waiting =
      SubmitAsync(*stub, GradientRequest(game, *waiting_id, joined.worker_id(),
                                         joined.task(), game.x0()));
  ASSERT_TRUE(WaitForSubmitted(*stub, *waiting_id, 1));

  const absl::Time start = absl::Now();
  ASSERT_EQ(kill(child.pid, SIGTERM), 0);
  const int status = WaitExit(child.pid, kShutdownBound);
  EXPECT_LT(absl::Now() - start, kShutdownBound);
  ASSERT_NE(status, -1) << "still running a second after SIGTERM";
  child.pid = -1;  // reaped
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(waiting->done.WaitForNotificationWithTimeout(kShutdownBound));
  EXPECT_EQ(waiting->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(waiting->status.error_message(), HasSubstr("shutting down"));
}

}  // namespace
}  // namespace gameopt::testing
