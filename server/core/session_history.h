// SessionHistory: a bounded record of a session's training curves (|xi| per
// player, L, correction norm, gamma, steps per second against the step),
// sampled from the same SessionInfo that GetMetrics and /metrics report, for
// the live page (server/service/live_page.h).
//
// Bounded: at most `capacity` points per session. When full, every other
// point is dropped and the sampling stride (in steps) doubles, so the record
// always spans the whole run at a resolution of at least capacity / 2
// points. A sample whose step is less than `stride` steps past the last
// point is not recorded.
//
// HistoryBook holds one SessionHistory per session id; Sample() records every
// listed session and forgets the ones no longer listed. Thread-safe.
#ifndef GAMEOPT_SERVER_CORE_SESSION_HISTORY_H_
#define GAMEOPT_SERVER_CORE_SESSION_HISTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/session.h"

namespace gameopt {

struct HistoryPoint {
  int64_t step = 0;
  double seconds = 0.0;         // since the session was first sampled
  std::vector<double> xi_norm;  // per player, of the last gradient phase
  double loss = 0.0;            // L = 1/2 |xi|^2
  double correction_norm = 0.0;
  double gamma = 0.0;  // CurrentGamma()
  double steps_per_second = 0.0;
  // StepDiagnostics (diagnostics.h); NaN where not available.
  double jt_xi_norm = 0.0;
  double stationarity_ratio = 0.0;
  double rotation_index = 0.0;
  double cancellation = 0.0;
  double relative_bias = 0.0;  // the bias meter's |P - U| / |P|
};

// The coefficient of the session's correction term: ConOpt's gamma (of the
// next step: StepStats::gamma, which adaptive gamma moves), SGA's
// signed lambda of the last step, 0 for the algorithms without one.
double CurrentGamma(const SessionConfig& config, const StepStats& stats);

class SessionHistory {
 public:
  // capacity >= 2 (smaller values are raised to 2).
  explicit SessionHistory(int capacity);

  // Records `info` (taken at `now`) unless its step is fewer than stride()
  // steps past the last point's, or no step has completed.
  void Record(const SessionInfo& info, const SessionConfig& config,
              absl::Time now);

  const std::vector<HistoryPoint>& points() const { return points_; }
  int64_t stride() const { return stride_; }

 private:
  int capacity_;
  int64_t stride_ = 1;
  absl::Time first_ = absl::InfinitePast();
  std::vector<HistoryPoint> points_;
};

class HistoryBook {
 public:
  explicit HistoryBook(int capacity) : capacity_(capacity) {}

  // Records each session's Info() at `now`; drops the histories of the
  // sessions not in `sessions`.
  void Sample(const std::vector<std::shared_ptr<Session>>& sessions,
              absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // The session's points, oldest first; empty for an unknown id.
  std::vector<HistoryPoint> Points(const std::string& id) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, SessionHistory> histories_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SESSION_HISTORY_H_
