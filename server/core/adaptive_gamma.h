// AdaptiveGamma: ConOpt's gamma, adjusted while the session runs (issue 19
// item 3). The rule (AdaptiveGammaConfig; proto AdaptiveGamma):
//
//   Lower, after every step. The cancellation of the step,
//     kappa = -gamma <xi, J^T xi> / |xi|^2,
//   is the share of xi that the consensus term gamma J^T xi cancels. At a
//   spurious stationary point of the consensus field g = xi + gamma J^T xi
//   (g = 0 with xi != 0) kappa is exactly 1, near an equilibrium of a
//   rotating game it is about 0. When kappa >= max_cancellation, or the
//   stationarity ratio |J^T xi| / |xi| falls below min_stationarity_ratio
//   (a small |J^T xi| with a large |xi|: a spurious stationary point of
//   L = 1/2 |xi|^2; 0 turns this test off), gamma *= decrease (not below
//   min_gamma).
//
//   Raise, after every converged spectrum estimate of the algorithm field
//   J + gamma J^T J with smallest_real (the session's spectrum schedule
//   provides them). With the damping zeta = min Re(lambda) / |lambda| over
//   its smallest-real eigenvalues (0 for lambda = 0): when zeta < margin
//   and no step since the previous estimate had kappa >= max_cancellation
//   / 2 (no sign of the trap lately), gamma *= increase (not above
//   max_gamma). Players minimize, so zeta <= 0 means a direction the
//   iteration does not contract; zeta is scale-free (units of J cancel).
//
// Every change is recorded (step, new gamma, why) in a trajectory that keeps
// the last kMaxGammaTrajectory changes. The state (gamma, the peak kappa
// since the last estimate, the trajectory) exports to and imports from a
// float64 vector for checkpoints. Not thread-safe (the Session's lock
// guards the algorithm that owns it).
#ifndef GAMEOPT_SERVER_CORE_ADAPTIVE_GAMMA_H_
#define GAMEOPT_SERVER_CORE_ADAPTIVE_GAMMA_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "server/core/config.h"
#include "server/core/diagnostics.h"
#include "server/core/spectrum.h"

namespace gameopt {

inline constexpr int kMaxGammaTrajectory = 256;

enum class GammaChangeReason {
  kCancellation,  // lowered: kappa >= max_cancellation
  kStationarity,  // lowered: stationarity ratio < min_stationarity_ratio
  kSpectrum,      // raised: zeta < margin
};

// "cancellation", "stationarity", "spectrum".
const char* GammaChangeReasonName(GammaChangeReason reason);

struct GammaChange {
  int64_t step = 0;    // completed steps when gamma took this value
  double gamma = 0.0;  // the value from then on
  GammaChangeReason reason = GammaChangeReason::kCancellation;
};

class AdaptiveGamma {
 public:
  // `config` must have passed ValidateConfig (rule.enabled, bounds around
  // `initial_gamma`).
  AdaptiveGamma(const AdaptiveGammaConfig& config, double initial_gamma);

  double gamma() const { return gamma_; }
  const std::vector<GammaChange>& trajectory() const { return trajectory_; }

  // After step `step` (completed steps, counting it) with the gamma it
  // used; diagnostics.cancellation is kappa.
  void OnStep(int64_t step, const StepDiagnostics& diagnostics);
  // After an estimate of J + gamma J^T J at `step` completed steps.
  // Ignored unless converged with smallest-real values.
  void OnFieldSpectrum(int64_t step, const SpectrumEstimate& estimate);

  // [gamma, peak kappa, then (step, gamma, reason) per change].
  std::vector<double> Export() const;
  // DataLoss when `state` is not such a vector with a gamma within the
  // configured bounds; the rule is unchanged then.
  absl::Status Import(absl::Span<const double> state);

 private:
  void Change(int64_t step, double gamma, GammaChangeReason reason);

  const AdaptiveGammaConfig config_;
  double gamma_;
  double peak_cancellation_ = 0.0;  // since the last estimate
  std::vector<GammaChange> trajectory_;
};

// The damping min Re(lambda) / |lambda| over `values` (0 for lambda = 0);
// +inf when empty.
double Damping(absl::Span<const RitzValue> values);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ADAPTIVE_GAMMA_H_
