#include "client/games/bilinear.h"

#include "Eigen/QR"
#include "client/games/check.h"
#include "client/games/sampling.h"

namespace gameopt {
namespace {

// A Haar-random orthogonal matrix: Q of the QR factorization of a Gaussian
// matrix, columns multiplied by the signs of R's diagonal.
Eigen::MatrixXd RandomOrthogonal(int d, uint64_t seed) {
  RandomStream random(seed);
  Eigen::MatrixXd gaussian(d, d);
  for (int j = 0; j < d; ++j) {
    for (int i = 0; i < d; ++i) gaussian(i, j) = random.Gaussian();
  }
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(d, d);
  const Eigen::MatrixXd& r = qr.matrixQR();
  for (int j = 0; j < d; ++j) {
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  }
  return q;
}

}  // namespace

BilinearGame::BilinearGame(int d, uint64_t seed) : d_(d), seed_(seed) {
  GAMEOPT_GAMES_CHECK(d >= 1, "the bilinear game needs d >= 1");
  a_ = d == 1 ? Eigen::MatrixXd::Identity(1, 1) : RandomOrthogonal(d, seed);
}

std::unique_ptr<Game> BilinearGame::Clone() const {
  return std::make_unique<BilinearGame>(d_, seed_);
}

std::vector<PlayerSpec> BilinearGame::players() const {
  return {{"x", {{"x", {d_}}}}, {"y", {{"y", {d_}}}}};
}

Eigen::VectorXd BilinearGame::InitialParameters() const {
  return Eigen::VectorXd::Ones(2 * d_);
}

Eigen::VectorXd BilinearGame::Gradient(const Eigen::VectorXd& x, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == 2 * d_, "x has the wrong size");
  Eigen::VectorXd xi(2 * d_);
  xi.head(d_) = a_ * x.tail(d_);
  xi.tail(d_) = -a_.transpose() * x.head(d_);
  return xi;
}

Eigen::VectorXd BilinearGame::Vjp(const Eigen::VectorXd& x,
                                  const Eigen::VectorXd& w, int sample) {
  GAMEOPT_GAMES_CHECK(w.size() == 2 * d_, "w has the wrong size");
  // J^T = [[0, -A], [A^T, 0]].
  Eigen::VectorXd result(2 * d_);
  result.head(d_) = -a_ * w.tail(d_);
  result.tail(d_) = a_.transpose() * w.head(d_);
  return result;
}

Eigen::VectorXd BilinearGame::Jvp(const Eigen::VectorXd& x,
                                  const Eigen::VectorXd& u, int sample) {
  GAMEOPT_GAMES_CHECK(u.size() == 2 * d_, "u has the wrong size");
  // xi is linear in x, so J u = xi(u).
  return Gradient(u, sample);
}

std::optional<Eigen::VectorXd> BilinearGame::LossGradient(
    const Eigen::VectorXd& x, int player, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == 2 * d_, "x has the wrong size");
  GAMEOPT_GAMES_CHECK(player == 0 || player == 1, "no such player");
  Eigen::VectorXd g(2 * d_);
  g.head(d_) = a_ * x.tail(d_);
  g.tail(d_) = a_.transpose() * x.head(d_);
  if (player == 1) g = -g;
  return g;
}

std::vector<std::pair<std::string, double>> BilinearGame::Metrics(
    const Eigen::VectorXd& x) const {
  return {{"distance", x.norm()}};
}

}  // namespace gameopt
