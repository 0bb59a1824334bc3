#include "server/service/server.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"
#include "server/service/auth.h"
#include "server/service/credentials.h"

namespace gameopt {
namespace {

// Drops the reflection plugin, which InitProtoReflectionServerBuilderPlugin
// adds to every builder of the process, from one builder: the health-only
// port serves grpc.health.v1 and nothing else.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    plugins->erase(
        std::remove_if(plugins->begin(), plugins->end(),
                       [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                         return p->name().find("reflection") !=
                                std::string::npos;
                       }),
        plugins->end());
  }
};

constexpr char kServiceName[] = "gameopt.v1.GameOptimizer";
// The deadline thread never spins faster than this.
constexpr absl::Duration kMinDeadlinePoll = absl::Milliseconds(1);

std::string Host(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// "HOST:PORT" with the port gRPC bound; a Unix-domain socket address
// ("unix:PATH", "unix-abstract:NAME") has no port and is its own address.
std::string BoundAddress(const std::string& address, int port) {
  if (absl::StartsWith(address, "unix:") ||
      absl::StartsWith(address, "unix-abstract:")) {
    return address;
  }
  return absl::StrCat(Host(address), ":", port);
}

}  // namespace

LogSink StderrLogSink() {
  return [](absl::string_view line) {
    const std::string text =
        absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(),
                                      absl::LocalTimeZone()),
                     " ", line, "\n");
    std::fwrite(text.data(), 1, text.size(), stderr);
  };
}

GameOptServer::GameOptServer(GameOptServerOptions options)
    : options_(std::move(options)),
      memory_budget_(
          options_.max_memory_mb == 0 ? DefaultMemoryBudgetBytes()
          : options_.max_memory_mb < 0
              ? 0
              : (std::min<int64_t>(options_.max_memory_mb, int64_t{1} << 40)
                 << 20)),
      registry_(options_.clock, options_.max_parameters),
      service_(&registry_, options_.log) {
  registry_.set_memory_budget(&memory_budget_);
  registry_.set_max_task_bytes(max_message_bytes());
  if (options_.log) {
    LogSink log = options_.log;
    registry_.set_event_log([log](const std::string& event) { log(event); });
  }
}

GameOptServer::~GameOptServer() { Shutdown(); }

int GameOptServer::max_message_bytes() const {
  const int64_t mb = std::max<int64_t>(options_.max_message_mb, 1);
  const int64_t limit = INT_MAX >> 20;  // MiB that still fit in an int
  return mb > limit ? INT_MAX : static_cast<int>(mb << 20);
}

std::string GameOptServer::address() const {
  return BoundAddress(options_.address, port_);
}

void GameOptServer::Log(absl::string_view line) const {
  if (options_.log) options_.log(line);
}

