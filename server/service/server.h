// GameOptServer: a gameopt gRPC server that can be embedded (the reference
// client starts one in-process, tests start one on 127.0.0.1:0) or run by
// gameopt_server (server/main.cc).
//
// It owns the SessionRegistry, the GameOptimizerService, the grpc::Server
// (with grpc.health.v1 and reflection enabled) and a deadline thread that
// applies the sessions' phase deadlines (SessionRegistry::CheckDeadlines)
// at the latest every kMaxDeadlinePoll.
//
// Shutdown() is graceful and quick even with workers waiting at barriers:
// health goes NOT_SERVING, new calls and every waiting call are answered
// UNAVAILABLE "server shutting down", and the grpc::Server stops, all
// within about kDrainTimeout + kFlushDelay + kShutdownGrace at worst (about
// 60 ms when nothing is stuck).
//
// Persistence (options.state_dir, checkpointer.h): Start() restores every
// session checkpointed there before it reports SERVING (a file it cannot
// read fails Start, naming the file); a session is checkpointed at a step
// boundary every Checkpointer::EverySteps() steps and when it is done,
// written behind the session by a writer thread, and every session at
// Shutdown(). Deleting a session deletes its checkpoint. One server per
// state_dir: a second one fails to start (FailedPrecondition) until the
// first has shut down or died.
//
// Start() and Shutdown() may be called from any thread (not concurrently
// with the destructor); Shutdown() is idempotent. The accessors are
// thread-safe once Start() has returned OK.
#ifndef GAMEOPT_SERVER_SERVICE_SERVER_H_
#define GAMEOPT_SERVER_SERVICE_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"
#include "server/core/clock.h"
#include "server/core/registry.h"
#include "server/service/checkpointer.h"
#include "server/service/game_optimizer_service.h"
#include "server/service/prometheus_exporter.h"

namespace gameopt {

// Writes "YYYY-MM-DD HH:MM:SS.mmm <line>" to stderr, one write per line.
LogSink StderrLogSink();

struct GameOptServerOptions {
  // host:port to listen on (plaintext, or TLS with the files below). Port 0
  // picks a free port: read it back with GameOptServer::port().
  std::string address = "127.0.0.1:50051";
  // Largest message accepted or sent, in MiB (>= 1); clamped to gRPC's
  // int limit (2 GiB - 1 byte). Larger requests fail RESOURCE_EXHAUSTED.
  int64_t max_message_mb = 1024;
  // Most parameters (coordinates of the joint vector) one session may
  // have; CreateSession past it fails RESOURCE_EXHAUSTED naming the tensor
  // that crosses it. A session holds several vectors of this length
  // (parameters, optimizer slots, one buffer per worker): the default, 2^30
  // (4 GiB per float32 vector), keeps one request from taking a large
  // machine; raise it for larger models.
  int64_t max_parameters = int64_t{1} << 30;
  // Memory budget of the sessions in MiB (server/core/memory_budget.h):
  // each session's parameters, optimizer slots and per-worker buffers are
  // accounted against it, and a CreateSession past it fails
  // RESOURCE_EXHAUSTED saying how much it asks and what is left. 0 = 3/4
  // of the cgroup's memory limit, or of physical memory; negative = none.
  int64_t max_memory_mb = 0;
  // Where phase deadlines read the time; must outlive the server. Tests
  // inject a FakeClock.
  const Clock* clock = RealClock();
  // Session, worker and server events. Empty = silent.
  LogSink log = StderrLogSink();
  // host:port of a second, plaintext listener that serves only
  // grpc.health.v1 (not reflection, not the API), for container
  // and Kubernetes probes that must not reach the API. It reports the same
  // status as the API port. Empty = none; port 0 picks a free port (read it
  // back with GameOptServer::health_port()).
  std::string health_address;
  // host:port of an HTTP listener serving the sessions' metrics at /metrics
  // in Prometheus' text format (prometheus_exporter.h). Empty = none; port
  // 0 picks a free port (read it back with GameOptServer::metrics_port()).
  std::string metrics_address;
  // TLS on the API port: a PEM certificate chain and its private key (both
  // or neither). With tls_client_ca_file (PEM roots) too, mutual TLS: every
  // client must present a certificate signed by one of them. The health
  // listener stays plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Bearer-token authorization (format and roles in auth.h). Empty = every
  // call allowed. Works with and without TLS; without, tokens travel in
  // clear (Start logs a warning). InProcessChannel() callers need a token
  // too.
  std::string tokens_file;
  // Folder of the session checkpoints (checkpoint_store.h); created if
  // missing. Empty = no persistence.
  std::string state_dir;
  // Checkpoint a session every this many steps (>= 0); 0 = automatic (see
  // Checkpointer::EverySteps).
  int64_t checkpoint_every_steps = 0;
};

class GameOptServer {
 public:
  // Longest sleep of the deadline thread, so deadlines (and FakeClock
  // advances) are applied within about this much wall time.
  static constexpr absl::Duration kMaxDeadlinePoll = absl::Milliseconds(20);
  // Shutdown() waits up to kDrainTimeout for the answered calls to be done,
  // kFlushDelay for their status to be written (gRPC offers no flush), then
  // lets gRPC finish what is in flight for up to kShutdownGrace before it
  // cancels it. At 2 ms no CANCELLED was seen in 1000 shutdowns; 50 ms is
  // the margin for a loaded machine.
  static constexpr absl::Duration kDrainTimeout = absl::Milliseconds(250);
  static constexpr absl::Duration kFlushDelay = absl::Milliseconds(50);
  static constexpr absl::Duration kShutdownGrace = absl::Milliseconds(500);

