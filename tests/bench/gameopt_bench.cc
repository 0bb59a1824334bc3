// gameopt_bench: gameopt rounds with K null-game workers against a real
// GameOptServer, next to the baselines that move the same bytes the same
// number of times (a plain gRPC echo service and raw TCP ping-pong).
//
//   gameopt_bench [--cases=conopt/1M/4,simgd/16M/1,...] [--seconds=2]
//                 [--procs] [--server=HOST:PORT] [--huge] [--baselines]
//
// A case is ALGORITHM/D/K: simgd or conopt (gamma 10, unbiased estimator;
// one worker sends 2 samples), D float32 parameters (K and M suffixes are
// powers of two), K workers. Each measurement is a session of 1 + N
// steps, step 0 untimed (joins, first parameters); N starts at
// --min_steps and grows until the timed steps take about --seconds. The server
// runs in this process on 127.0.0.1:0 unless --server names one (e.g. a
// gameopt_server whose peak memory a script reads); workers and baseline
// clients are threads unless
// --procs makes them processes (this binary, run again). One line per case
// on stdout:
//
//   CASE name=conopt/1M/4 ... steps_per_s=S payload_GBps=G echo_GBps=E
//        tcp_GBps=T ratio_echo=G/E ratio_tcp=G/T ...
//
// Payload = tensor bytes (gradients, probes, products, parameters) up and
// down; the baselines send each request's tensor bytes and get them back.
// --huge adds one end-to-end round of simgd with 100M parameters.
// --tune_malloc (default on) applies malloc_tuning.h to this process (its
// servers and clients alike) and its children.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "server/service/malloc_tuning.h"
#include "server/service/server.h"
#include "tests/bench/baselines.h"
#include "tests/bench/null_worker.h"

ABSL_FLAG(std::vector<std::string>, cases,
          std::vector<std::string>({"conopt/2/1", "simgd/1K/1", "conopt/1K/1",
                                    "simgd/1M/1", "conopt/1M/1", "conopt/1M/4",
                                    "conopt/1M/16", "simgd/1M/16",
                                    "simgd/16M/1", "conopt/16M/1",
                                    "conopt/16M/4"}),
          "cases ALGORITHM/D/K to run, in order");
ABSL_FLAG(double, seconds, 2.0, "timed seconds per measurement, about");
ABSL_FLAG(int64_t, min_steps, 3, "timed steps per measurement, at least");
ABSL_FLAG(int64_t, max_timed_steps, 20000, "timed steps, at most");
ABSL_FLAG(bool, procs, false, "workers and clients as processes");
ABSL_FLAG(std::string, server, "",
          "host:port of a running gameopt_server (default: in-process)");
ABSL_FLAG(bool, huge, false, "also run one round of simgd/100M/1");
ABSL_FLAG(bool, baselines, true, "time the echo and TCP baselines too");
ABSL_FLAG(int, repeats, 1,
          "measurements of each kind per case, interleaved; the fastest "
          "of each is reported (the machine's other load only slows runs "
          "down)");
ABSL_FLAG(bool, tune_malloc, true,
          "keep freed memory for reuse (malloc_tuning.h), for every server "
          "and client of this process");
// Internal: what a child process does.
ABSL_FLAG(std::string, child, "", "internal: worker, echo, tcp or serve");
ABSL_FLAG(std::string, target, "", "internal");
ABSL_FLAG(std::string, session, "", "internal");
ABSL_FLAG(std::string, case_name, "", "internal");
ABSL_FLAG(int64_t, timed_from, 1, "internal");
ABSL_FLAG(std::vector<std::string>, sizes, {}, "internal");
ABSL_FLAG(int64_t, count, 1, "internal");

