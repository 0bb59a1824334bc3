#include "tests/load/server_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace gameopt::testing {
namespace {

// "VmHWM:    12345 kB" -> 12345.
int64_t Field(const std::string& line, const std::string& name) {
  if (line.rfind(name, 0) != 0) return -1;
  std::istringstream in(line.substr(name.size()));
  int64_t value = 0;
  in >> value;
  return value;
}

}  // namespace

ProcStatus ReadProcStatus(const std::string& pid) {
  ProcStatus status;
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (int64_t v = Field(line, "VmHWM:"); v >= 0) status.peak_rss_kb = v;
    if (int64_t v = Field(line, "VmRSS:"); v >= 0) status.rss_kb = v;
    if (int64_t v = Field(line, "Threads:"); v >= 0) {
      status.threads = static_cast<int>(v);
    }
  }
  return status;
}

ProcMonitor::ProcMonitor(std::string pid) : pid_(std::move(pid)) {
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      const int threads = ReadProcStatus(pid_).threads;
      if (threads > max_threads_.load()) max_threads_.store(threads);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
}

ProcMonitor::~ProcMonitor() {
  stop_.store(true);
  thread_.join();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool ServerProcess::Start(const std::string& binary,
                          const std::vector<std::string>& flags) {
  std::vector<std::string> args = {binary, "--address=127.0.0.1:0", "--quiet"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  pid_ = pid;
  stdout_fd_ = fds[0];
  // "gameopt_server listening on 127.0.0.1:PORT"
  const std::string prefix = "gameopt_server listening on 127.0.0.1:";
  std::string line;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char c;
    if (read(stdout_fd_, &c, 1) != 1) break;
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind(prefix, 0) == 0) {
      port_ = std::stoi(line.substr(prefix.size()));
      return true;
    }
    line.clear();
  }
  std::fprintf(stderr, "%s did not say it was listening\n", binary.c_str());
  return false;
}

int ServerProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  // Well past the 10 s that gRPC's shutdown may take (load_test.cc).
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

}  // namespace gameopt::testing
