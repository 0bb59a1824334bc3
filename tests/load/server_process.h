// The real gameopt_server binary as a child process on 127.0.0.1:0, and
// what /proc says about a process: peak and current memory, threads.
#ifndef GAMEOPT_TESTS_LOAD_SERVER_PROCESS_H_
#define GAMEOPT_TESTS_LOAD_SERVER_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace gameopt::testing {

// From /proc/<pid>/status ("self" for this process); zeros if unreadable.
struct ProcStatus {
  int64_t peak_rss_kb = 0;  // VmHWM
  int64_t rss_kb = 0;       // VmRSS
  int threads = 0;          // Threads
};
ProcStatus ReadProcStatus(const std::string& pid = "self");

// Samples a process's thread count and RSS every few milliseconds, keeping
// the maxima (the kernel keeps only the peak RSS, VmHWM).
class ProcMonitor {
 public:
  explicit ProcMonitor(std::string pid);
  ~ProcMonitor();
  int max_threads() const { return max_threads_.load(); }

 private:
  const std::string pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int> max_threads_{0};
  std::thread thread_;
};

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Kills the server if it still runs.
  ~ServerProcess();

  // Starts `binary` with --address=127.0.0.1:0 --quiet and `flags` (a later
  // --address=127.0.0.1:PORT wins), and waits for its "listening on" line.
  // False (with the reason on stderr) when it does not come within 10 s.
  bool Start(const std::string& binary,
             const std::vector<std::string>& flags = {});
  // Sends `signal` (SIGTERM: a graceful shutdown; SIGKILL: a crash), then
  // waits up to 30 s; the exit status as waitpid reports it, or -1.
  int Stop(int signal = SIGTERM);

  pid_t pid() const { return pid_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_LOAD_SERVER_PROCESS_H_