  explicit GameOptServer(GameOptServerOptions options);
  // Shuts down if still serving.
  ~GameOptServer();

  GameOptServer(const GameOptServer&) = delete;
  GameOptServer& operator=(const GameOptServer&) = delete;

  // Binds and starts serving; health reports SERVING once it returns OK.
  // InvalidArgument for bad options (a TLS or tokens file missing or
  // malformed: the message names the option, the gameopt_server flag and
  // the file), Unavailable when the address cannot be
  // bound, FailedPrecondition when called twice. It turns on gRPC's
  // process-wide health and reflection switches, which are not thread-safe:
  // start several servers of one process one at a time.
  absl::Status Start();

  // Idempotent; blocks until the server has stopped (well under a second).
  void Shutdown();

  // After a successful Start(): the bound port and "host:port" with it.
  int port() const { return port_; }
  // The health listener's port (0 when options.health_address is empty).
  int health_port() const { return health_port_; }
  // The metrics listener's port (0 when options.metrics_address is empty).
  int metrics_port() const {
    return metrics_ == nullptr ? 0 : metrics_->port();
  }
  std::string address() const;
  // A channel to this server that bypasses the network (embedding).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // The largest message in bytes, as given to gRPC.
  int max_message_bytes() const;

  SessionRegistry& registry() { return registry_; }
  const GameOptimizerService& service() const { return service_; }

 private:
  bool tls() const { return !options_.tls_cert_file.empty(); }
  // Hands the tokens file's Authorizer to the service (before serving).
  absl::Status LoadTokens();
  void DeadlineLoop();

  void Log(absl::string_view line) const;

  const GameOptServerOptions options_;
  MemoryBudget memory_budget_;  // before the registry, which uses it
  SessionRegistry registry_;
  GameOptimizerService service_;
  std::unique_ptr<Checkpointer> checkpointer_;  // set by Start, state_dir
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Only the default health service, on options_.health_address.
  // On the health port: every API method UNIMPLEMENTED (see Start). Before
  // the server, which must not outlive it.
  v1::GameOptimizer::Service unimplemented_api_;
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  std::unique_ptr<PrometheusExporter> metrics_;  // options_.metrics_address
  std::thread deadline_thread_;

  absl::Mutex lifecycle_mu_;  // serializes Start and Shutdown
  bool started_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(lifecycle_mu_) = false;

  absl::Mutex stop_mu_;  // wakes the deadline thread
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_SERVER_H_
