// The mixture-of-Gaussians GAN of "The Numerics of GANs" (Mescheder,
// Nowozin, Geiger 2017), section 5: 8 modes on the unit circle, std 0.01,
// MLPs of 4 x 16 ReLU units, z of dimension 16.
//
// Data: `num_modes` (8) Gaussians with std `data_std` (0.01) centred at
// radius * (cos(2 pi k / num_modes), sin(2 pi k / num_modes)), radius 1.
// Players (both minimize), each an MLP of `depth` (4) hidden ReLU layers of
// `width` (16) units (see mlp.h for the layer equations):
//   "generator":     z (z_dim = 16, z ~ N(0, I)) -> G(z) in R^2
//   "discriminator": x in R^2 -> D(x), one logit
// Tensors of each player, in order: "w0" {width, in}, "b0" {width}, "w1",
// "b1", ..., "w{depth}" {out, width}, "b{depth}" {out}; weights row-major.
// Flat layout: generator's tensors, then discriminator's.
//
// Losses on a minibatch of B generated (z_j) and B real (x_j) samples, with
// sigma the logistic sigmoid and softplus(t) = log(1 + exp(t)):
//   l_D = -mean_j log sigma(D(x_j)) - mean_j log(1 - sigma(D(G(z_j))))
//       =  mean_j softplus(-D(x_j)) + mean_j softplus(D(G(z_j)))
//   l_G = -mean_j log sigma(D(G(z_j))) = mean_j softplus(-D(G(z_j)))
//         (non-saturating; the default, as in the paper's own code, whose
//         "standard" GAN trains G on sigmoid cross-entropy with label 1)
//   l_G = mean_j log(1 - sigma(D(G(z_j)))) = -mean_j softplus(D(G(z_j)))
//         (saturating, zero-sum: options.saturating = true)
//
// Products are exact: with H_i the Hessian of l_i over all parameters,
// J^T w = H_G (w_G, 0) + H_D (0, w_D) and (J u)_i = (H_i u)[block i], each
// Hessian-vector product by forward-mode tangents over the hand-written
// backward pass (mlp.h), one Eigen matrix product per operation (exact
// except on the measure-zero set where a ReLU pre-activation is exactly 0).
//
// Minibatches: DrawMinibatches(count, seed) fills slot k from a RandomStream
// seeded with SlotSeed(seed, k): first z (column by column), then the real
// batch, stratified: sample j comes from mode j % num_modes (batch /
// num_modes per mode, the remainder spread over the first modes).
// Initialization from the constructor's seed, like PyTorch's nn.Linear:
// every weight and bias of a layer with `in` inputs ~ U(-1/sqrt(in),
// 1/sqrt(in)), generator first.
//
// Metrics: 2,000 samples of G from a fixed seed; a mode is covered when at
// least 1% of them lie within 3 * data_std of its centre.
//   {"modes_covered", number of covered modes}
//   {"off_mode_share", share of samples within 3 * data_std of no mode}
#ifndef GAMEOPT_CLIENT_GAMES_MOG_GAN_H_
#define GAMEOPT_CLIENT_GAMES_MOG_GAN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "client/games/mlp.h"
#include "client/worker/game.h"

namespace gameopt {

struct MogGanOptions {
  int batch = 512;          // B, >= 1
  int z_dim = 16;           // >= 1
  int width = 16;           // hidden units per layer, >= 1
  int depth = 4;            // hidden layers per network, >= 1
  bool saturating = false;  // generator loss; see above
  int num_modes = 8;        // >= 1
  double radius = 1.0;
  double data_std = 0.01;  // > 0
};

// Mode coverage of samples (2 x n) against centres (2 x modes), radius
// 3 * data_std, threshold 1% of n (see the file comment).
struct ModeCoverage {
  int modes_covered = 0;
  double off_mode_share = 0.0;
};
ModeCoverage ComputeModeCoverage(const Eigen::MatrixXd& samples,
                                 const Eigen::MatrixXd& centers,
                                 double data_std);

class MogGan final : public Game {
 public:
  // One minibatch slot: z (z_dim x B) and real samples (2 x B).
  struct Minibatch {
    Eigen::MatrixXd z;
    Eigen::MatrixXd real;
  };

  // `options` must be valid (MakeGame checks); `seed` drives the
  // initialization only.
  MogGan(const MogGanOptions& options, uint64_t seed);

  std::unique_ptr<Game> Clone() const override;
  std::string name() const override { return "mog"; }
  std::vector<PlayerSpec> players() const override;
  Eigen::VectorXd InitialParameters() const override;
  void DrawMinibatches(int count, uint64_t seed) override;
  Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) override;
  Eigen::VectorXd Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                      int sample) override;
  Eigen::VectorXd Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                      int sample) override;
  std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const override;
  // The samples Metrics() counts (same count and seed) over the mode
  // centres.
  std::optional<SamplePicture> Samples(const Eigen::VectorXd& x) const override;

  // n generator samples (2 x n) at parameters x, z drawn from `seed`.
  Eigen::MatrixXd Generate(const Eigen::VectorXd& x, int n,
                           uint64_t seed) const;
  // The mode centres, 2 x num_modes.
  const Eigen::MatrixXd& ModeCenters() const { return centers_; }
  const Minibatch& minibatch(int sample) const;
  const MogGanOptions& options() const { return options_; }
  int64_t generator_size() const { return MlpSize(generator_); }
  int64_t discriminator_size() const { return MlpSize(discriminator_); }

 private:
  // Derivatives of one loss (l_G or l_D) over all parameters, each
  // Dimension() long: its gradient and, in dual mode, H * tangent. Only the
  // blocks asked for are computed; the others are zero.
  struct LossDerivatives {
    bool generator_block = false;
    bool discriminator_block = false;
    Eigen::VectorXd grad, hvp;
  };
  // One pass over minibatch `sample` at x, with `tangent` (null: first
  // order only), sharing the forward pass between the losses asked for
  // (a null LossDerivatives is skipped).
  void Differentiate(const Eigen::VectorXd& x, const Eigen::VectorXd* tangent,
                     int sample, LossDerivatives* generator_loss,
                     LossDerivatives* discriminator_loss);

  MogGanOptions options_;
  uint64_t seed_;
  MlpShape generator_, discriminator_;
  Eigen::MatrixXd centers_;
  std::vector<Minibatch> minibatches_;
  // Scratch reused across calls (hence no thread safety, as for every Game).
  MlpTape generator_tape_, fake_tape_, real_tape_;
  Eigen::MatrixXd g_, dg_, gx_, dgx_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_MOG_GAN_H_
