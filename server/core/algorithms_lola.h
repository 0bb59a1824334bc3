// LOLA and SOS for n players (Letcher et al. 2019, "Stable Opponent
// Shaping in Differentiable Games"; LOLA: Foerster et al. 2018, in its
// n-player form there). Internal to the core; Algorithm::Create calls the
// factory. Formulas: AlgorithmConfig::lola_alpha in config.h.
//
// With n players, one step is 3n rounds:
//   phase i (0 <= i < n): cross gradient of l_i, all players' blocks:
//     G_i = grad_x l_i (d values). xi_i = block i of G_i.
//   phase n + 2i: products(vjp) with probe w^(i) = G_i, block i zeroed:
//     chi_i = block i of J^T w^(i) = sum_{j != i} (D_i D_j l_j) grad_j l_i.
//   phase n + 2i + 1: products(jvp) with probe u^(i) = xi, block i zeroed:
//     (O xi)_i = block i of J u^(i).
// After the last round: g = xi - alpha O xi - p alpha chi (p = 1 for LOLA,
// SOS's criterion otherwise) into each player's base optimizer. Every
// probe of a round is the same vector (the means over the samples); the
// answers are averaged. StepStats: correction_norm = |alpha O xi + p alpha
// chi|, sos_p = p.
#ifndef GAMEOPT_SERVER_CORE_ALGORITHMS_LOLA_H_
#define GAMEOPT_SERVER_CORE_ALGORITHMS_LOLA_H_

#include <memory>

#include "server/core/algorithm.h"

namespace gameopt {

// SOS's p (Letcher et al. 2019, Algorithm 1) from <-alpha chi, xi_0>
// (`dot`), |xi_0|^2 and |xi|: p = min(p1, p2) with p1 = 1 when dot >= 0,
// else min(1, -a |xi_0|^2 / dot); p2 = |xi|^2 when |xi| < b, else 1.
double SosP(double dot, double xi0_squared_norm, double xi_norm, double a,
            double b);

// The algorithm of `config` (validated) when its kind is kLola or kSos,
// else null. T is the session's dtype.
template <typename T>
std::unique_ptr<Algorithm> MakeOpponentShaping(const SessionConfig& config,
                                               GameLayout layout);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ALGORITHMS_LOLA_H_
