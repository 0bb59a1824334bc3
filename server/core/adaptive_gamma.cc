#include "server/core/adaptive_gamma.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gameopt {

const char* GammaChangeReasonName(GammaChangeReason reason) {
  switch (reason) {
    case GammaChangeReason::kCancellation:
      return "cancellation";
    case GammaChangeReason::kStationarity:
      return "stationarity";
    case GammaChangeReason::kSpectrum:
      return "spectrum";
  }
  return "unknown";
}

double Damping(absl::Span<const RitzValue> values) {
  double zeta = std::numeric_limits<double>::infinity();
  for (const RitzValue& v : values) {
    const double modulus = std::abs(v.value);
    zeta = std::min(zeta, modulus > 0.0 ? v.value.real() / modulus : 0.0);
  }
  return zeta;
}

AdaptiveGamma::AdaptiveGamma(const AdaptiveGammaConfig& config,
                             double initial_gamma)
    : config_(config), gamma_(initial_gamma) {}

void AdaptiveGamma::Change(int64_t step, double gamma,
                           GammaChangeReason reason) {
  if (gamma == gamma_) return;  // at a bound already
  gamma_ = gamma;
  if (trajectory_.size() == static_cast<size_t>(kMaxGammaTrajectory)) {
    trajectory_.erase(trajectory_.begin());
  }
  trajectory_.push_back({step, gamma, reason});
}

void AdaptiveGamma::OnStep(int64_t step, const StepDiagnostics& diagnostics) {
  if (!diagnostics.available) return;
  const double kappa = diagnostics.cancellation;
  if (std::isfinite(kappa)) {
    peak_cancellation_ = std::max(peak_cancellation_, kappa);
  }
  const double lowered = std::max(gamma_ * config_.decrease, config_.min_gamma);
  if (kappa >= config_.max_cancellation) {
    Change(step, lowered, GammaChangeReason::kCancellation);
  } else if (diagnostics.xi_norm > 0.0 &&
             diagnostics.stationarity_ratio < config_.min_stationarity_ratio) {
    Change(step, lowered, GammaChangeReason::kStationarity);
  }
}

void AdaptiveGamma::OnFieldSpectrum(int64_t step,
                                    const SpectrumEstimate& estimate) {
  if (!estimate.converged || estimate.smallest_real.empty()) return;
  const bool calm = peak_cancellation_ < config_.max_cancellation / 2;
  peak_cancellation_ = 0.0;
  if (calm && Damping(estimate.smallest_real) < config_.margin) {
    Change(step, std::min(gamma_ * config_.increase, config_.max_gamma),
           GammaChangeReason::kSpectrum);
  }
}

std::vector<double> AdaptiveGamma::Export() const {
  std::vector<double> state = {gamma_, peak_cancellation_};
  for (const GammaChange& c : trajectory_) {
    state.push_back(static_cast<double>(c.step));
    state.push_back(c.gamma);
    state.push_back(static_cast<double>(c.reason));
  }
  return state;
}

absl::Status AdaptiveGamma::Import(absl::Span<const double> state) {
  if (state.size() < 2 || (state.size() - 2) % 3 != 0 ||
      (state.size() - 2) / 3 > static_cast<size_t>(kMaxGammaTrajectory)) {
    return absl::DataLossError(
        absl::StrCat("adaptive gamma state has ", state.size(),
                     " values; expected 2 + 3 per change (at most ",
                     kMaxGammaTrajectory, " changes)"));
  }
  const auto in_bounds = [this](double gamma) {
    return std::isfinite(gamma) && gamma >= config_.min_gamma &&
           gamma <= config_.max_gamma;
  };
  if (!in_bounds(state[0]) || !std::isfinite(state[1])) {
    return absl::DataLossError(absl::StrCat(
        "adaptive gamma state holds gamma ", state[0], " outside [",
        config_.min_gamma, ", ", config_.max_gamma, "] or a non-finite peak"));
  }
  std::vector<GammaChange> trajectory;
  for (size_t i = 2; i < state.size(); i += 3) {
    const double reason = state[i + 2];
    if (!std::isfinite(state[i]) || state[i] < 0 || !in_bounds(state[i + 1]) ||
        (reason != 0 && reason != 1 && reason != 2)) {
      return absl::DataLossError(absl::StrCat("adaptive gamma state: change ",
                                              (i - 2) / 3, " is malformed"));
    }
    trajectory.push_back({static_cast<int64_t>(state[i]), state[i + 1],
                          static_cast<GammaChangeReason>(reason)});
  }
  gamma_ = state[0];
  peak_cancellation_ = state[1];
  trajectory_ = std::move(trajectory);
  return absl::OkStatus();
}

}  // namespace gameopt