namespace gameopt::bench {
namespace {

constexpr int64_t kHugeD = 100000000;

std::string self_path;  // this binary, for --procs

void Die(const absl::Status& status) {
  std::fprintf(stderr, "gameopt_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// ---------------------------------------------------------------- children

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout
  int in = -1;   // its stdin
};

Child Spawn(const std::vector<std::string>& args) {
  int out[2], in[2];
  if (pipe(out) != 0 || pipe(in) != 0) Die(absl::InternalError("pipe"));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  std::vector<std::string> argv_strings = {self_path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  argv_strings.push_back(absl::StrCat(
      "--tune_malloc=", absl::GetFlag(FLAGS_tune_malloc) ? "true" : "false"));
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child child;
  if (posix_spawn(&child.pid, self_path.c_str(), &actions, nullptr, argv.data(),
                  environ) != 0) {
    Die(absl::InternalError("posix_spawn"));
  }
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(in[0]);
  child.out = out[0];
  child.in = in[1];
  return child;
}

std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

// Waits for the child; its last line, "WINDOW start end" or "ERROR ...".
absl::StatusOr<Window> Finish(Child& child) {
  std::string output, line;
  while (!(line = ReadLine(child.out)).empty()) output = line;
  close(child.out);
  close(child.in);
  int status = 0;
  waitpid(child.pid, &status, 0);
  std::vector<std::string> parts = absl::StrSplit(output, ' ');
  Window w;
  if (parts.size() == 3 && parts[0] == "WINDOW" &&
      absl::SimpleAtoi(parts[1], &w.start_ns) &&
      absl::SimpleAtoi(parts[2], &w.end_ns)) {
    return w;
  }
  return absl::InternalError(absl::StrCat("child: ", output));
}

int ChildMain() {
  const std::string mode = absl::GetFlag(FLAGS_child);
  if (mode == "serve") {  // the baselines' servers, until stdin closes
    EchoServer echo;
    TcpEchoServer tcp;
    if (absl::Status s = echo.Start(); !s.ok()) Die(s);
    if (absl::Status s = tcp.Start(); !s.ok()) Die(s);
    std::printf("PORTS %d %d\n", echo.port(), tcp.port());
    std::fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
  }
  absl::StatusOr<Window> window;
  std::vector<int64_t> sizes;
  for (const std::string& s : absl::GetFlag(FLAGS_sizes)) {
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) sizes.push_back(v);
  }
  if (mode == "worker") {
    absl::StatusOr<Case> c = ParseCase(absl::GetFlag(FLAGS_case_name));
    if (!c.ok()) Die(c.status());
    window =
        RunNullWorker(absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_session),
                      *c, absl::GetFlag(FLAGS_timed_from));
  } else if (mode == "echo") {
    window = RunEchoClient(absl::GetFlag(FLAGS_target), sizes, 1,
                           absl::GetFlag(FLAGS_count));
  } else if (mode == "tcp") {
    int port = 0;
    if (!absl::SimpleAtoi(absl::GetFlag(FLAGS_target), &port)) {
      Die(absl::InvalidArgumentError("tcp wants a port"));
    }
    window = RunTcpClient(port, sizes, 1, absl::GetFlag(FLAGS_count));
  } else {
    Die(absl::InvalidArgumentError(absl::StrCat("--child=", mode)));
  }
  if (!window.ok()) {
    std::printf("ERROR %s\n", window.status().ToString().c_str());
    return 1;
  }
  std::printf("WINDOW %lld %lld\n", static_cast<long long>(window->start_ns),
              static_cast<long long>(window->end_ns));
  return 0;
}

// ---------------------------------------------------------------- runs

// Runs `n` clients (threads, or children with `child_args(i)`), each
// `run(i)`; the span from the first start to the last end, in seconds.
template <typename Run, typename Args>
absl::StatusOr<double> RunClients(int n, Run run, Args child_args) {
  std::vector<absl::StatusOr<Window>> windows(n, Window{});
  if (absl::GetFlag(FLAGS_procs)) {
    std::vector<Child> children;
    for (int i = 0; i < n; ++i) children.push_back(Spawn(child_args(i)));
    for (int i = 0; i < n; ++i) windows[i] = Finish(children[i]);
  } else {
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] { windows[i] = run(i); });
    }
    for (std::thread& t : threads) t.join();
  }
  int64_t start = INT64_MAX, end = 0;
  for (const absl::StatusOr<Window>& w : windows) {
    if (!w.ok()) return w.status();
    start = std::min(start, w->start_ns);
    end = std::max(end, w->end_ns);
  }
  return (end - start) * 1e-9;
}

