// The estimator's bias meter (AlgorithmConfig::bias_meter): how far the
// pooled estimate of J^T xi is from the leave-one-out (unbiased) one on
// the step's own K samples.
//
// With K gradient samples xi_k, S = sum_k xi_k, and J_k sample k's
// Jacobian (same minibatch):
//
//   P = (1/K) sum_k J_k^T (S / K)                 pooled
//   U = (1/K) sum_k J_k^T (S - xi_k) / (K - 1)    leave-one-out (unbiased)
//   P - U = (1/(K (K - 1))) sum_k (J_k^T xi_k - J_k^T S / K)
//
// U is unbiased for E[J]^T E[xi]; P carries the covariance of J_k and xi_k
// over a minibatch, shrunk by 1/K. Both are linear in the probe, so per
// sample J_k^T S and J_k^T xi_k suffice. The products round of the step
// has a_k = J_k^T w_k for the estimator's probe w_k, and a fused gradient
// round b_k = J_k^T xi_k; then
//
//   pooled   (w_k = S / K):              J_k^T S = K a_k
//   unbiased (w_k = (S - xi_k)/(K - 1)): J_k^T S = (K - 1) a_k + b_k
//
// (the local estimator's probe is xi_k itself: no J_k^T S, no meter).
#ifndef GAMEOPT_SERVER_CORE_BIAS_METER_H_
#define GAMEOPT_SERVER_CORE_BIAS_METER_H_

#include <optional>

#include "absl/types/span.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"

namespace gameopt {

struct BiasMeterReading {
  double bias_norm = 0.0;    // |P - U|
  double pooled_norm = 0.0;  // |P|
  // |P - U| / |P|; +inf when P = 0 and P != U, 0 when both are 0.
  double relative_bias = 0.0;
};

// From the products round's answers a_k (`answers`, J_k^T w_k for the
// estimator's probes) and each sample's J_k^T xi_k (`own`), paired by
// sample, in float64 whatever their dtype. nullopt when there is nothing
// to report: fewer than 2 samples, the two lists of different lengths
// (a worker dropped out of the products round), or the local estimator.
std::optional<BiasMeterReading> MeasureBias(
    EstimatorKind estimator, absl::Span<const FlatVector* const> answers,
    absl::Span<const FlatVector* const> own);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_BIAS_METER_H_
