#include "client/games/mog_gan.h"

#include <cmath>
#include <memory>
#include <optional>
#include <string>

#include "client/games/games.h"
#include "gtest/gtest.h"
#include "tests/client/games_test_util.h"

namespace gameopt {
namespace {

using ::gameopt::testing::ExpectProductsAreTransposes;
using ::gameopt::testing::ExpectProductsMatchFiniteDifferences;
using ::gameopt::testing::kFdTolerance;
using ::gameopt::testing::RandomVector;
using ::gameopt::testing::RelativeError;

// ReLU networks are only piecewise smooth: a central difference whose two
// points straddle a kink of some pre-activation is wrong by O(1/h). A step
// of 1e-6 makes that unlikely for the few thousand pre-activations of these
// small batches (and the test points are fixed, so the outcome is too);
// rounding error stays near 1e-10 relative.
constexpr double kMogFdStep = 1e-6;

// Slope of the steps in the hand-built 8-mode generator: samples with
// |z_k| < 1/kSteep (a share of about 1e-6) land between modes.
constexpr double kSteep = 1e6;

MogGanOptions SmallOptions() {
  MogGanOptions options;
  options.batch = 8;
  options.z_dim = 3;
  options.width = 4;
  options.depth = 2;
  return options;
}

// Offset of tensor `tensor` of player `player` in the flat layout.
int64_t Offset(const Game& game, const std::string& player,
               const std::string& tensor) {
  int64_t offset = 0;
  for (const PlayerSpec& p : game.players()) {
    for (const TensorSpec& t : p.tensors) {
      if (p.name == player && t.name == tensor) return offset;
      offset += NumElements(t);
    }
  }
  ADD_FAILURE() << "no tensor " << player << "/" << tensor;
  return 0;
}

void SetTensor(const Game& game, const std::string& player,
               const std::string& tensor, const Eigen::MatrixXd& value,
               Eigen::VectorXd* x) {
  const int64_t offset = Offset(game, player, tensor);
  for (int i = 0; i < value.rows(); ++i) {
    for (int j = 0; j < value.cols(); ++j) {
      (*x)[offset + i * value.cols() + j] = value(i, j);  // row-major
    }
  }
}

// An independent forward pass of player `player`'s MLP on `input`.
Eigen::MatrixXd Forward(const Game& game, const Eigen::VectorXd& x,
                        const std::string& player, int depth,
                        Eigen::MatrixXd h) {
  for (const PlayerSpec& p : game.players()) {
    if (p.name != player) continue;
    for (int l = 0; l <= depth; ++l) {
      const TensorSpec& w = p.tensors[2 * l];
      const int rows = w.shape[0], cols = w.shape[1];
      Eigen::MatrixXd weight(rows, cols);
      const int64_t o = Offset(game, player, "w" + std::to_string(l));
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) weight(i, j) = x[o + i * cols + j];
      }
      const Eigen::VectorXd bias = x.segment(o + rows * cols, rows);
      h = (weight * h).colwise() + bias;
      if (l < depth) h = h.cwiseMax(0.0);
    }
  }
  return h;
}

double Softplus(double t) {
  return std::log1p(std::exp(-std::abs(t))) + std::max(t, 0.0);
}

// The losses of the header comment, from scratch.
double Loss(const MogGan& game, const Eigen::VectorXd& x, int sample,
            bool generator) {
  const MogGan::Minibatch& batch = game.minibatch(sample);
  const int depth = game.options().depth;
  const Eigen::MatrixXd fake = Forward(game, x, "generator", depth, batch.z);
  const Eigen::MatrixXd d_fake = Forward(game, x, "discriminator", depth, fake);
  const Eigen::MatrixXd d_real =
      Forward(game, x, "discriminator", depth, batch.real);
  double loss = 0;
  const double n = batch.z.cols();
  for (int j = 0; j < batch.z.cols(); ++j) {
    if (!generator) {
      loss += (Softplus(-d_real(0, j)) + Softplus(d_fake(0, j))) / n;
    } else if (game.options().saturating) {
      loss -= Softplus(d_fake(0, j)) / n;
    } else {
      loss += Softplus(-d_fake(0, j)) / n;
    }
  }
  return loss;
}

