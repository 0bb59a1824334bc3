#include "client/games/mog_gan.h"

#include <cmath>
#include <utility>
#include <vector>

#include "client/games/check.h"
#include "client/games/sampling.h"

namespace gameopt {
namespace {

// Seed of the samples behind Metrics(): fixed, so metrics are comparable
// across steps and runs.
constexpr uint64_t kMetricsSeed = 0x6d6f672d6d657472ULL;
constexpr int kMetricsSamples = 2000;
// A mode counts as covered with at least this share of the samples...
constexpr double kCoverageShare = 0.01;
// ...within this many data standard deviations of its centre.
constexpr double kCoverageRadiusInStd = 3.0;

Eigen::MatrixXd StandardNormal(int rows, int cols, RandomStream& random) {
  Eigen::MatrixXd m(rows, cols);
  for (int j = 0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) m(i, j) = random.Gaussian();
  }
  return m;
}

double Sigmoid(double t) {
  if (t >= 0) return 1.0 / (1.0 + std::exp(-t));
  const double e = std::exp(t);
  return e / (1.0 + e);
}

// The loss term scale * mean_j softplus(sign * d_j) of logits d (1 x B):
// g = its derivative by d, and in dual mode dg = the derivative of g along
// the logit tangent dd.
void SoftplusTerm(const Eigen::MatrixXd& d, const Eigen::MatrixXd* dd,
                  double scale, double sign, Eigen::MatrixXd* g,
                  Eigen::MatrixXd* dg) {
  const double n = d.cols();
  g->resize(1, d.cols());
  if (dd != nullptr) dg->resize(1, d.cols());
  for (int j = 0; j < d.cols(); ++j) {
    const double s = Sigmoid(sign * d(0, j));
    (*g)(0, j) = scale * sign * s / n;
    if (dd != nullptr) (*dg)(0, j) = scale * s * (1 - s) * (*dd)(0, j) / n;
  }
}

}  // namespace

ModeCoverage ComputeModeCoverage(const Eigen::MatrixXd& samples,
                                 const Eigen::MatrixXd& centers,
                                 double data_std) {
  const double radius = kCoverageRadiusInStd * data_std;
  std::vector<int> counts(centers.cols(), 0);
  int off_mode = 0;
  for (int j = 0; j < samples.cols(); ++j) {
    Eigen::Index nearest = 0;
    const double distance = std::sqrt((centers.colwise() - samples.col(j))
                                          .colwise()
                                          .squaredNorm()
                                          .minCoeff(&nearest));
    if (distance <= radius) {
      ++counts[nearest];
    } else {
      ++off_mode;
    }
  }
  ModeCoverage coverage;
  for (int count : counts) {
    if (count > 0 && count >= kCoverageShare * samples.cols()) {
      ++coverage.modes_covered;
    }
  }
  coverage.off_mode_share =
      samples.cols() > 0 ? double(off_mode) / samples.cols() : 0.0;
  return coverage;
}

MogGan::MogGan(const MogGanOptions& options, uint64_t seed)
    : options_(options), seed_(seed) {
  generator_ = {options.z_dim, options.width, options.depth, 2};
  discriminator_ = {2, options.width, options.depth, 1};
  centers_.resize(2, options.num_modes);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int k = 0; k < options.num_modes; ++k) {
    const double angle = kTwoPi * k / options.num_modes;
    centers_(0, k) = options.radius * std::cos(angle);
    centers_(1, k) = options.radius * std::sin(angle);
  }
}

std::unique_ptr<Game> MogGan::Clone() const {
  return std::make_unique<MogGan>(options_, seed_);
}

std::vector<PlayerSpec> MogGan::players() const {
  return {{"generator", MlpTensors(generator_)},
          {"discriminator", MlpTensors(discriminator_)}};
}

