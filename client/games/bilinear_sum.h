// The stochastic bilinear game of Loizou et al. (ICML 2020, "Stochastic
// Hamiltonian Gradient Methods for Smooth Games"): a finite sum of n
// bilinear terms over players x and y in R^d,
//   g(x, y) = (1/n) sum_i [x^T A_i y + b_i^T x + c_i^T y],
// l_x = g, l_y = -g (x minimizes g, y maximizes it). A minibatch is one
// term i, drawn uniformly with replacement; term i's field and Jacobian:
//   xi_i = (A_i y + b_i, -(A_i^T x + c_i)),  J_i = [[0, A_i], [-A_i^T, 0]].
// Draws from `seed`: A = I + 0.3 N, A_i = A + 0.5 N_i, b_i = b0 + 0.5 N_i,
// c_i = c0 + 0.5 N_i (N standard Gaussian, b0 and c0 too). With A, b, c the
// means of the terms the solution is y* = -A^{-1} b, x* = -A^{-T} c.
// Because J_i and xi_i share the draw of term i, the LOCAL estimate of
// J^T xi is biased (server/README.md, "Hamiltonian methods").
// Initial point: x = y = 0. Metrics: {"distance", |(x, y) - (x*, y*)|}.
#ifndef GAMEOPT_CLIENT_GAMES_BILINEAR_SUM_H_
#define GAMEOPT_CLIENT_GAMES_BILINEAR_SUM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "client/worker/game.h"

namespace gameopt {

class BilinearSumGame final : public Game {
 public:
  // Requires d >= 1 and n >= 1.
  BilinearSumGame(int d, int n, uint64_t seed);

  std::unique_ptr<Game> Clone() const override;
  std::string name() const override { return "bilinear_sum"; }
  std::vector<PlayerSpec> players() const override;
  Eigen::VectorXd InitialParameters() const override;
  void DrawMinibatches(int count, uint64_t seed) override;
  // Every slot is the mean over all n terms (the whole sum is the shard).
  absl::Status DrawFullShard(int count) override;
  Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) override;
  Eigen::VectorXd Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                      int sample) override;
  Eigen::VectorXd Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                      int sample) override;
  std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const override;

  // The solution (x*, y*), flat.
  const Eigen::VectorXd& Solution() const { return solution_; }

 private:
  // The term of a sample slot; -1: the mean over all terms.
  int Term(int sample) const;
  Eigen::VectorXd TermGradient(const Eigen::VectorXd& x, int i) const;
  Eigen::VectorXd TermVjp(const Eigen::VectorXd& w, int i) const;
  Eigen::VectorXd TermJvp(const Eigen::VectorXd& u, int i) const;
  template <typename Fn>
  Eigen::VectorXd Mean(Fn term) const;

  int d_, n_;
  uint64_t seed_;
  std::vector<Eigen::MatrixXd> a_;
  std::vector<Eigen::VectorXd> b_, c_;
  Eigen::VectorXd solution_;
  std::vector<int> drawn_;  // term of each minibatch slot; -1: all terms
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_BILINEAR_SUM_H_