TEST(MogGan, PlayersFollowTheLayout) {
  MogGan game(MogGanOptions(), /*seed=*/0);
  const std::vector<PlayerSpec> players = game.players();
  ASSERT_EQ(players.size(), 2u);
  EXPECT_EQ(players[0].name, "generator");
  ASSERT_EQ(players[0].tensors.size(), 10u);  // 4 hidden + output, w and b
  EXPECT_EQ(players[0].tensors[0].name, "w0");
  EXPECT_EQ(players[0].tensors[0].shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(players[0].tensors[9].shape, std::vector<int64_t>{2});
  EXPECT_EQ(players[1].tensors[0].shape, (std::vector<int64_t>{16, 2}));
  EXPECT_EQ(players[1].tensors[8].shape, (std::vector<int64_t>{1, 16}));
  EXPECT_EQ(game.Dimension(), 1122 + 881);
}

TEST(MogGan, InitializationIsSeededAndBounded) {
  MogGan game(MogGanOptions(), /*seed=*/3);
  const Eigen::VectorXd x = game.InitialParameters();
  EXPECT_EQ(x, MogGan(MogGanOptions(), 3).InitialParameters());
  EXPECT_NE(x, MogGan(MogGanOptions(), 4).InitialParameters());
  // Every layer's fan-in is 16 except the discriminator's first (2).
  EXPECT_LE(x.head(game.generator_size()).cwiseAbs().maxCoeff(), 0.25);
  EXPECT_LE(x.cwiseAbs().maxCoeff(), 1 / std::sqrt(2.0));
}

TEST(MogGan, MinibatchesAreDeterministicAndStratified) {
  MogGan game(MogGanOptions(), 0), twin(MogGanOptions(), 0);
  game.DrawMinibatches(2, /*seed=*/17);
  twin.DrawMinibatches(2, /*seed=*/17);
  EXPECT_EQ(game.minibatch(1).z, twin.minibatch(1).z);
  EXPECT_EQ(game.minibatch(1).real, twin.minibatch(1).real);
  EXPECT_NE(game.minibatch(0).z, game.minibatch(1).z);
  const Eigen::VectorXd x = game.InitialParameters();
  EXPECT_EQ(game.Gradient(x, 1), twin.Gradient(x, 1));
  twin.DrawMinibatches(2, /*seed=*/18);
  EXPECT_NE(game.minibatch(0).real, twin.minibatch(0).real);
  const MogGan::Minibatch& batch = game.minibatch(0);
  EXPECT_EQ(batch.z.rows(), 16);
  EXPECT_EQ(batch.real.cols(), 512);
  for (int j = 0; j < batch.real.cols(); ++j) {
    // 10 std: the chance of a N(0, 1) draw beyond is negligible.
    EXPECT_LT((batch.real.col(j) - game.ModeCenters().col(j % 8)).norm(), 0.1)
        << j;
  }
}

TEST(MogGan, GradientIsTheDerivativeOfTheLosses) {
  for (bool saturating : {false, true}) {
    MogGanOptions options = SmallOptions();
    options.saturating = saturating;
    MogGan game(options, /*seed=*/1);
    game.DrawMinibatches(1, /*seed=*/2);
    const Eigen::VectorXd x = game.InitialParameters();
    const Eigen::VectorXd xi = game.Gradient(x, 0);
    Eigen::VectorXd fd(x.size());
    for (int64_t k = 0; k < x.size(); ++k) {
      const bool generator = k < game.generator_size();
      Eigen::VectorXd plus = x, minus = x;
      plus[k] += kMogFdStep;
      minus[k] -= kMogFdStep;
      fd[k] =
          (Loss(game, plus, 0, generator) - Loss(game, minus, 0, generator)) /
          (2 * kMogFdStep);
    }
    EXPECT_LT(RelativeError(xi, fd), kFdTolerance) << saturating;
  }
}

TEST(MogGan, ProductsMatchFiniteDifferences) {
  for (bool saturating : {false, true}) {
    MogGanOptions options = SmallOptions();
    options.saturating = saturating;
    MogGan game(options, /*seed=*/5);
    game.DrawMinibatches(2, /*seed=*/6);
    const Eigen::VectorXd x =
        game.InitialParameters() + 0.1 * RandomVector(game.Dimension(), 7);
    SCOPED_TRACE(saturating);
    ExpectProductsMatchFiniteDifferences(game, x, 1, kMogFdStep);
    ExpectProductsAreTransposes(game, x, 1);
  }
}

TEST(MogGan, FullSizeProductsMatchDirectionalDifferences) {
  MogGanOptions options;
  options.batch = 16;
  MogGan game(options, /*seed=*/8);
  game.DrawMinibatches(1, /*seed=*/9);
  const Eigen::VectorXd x = game.InitialParameters();
  for (uint64_t seed : {1, 2}) {
    const Eigen::VectorXd u = RandomVector(x.size(), seed);
    const Eigen::VectorXd fd = (game.Gradient(x + kMogFdStep * u, 0) -
                                game.Gradient(x - kMogFdStep * u, 0)) /
                               (2 * kMogFdStep);
    EXPECT_LT(RelativeError(game.Jvp(x, u, 0), fd), kFdTolerance);
  }
  ExpectProductsAreTransposes(game, x, 0);
}

TEST(MogGan, ModeCoverageOfExactSamples) {
  MogGan game(MogGanOptions(), 0);
  const Eigen::MatrixXd& centers = game.ModeCenters();
  Eigen::MatrixXd samples(2, 800);
  for (int j = 0; j < 800; ++j) samples.col(j) = centers.col(j % 8);
  ModeCoverage coverage = ComputeModeCoverage(samples, centers, 0.01);
  EXPECT_EQ(coverage.modes_covered, 8);
  EXPECT_EQ(coverage.off_mode_share, 0.0);
  // 7 samples of mode 1 (below 1%) and 100 far away.
  for (int j = 0; j < 800; ++j) samples.col(j) = centers.col(0);
  for (int j = 0; j < 7; ++j) samples.col(j) = centers.col(1);
  for (int j = 700; j < 800; ++j) samples.col(j).setZero();
  coverage = ComputeModeCoverage(samples, centers, 0.01);
  EXPECT_EQ(coverage.modes_covered, 1);
  EXPECT_DOUBLE_EQ(coverage.off_mode_share, 100.0 / 800);
}

TEST(MogGan, CollapsedGeneratorCoversOneMode) {
  MogGan game(MogGanOptions(), 0);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(game.Dimension());
  SetTensor(game, "generator", "b4", game.ModeCenters().col(3), &x);
  const auto metrics = game.Metrics(x);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].first, "modes_covered");
  EXPECT_EQ(metrics[0].second, 1);
  EXPECT_EQ(metrics[1].first, "off_mode_share");
  EXPECT_EQ(metrics[1].second, 0.0);
}