Eigen::VectorXd MogGan::InitialParameters() const {
  Eigen::VectorXd x(Dimension());
  RandomStream random(seed_);
  int64_t offset = 0;
  for (const MlpShape& shape : {generator_, discriminator_}) {
    for (int l = 0; l <= shape.depth; ++l) {
      const int in = l == 0 ? shape.input : shape.width;
      const int out = l == shape.depth ? shape.output : shape.width;
      const double bound = 1.0 / std::sqrt(double(in));
      // w_l (out x in, row-major) and then b_l, contiguous in the layout.
      for (int64_t k = 0; k < int64_t{out} * (in + 1); ++k) {
        x[offset++] = random.Uniform(-bound, bound);
      }
    }
  }
  return x;
}

void MogGan::DrawMinibatches(int count, uint64_t seed) {
  minibatches_.clear();
  const int batch = options_.batch;
  for (int slot = 0; slot < count; ++slot) {
    RandomStream random(SlotSeed(seed, slot));
    Minibatch minibatch;
    minibatch.z = StandardNormal(options_.z_dim, batch, random);
    minibatch.real.resize(2, batch);
    for (int j = 0; j < batch; ++j) {
      const int mode = j % options_.num_modes;
      for (int i = 0; i < 2; ++i) {
        minibatch.real(i, j) =
            centers_(i, mode) + options_.data_std * random.Gaussian();
      }
    }
    minibatches_.push_back(std::move(minibatch));
  }
}

const MogGan::Minibatch& MogGan::minibatch(int sample) const {
  GAMEOPT_GAMES_CHECK(sample >= 0 && sample < int(minibatches_.size()),
                      "minibatch slot not drawn (call DrawMinibatches)");
  return minibatches_[sample];
}

void MogGan::Differentiate(const Eigen::VectorXd& x,
                           const Eigen::VectorXd* tangent, int sample,
                           LossDerivatives* generator_loss,
                           LossDerivatives* discriminator_loss) {
  const Minibatch& batch = minibatch(sample);
  const int64_t n = Dimension(), ng = MlpSize(generator_);
  GAMEOPT_GAMES_CHECK(x.size() == n, "x has the wrong size");
  GAMEOPT_GAMES_CHECK(tangent == nullptr || tangent->size() == n,
                      "the tangent has the wrong size");
  const bool dual = tangent != nullptr;
  const double* t = dual ? tangent->data() : nullptr;
  const Mlp generator(generator_, x.data(), t);
  const Mlp discriminator(discriminator_, x.data() + ng,
                          dual ? t + ng : nullptr);
  generator.Forward(batch.z, nullptr, &generator_tape_);
  discriminator.Forward(generator_tape_.output(),
                        dual ? &generator_tape_.output_tangent : nullptr,
                        &fake_tape_);
  const Eigen::MatrixXd& fake_logits = fake_tape_.output();
  const Eigen::MatrixXd* fake_tangent =
      dual ? &fake_tape_.output_tangent : nullptr;

  for (LossDerivatives* loss : {generator_loss, discriminator_loss}) {
    if (loss == nullptr) continue;
    const bool is_generator_loss = loss == generator_loss;
    loss->grad.setZero(n);
    if (dual) loss->hvp.setZero(n);
    double* grad_d =
        loss->discriminator_block ? loss->grad.data() + ng : nullptr;
    double* hvp_d =
        loss->discriminator_block && dual ? loss->hvp.data() + ng : nullptr;
    // The fake-sample term: softplus(D) for l_D, see the header for l_G.
    if (!is_generator_loss) {
      SoftplusTerm(fake_logits, fake_tangent, 1.0, 1.0, &g_, &dg_);
    } else if (options_.saturating) {
      SoftplusTerm(fake_logits, fake_tangent, -1.0, 1.0, &g_, &dg_);
    } else {
      SoftplusTerm(fake_logits, fake_tangent, 1.0, -1.0, &g_, &dg_);
    }
    const bool to_generator = loss->generator_block;
    discriminator.Backward(g_, dual ? &dg_ : nullptr, &fake_tape_, grad_d,
                           hvp_d, to_generator ? &gx_ : nullptr,
                           to_generator && dual ? &dgx_ : nullptr);
    if (to_generator) {
      generator.Backward(gx_, dual ? &dgx_ : nullptr, &generator_tape_,
                         loss->grad.data(), dual ? loss->hvp.data() : nullptr,
                         nullptr, nullptr);
    }
    // The real-sample term softplus(-D(x)) of l_D: no generator dependence.
    if (!is_generator_loss && loss->discriminator_block) {
      discriminator.Forward(batch.real, nullptr, &real_tape_);
      SoftplusTerm(real_tape_.output(),
                   dual ? &real_tape_.output_tangent : nullptr, 1.0, -1.0, &g_,
                   &dg_);
      discriminator.Backward(g_, dual ? &dg_ : nullptr, &real_tape_, grad_d,
                             hvp_d, nullptr, nullptr);
    }
  }
}

