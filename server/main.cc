// gameopt_server: hosts gameopt.v1.GameOptimizer until SIGINT or SIGTERM.
//
//   gameopt_server --address=0.0.0.0:50051 --max_message_mb=1024 [--quiet]
//       [--health_address=0.0.0.0:50052] [--metrics_address=0.0.0.0:9464]
//       [--tls_cert=server.pem --tls_key=server.key [--tls_client_ca=ca.pem]]
//       [--tokens_file=tokens.txt]
//       [--state_dir=DIR [--checkpoint_every_steps=N]]
//
// Prints "gameopt_server listening on HOST:PORT" on stdout once serving
// (scripts wait for it; --address=127.0.0.1:0 picks a free port), then, with
// --health_address, "gameopt_server health checks on HOST:PORT": a second
// plaintext port that serves only grpc.health.v1 (for container and
// Kubernetes probes; gameopt_health_check queries it), and with
// --metrics_address "gameopt_server metrics on HOST:PORT": Prometheus'
// text format at http://HOST:PORT/metrics (server/service/
// prometheus_exporter.h lists the gameopt_* families), and the live page
// at http://HOST:PORT/ (server/service/live_page.h). With --state_dir
// the sessions found there are restored before the "listening on" line.
// A signal shuts down gracefully: waiting workers are answered
// UNAVAILABLE, every session is checkpointed (with --state_dir) and the
// process exits 0 within about a second, whatever the message sizes were.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/service/malloc_tuning.h"
#include "server/service/server.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "host:port to listen on (port 0 = any free port)");
ABSL_FLAG(int64_t, max_message_mb, 1024,
          "largest request or response in MiB (capped at 2047); larger "
          "requests fail RESOURCE_EXHAUSTED");
ABSL_FLAG(bool, quiet, false, "do not log session and worker events");
ABSL_FLAG(int64_t, max_parameters, int64_t{1} << 30,
          "most parameters (coordinates) one session may have; larger "
          "CreateSession requests fail RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_memory_mb, 0,
          "memory budget of the sessions in MiB (parameters, optimizer "
          "slots, per-worker buffers); CreateSession past it fails "
          "RESOURCE_EXHAUSTED. 0 = 3/4 of the cgroup memory limit or of "
          "physical memory; negative = no budget");
ABSL_FLAG(bool, tune_malloc, true,
          "keep freed memory for reuse (glibc malloc thresholds, one arena "
          "per 8 cores): large messages then cost no page faults; see "
          "server/service/malloc_tuning.h");
ABSL_FLAG(std::string, health_address, "",
          "host:port of a second plaintext listener serving only "
          "grpc.health.v1 (empty = none; health is always served on "
          "--address too)");

ABSL_FLAG(std::string, metrics_address, "",
          "host:port of an HTTP listener serving the sessions' metrics at "
          "/metrics in Prometheus' text format and a live page of the "
          "training at / (empty = off; port 0 = any free port)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve --address over TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM roots: mutual TLS, every client presents a certificate they "
          "signed");
ABSL_FLAG(std::string, tokens_file, "",
          "bearer tokens, one 'TOKEN ROLE [SESSION ...]' a line, roles admin, "
          "worker, reader (server/service/auth.h); empty = no authorization");
ABSL_FLAG(std::string, state_dir, "",
          "folder of the session checkpoints (created if missing): every "
          "session found there is restored at start, each session is "
          "checkpointed at step boundaries and all at SIGTERM/SIGINT; "
          "empty = no persistence");
ABSL_FLAG(int64_t, checkpoint_every_steps, 0,
          "with --state_dir: checkpoint a session every N steps; 0 = "
          "automatic: every ceil(coordinates / 2^20) steps, i.e. every step "
          "for sessions of up to 1 Mi coordinates");

namespace {

// The self-pipe: the signal handler only writes one byte to it.
int signal_pipe[2] = {-1, -1};

void OnSignal(int) {
  const int saved = errno;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = write(signal_pipe[1], &byte, 1);
  errno = saved;
}

bool InstallSignalHandlers() {
  if (pipe(signal_pipe) != 0) return false;
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGINT, &action, nullptr) == 0 &&
         sigaction(SIGTERM, &action, nullptr) == 0;
}

void WaitForSignal() {
  char byte;
  while (read(signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the optimizer of a differentiable game as a gRPC service "
      "(gameopt.v1.GameOptimizer)");
  // --help lists the flags of this file (absl looks for gameopt_server.cc).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  if (!InstallSignalHandlers()) {
    std::perror("gameopt_server: cannot install signal handlers");
    return 1;
  }
  if (absl::GetFlag(FLAGS_tune_malloc)) gameopt::TuneMallocForLargeMessages();
#ifdef NDEBUG
  // Abseil built without NDEBUG (Debian's) checks every Mutex acquisition
  // for lock-order cycles (a graph update per Lock): a debugging aid that
  // cost ~5% of the server's CPU per round of a small game. Debug builds
  // keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  gameopt::GameOptServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.max_message_mb = absl::GetFlag(FLAGS_max_message_mb);
  options.health_address = absl::GetFlag(FLAGS_health_address);
  options.max_parameters = absl::GetFlag(FLAGS_max_parameters);
  options.max_memory_mb = absl::GetFlag(FLAGS_max_memory_mb);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.checkpoint_every_steps = absl::GetFlag(FLAGS_checkpoint_every_steps);
  if (absl::GetFlag(FLAGS_quiet)) options.log = nullptr;
  gameopt::GameOptServer server(options);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "gameopt_server: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("gameopt_server listening on %s\n", server.address().c_str());
  if (server.health_port() != 0) {
    const std::string& health = options.health_address;
    std::printf("gameopt_server health checks on %s:%d\n",
                health.substr(0, health.rfind(':')).c_str(),
                server.health_port());
  }
  if (server.metrics_port() != 0) {
    const std::string& metrics = options.metrics_address;
    std::printf("gameopt_server metrics on %s:%d\n",
                metrics.substr(0, metrics.rfind(':')).c_str(),
                server.metrics_port());
  }
  std::fflush(stdout);
  WaitForSignal();
  server.Shutdown();
  // Every call is answered and the listeners are closed. Skip the static
  // destructors: gRPC 1.51's grpc_shutdown can wait ~10 s for its executor
  // threads after large messages (cf. grpc/grpc#41050), with nothing left
  // to do.
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);
}
