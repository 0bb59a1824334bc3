// worker_bench: the C++ worker library's loop (client/worker: Worker over a
// sample game) against a real GameOptServer, next to the gRPC echo baseline
// of gameopt_bench moving the same request bytes as many times.
//
//   worker_bench [--cases=1,256] [--steps=2000] [--repeats=5]
//
// A case is the bilinear game of dimension d (client/games/bilinear.h; 2d
// coordinates) under ConOpt (gamma 10, unbiased estimator, so the single
// worker computes 2 samples and 2 products per step), RMSProp lr 1e-4,
// float32, one worker: gameopt_bench's conopt/2d/1 played by the real
// worker instead of the null one. Each measurement is a session of
// 1 + --steps steps, timed from the first task of step 1 to DONE; the
// worker and the echo client alternate --repeats times on one server and
// the fastest of each counts. One line per case on stdout:
//
//   CASE name=worker/bilinear/1 steps=N worker_step_ms=W echo_step_ms=E
//        time_vs_echo=W/E
//
// Only ratios of figures measured in one run mean anything (a loaded
// machine slows every figure); tests/bench/README.md.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/games/bilinear.h"
#include "client/worker/session_builder.h"
#include "client/worker/task_link.h"
#include "client/worker/worker.h"
#include "server/service/malloc_tuning.h"
#include "server/service/server.h"
#include "tests/bench/baselines.h"
#include "tests/bench/null_worker.h"

ABSL_FLAG(std::vector<std::string>, cases,
          std::vector<std::string>({"1", "256"}),
          "bilinear dimensions d (2d coordinates each)");
ABSL_FLAG(int64_t, steps, 2000, "timed steps of each measurement");
ABSL_FLAG(int, repeats, 5, "measurements of each kind; the fastest counts");

namespace gameopt::bench {
namespace {

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "worker_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// Seconds of `timed` steps of one Worker on a fresh session of `game`.
absl::StatusOr<double> TimeWorker(const std::string& target, const Game& game,
                                  int64_t timed) {
  SessionOptions options;
  options.algorithm = "conopt";
  options.gamma = 10.0;
  options.estimator = "unbiased";
  options.optimizer = "rmsprop";
  options.learning_rate = 1e-4;
  options.float64 = false;
  options.samples_per_worker = 2;
  options.phase_deadline_seconds = -1;  // wait forever
  options.max_steps = 1 + timed;
  absl::StatusOr<v1::SessionConfig> config = BuildSessionConfig(game, options);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::string> session = CreateSession(target, *config);
  if (!session.ok()) return session.status();

  std::unique_ptr<Game> mine = game.Clone();
  int64_t start_ns = 0, end_ns = 0;
  WorkerOptions worker_options;
  worker_options.on_progress = [&](const WorkerProgress& p) {
    if (start_ns == 0 && p.step == 1) start_ns = NowNs();
    if (p.kind == v1::DONE) end_ns = NowNs();
  };
  Worker worker(NewChannel(target), *session, mine.get(), worker_options);
  absl::Status status = worker.Run();
  DeleteSession(target, *session).IgnoreError();
  if (!status.ok()) return status;
  return (end_ns - start_ns) * 1e-9;
}

void RunCase(const std::string& target, const std::string& echo, int dim) {
  const BilinearGame game(dim, /*seed=*/1);
  // The same requests as gameopt_bench's conopt/2d/1 (float32, 2 samples).
  Case c{"conopt", 2 * dim, 1};
  const int64_t timed = absl::GetFlag(FLAGS_steps);
  double worker_s = 1e300, echo_s = 1e300;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_repeats)); ++r) {
    absl::StatusOr<double> w = TimeWorker(target, game, timed);
    if (!w.ok()) Die(w.status());
    absl::StatusOr<Window> e = RunEchoClient(echo, c.RequestBytes(), 1, timed);
    if (!e.ok()) Die(e.status());
    worker_s = std::min(worker_s, *w);
    echo_s = std::min(echo_s, (e->end_ns - e->start_ns) * 1e-9);
  }
  std::printf(
      "CASE name=worker/bilinear/%d steps=%lld worker_step_ms=%.4f "
      "echo_step_ms=%.4f time_vs_echo=%.3f\n",
      dim, static_cast<long long>(timed), worker_s / timed * 1e3,
      echo_s / timed * 1e3, worker_s / echo_s);
  std::fflush(stdout);
}

int Main() {
  TuneMallocForLargeMessages();
  std::vector<int> dims;
  for (const std::string& text : absl::GetFlag(FLAGS_cases)) {
    int d = 0;
    if (!absl::SimpleAtoi(text, &d) || d < 1) {
      Die(absl::InvalidArgumentError(
          absl::StrCat("case '", text, "': a bilinear dimension >= 1")));
    }
    dims.push_back(d);
  }
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  options.log = nullptr;
  GameOptServer server(options);
  if (absl::Status status = server.Start(); !status.ok()) Die(status);
  EchoServer echo;
  if (absl::Status status = echo.Start(); !status.ok()) Die(status);
  const std::string target = absl::StrCat("127.0.0.1:", server.port());
  const std::string echo_target = absl::StrCat("127.0.0.1:", echo.port());
  for (int d : dims) RunCase(target, echo_target, d);
  server.Shutdown();
  return 0;
}

}  // namespace
}  // namespace gameopt::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return gameopt::bench::Main();
}
