#include "server/service/prometheus_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "server/core/metrics.h"
#include "server/service/live_page.h"
#include "server/service/metrics_convert.h"

namespace gameopt {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// The families of one scrape, filled session by session.
class Families {
 public:
  // Adds one sample to family `name` (created on first use).
  void Gauge(const std::string& name, const std::string& help, Labels labels,
             double value) {
    ClientMetric& metric = Add(name, help, MetricType::Gauge, labels);
    metric.gauge.value = value;
  }
  void Counter(const std::string& name, const std::string& help, Labels labels,
               double value) {
    ClientMetric& metric = Add(name, help, MetricType::Counter, labels);
    metric.counter.value = value;
  }
  void Histogram(const std::string& name, const std::string& help,
                 Labels labels, const PhaseLatency& phase) {
    ClientMetric& metric = Add(name, help, MetricType::Histogram, labels);
    metric.histogram.sample_count = phase.rounds;
    metric.histogram.sample_sum = phase.total_seconds;
    uint64_t cumulative = 0;
    for (size_t b = 0; b < phase.buckets.size(); ++b) {
      cumulative += phase.buckets[b];
      const double bound = b < kLatencyBucketBounds.size()
                               ? kLatencyBucketBounds[b]
                               : std::numeric_limits<double>::infinity();
      metric.histogram.bucket.push_back({cumulative, bound});
    }
  }

  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  ClientMetric& Add(const std::string& name, const std::string& help,
                    MetricType type, Labels labels) {
    MetricFamily* family = nullptr;
    for (MetricFamily& f : families_) {
      if (f.name == name) family = &f;
    }
    if (family == nullptr) {
      family = &families_.emplace_back();
      family->name = name;
      family->help = help;
      family->type = type;
    }
    ClientMetric& metric = family->metric.emplace_back();
    metric.label = std::move(labels);
    return metric;
  }

  std::vector<MetricFamily> families_;
};

void AddSession(const SessionInfo& info, const SessionConfig& config,
                const StepDiagnostics& spectrum, Families& out) {
  const Labels session = {{"session", info.id}};
  auto with = [&session](std::string name, std::string value) {
    Labels labels = session;
    labels.push_back({std::move(name), std::move(value)});
    return labels;
  };
  out.Gauge("gameopt_session_info", "A session's name and algorithm (1)",
            {{"session", info.id},
             {"name", config.name},
             {"algorithm", std::string(AlgorithmName(config.algorithm.kind))}},
            1);
  out.Gauge("gameopt_step", "Completed steps", session,
            static_cast<double>(info.step));
  out.Gauge("gameopt_max_steps", "Step limit (0 = none)", session,
            static_cast<double>(config.max_steps));
  out.Gauge("gameopt_done", "1 once the session reached its step limit",
            session, info.done ? 1 : 0);
  for (size_t p = 0; p < info.stats.xi_norm.size() && p < config.players.size();
       ++p) {
    out.Gauge("gameopt_xi_norm",
              "Norm of the player's block of the mean gradient xi (last "
              "gradient phase)",
              with("player", config.players[p].name), info.stats.xi_norm[p]);
  }
  out.Gauge("gameopt_loss", "L = 1/2 |xi|^2 of the last gradient phase",
            session, HalfSquaredNorm(info.stats.xi_norm));
  out.Gauge("gameopt_correction_norm",
            "Norm of the correction term (gamma J^T xi or lambda A^T xi)",
            session, info.stats.correction_norm);
  const StepDiagnostics& d = info.stats.diagnostics;
  if (d.available) {  // ConOpt and SGA (server/core/diagnostics.h)
    out.Gauge("gameopt_jt_xi_norm", "|J^T xi| of the last step", session,
              d.jt_xi_norm);
    out.Gauge("gameopt_stationarity_ratio",
              "|J^T xi| / |xi|: small with a large |xi| at a spurious "
              "stationary point of L",
              session, d.stationarity_ratio);
    out.Gauge("gameopt_cancellation",
              "-<xi, c> / |xi|^2 for the correction c: the share of xi it "
              "cancels (1 at a spurious stationary point)",
              session, d.cancellation);
  }
  if (config.algorithm.kind == AlgorithmKind::kConOpt) {
    out.Gauge("gameopt_gamma",
              "ConOpt's gamma for the next step (adaptive_gamma moves it)",
              session, info.stats.gamma);
  }
  if (config.algorithm.kind == AlgorithmKind::kCgd ||
      config.algorithm.kind == AlgorithmKind::kAcgd) {
    out.Gauge("gameopt_cgd_rounds",
              "Products rounds of the last CGD step (rhs, warm start, two "
              "per Krylov iteration, response)",
              session, info.stats.cgd_rounds);
    out.Gauge("gameopt_cgd_iterations",
              "Krylov iterations of the last CGD step", session,
              info.stats.cgd_iterations);
    out.Gauge("gameopt_cgd_residual",
              "Relative residual |b - A z| / |b| the last CGD solve stopped "
              "at",
              session, info.stats.cgd_residual);
  }
  if (config.algorithm.kind == AlgorithmKind::kLola ||
      config.algorithm.kind == AlgorithmKind::kSos) {
    out.Gauge("gameopt_sos_p",
              "SOS's p of the last step, the share of the shaping term kept "
              "(1 for LOLA)",
              session, info.stats.sos_p);
  }
  if (d.has_rotation_index) {
    out.Gauge("gameopt_rotation_index", "|A^T xi| / |S xi| (SGA)", session,
              d.rotation_index);
  }
  if (d.has_bias_meter) {  // AlgorithmConfig::bias_meter (bias_meter.h)
    out.Gauge("gameopt_relative_bias",
              "|P - U| / |P|: pooled minus leave-one-out J^T xi of the last "
              "step, relative to the pooled one (bias meter)",
              session, d.relative_bias);
  }
  if (spectrum.has_rotation_index) {  // every algorithm, per estimate
    out.Gauge("gameopt_spectrum_rotation_index",
              "|A^T xi| / |S xi| at the newest spectrum estimate's "
              "minibatches",
              session, spectrum.rotation_index);
    out.Gauge("gameopt_spectrum_stationarity_ratio",
              "|J^T xi| / |xi| at the newest spectrum estimate's minibatches",
              session, spectrum.stationarity_ratio);
  }
  out.Gauge("gameopt_steps_per_second", "Steps per second, recent steps",
            session, info.timing.steps_per_second);
  out.Gauge("gameopt_workers_active", "Active workers", session,
            ActiveWorkers(info));
  out.Gauge("gameopt_workers_per_round", "Workers per round (K)", session,
            config.workers_per_round);
  for (const PhaseLatency& phase : info.timing.phases) {
    out.Histogram("gameopt_phase_latency_seconds",
                  "Round latency, from opening to close, per phase label",
                  with("phase", phase.label), phase);
  }
  for (const WorkerInfo& worker : info.workers) {
    Labels labels = with("worker", absl::StrCat(worker.id));
    labels.push_back({"worker_name", worker.name});
    out.Counter("gameopt_straggler_rounds_total",
                "Rounds closed by this worker's submission (others waited)",
                labels, static_cast<double>(worker.last_to_submit));
    out.Counter("gameopt_missed_rounds_total",
                "Rounds the worker was dropped from at the phase deadline",
                labels, static_cast<double>(worker.missed_deadlines));
  }
  for (const NamedValue& scalar : info.scalars) {
    out.Gauge("gameopt_session_scalar",
              "A scalar the workers report (e.g. loss/generator): its mean "
              "over the last step's gradient submissions",
              with("name", scalar.name), scalar.value);
  }
  for (size_t p = 0;
       p < info.learning_rates.size() && p < config.players.size(); ++p) {
    out.Gauge("gameopt_learning_rate",
              "The player's learning rate of the next step (its schedule)",
              with("player", config.players[p].name), info.learning_rates[p]);
  }
  out.Counter("gameopt_bytes_received_total",
              "Serialized request bytes of the session's calls", session,
              static_cast<double>(info.bytes_received));
  out.Counter("gameopt_bytes_sent_total",
              "Serialized response bytes of the session's calls", session,
              static_cast<double>(info.bytes_sent));
}

// Reads every session at scrape time.
class SessionCollector final : public prometheus::Collectable {
 public:
  explicit SessionCollector(const SessionRegistry* registry)
      : registry_(registry) {}

