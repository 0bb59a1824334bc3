#include "client/games/tandem.h"

#include <cmath>

#include "client/games/check.h"

namespace gameopt {

std::unique_ptr<Game> TandemGame::Clone() const {
  return std::make_unique<TandemGame>();
}

std::vector<PlayerSpec> TandemGame::players() const {
  return {{"x", {{"v", {1}}}}, {"y", {{"v", {1}}}}};
}

Eigen::VectorXd TandemGame::InitialParameters() const {
  return Eigen::VectorXd::Zero(2);
}

Eigen::VectorXd TandemGame::Gradient(const Eigen::VectorXd& x, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == 2, "x has the wrong size");
  const double s = 2.0 * (x(0) + x(1));
  return Eigen::Vector2d(s - 2.0, s - 2.0);
}

Eigen::VectorXd TandemGame::Vjp(const Eigen::VectorXd& x,
                                const Eigen::VectorXd& w, int sample) {
  GAMEOPT_GAMES_CHECK(w.size() == 2, "w has the wrong size");
  const double s = 2.0 * (w(0) + w(1));  // J = J^T = [[2, 2], [2, 2]]
  return Eigen::Vector2d(s, s);
}

Eigen::VectorXd TandemGame::Jvp(const Eigen::VectorXd& x,
                                const Eigen::VectorXd& u, int sample) {
  return Vjp(x, u, sample);
}

std::optional<Eigen::VectorXd> TandemGame::LossGradient(
    const Eigen::VectorXd& x, int player, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == 2, "x has the wrong size");
  GAMEOPT_GAMES_CHECK(player == 0 || player == 1, "no such player");
  const double s = 2.0 * (x(0) + x(1));
  Eigen::VectorXd g = Eigen::Vector2d(s, s);
  g(player) -= 2.0;
  return g;
}

std::vector<std::pair<std::string, double>> TandemGame::Metrics(
    const Eigen::VectorXd& x) const {
  const double sum = x(0) + x(1);
  return {{"distance", std::abs(sum - 1.0) / std::sqrt(2.0)},
          {"loss_x", sum * sum - 2.0 * x(0)},
          {"loss_y", sum * sum - 2.0 * x(1)}};
}

}  // namespace gameopt