absl::Status GameOptServer::Start() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (started_) {
    return absl::FailedPreconditionError("GameOptServer::Start called twice");
  }
  if (options_.max_message_mb < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_mb = ", options_.max_message_mb, " must be >= 1"));
  }
  if (options_.clock == nullptr) {
    return absl::InvalidArgumentError("clock must not be null");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ApiCredentials({options_.tls_cert_file, options_.tls_key_file,
                      options_.tls_client_ca_file});
  if (!credentials.ok()) return credentials.status();
  if (absl::Status status = LoadTokens(); !status.ok()) return status;
  if (options_.checkpoint_every_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint_every_steps = ", options_.checkpoint_every_steps,
        " must be >= 0 (0 = automatic)"));
  }
  if (!options_.state_dir.empty()) {
    // Before the port opens: no call sees a server without its sessions.
    absl::StatusOr<std::unique_ptr<Checkpointer>> checkpointer =
        Checkpointer::Start(options_.state_dir, options_.checkpoint_every_steps,
                            &registry_, options_.log);
    if (!checkpointer.ok()) return checkpointer.status();
    checkpointer_ = *std::move(checkpointer);
  }
  // Both are process-wide switches read by the builder.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.address, *credentials, &port_);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(max_message_bytes());
  builder.SetMaxSendMessageSize(max_message_bytes());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.address,
        " (address in use, or not a host:port",
        tls() ? "; or tls_cert_file (--tls_cert) and tls_key_file "
                "(--tls_key) are not a certificate and its private key"
              : "",
        ")"));
  }
  if (!options_.health_address.empty()) {
    // A server with no service of ours: the builder adds the default health
    // service (the switch above is on), nothing else of the API.
    grpc::ServerBuilder health_builder;
    health_builder.SetOption(std::make_unique<WithoutReflection>());
    // gRPC runs its default health service on the threads of a server's
    // sync services; without reflection there is none, so register the
    // API's sync base, whose methods all answer UNIMPLEMENTED.
    health_builder.RegisterService(&unimplemented_api_);
    health_builder.AddListeningPort(options_.health_address,
                                    grpc::InsecureServerCredentials(),
                                    &health_port_);
    health_server_ = health_builder.BuildAndStart();
    if (health_server_ == nullptr || health_port_ == 0) {
      health_server_.reset();
      server_->Shutdown();
      server_.reset();
      return absl::UnavailableError(absl::StrCat(
          "cannot listen for health checks on ", options_.health_address,
          " (address in use, or not a host:port)"));
    }
  }
  if (!options_.metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<PrometheusExporter>> metrics =
        PrometheusExporter::Start(options_.metrics_address, &registry_);
    if (!metrics.ok()) {
      for (auto* server : {&server_, &health_server_}) {
        if (*server == nullptr) continue;
        (*server)->Shutdown();
        server->reset();
      }
      return metrics.status();
    }
    metrics_ = *std::move(metrics);
  }
  started_ = true;
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    if (grpc::HealthCheckServiceInterface* health =
            server->GetHealthCheckService()) {
      health->SetServingStatus(kServiceName, true);
      health->SetServingStatus(true);
    }
  }
  deadline_thread_ = std::thread([this] { DeadlineLoop(); });
  Log(absl::StrCat("serving gameopt.v1 on ", address(), " (",
                   !tls()                                ? "plaintext"
                   : options_.tls_client_ca_file.empty() ? "TLS"
                                                         : "mutual TLS",
                   options_.tokens_file.empty() ? "" : ", bearer tokens",
                   ", max message ", max_message_bytes() >> 20, " MiB)"));
  if (health_server_ != nullptr) {
    Log(absl::StrCat("serving grpc.health.v1 on ",
                     BoundAddress(options_.health_address, health_port_)));
  }
  if (metrics_ != nullptr) {
    Log(absl::StrCat("serving Prometheus metrics on http://",
                     Host(options_.metrics_address), ":", metrics_->port(),
                     "/metrics"));
  }
  return absl::OkStatus();
}

absl::Status GameOptServer::LoadTokens() {
  if (options_.tokens_file.empty()) return absl::OkStatus();
  absl::StatusOr<Authorizer> authorizer =
      Authorizer::FromFile(options_.tokens_file);
  if (!authorizer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokens_file (--tokens_file): ", authorizer.status().message()));
  }
  Log(absl::StrCat("authorization: ", authorizer->num_tokens(),
                   " token(s) from ", options_.tokens_file));
  if (!tls()) {
    Log("warning: bearer tokens over plaintext travel in clear; use TLS "
        "(--tls_cert, --tls_key) anywhere but loopback");
  }
  service_.set_authorizer(*std::move(authorizer));
  return absl::OkStatus();
}

void GameOptServer::DeadlineLoop() {
  while (true) {
    const absl::Time next = registry_.CheckDeadlines();
    const absl::Duration wait = std::clamp(next - options_.clock->Now(),
                                           kMinDeadlinePoll, kMaxDeadlinePoll);
    absl::MutexLock lock(&stop_mu_);
    if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), wait)) return;
  }
}

void GameOptServer::Shutdown() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  Log("shutting down: answering waiting calls UNAVAILABLE");
  const absl::Status why = absl::UnavailableError("server shutting down");
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    if (grpc::HealthCheckServiceInterface* health =
            server->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
  }
  service_.StartShutdown(why);
  registry_.CloseAll(why);
  // Closed sessions change no more: their checkpoints are final.
  if (checkpointer_ != nullptr) checkpointer_->Stop();
  // The waiting calls are answered. grpc::Server::Shutdown closes the
  // connections as soon as no call is in progress, and a status that gRPC
  // has accepted but not yet written then reaches the client as CANCELLED
  // instead of UNAVAILABLE: wait for the reactors to be done, then give the
  // transport kFlushDelay to write.
  if (!service_.AwaitNoReactors(kDrainTimeout)) {
    Log("shutting down: some calls are still in flight; cancelling them");
  }
  absl::SleepFor(kFlushDelay);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(kShutdownGrace));
  if (health_server_ != nullptr) {
    // Health calls are unary and quick: no grace needed.
    health_server_->Shutdown(std::chrono::system_clock::now());
  }
  {
    absl::MutexLock stop_lock(&stop_mu_);
    stop_ = true;
  }
  deadline_thread_.join();
  metrics_.reset();
  Log("stopped");
}

std::shared_ptr<grpc::Channel> GameOptServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes());
  args.SetMaxSendMessageSize(max_message_bytes());
  return server_->InProcessChannel(args);
}

}  // namespace gameopt
