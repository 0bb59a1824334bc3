// Monitoring numbers of one session that the algorithm's StepStats do not
// hold: how long each phase's rounds take, how fast steps complete, and the
// bytes a transport moved for the session. The service exposes them by the
// GetMetrics RPC and on the Prometheus endpoint (prometheus_exporter.h).
//
// RoundTimer is fed by the Session under its lock, once per closed round, so
// it needs no lock of its own. TrafficCounters is bumped by the transport
// without any lock (relaxed atomics: the counts are statistics, not
// synchronization).
#ifndef GAMEOPT_SERVER_CORE_METRICS_H_
#define GAMEOPT_SERVER_CORE_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/algorithm.h"

namespace gameopt {

// Upper bounds, in seconds, of the phase-latency histogram's buckets; a
// last bucket (+Inf) takes the rest. From a local round trip (sub-ms) to
// the default phase deadline (60 s).
inline constexpr std::array<double, 14> kLatencyBucketBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  10,    60};

// Latencies of the closed rounds of one phase label ("gradient",
// "consensus", ...): from the round's opening (the previous round's close,
// or the session's creation) to its close.
struct PhaseLatency {
  std::string label;
  int64_t rounds = 0;
  double total_seconds = 0.0;
  double last_seconds = 0.0;
  double max_seconds = 0.0;
  // Rounds per bucket of kLatencyBucketBounds, not cumulative; one more
  // entry for +Inf.
  std::array<int64_t, kLatencyBucketBounds.size() + 1> buckets = {};
};

// What RoundTimer::Snapshot reports.
struct RoundTiming {
  std::vector<PhaseLatency> phases;  // in the order the labels first closed
  // Steps per second over the last kRateWindow steps (fewer at the start,
  // counted from the session's creation), up to `now` while the session
  // runs, up to its last step once it is done. 0 before the first step.
  double steps_per_second = 0.0;
};

// Not thread-safe: the Session calls it under its lock.
class RoundTimer {
 public:
  // Steps the rate averages over.
  static constexpr int kRateWindow = 64;

  // `start`: when the session's first round opened.
  explicit RoundTimer(absl::Time start);

  // The open round of phase `label` closed at `now` (and the next round
  // opened); `step_completed` when it was the last phase of a step.
  void RoundClosed(const std::string& label, absl::Time now,
                   bool step_completed);

  RoundTiming Snapshot(absl::Time now, bool done) const;

 private:
  PhaseLatency& Phase(const std::string& label);

  absl::Time opened_;
  std::vector<PhaseLatency> phases_;
  // A ring of the completion times of the last kRateWindow steps, preceded
  // by the time the window starts from: marks_[(first_ + i) % size].
  std::array<absl::Time, kRateWindow + 1> marks_;
  int first_ = 0;
  int count_ = 1;  // marks held, >= 1
};

// Payload bytes of the requests (received) and responses (sent) a transport
// handled for one session. Thread-safe, lock-free.
class TrafficCounters {
 public:
  void AddReceived(int64_t bytes) {
    received_.fetch_add(bytes, std::memory_order_relaxed);
  }
  void AddSent(int64_t bytes) {
    sent_.fetch_add(bytes, std::memory_order_relaxed);
  }
  int64_t received() const { return received_.load(std::memory_order_relaxed); }
  int64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> sent_{0};
};

// L = 1/2 |xi|^2 over every player, from the per-player norms |xi_p| of the
// last gradient phase: the quantity consensus optimization descends.
double HalfSquaredNorm(const std::vector<double>& xi_norm);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_METRICS_H_
