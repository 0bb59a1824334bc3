#include "client/games/dirac_gan.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/games/check.h"
#include "client/games/sampling.h"

namespace gameopt {
namespace {

// The logistic sigmoid, without overflow for large |t|.
double Sigmoid(double t) {
  if (t >= 0) return 1.0 / (1.0 + std::exp(-t));
  const double e = std::exp(t);
  return e / (1.0 + e);
}

// f and its derivatives: f(t) = -log(1 + exp(-t)) (GAN) or f(t) = t (WGAN).
struct Activation {
  bool wasserstein;
  double D1(double t) const { return wasserstein ? 1.0 : Sigmoid(-t); }
  double D2(double t) const {
    return wasserstein ? 0.0 : -Sigmoid(t) * Sigmoid(-t);
  }
};

double Sign(double value) { return (value > 0) - (value < 0); }

}  // namespace

absl::StatusOr<DiracVariant> ParseDiracVariant(absl::string_view name) {
  for (DiracVariant variant :
       {DiracVariant::kGan, DiracVariant::kNsGan, DiracVariant::kWgan,
        DiracVariant::kWganGp, DiracVariant::kR1,
        DiracVariant::kInstanceNoise}) {
    if (name == DiracVariantName(variant)) return variant;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown Dirac-GAN variant '", name,
      "' (expected gan, nsgan, wgan, wgan-gp, r1 or instance-noise)"));
}

std::string DiracVariantName(DiracVariant variant) {
  switch (variant) {
    case DiracVariant::kGan:
      return "gan";
    case DiracVariant::kNsGan:
      return "nsgan";
    case DiracVariant::kWgan:
      return "wgan";
    case DiracVariant::kWganGp:
      return "wgan-gp";
    case DiracVariant::kR1:
      return "r1";
    case DiracVariant::kInstanceNoise:
      return "instance-noise";
  }
  return "unknown";
}

DiracGan::DiracGan(const DiracGanOptions& options) : options_(options) {
  noiseless_.fake_noise = Eigen::VectorXd::Zero(1);
  noiseless_.real_noise = Eigen::VectorXd::Zero(1);
}

std::unique_ptr<Game> DiracGan::Clone() const {
  return std::make_unique<DiracGan>(options_);
}

std::string DiracGan::name() const {
  return "dirac-" + DiracVariantName(options_.variant);
}

std::vector<PlayerSpec> DiracGan::players() const {
  return {{"generator", {{"theta", {}}}}, {"discriminator", {{"psi", {}}}}};
}

Eigen::VectorXd DiracGan::InitialParameters() const {
  return Eigen::Vector2d(1.0, 1.0);
}

void DiracGan::DrawMinibatches(int count, uint64_t seed) {
  minibatches_.clear();
  if (options_.variant != DiracVariant::kInstanceNoise) return;
  for (int slot = 0; slot < count; ++slot) {
    RandomStream random(SlotSeed(seed, slot));
    Minibatch batch;
    batch.fake_noise.resize(options_.batch);
    batch.real_noise.resize(options_.batch);
    for (int j = 0; j < options_.batch; ++j) {
      batch.fake_noise[j] = options_.noise_std * random.Gaussian();
      batch.real_noise[j] = options_.noise_std * random.Gaussian();
    }
    minibatches_.push_back(std::move(batch));
  }
}

const DiracGan::Minibatch& DiracGan::GetMinibatch(int sample) const {
  if (options_.variant != DiracVariant::kInstanceNoise) return noiseless_;
  GAMEOPT_GAMES_CHECK(sample >= 0 && sample < int(minibatches_.size()),
                      "minibatch slot not drawn (call DrawMinibatches)");
  return minibatches_[sample];
}

