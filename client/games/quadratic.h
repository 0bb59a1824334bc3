// Random n-player quadratic games: the reference with closed-form updates.
//
// Players "p0", "p1", ..., player i owning tensor "x" of shape {d_i}; flat
// layout: the blocks x_0, x_1, ... in player order, N = sum_i d_i.
// Player i minimizes
//   l_i(x) = 1/2 x^T A_i x + b_i^T x,   A_i symmetric N x N, b_i in R^N,
// so xi_i = (A_i x + b_i)[block i] and J's block row i is A_i's block row i:
//   xi(x) = J x + b,   b = (b_0[block 0], b_1[block 1], ...).
//
// Construction from `seed` (the game has a unique equilibrium
// x* = -J^{-1} b that simultaneous gradient descent with a small step
// converges to, yet is far from a potential game):
// - J's diagonal block (i, i) = A_i's is S_i = 0.5 I + G G^T / d_i, with G a
//   d_i x d_i standard Gaussian matrix: symmetric positive definite, with
//   eigenvalues >= 0.5.
// - For i < j, J's block (i, j) is C = H / sqrt(N), H a d_i x d_j standard
//   Gaussian matrix, and block (j, i) is -C^T: the off-diagonal coupling is
//   antisymmetric, so J + J^T = 2 diag(S_i) is positive definite and every
//   eigenvalue of J has real part >= 0.5 (rotation and attraction mixed).
// - A_i holds S_i, J's block row i and its transpose (as block column i);
//   its other blocks are zero (they do not enter xi). b_i is standard
//   Gaussian.
//
// Minibatch noise (noise_std = s > 0 makes the game stochastic): slot k of
// DrawMinibatches perturbs every block row i of J by s * E (E standard
// Gaussian; its diagonal block symmetrized as (E + E^T)/sqrt(2), so each
// l_i stays a quadratic with a symmetric Hessian) and b by s * e, e standard
// Gaussian: E[J_k] = J, E[b_k] = b, so the mean field keeps the equilibrium
// x*. On slot k: Gradient = J_k x + b_k, Jvp = J_k u, Vjp = J_k^T w, exactly.
// With s = 0 the game is deterministic and ignores DrawMinibatches/sample.
//
// Initial point: x = (1, ..., 1). Metrics: {"distance", ||x - x*||_2}.
#ifndef GAMEOPT_CLIENT_GAMES_QUADRATIC_H_
#define GAMEOPT_CLIENT_GAMES_QUADRATIC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "client/worker/game.h"

namespace gameopt {

class QuadraticGame final : public Game {
 public:
  // Requires a non-empty `dims` with every d_i >= 1 and noise_std >= 0.
  QuadraticGame(const std::vector<int>& dims, uint64_t seed,
                double noise_std = 0.0);

  std::unique_ptr<Game> Clone() const override;
  std::string name() const override { return "quadratic"; }
  std::vector<PlayerSpec> players() const override;
  Eigen::VectorXd InitialParameters() const override;
  void DrawMinibatches(int count, uint64_t seed) override;
  Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) override;
  Eigen::VectorXd Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                      int sample) override;
  Eigen::VectorXd Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                      int sample) override;
  // A_i x + b_i, with minibatch k's perturbed block row i of J (and its
  // transpose as block column i) and perturbed block i of b.
  std::optional<Eigen::VectorXd> LossGradient(const Eigen::VectorXd& x,
                                              int player, int sample) override;
  std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const override;

  int num_players() const { return static_cast<int>(dims_.size()); }
  // Offset of player i's block in the flat vector.
  int offset(int player) const { return offsets_[player]; }
  // The noiseless Jacobian J (N x N) and offset b (N): xi = J x + b.
  const Eigen::MatrixXd& J() const { return exact_.jacobian; }
  const Eigen::VectorXd& b() const { return exact_.offset; }
  // Player i's loss matrices A_i (N x N, symmetric) and b_i (N).
  const Eigen::MatrixXd& A(int player) const { return a_[player]; }
  const Eigen::VectorXd& b(int player) const { return b_[player]; }
  // The equilibrium x* = -J^{-1} b.
  const Eigen::VectorXd& Equilibrium() const { return equilibrium_; }

 private:
  struct Minibatch {
    Eigen::MatrixXd jacobian;
    Eigen::VectorXd offset;
  };
  const Minibatch& GetMinibatch(int sample) const;

  std::vector<int> dims_;
  std::vector<int> offsets_;
  int total_ = 0;
  uint64_t seed_;
  double noise_std_;
  std::vector<Eigen::MatrixXd> a_;
  std::vector<Eigen::VectorXd> b_;
  Minibatch exact_;  // J and b
  Eigen::VectorXd equilibrium_;
  std::vector<Minibatch> minibatches_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_QUADRATIC_H_
