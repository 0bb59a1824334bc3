// Competitive gradient descent (Schaefer and Anandkumar, NeurIPS 2019) and
// its adaptive variant ACGD, for two players as a phase plan.
//
// Players x (loss f) and y (loss g) both minimize. With the off-diagonal
// blocks of the game Jacobian J = d xi / d(x, y), B = D_xy f (rows of x,
// columns of y) and C = D_yx g, and diagonal step sizes H_x, H_y, a step
// plays the Nash equilibrium of the local bilinear game
//
//   dx = -H_x (grad_x f + B dy),   dy = -H_y (grad_y g + C dx),
//
// i.e. (I - H_x B H_y C) dx = -H_x (grad_x f - B H_y grad_y g) and the same
// for y with x and y, f and g swapped. The server solves the system of the
// player with fewer coordinates (s; x on a tie) in the symmetric form
//
//   (I - H_s^1/2 M_so H_o M_os H_s^1/2) z = -H_s^1/2 (xi_s - M_so H_o xi_o),
//   d_s = H_s^1/2 z,   d_o = -H_o (xi_o + M_os d_s),
//
// (M_so = B, M_os = C when s = x), the other player's step being its exact
// best response to d_s (which is the solution of its own system when the
// solve is exact, as in Schaefer's cgds package). For a zero-sum game
// (cgd_zero_sum: g = -f, C = -B^T) the operator is symmetric positive
// definite and conjugate gradient solves it, else GMRES (krylov.h), warm
// started from the last step's z with its true residual.
//
//   CGD:  H_p = eta_p I, eta_p = player p's SGD learning rate (schedule).
//   ACGD: per coordinate i of player p, with t = completed steps + 1,
//           v_i = beta v_i + (1 - beta) xi_i^2              (v starts at 0)
//           (H_p)_ii = eta_p sqrt(1 - beta^t) / (sqrt(v_i) + epsilon)
//         (the cgds package's ACGD; beta 0.99, epsilon 1e-5 by default).
//
// The products B u and C u come from products rounds: the probe (0, u)
// gives J (0, u), whose x block is B u; the probe (u, 0) gives C u in the y
// block. Every probe is the same for all K samples, so the answer is the
// round's mean Jacobian applied to it. A step's rounds:
//
//   phase 0          gradient                      xi
//   "cgd: rhs"       M_so H_o xi_o                 b
//   "cgd: warm start" 2 rounds, when a last z      r0 = b - A z0
//   "cgd: krylov"    2 per iteration (M_os, M_so)  A v
//   "cgd: response"  M_os d_s (none when d_s = 0)  d_o
//
// Task.phase counts them up within the step; the plan has room for the
// most a step can take (2 cgd_max_iterations + 5). The update x += dx goes
// through the base optimizer as the direction -d_p / eta_p (SGD: exact), so
// clip_global_norm and clip_value apply. Not thread-safe.
#ifndef GAMEOPT_SERVER_CORE_CGD_H_
#define GAMEOPT_SERVER_CORE_CGD_H_

#include <memory>

#include "absl/status/status.h"
#include "server/core/algorithm.h"
#include "server/core/config.h"
#include "server/core/layout.h"

namespace gameopt {

// The checks of CGD and ACGD's configuration (OK for other algorithms):
// two players, SGD base optimizers, the pooled estimator, the solver's
// options in range.
absl::Status ValidateCompetitive(const SessionConfig& config);

// config.algorithm.kind is kCgd or kAcgd and `config` passed
// ValidateConfig.
std::unique_ptr<Algorithm> MakeCompetitive(const SessionConfig& config,
                                           GameLayout layout);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_CGD_H_
