#include "server/core/metrics.h"

#include <algorithm>

namespace gameopt {

RoundTimer::RoundTimer(absl::Time start) : opened_(start) { marks_[0] = start; }

PhaseLatency& RoundTimer::Phase(const std::string& label) {
  for (PhaseLatency& phase : phases_) {
    if (phase.label == label) return phase;
  }
  PhaseLatency& added = phases_.emplace_back();
  added.label = label;
  return added;
}

void RoundTimer::RoundClosed(const std::string& label, absl::Time now,
                             bool step_completed) {
  const double seconds = std::max(0.0, absl::ToDoubleSeconds(now - opened_));
  opened_ = now;
  PhaseLatency& phase = Phase(label);
  ++phase.rounds;
  phase.total_seconds += seconds;
  phase.last_seconds = seconds;
  phase.max_seconds = std::max(phase.max_seconds, seconds);
  const auto bound = std::lower_bound(kLatencyBucketBounds.begin(),
                                      kLatencyBucketBounds.end(), seconds);
  ++phase.buckets[bound - kLatencyBucketBounds.begin()];
  if (!step_completed) return;
  const int size = static_cast<int>(marks_.size());
  if (count_ == size) {  // full: the oldest mark goes
    first_ = (first_ + 1) % size;
    --count_;
  }
  marks_[(first_ + count_) % size] = now;
  ++count_;
}

RoundTiming RoundTimer::Snapshot(absl::Time now, bool done) const {
  RoundTiming timing;
  timing.phases = phases_;
  const int steps = count_ - 1;
  if (steps == 0) return timing;
  const int size = static_cast<int>(marks_.size());
  const absl::Time from = marks_[first_];
  const absl::Time to = done ? marks_[(first_ + count_ - 1) % size] : now;
  const double seconds = absl::ToDoubleSeconds(to - from);
  if (seconds > 0) timing.steps_per_second = steps / seconds;
  return timing;
}

double HalfSquaredNorm(const std::vector<double>& xi_norm) {
  double sum = 0.0;
  for (double norm : xi_norm) sum += norm * norm;
  return 0.5 * sum;
}

}  // namespace gameopt