TEST(MogGan, SamplesAreTheOnesTheMetricsCount) {
  MogGan game(SmallOptions(), 3);
  const Eigen::VectorXd x = game.InitialParameters();
  const std::optional<SamplePicture> picture = game.Samples(x);
  ASSERT_TRUE(picture.has_value());
  EXPECT_EQ(picture->samples.rows(), 2);
  EXPECT_EQ(picture->samples.cols(), 2000);
  EXPECT_EQ(picture->centers, game.ModeCenters());
  EXPECT_EQ(picture->center_std, game.options().data_std);
  const ModeCoverage coverage = ComputeModeCoverage(
      picture->samples, picture->centers, picture->center_std);
  const auto metrics = game.Metrics(x);
  EXPECT_EQ(metrics[0].second, coverage.modes_covered);
  EXPECT_EQ(metrics[1].second, coverage.off_mode_share);
  // Deterministic in x, like the metrics.
  EXPECT_EQ(game.Samples(x)->samples, picture->samples);
}

TEST(MogGan, OtherGamesDrawNoSamples) {
  for (const std::string& name : {"bilinear", "dirac", "quadratic"}) {
    absl::StatusOr<std::unique_ptr<Game>> game = MakeGame(name, GameOptions());
    ASSERT_TRUE(game.ok()) << game.status();
    EXPECT_FALSE((*game)->Samples((*game)->InitialParameters()).has_value())
        << name;
  }
}

TEST(MogGan, GeneratorOfTheModesCoversEight) {
  // z_0, z_1, z_2 pick one of 8 modes by their signs: layer 0 computes
  // relu(K z_k) and relu(K z_k - 1), layer 1 the step s_k in [0, 1] (their
  // difference), layer 2 the indicator of each sign pattern c,
  // relu(sum_k (c_k ? s_k : 1 - s_k) - 2), layer 3 copies it and the output
  // layer maps indicator c to centre c.
  MogGan game(MogGanOptions(), 0);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(game.Dimension());
  Eigen::MatrixXd w0 = Eigen::MatrixXd::Zero(16, 16), w1 = w0, w2 = w0, w3 = w0;
  Eigen::VectorXd b0 = Eigen::VectorXd::Zero(16), b2 = b0;
  for (int k = 0; k < 3; ++k) {
    w0(2 * k, k) = w0(2 * k + 1, k) = kSteep;
    b0[2 * k + 1] = -1;
    w1(k, 2 * k) = 1;
    w1(k, 2 * k + 1) = -1;
  }
  for (int c = 0; c < 8; ++c) {
    for (int k = 0; k < 3; ++k) {
      const bool bit = (c >> k) & 1;
      w2(c, k) = bit ? 1 : -1;
      b2[c] += bit ? 0 : 1;
    }
    b2[c] -= 2;
    w3(c, c) = 1;
  }
  Eigen::MatrixXd w4 = Eigen::MatrixXd::Zero(2, 16);
  w4.leftCols(8) = game.ModeCenters();
  SetTensor(game, "generator", "w0", w0, &x);
  SetTensor(game, "generator", "b0", b0, &x);
  SetTensor(game, "generator", "w1", w1, &x);
  SetTensor(game, "generator", "w2", w2, &x);
  SetTensor(game, "generator", "b2", b2, &x);
  SetTensor(game, "generator", "w3", w3, &x);
  SetTensor(game, "generator", "w4", w4, &x);
  const auto metrics = game.Metrics(x);
  EXPECT_EQ(metrics[0].second, 8);
  EXPECT_LT(metrics[1].second, 1e-3);  // only z on a step's ramp
  const Eigen::MatrixXd samples = game.Generate(x, 100, /*seed=*/1);
  EXPECT_EQ(samples.rows(), 2);
  EXPECT_EQ(samples.cols(), 100);
}

TEST(MogGan, InitialGeneratorCoversNoMode) {
  MogGan game(MogGanOptions(), 0);
  const auto metrics = game.Metrics(game.InitialParameters());
  EXPECT_EQ(metrics[0].second, 0);
  EXPECT_GT(metrics[1].second, 0.99);
}

}  // namespace
}  // namespace gameopt
