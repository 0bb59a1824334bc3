#include "client/games/quadratic.h"

#include <cmath>

#include "Eigen/LU"
#include "client/games/check.h"
#include "client/games/sampling.h"

namespace gameopt {
namespace {

Eigen::MatrixXd GaussianMatrix(int rows, int cols, RandomStream& random) {
  Eigen::MatrixXd matrix(rows, cols);
  for (int j = 0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) matrix(i, j) = random.Gaussian();
  }
  return matrix;
}

}  // namespace

QuadraticGame::QuadraticGame(const std::vector<int>& dims, uint64_t seed,
                             double noise_std)
    : dims_(dims), seed_(seed), noise_std_(noise_std) {
  GAMEOPT_GAMES_CHECK(!dims.empty(), "the quadratic game needs players");
  GAMEOPT_GAMES_CHECK(noise_std >= 0, "noise_std must be >= 0");
  for (int d : dims_) {
    GAMEOPT_GAMES_CHECK(d >= 1, "every player needs d_i >= 1");
    offsets_.push_back(total_);
    total_ += d;
  }
  const int n = num_players();
  RandomStream random(seed);
  Eigen::MatrixXd& jacobian = exact_.jacobian;
  jacobian = Eigen::MatrixXd::Zero(total_, total_);
  for (int i = 0; i < n; ++i) {
    const Eigen::MatrixXd g = GaussianMatrix(dims_[i], dims_[i], random);
    jacobian.block(offsets_[i], offsets_[i], dims_[i], dims_[i]) =
        0.5 * Eigen::MatrixXd::Identity(dims_[i], dims_[i]) +
        g * g.transpose() / dims_[i];
  }
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      const Eigen::MatrixXd c =
          GaussianMatrix(dims_[i], dims_[j], random) / std::sqrt(total_);
      jacobian.block(offsets_[i], offsets_[j], dims_[i], dims_[j]) = c;
      jacobian.block(offsets_[j], offsets_[i], dims_[j], dims_[i]) =
          -c.transpose();
    }
  }
  exact_.offset.resize(total_);
  for (int i = 0; i < n; ++i) {
    const Eigen::MatrixXd rows = jacobian.middleRows(offsets_[i], dims_[i]);
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(total_, total_);
    a.middleRows(offsets_[i], dims_[i]) = rows;
    a.middleCols(offsets_[i], dims_[i]) = rows.transpose();
    a_.push_back(std::move(a));
    b_.push_back(GaussianMatrix(total_, 1, random));
    exact_.offset.segment(offsets_[i], dims_[i]) =
        b_[i].segment(offsets_[i], dims_[i]);
  }
  equilibrium_ = -jacobian.partialPivLu().solve(exact_.offset);
}

std::unique_ptr<Game> QuadraticGame::Clone() const {
  return std::make_unique<QuadraticGame>(dims_, seed_, noise_std_);
}

std::vector<PlayerSpec> QuadraticGame::players() const {
  std::vector<PlayerSpec> players;
  for (int i = 0; i < num_players(); ++i) {
    players.push_back({"p" + std::to_string(i), {{"x", {dims_[i]}}}});
  }
  return players;
}

Eigen::VectorXd QuadraticGame::InitialParameters() const {
  return Eigen::VectorXd::Ones(total_);
}

void QuadraticGame::DrawMinibatches(int count, uint64_t seed) {
  minibatches_.clear();
  if (noise_std_ == 0) return;
  const double s = noise_std_;
  for (int slot = 0; slot < count; ++slot) {
    RandomStream random(SlotSeed(seed, slot));
    Minibatch batch{exact_.jacobian, exact_.offset};
    for (int i = 0; i < num_players(); ++i) {
      const int o = offsets_[i], d = dims_[i];
      Eigen::MatrixXd noise = s * GaussianMatrix(d, total_, random);
      const Eigen::MatrixXd diagonal = noise.middleCols(o, d);
      noise.middleCols(o, d) =
          (diagonal + diagonal.transpose()) / std::sqrt(2.0);
      batch.jacobian.middleRows(o, d) += noise;
    }
    for (int k = 0; k < total_; ++k) batch.offset[k] += s * random.Gaussian();
    minibatches_.push_back(std::move(batch));
  }
}

const QuadraticGame::Minibatch& QuadraticGame::GetMinibatch(int sample) const {
  if (noise_std_ == 0) return exact_;
  GAMEOPT_GAMES_CHECK(sample >= 0 && sample < int(minibatches_.size()),
                      "minibatch slot not drawn (call DrawMinibatches)");
  return minibatches_[sample];
}

Eigen::VectorXd QuadraticGame::Gradient(const Eigen::VectorXd& x, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == total_, "x has the wrong size");
  const Minibatch& batch = GetMinibatch(sample);
  return batch.jacobian * x + batch.offset;
}

Eigen::VectorXd QuadraticGame::Vjp(const Eigen::VectorXd& x,
                                   const Eigen::VectorXd& w, int sample) {
  GAMEOPT_GAMES_CHECK(w.size() == total_, "w has the wrong size");
  return GetMinibatch(sample).jacobian.transpose() * w;
}

Eigen::VectorXd QuadraticGame::Jvp(const Eigen::VectorXd& x,
                                   const Eigen::VectorXd& u, int sample) {
  GAMEOPT_GAMES_CHECK(u.size() == total_, "u has the wrong size");
  return GetMinibatch(sample).jacobian * u;
}

std::optional<Eigen::VectorXd> QuadraticGame::LossGradient(
    const Eigen::VectorXd& x, int player, int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == total_, "x has the wrong size");
  GAMEOPT_GAMES_CHECK(player >= 0 && player < num_players(), "no such player");
  const Minibatch& m = GetMinibatch(sample);
  const int o = offsets_[player], d = dims_[player];
  // A_i's block column i is J's block row i transposed (A_i's other
  // blocks outside row and column i are zero): (A_i x)_j = J_ij^T x_i.
  Eigen::VectorXd g =
      m.jacobian.middleRows(o, d).transpose() * x.segment(o, d) + b_[player];
  g.segment(o, d) = m.jacobian.middleRows(o, d) * x + m.offset.segment(o, d);
  return g;
}

std::vector<std::pair<std::string, double>> QuadraticGame::Metrics(
    const Eigen::VectorXd& x) const {
  return {{"distance", (x - equilibrium_).norm()}};
}

}  // namespace gameopt
