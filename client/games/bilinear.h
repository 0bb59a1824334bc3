// The bilinear game, the smallest game on which simultaneous gradient descent
// fails: l_1 = x*y = -l_2, J has eigenvalues +-i and SimGD spirals out.
//
// Players (both minimize):
//   "x": tensor "x", shape {d};  l_x(x, y) =  x^T A y
//   "y": tensor "y", shape {d};  l_y(x, y) = -x^T A y
// Flat layout: (x_0..x_{d-1}, y_0..y_{d-1}).
//
// xi = (A y, -A^T x) and J = [[0, A], [-A^T, 0]]. The unique equilibrium is
// x = y = 0.
// - d = 1: A = [[1]], the scalar game l_x = x*y; J has eigenvalues +-i.
// - d > 1: A is a random orthogonal matrix drawn from `seed` (the Q factor
//   of a Gaussian matrix, with the signs of R's diagonal folded in, i.e.
//   Haar-distributed). All singular values of A are 1, so J's eigenvalues
//   are again exactly +-i (each d times): the d-dimensional game is as
//   ill-posed for SimGD as the scalar one, and perfectly conditioned.
// Initial point: x = y = (1, ..., 1).
// Metrics: {"distance", ||(x, y)||_2}, the distance from the equilibrium.
// Deterministic: DrawMinibatches and `sample` are ignored.
#ifndef GAMEOPT_CLIENT_GAMES_BILINEAR_H_
#define GAMEOPT_CLIENT_GAMES_BILINEAR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "client/worker/game.h"

namespace gameopt {

class BilinearGame final : public Game {
 public:
  // Requires d >= 1.
  BilinearGame(int d, uint64_t seed);

  std::unique_ptr<Game> Clone() const override;
  std::string name() const override { return "bilinear"; }
  std::vector<PlayerSpec> players() const override;
  Eigen::VectorXd InitialParameters() const override;
  void DrawMinibatches(int count, uint64_t seed) override {}
  Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) override;
  Eigen::VectorXd Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                      int sample) override;
  Eigen::VectorXd Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                      int sample) override;
  // grad l_x = (A y, A^T x), grad l_y = -(A y, A^T x).
  std::optional<Eigen::VectorXd> LossGradient(const Eigen::VectorXd& x,
                                              int player, int sample) override;
  std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const override;

  // The d x d coupling matrix A.
  const Eigen::MatrixXd& A() const { return a_; }

 private:
  int d_;
  uint64_t seed_;
  Eigen::MatrixXd a_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_BILINEAR_H_