// Seconds for `timed` steps of `c` (after one untimed step).
absl::StatusOr<double> TimeSession(const std::string& target, const Case& c,
                                   int64_t timed) {
  absl::StatusOr<std::string> session =
      CreateSession(target, SessionConfigOf(c, 1 + timed));
  if (!session.ok()) return session.status();
  absl::StatusOr<double> seconds = RunClients(
      c.workers, [&](int) { return RunNullWorker(target, *session, c, 1); },
      [&](int) {
        return std::vector<std::string>{
            "--child=worker", "--target=" + target, "--session=" + *session,
            "--case_name=" + c.Name(), "--timed_from=1"};
      });
  absl::Status deleted = DeleteSession(target, *session);
  if (seconds.ok() && !deleted.ok()) return deleted;
  return seconds;
}

std::vector<std::string> SizesArgs(const Case& c) {
  std::vector<std::string> sizes;
  for (int64_t s : c.RequestBytes()) sizes.push_back(absl::StrCat(s));
  return {"--sizes=" + absl::StrJoin(sizes, ",")};
}

absl::StatusOr<double> TimeEcho(const std::string& target, const Case& c,
                                int64_t timed) {
  return RunClients(
      c.workers,
      [&](int) { return RunEchoClient(target, c.RequestBytes(), 1, timed); },
      [&](int) {
        std::vector<std::string> args = SizesArgs(c);
        args.push_back("--child=echo");
        args.push_back("--target=" + target);
        args.push_back(absl::StrCat("--count=", timed));
        return args;
      });
}

absl::StatusOr<double> TimeTcp(int port, const Case& c, int64_t timed) {
  return RunClients(
      c.workers,
      [&](int) { return RunTcpClient(port, c.RequestBytes(), 1, timed); },
      [&](int) {
        std::vector<std::string> args = SizesArgs(c);
        args.push_back("--child=tcp");
        args.push_back(absl::StrCat("--target=", port));
        args.push_back(absl::StrCat("--count=", timed));
        return args;
      });
}

struct Servers {
  std::string target;  // gameopt
  std::string echo;
  int tcp_port = 0;
};

