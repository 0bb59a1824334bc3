#include "client/games/bilinear_sum.h"

#include "Eigen/LU"
#include "client/games/check.h"
#include "client/games/sampling.h"

namespace gameopt {

BilinearSumGame::BilinearSumGame(int d, int n, uint64_t seed)
    : d_(d), n_(n), seed_(seed) {
  GAMEOPT_GAMES_CHECK(d >= 1 && n >= 1,
                      "the bilinear_sum game needs d >= 1 and n >= 1");
  RandomStream random(seed);
  auto gaussian = [&](int rows, int cols) {
    Eigen::MatrixXd m(rows, cols);
    for (int i = 0; i < m.size(); ++i) m.data()[i] = random.Gaussian();
    return m;
  };
  const Eigen::MatrixXd base =
      Eigen::MatrixXd::Identity(d, d) + 0.3 * gaussian(d, d);
  const Eigen::VectorXd b0 = gaussian(d, 1), c0 = gaussian(d, 1);
  Eigen::MatrixXd mean_a = Eigen::MatrixXd::Zero(d, d);
  Eigen::VectorXd mean_b = Eigen::VectorXd::Zero(d);
  Eigen::VectorXd mean_c = Eigen::VectorXd::Zero(d);
  for (int i = 0; i < n; ++i) {
    a_.push_back(base + 0.5 * gaussian(d, d));
    b_.push_back(b0 + 0.5 * gaussian(d, 1));
    c_.push_back(c0 + 0.5 * gaussian(d, 1));
    mean_a += a_.back() / n;
    mean_b += b_.back() / n;
    mean_c += c_.back() / n;
  }
  solution_.resize(2 * d);
  solution_.head(d) = -mean_a.transpose().lu().solve(mean_c);
  solution_.tail(d) = -mean_a.lu().solve(mean_b);
}

std::unique_ptr<Game> BilinearSumGame::Clone() const {
  return std::make_unique<BilinearSumGame>(d_, n_, seed_);
}

std::vector<PlayerSpec> BilinearSumGame::players() const {
  return {{"x", {{"x", {d_}}}}, {"y", {{"y", {d_}}}}};
}

Eigen::VectorXd BilinearSumGame::InitialParameters() const {
  return Eigen::VectorXd::Zero(2 * d_);
}

void BilinearSumGame::DrawMinibatches(int count, uint64_t seed) {
  drawn_.resize(count);
  for (int k = 0; k < count; ++k) {
    RandomStream random(SlotSeed(seed, k));
    drawn_[k] = std::min(n_ - 1, static_cast<int>(random.Uniform() * n_));
  }
}

absl::Status BilinearSumGame::DrawFullShard(int count) {
  drawn_.assign(count, -1);
  return absl::OkStatus();
}

int BilinearSumGame::Term(int sample) const {
  GAMEOPT_GAMES_CHECK(sample >= 0 && sample < static_cast<int>(drawn_.size()),
                      "no minibatch drawn for this sample slot");
  return drawn_[sample];
}

Eigen::VectorXd BilinearSumGame::Gradient(const Eigen::VectorXd& x,
                                          int sample) {
  GAMEOPT_GAMES_CHECK(x.size() == 2 * d_, "x has the wrong size");
  const int i = Term(sample);
  if (i < 0) return Mean([&](int t) { return TermGradient(x, t); });
  return TermGradient(x, i);
}

Eigen::VectorXd BilinearSumGame::TermGradient(const Eigen::VectorXd& x,
                                              int i) const {
  Eigen::VectorXd xi(2 * d_);
  xi.head(d_) = a_[i] * x.tail(d_) + b_[i];
  xi.tail(d_) = -(a_[i].transpose() * x.head(d_) + c_[i]);
  return xi;
}

Eigen::VectorXd BilinearSumGame::Vjp(const Eigen::VectorXd& x,
                                     const Eigen::VectorXd& w, int sample) {
  GAMEOPT_GAMES_CHECK(w.size() == 2 * d_, "w has the wrong size");
  const int i = Term(sample);
  if (i < 0) return Mean([&](int t) { return TermVjp(w, t); });
  return TermVjp(w, i);
}

Eigen::VectorXd BilinearSumGame::TermVjp(const Eigen::VectorXd& w,
                                         int i) const {
  // J_i^T = [[0, -A_i], [A_i^T, 0]].
  Eigen::VectorXd result(2 * d_);
  result.head(d_) = -a_[i] * w.tail(d_);
  result.tail(d_) = a_[i].transpose() * w.head(d_);
  return result;
}

Eigen::VectorXd BilinearSumGame::Jvp(const Eigen::VectorXd& x,
                                     const Eigen::VectorXd& u, int sample) {
  GAMEOPT_GAMES_CHECK(u.size() == 2 * d_, "u has the wrong size");
  const int i = Term(sample);
  if (i < 0) return Mean([&](int t) { return TermJvp(u, t); });
  return TermJvp(u, i);
}

Eigen::VectorXd BilinearSumGame::TermJvp(const Eigen::VectorXd& u,
                                         int i) const {
  Eigen::VectorXd result(2 * d_);
  result.head(d_) = a_[i] * u.tail(d_);
  result.tail(d_) = -a_[i].transpose() * u.head(d_);
  return result;
}

template <typename Fn>
Eigen::VectorXd BilinearSumGame::Mean(Fn term) const {
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(2 * d_);
  for (int t = 0; t < n_; ++t) sum += term(t);
  return sum / n_;
}

std::vector<std::pair<std::string, double>> BilinearSumGame::Metrics(
    const Eigen::VectorXd& x) const {
  return {{"distance", (x - solution_).norm()}};
}

}  // namespace gameopt