  std::vector<MetricFamily> Collect() const override {
    const std::vector<std::shared_ptr<Session>> sessions = registry_->List();
    Families families;
    families.Gauge("gameopt_sessions", "Sessions hosted", {},
                   static_cast<double>(sessions.size()));
    for (const std::shared_ptr<Session>& session : sessions) {
      AddSession(session->Info(), session->config(),
                 session->LastSpectrumDiagnostics(), families);
    }
    return families.Take();
  }

 private:
  const SessionRegistry* const registry_;
};

// The IPv4 address a client reaches a listener bound to `address`'s host
// on: 127.0.0.1 for the wildcard, "" when not a numeric IPv4 host.
std::string ReachableHost(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host == "0.0.0.0" || host.empty() || host == "localhost") {
    return "127.0.0.1";
  }
  in_addr parsed;
  return inet_pton(AF_INET, host.c_str(), &parsed) == 1 ? host : "";
}

// Opens and closes one TCP connection to host:port.
void Poke(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  close(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrometheusExporter>> PrometheusExporter::Start(
    const std::string& address, const SessionRegistry* registry) {
  std::unique_ptr<PrometheusExporter> exporter(new PrometheusExporter());
  try {
    // A few threads, and a request that has not arrived whole within the
    // timeout is dropped: one slow (or malicious) HTTP client holds one
    // thread for at most that long, and scrapes go on on the others. The
    // callbacks answer the live page's paths (live_page.h).
    exporter->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads",
                                 std::to_string(kMetricsThreads),
                                 "request_timeout_ms",
                                 std::to_string(kMetricsRequestTimeoutMs)},
        LivePage::Callbacks());
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address,
                     " (address in use, or not a host:port): ", e.what()));
  }
  const std::vector<int> ports = exporter->exposer_->GetListeningPorts();
  if (ports.empty() || ports[0] == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address));
  }
  exporter->port_ = ports[0];
  exporter->host_ = ReachableHost(address);
  exporter->collector_ = std::make_shared<SessionCollector>(registry);
  exporter->exposer_->RegisterCollectable(exporter->collector_);
  exporter->page_ = std::make_unique<LivePage>(registry, LivePage::Options());
  LivePage::Route(exporter->port_, exporter->page_.get());
  return exporter;
}

PrometheusExporter::~PrometheusExporter() {
  if (page_ != nullptr) LivePage::Route(port_, nullptr);
  // Stop serving before the collector (and the registry it reads) go.
  // civetweb's listening thread checks its stop flag only between polls of
  // up to 2 s; a connection ends the poll at once, so poke the listener
  // until the server has stopped.
  std::atomic<bool> stopped{false};
  std::thread waker;
  if (!host_.empty()) {
    waker = std::thread([this, &stopped] {
      while (!stopped.load()) {
        Poke(host_, port_);
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }
  exposer_.reset();
  stopped.store(true);
  if (waker.joinable()) waker.join();
}

}  // namespace gameopt
