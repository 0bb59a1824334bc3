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
//     Needs J xi, which only SGA asks for per step; ConOpt's products
//     phase has J^T xi alone, so its index comes with each spectrum
//     estimate instead.
//   The cancellation kappa = -<xi, c> / |xi|^2 of the correction term c
//     (gamma J^T xi, or SGA's lambda A^T xi): the share of xi the term
//     cancels. 1 at a spurious stationary point of g = xi + c (g = 0,
//     xi != 0), about 0 near the equilibrium of a rotating game; ConOpt
//     gets it from |xi|, |c| and |g| (|g|^2 = |xi|^2 + 2 <xi, c> + |c|^2),
//     SGA from c itself. Adaptive gamma lowers gamma on it
//     (adaptive_gamma.h).
//
//   The estimator's bias meter (opt-in, AlgorithmConfig::bias_meter):
//     |P - U| / |P| for the pooled and leave-one-out estimates of J^T xi
//     on the step's samples (bias_meter.h); one extra product per sample,
//     in the gradient round.
//
// All but the bias meter use the step's J^T xi estimate
// (SessionConfig.algorithm.estimator), so they carry its bias and noise.
// A spectrum estimate (spectrum_rounds.h) reports |xi|, |J^T xi| and the
// rotation index of its own minibatches in the same struct, for every
// algorithm (ConOpt's rotation index comes from there).
#ifndef GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_
#define GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_

namespace gameopt {

struct StepDiagnostics {
  bool available = false;   // a ConOpt or SGA step has completed
  double xi_norm = 0.0;     // |xi|, the step's mean gradient
  double jt_xi_norm = 0.0;  // |J^T xi|
  // |J^T xi| / |xi|; 0 when xi = 0.
  double stationarity_ratio = 0.0;
  bool has_rotation_index = false;  // SGA, and spectrum estimates
  double s_xi_norm = 0.0;           // |S xi|
  double a_xi_norm = 0.0;           // |A^T xi|
  // |A^T xi| / |S xi|; +inf when S xi = 0 and A^T xi != 0, 0 when both 0.
  double rotation_index = 0.0;
  // -<xi, c> / |xi|^2 for the correction c; 0 when xi = 0.
  double cancellation = 0.0;
  // AlgorithmConfig::bias_meter (bias_meter.h), with K >= 2 samples all
  // answered: pooled P minus leave-one-out U estimate of J^T xi.
  bool has_bias_meter = false;
  double bias_norm = 0.0;          // |P - U|
  double pooled_jt_xi_norm = 0.0;  // |P|
  double relative_bias = 0.0;      // |P - U| / |P|
};

// From |xi| and |J^T xi| alone (ConOpt).
StepDiagnostics StationarityDiagnostics(double xi_norm, double jt_xi_norm);

// kappa = -<xi, c> / |xi|^2 from |xi|, |c| and |g| = |xi + c|; 0 when
// xi = 0.
double CancellationFromNorms(double xi_norm, double correction_norm,
                             double direction_norm);

// Adds the rotation index from |J xi + J^T xi| and |J^T xi - J xi| (twice
// |S xi| and |A^T xi|; SGA).
void AddRotationIndex(double j_plus_jt_norm, double jt_minus_j_norm,
                      StepDiagnostics& diagnostics);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_DIAGNOSTICS_H_
