// The Dirac-GAN of Mescheder, Geiger, Nowozin, "Which Training Methods for
// GANs do actually Converge?" (ICML 2018), section 2.
//
// Data: a Dirac at 0. Generator: p_theta = delta_theta. Discriminator:
// D_psi(x) = psi * x. Players (both minimize):
//   "generator":     tensor "theta", shape {} (a scalar)
//   "discriminator": tensor "psi",   shape {} (a scalar)
// Flat layout: (theta, psi).
//
// The paper's objective is L = E_z[f(D(G(z)))] + E_pD[f(-D(x))], which the
// discriminator ascends (so D is high on generated samples, low on data).
// On a minibatch of generated samples y_j and data samples x_j (y_j = theta
// and x_j = 0 but for instance noise, so L = f(psi*theta) + f(0)):
//   L(theta, psi) = mean_j f(psi*y_j) + mean_j f(-psi*x_j)
//   l_generator     = L                          (saturating, "gan")
//   l_discriminator = -L + R(psi)
// with f and R per variant:
//   kGan            f(t) = -log(1 + exp(-t)),  R = 0
//   kNsGan          as kGan, but the generator minimizes the non-saturating
//                   loss l_generator = -mean_j f(-psi*y_j)
//                   = mean_j log(1 + exp(psi*y_j)) (the paper's NS-GAN: the
//                   generator maximizes E[f(-D(G(z)))]); same Jacobian as
//                   kGan at the equilibrium.
//   kWgan           f(t) = t, R = 0. Weight clipping psi in [-c, c] is a
//                   projection of the parameters: the game does NOT apply it.
//                   The client must configure the server to clip the
//                   discriminator player to [-clip, clip] (options.clip,
//                   default 1); without clipping psi grows without bound.
//   kWganGp         f(t) = t, R = lambda * (|psi| - 1)^2, the WGAN-GP penalty
//                   lambda*E[(|grad_x D(x_hat)| - 1)^2] of Gulrajani et al.,
//                   since grad_x D = psi everywhere (the paper's
//                   (gamma/2)(|psi| - g0)^2 with gamma = 2 lambda, g0 = 1).
//                   |psi| is not differentiable at psi = 0: there we use
//                   sign(0) = 0 (gradient 2*lambda*psi, Hessian 2*lambda).
//   kR1             f of kGan, R = (gamma/2) * psi^2, the R1 penalty
//                   (gamma/2) E_pD[|grad_x D(x)|^2].
//   kInstanceNoise  f of kGan, R = 0; y_j = theta + sigma*e_j and
//                   x_j = sigma*e'_j with e, e' ~ N(0, 1), `batch` draws each
//                   per minibatch slot: a stochastic game. Gradients and
//                   products are exact for the drawn minibatch.
// lambda and gamma are options.penalty_weight; sigma is options.noise_std.
// All products are exact (closed-form second derivatives).
//
// The equilibrium is (theta, psi) = (0, 0). Initial point: (1, 1).
// Reference behaviour of SimGD, step 0.2, 500 steps, default options
// (tested): GAN stalls at distance 3.6 (saturation), NS-GAN settles on a
// cycle of radius ~0.62, unclipped WGAN diverges, WGAN-GP sticks at
// (theta, psi) = (-2 lambda, 0+), R1 converges (J(0) eigenvalues
// (gamma +- sqrt(gamma^2 - 1)) / 2), instance noise jitters ~0.03 around 0.
// Metrics: {"distance", sqrt(theta^2 + psi^2)}.
// All variants but kInstanceNoise are deterministic and ignore
// DrawMinibatches and `sample`; kInstanceNoise requires sample < count of
// the last DrawMinibatches(count, seed) call.
#ifndef GAMEOPT_CLIENT_GAMES_DIRAC_GAN_H_
#define GAMEOPT_CLIENT_GAMES_DIRAC_GAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/worker/game.h"

namespace gameopt {

enum class DiracVariant { kGan, kNsGan, kWgan, kWganGp, kR1, kInstanceNoise };

// "gan", "nsgan", "wgan", "wgan-gp", "r1", "instance-noise" <-> the enum.
// Unknown names are InvalidArgument.
absl::StatusOr<DiracVariant> ParseDiracVariant(absl::string_view name);
std::string DiracVariantName(DiracVariant variant);

struct DiracGanOptions {
  DiracVariant variant = DiracVariant::kGan;
  // lambda of kWganGp, gamma of kR1; ignored otherwise. >= 0.
  double penalty_weight = 1.0;
  // sigma of kInstanceNoise; ignored otherwise. >= 0.
  double noise_std = 1.0;
  // Noise draws per minibatch slot (kInstanceNoise only). >= 1.
  int batch = 256;
  // The clip bound c of kWgan, for the client to pass to the server; the game
  // never uses it. > 0.
  double clip = 1.0;
};

class DiracGan final : public Game {
 public:
  // `options` must be valid (see the ranges above; MakeGame checks them).
  explicit DiracGan(const DiracGanOptions& options);

  std::unique_ptr<Game> Clone() const override;
  // "dirac-" + DiracVariantName(variant), e.g. "dirac-r1".
  std::string name() const override;
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

  const DiracGanOptions& options() const { return options_; }

  // The exact 2 x 2 Jacobian of xi at x = (theta, psi) on minibatch
  // `sample`: rows (generator, discriminator), columns (theta, psi).
  Eigen::Matrix2d Jacobian(const Eigen::VectorXd& x, int sample) const;

 private:
  // Noise draws of one minibatch slot: generated = theta + fake_noise,
  // data = real_noise (both of size options_.batch).
  struct Minibatch {
    Eigen::VectorXd fake_noise;
    Eigen::VectorXd real_noise;
  };

  const Minibatch& GetMinibatch(int sample) const;
  Eigen::Vector2d Field(const Eigen::VectorXd& x, int sample) const;

  DiracGanOptions options_;
  Minibatch noiseless_;  // one sample at zero noise
  std::vector<Minibatch> minibatches_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_DIRAC_GAN_H_