// xi = (d l_G / d theta, d l_D / d psi).
Eigen::Vector2d DiracGan::Field(const Eigen::VectorXd& x, int sample) const {
  GAMEOPT_GAMES_CHECK(x.size() == 2, "x has the wrong size");
  const double theta = x[0], psi = x[1];
  const DiracVariant variant = options_.variant;
  const Activation f{variant == DiracVariant::kWgan ||
                     variant == DiracVariant::kWganGp};
  const Minibatch& batch = GetMinibatch(sample);
  const double n = batch.fake_noise.size();
  double grad_theta = 0, grad_psi = 0;
  for (int j = 0; j < batch.fake_noise.size(); ++j) {
    const double y = theta + batch.fake_noise[j];
    const double x_real = batch.real_noise[j];
    grad_theta += variant == DiracVariant::kNsGan ? psi * f.D1(-psi * y)
                                                  : psi * f.D1(psi * y);
    grad_psi += -y * f.D1(psi * y) + x_real * f.D1(-psi * x_real);
  }
  grad_theta /= n;
  grad_psi /= n;
  if (variant == DiracVariant::kWganGp) {
    grad_psi += 2 * options_.penalty_weight * (psi - Sign(psi));
  } else if (variant == DiracVariant::kR1) {
    grad_psi += options_.penalty_weight * psi;
  }
  return Eigen::Vector2d(grad_theta, grad_psi);
}

Eigen::Matrix2d DiracGan::Jacobian(const Eigen::VectorXd& x, int sample) const {
  GAMEOPT_GAMES_CHECK(x.size() == 2, "x has the wrong size");
  const double theta = x[0], psi = x[1];
  const DiracVariant variant = options_.variant;
  const Activation f{variant == DiracVariant::kWgan ||
                     variant == DiracVariant::kWganGp};
  const Minibatch& batch = GetMinibatch(sample);
  const double n = batch.fake_noise.size();
  Eigen::Matrix2d jacobian = Eigen::Matrix2d::Zero();
  for (int j = 0; j < batch.fake_noise.size(); ++j) {
    const double y = theta + batch.fake_noise[j];
    const double x_real = batch.real_noise[j];
    if (variant == DiracVariant::kNsGan) {
      // d/dtheta, d/dpsi of psi * f'(-psi*y).
      jacobian(0, 0) -= psi * psi * f.D2(-psi * y);
      jacobian(0, 1) += f.D1(-psi * y) - psi * y * f.D2(-psi * y);
    } else {
      // d/dtheta, d/dpsi of psi * f'(psi*y).
      jacobian(0, 0) += psi * psi * f.D2(psi * y);
      jacobian(0, 1) += f.D1(psi * y) + psi * y * f.D2(psi * y);
    }
    // d/dtheta, d/dpsi of -y f'(psi*y) + x_real f'(-psi*x_real).
    jacobian(1, 0) -= f.D1(psi * y) + psi * y * f.D2(psi * y);
    jacobian(1, 1) -=
        y * y * f.D2(psi * y) + x_real * x_real * f.D2(-psi * x_real);
  }
  jacobian /= n;
  if (variant == DiracVariant::kWganGp) {
    jacobian(1, 1) += 2 * options_.penalty_weight;
  } else if (variant == DiracVariant::kR1) {
    jacobian(1, 1) += options_.penalty_weight;
  }
  return jacobian;
}

Eigen::VectorXd DiracGan::Gradient(const Eigen::VectorXd& x, int sample) {
  return Field(x, sample);
}

Eigen::VectorXd DiracGan::Vjp(const Eigen::VectorXd& x,
                              const Eigen::VectorXd& w, int sample) {
  GAMEOPT_GAMES_CHECK(w.size() == 2, "w has the wrong size");
  return Jacobian(x, sample).transpose() * w;
}

Eigen::VectorXd DiracGan::Jvp(const Eigen::VectorXd& x,
                              const Eigen::VectorXd& u, int sample) {
  GAMEOPT_GAMES_CHECK(u.size() == 2, "u has the wrong size");
  return Jacobian(x, sample) * u;
}

std::vector<std::pair<std::string, double>> DiracGan::Metrics(
    const Eigen::VectorXd& x) const {
  return {{"distance", x.norm()}};
}

}  // namespace gameopt