Eigen::VectorXd MogGan::Gradient(const Eigen::VectorXd& x, int sample) {
  LossDerivatives generator_loss, discriminator_loss;
  generator_loss.generator_block = true;
  discriminator_loss.discriminator_block = true;
  Differentiate(x, nullptr, sample, &generator_loss, &discriminator_loss);
  const int64_t nd = MlpSize(discriminator_);
  generator_loss.grad.tail(nd) = discriminator_loss.grad.tail(nd);
  return std::move(generator_loss.grad);
}

// J^T w = H_G (w_G, 0) + H_D (0, w_D): two passes with different tangents.
Eigen::VectorXd MogGan::Vjp(const Eigen::VectorXd& x, const Eigen::VectorXd& w,
                            int sample) {
  const int64_t n = Dimension(), ng = MlpSize(generator_);
  GAMEOPT_GAMES_CHECK(w.size() == n, "w has the wrong size");
  LossDerivatives loss;
  loss.generator_block = loss.discriminator_block = true;
  Eigen::VectorXd padded = Eigen::VectorXd::Zero(n);
  padded.head(ng) = w.head(ng);
  Differentiate(x, &padded, sample, &loss, nullptr);
  Eigen::VectorXd result = std::move(loss.hvp);
  padded.head(ng).setZero();
  padded.tail(n - ng) = w.tail(n - ng);
  Differentiate(x, &padded, sample, nullptr, &loss);
  result += loss.hvp;
  return result;
}

// (J u)_i = (H_i u)[block i]: one pass, one tangent, both losses.
Eigen::VectorXd MogGan::Jvp(const Eigen::VectorXd& x, const Eigen::VectorXd& u,
                            int sample) {
  GAMEOPT_GAMES_CHECK(u.size() == Dimension(), "u has the wrong size");
  LossDerivatives generator_loss, discriminator_loss;
  generator_loss.generator_block = true;
  discriminator_loss.discriminator_block = true;
  Differentiate(x, &u, sample, &generator_loss, &discriminator_loss);
  const int64_t nd = MlpSize(discriminator_);
  generator_loss.hvp.tail(nd) = discriminator_loss.hvp.tail(nd);
  return std::move(generator_loss.hvp);
}

Eigen::MatrixXd MogGan::Generate(const Eigen::VectorXd& x, int n,
                                 uint64_t seed) const {
  GAMEOPT_GAMES_CHECK(x.size() == Dimension(), "x has the wrong size");
  RandomStream random(seed);
  const Eigen::MatrixXd z = StandardNormal(options_.z_dim, n, random);
  const Mlp generator(generator_, x.data(), nullptr);
  MlpTape tape;
  generator.Forward(z, nullptr, &tape);
  return std::move(tape.pre.back());
}

std::vector<std::pair<std::string, double>> MogGan::Metrics(
    const Eigen::VectorXd& x) const {
  const ModeCoverage coverage = ComputeModeCoverage(
      Generate(x, kMetricsSamples, kMetricsSeed), centers_, options_.data_std);
  return {{"modes_covered", double(coverage.modes_covered)},
          {"off_mode_share", coverage.off_mode_share}};
}

std::optional<SamplePicture> MogGan::Samples(const Eigen::VectorXd& x) const {
  return SamplePicture{Generate(x, kMetricsSamples, kMetricsSeed), centers_,
                       options_.data_std};
}

}  // namespace gameopt
