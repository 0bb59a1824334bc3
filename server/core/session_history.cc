#include "server/core/session_history.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "server/core/metrics.h"

namespace gameopt {

double CurrentGamma(const SessionConfig& config, const StepStats& stats) {
  switch (config.algorithm.kind) {
    case AlgorithmKind::kConOpt:
      return stats.gamma;
    case AlgorithmKind::kSga:
      return stats.sga_lambda;
    default:
      return 0.0;
  }
}

SessionHistory::SessionHistory(int capacity)
    : capacity_(std::max(2, capacity)) {}

void SessionHistory::Record(const SessionInfo& info,
                            const SessionConfig& config, absl::Time now) {
  if (first_ == absl::InfinitePast()) first_ = now;
  if (info.step == 0) return;
  if (!points_.empty() && info.step - points_.back().step < stride_) return;
  if (static_cast<int>(points_.size()) == capacity_) {
    // Keep every other point, the newest included; coarser from now on.
    std::vector<HistoryPoint> kept;
    kept.reserve(capacity_ / 2 + 1);
    for (size_t i = points_.size() % 2 == 0 ? 1 : 0; i < points_.size();
         i += 2) {
      kept.push_back(std::move(points_[i]));
    }
    points_ = std::move(kept);
    stride_ *= 2;
    if (info.step - points_.back().step < stride_) return;
  }
  HistoryPoint& point = points_.emplace_back();
  point.step = info.step;
  point.seconds = absl::ToDoubleSeconds(now - first_);
  point.xi_norm = info.stats.xi_norm;
  point.loss = HalfSquaredNorm(info.stats.xi_norm);
  point.correction_norm = info.stats.correction_norm;
  point.gamma = CurrentGamma(config, info.stats);
  point.steps_per_second = info.timing.steps_per_second;
  const StepDiagnostics& d = info.stats.diagnostics;
  point.jt_xi_norm = d.available ? d.jt_xi_norm : NAN;
  point.stationarity_ratio = d.available ? d.stationarity_ratio : NAN;
  point.rotation_index = d.has_rotation_index ? d.rotation_index : NAN;
  point.cancellation = d.available ? d.cancellation : NAN;
  point.relative_bias = d.has_bias_meter ? d.relative_bias : NAN;
}

void HistoryBook::Sample(const std::vector<std::shared_ptr<Session>>& sessions,
                         absl::Time now) {
  // Read the sessions (each under its own lock) before taking ours.
  std::vector<std::pair<SessionInfo, const Session*>> infos;
  infos.reserve(sessions.size());
  for (const std::shared_ptr<Session>& session : sessions) {
    infos.emplace_back(session->Info(), session.get());
  }
  absl::flat_hash_set<std::string> listed;
  absl::MutexLock lock(&mu_);
  for (const auto& [info, session] : infos) {
    listed.insert(info.id);
    auto it = histories_.try_emplace(info.id, capacity_).first;
    it->second.Record(info, session->config(), now);
  }
  for (auto it = histories_.begin(); it != histories_.end();) {
    if (!listed.contains(it->first)) {
      histories_.erase(it++);
    } else {
      ++it;
    }
  }
}

std::vector<HistoryPoint> HistoryBook::Points(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = histories_.find(id);
  if (it == histories_.end()) return {};
  return it->second.points();
}

}  // namespace gameopt
