// Per-step diagnostics of the corrected-gradient algorithms (ConOpt, SGA;
// StepDiagnostics in gameopt.proto), from the products the step computes
// anyway, at no extra product:
//
//   |xi| against |J^T xi|: the stationarity ratio |J^T xi| / |xi|. A small
//     ratio with a large |xi| is the signature of a spurious stationary
//     point of L = 1/2 |xi|^2 (grad L = J^T xi = 0 where xi != 0), which a
//     large ConOpt gamma makes attractive.
//   The rotation index |A^T xi| / |S xi|, S = (J + J^T) / 2 and
//     A = (J - J^T) / 2: S xi = (J xi + J^T xi) / 2, A^T xi =
//     (J^T xi - J xi) / 2. Large: the field rotates around the point
//     (a bilinear game is all A); small: it is a potential game's gradient.
//     Needs J xi, which only SGA asks for; ConOpt's products phase has
//     J^T xi alone, so its index is not available per step (the spectrum
//     estimate's eigenvalues show the rotation instead).
//
// Both use the step's J^T xi estimate (SessionConfig.algorithm.estimator),
// so they carry its bias and noise.
#ifndef GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_
#define GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_

namespace gameopt {

struct StepDiagnostics {
  bool available = false;   // a ConOpt or SGA step has completed
  double xi_norm = 0.0;     // |xi|, the step's mean gradient
  double jt_xi_norm = 0.0;  // |J^T xi|
  // |J^T xi| / |xi|; 0 when xi = 0.
  double stationarity_ratio = 0.0;
  bool has_rotation_index = false;  // SGA only
  double s_xi_norm = 0.0;           // |S xi|
  double a_xi_norm = 0.0;           // |A^T xi|
  // |A^T xi| / |S xi|; +inf when S xi = 0 and A^T xi != 0, 0 when both 0.
  double rotation_index = 0.0;
};

// From |xi| and |J^T xi| alone (ConOpt).
StepDiagnostics StationarityDiagnostics(double xi_norm, double jt_xi_norm);

// Adds the rotation index from |J xi + J^T xi| and |J^T xi - J xi| (twice
// |S xi| and |A^T xi|; SGA).
void AddRotationIndex(double j_plus_jt_norm, double jt_minus_j_norm,
                      StepDiagnostics& diagnostics);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_