void RunCase(const Servers& servers, const Case& c, bool huge) {
  // Steps for --seconds: from 1 timed step, grown until the run is long
  // enough; the last run is the measurement.
  const double target = absl::GetFlag(FLAGS_seconds);
  int64_t timed = huge ? 1 : absl::GetFlag(FLAGS_min_steps);
  absl::StatusOr<double> seconds;
  while (true) {
    seconds = TimeSession(servers.target, c, timed);
    if (!seconds.ok()) Die(seconds.status());
    if (huge || *seconds >= 0.5 * target ||
        timed >= absl::GetFlag(FLAGS_max_timed_steps)) {
      break;
    }
    timed = std::min(
        absl::GetFlag(FLAGS_max_timed_steps),
        std::max(timed + 1, static_cast<int64_t>(std::ceil(
                                timed * target / std::max(*seconds, 1e-6)))));
  }
  // Then the repeats, each kind in turn, so that a burst of other load
  // hits all kinds alike; the best of each counts.
  double gameopt_s = *seconds, echo_s = 1e300, tcp_s = 1e300;
  const bool baselines = absl::GetFlag(FLAGS_baselines) && !huge;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_repeats)); ++r) {
    if (r > 0) {
      absl::StatusOr<double> again = TimeSession(servers.target, c, timed);
      if (!again.ok()) Die(again.status());
      gameopt_s = std::min(gameopt_s, *again);
    }
    if (!baselines) continue;
    absl::StatusOr<double> echo = TimeEcho(servers.echo, c, timed);
    if (!echo.ok()) Die(echo.status());
    absl::StatusOr<double> tcp = TimeTcp(servers.tcp_port, c, timed);
    if (!tcp.ok()) Die(tcp.status());
    echo_s = std::min(echo_s, *echo);
    tcp_s = std::min(tcp_s, *tcp);
  }
  const double steps_per_s = timed / gameopt_s;
  const double payload = c.PayloadBytesPerStep();
  const double gbps = payload * steps_per_s * 1e-9;
  std::string line =
      absl::StrCat("CASE name=", c.Name(), " algorithm=", c.algorithm,
                   " d=", c.d, " workers=", c.workers, " samples=", c.samples(),
                   " steps=", timed, " seconds=", gameopt_s,
                   " steps_per_s=", steps_per_s, " step_ms=", 1e3 / steps_per_s,
                   " payload_bytes_per_step=", payload, " payload_GBps=", gbps);
  if (baselines) {
    // The same requests, each echoed: 2 x the request bytes per round trip.
    double echoed = 0;
    for (int64_t s : c.RequestBytes()) echoed += 2.0 * s * c.workers;
    const double echo_gbps = echoed * timed / echo_s * 1e-9;
    const double tcp_gbps = echoed * timed / tcp_s * 1e-9;
    absl::StrAppend(
        &line, " echo_step_ms=", echo_s / timed * 1e3, " echo_GBps=", echo_gbps,
        " tcp_step_ms=", tcp_s / timed * 1e3, " tcp_GBps=", tcp_gbps,
        " ratio_echo=", gbps / echo_gbps, " ratio_tcp=", gbps / tcp_gbps,
        " time_vs_echo=", gameopt_s / echo_s);
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int Main() {
  std::vector<Case> cases;
  for (const std::string& text : absl::GetFlag(FLAGS_cases)) {
    absl::StatusOr<Case> c = ParseCase(text);
    if (!c.ok()) Die(c.status());
    cases.push_back(*c);
  }
  Servers servers;
  std::unique_ptr<GameOptServer> server;
  std::unique_ptr<EchoServer> echo;
  std::unique_ptr<TcpEchoServer> tcp;
  Child baseline_child;
  if (absl::GetFlag(FLAGS_server).empty()) {
    GameOptServerOptions options;
    options.address = "127.0.0.1:0";
    options.log = nullptr;
    server = std::make_unique<GameOptServer>(options);
    if (absl::Status s = server->Start(); !s.ok()) Die(s);
    servers.target = server->address();
    echo = std::make_unique<EchoServer>();
    tcp = std::make_unique<TcpEchoServer>();
    if (absl::Status s = echo->Start(); !s.ok()) Die(s);
    if (absl::Status s = tcp->Start(); !s.ok()) Die(s);
    servers.echo = absl::StrCat("127.0.0.1:", echo->port());
    servers.tcp_port = tcp->port();
  } else {
    // An external gameopt server: the baselines' servers get a process of
    // their own too.
    servers.target = absl::GetFlag(FLAGS_server);
    baseline_child = Spawn({"--child=serve"});
    std::vector<std::string> parts =
        absl::StrSplit(ReadLine(baseline_child.out), ' ');
    int echo_port = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &echo_port) ||
        !absl::SimpleAtoi(parts[2], &servers.tcp_port)) {
      Die(absl::InternalError("baseline servers did not start"));
    }
    servers.echo = absl::StrCat("127.0.0.1:", echo_port);
  }
  std::printf("BENCH server=%s procs=%d threads_per_process=%u\n",
              server != nullptr ? "in-process" : servers.target.c_str(),
              absl::GetFlag(FLAGS_procs) ? 1 : 0,
              std::thread::hardware_concurrency());
  for (const Case& c : cases) RunCase(servers, c, /*huge=*/false);
  if (absl::GetFlag(FLAGS_huge)) {
    Case c;
    c.algorithm = "simgd";
    c.d = kHugeD;
    c.workers = 1;
    RunCase(servers, c, /*huge=*/true);
  }
  if (baseline_child.pid > 0) {
    close(baseline_child.in);
    waitpid(baseline_child.pid, nullptr, 0);
  }
  if (server != nullptr) server->Shutdown();
  return 0;
}

}  // namespace
}  // namespace gameopt::bench

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_tune_malloc)) gameopt::TuneMallocForLargeMessages();
#ifdef NDEBUG
  // As gameopt_server's main(): the in-process server measured here must
  // not pay for Abseil's lock-order cycle detection (a graph update per
  // Mutex acquisition, on in Debian's Abseil) when the deployed one does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  gameopt::bench::self_path = n > 0 ? std::string(path, n) : argv[0];
  if (!absl::GetFlag(FLAGS_child).empty()) {
    return gameopt::bench::ChildMain();
  }
  return gameopt::bench::Main();
}
