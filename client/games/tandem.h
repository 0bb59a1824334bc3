// The tandem game (Letcher et al. 2019, "Stable Opponent Shaping in
// Differentiable Games"): two players whose losses share a quadratic term
// and each rewards its own growth,
//   l_x(x, y) = (x + y)^2 - 2x,   l_y(x, y) = (x + y)^2 - 2y,
// players "x" and "y", tensor "v" of shape {1} each; flat layout (x, y).
// xi = (2(x + y) - 2) (1, 1), J = [[2, 2], [2, 2]]; the fixed points are
// the line x + y = 1 (stable for gradient descent). LOLA's shaping term
// (each player assumes the other descends its loss) is not zero there:
// LOLA leaves the line and settles where both losses are higher; SOS keeps
// the fixed points. Start: (0, 0).
// Metrics: {"distance", |x + y - 1| / sqrt 2} (from the line of fixed
// points), {"loss_x"}, {"loss_y"}. Deterministic.
#ifndef GAMEOPT_CLIENT_GAMES_TANDEM_H_
#define GAMEOPT_CLIENT_GAMES_TANDEM_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/worker/game.h"

namespace gameopt {

class TandemGame final : public Game {
 public:
  std::unique_ptr<Game> Clone() const override;
  std::string name() const override { return "tandem"; }
  std::vector<PlayerSpec> players() const override;
  Eigen::VectorXd InitialParameters() const override;
  void DrawMinibatches(int count, uint64_t seed) override {}
  Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) override;
  Eigen::VectorXd Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                      int sample) override;
  Eigen::VectorXd Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                      int sample) override;
  std::optional<Eigen::VectorXd> LossGradient(const Eigen::VectorXd& x,
                                              int player, int sample) override;
  std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const override;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_TANDEM_H_
