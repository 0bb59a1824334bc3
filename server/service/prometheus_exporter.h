// PrometheusExporter: the sessions' metrics in Prometheus' text format at
// http://HOST:PORT/metrics (prometheus-cpp's embedded civetweb server), for
// gameopt_server --metrics_address.
//
// The numbers are read at scrape time: a collector walks the registry's
// sessions and asks each for its SessionInfo, so nothing is updated on the
// hot path, the values are those GetMetrics reports at that moment, and a
// deleted session is gone from the next scrape. Families (all prefixed
// gameopt_, every per-session one labelled session="s1"):
//
//   gameopt_sessions                          gauge, sessions hosted
//   gameopt_session_info{session,name,algorithm}  gauge, always 1
//   gameopt_step, gameopt_max_steps, gameopt_done      gauges
//   gameopt_xi_norm{session,player}           gauge, |xi_p| of the last
//                                             gradient phase
//   gameopt_loss                              gauge, L = 1/2 |xi|^2
//   gameopt_correction_norm                   gauge
//   gameopt_jt_xi_norm, gameopt_stationarity_ratio  gauges, ConOpt and SGA
//   gameopt_rotation_index                    gauge, SGA (diagnostics.h)
//   gameopt_cancellation                      gauge, ConOpt and SGA
//   gameopt_gamma                             gauge, ConOpt (adaptive_gamma.h)
//   gameopt_steps_per_second                  gauge
//   gameopt_workers_active, gameopt_workers_per_round   gauges
//   gameopt_phase_latency_seconds{session,phase}  histogram (buckets
//                                             kLatencyBucketBounds)
//   gameopt_straggler_rounds_total{session,worker,worker_name}  counter,
//                                             rounds it was last to submit
//   gameopt_missed_rounds_total{session,worker,worker_name}  counter,
//                                             rounds it was dropped from
//   gameopt_bytes_received_total, gameopt_bytes_sent_total   counters
//
// The same port serves the live page (live_page.h): / and /ui, and its
// JSON at /api/sessions and /api/spectrum?session=ID.
//
// Thread-safe. The registry must outlive the exporter.
#ifndef GAMEOPT_SERVER_SERVICE_PROMETHEUS_EXPORTER_H_
#define GAMEOPT_SERVER_SERVICE_PROMETHEUS_EXPORTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/registry.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace gameopt {

class LivePage;

// The HTTP server's worker threads, and how long one request may take to
// arrive (headers and body) before civetweb drops the connection.
inline constexpr int kMetricsThreads = 4;
inline constexpr int kMetricsRequestTimeoutMs = 5000;

class PrometheusExporter {
 public:
  // Listens on `address` (host:port; port 0 picks a free one). Unavailable
  // when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<PrometheusExporter>> Start(
      const std::string& address, const SessionRegistry* registry);

  // Stops listening, within a few milliseconds (see WakeListener).
  ~PrometheusExporter();

  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  // The bound port.
  int port() const { return port_; }

 private:
  PrometheusExporter() = default;

  std::shared_ptr<prometheus::Collectable> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<LivePage> page_;  // the destructor stops exposer_ first
  std::string host_;  // IPv4 address to reach the listener on, or ""
  int port_ = 0;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_PROMETHEUS_EXPORTER_H_
