#include "server/core/cgd.h"

#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/cgd_internal.h"
#include "server/core/estimator.h"

namespace gameopt {

absl::Status ValidateCompetitive(const SessionConfig& config) {
  const AlgorithmConfig& a = config.algorithm;
  if (a.kind != AlgorithmKind::kCgd && a.kind != AlgorithmKind::kAcgd) {
    return absl::OkStatus();
  }
  const absl::string_view name = AlgorithmName(a.kind);
  if (config.players.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm ", name, " is for two players (x with loss f, y with loss ",
        "g); the session has ", config.players.size(),
        ": use another algorithm for more players"));
  }
  for (size_t p = 0; p < config.players.size(); ++p) {
    if (config.players[p].optimizer.kind != OptimizerKind::kSgd) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "].optimizer.kind = ",
          OptimizerName(config.players[p].optimizer.kind), ": algorithm ", name,
          " computes its own step from the learning rate eta (x += dx); set "
          "the optimizer to sgd",
          a.kind == AlgorithmKind::kCgd
              ? " (acgd scales the steps per coordinate by the RMS of the "
                "gradients)"
              : ""));
    }
  }
  if (a.estimator != EstimatorKind::kPooled) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.estimator = ", EstimatorName(a.estimator), ": algorithm ",
        name,
        " applies the round's mean Jacobian to the solver's vectors (every "
        "sample gets the same probe); leave the estimator unset or pooled"));
  }
  if (!(a.cgd_tolerance > 0.0 && a.cgd_tolerance < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm.cgd_tolerance = ", a.cgd_tolerance,
                     " is out of range: the relative residual of the "
                     "Krylov solve must be in (0, 1)"));
  }
  if (a.cgd_max_iterations < 1 || a.cgd_max_iterations > kMaxCgdIterations) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.cgd_max_iterations = ", a.cgd_max_iterations,
        " is out of range: must be in [1, ", kMaxCgdIterations, "]"));
  }
  if (a.kind == AlgorithmKind::kAcgd) {
    if (!(a.acgd_beta >= 0.0 && a.acgd_beta < 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("algorithm.acgd_beta = ", a.acgd_beta,
                       " is out of range: must be in [0, 1)"));
    }
    if (!(a.acgd_epsilon > 0.0 && std::isfinite(a.acgd_epsilon))) {
      return absl::InvalidArgumentError(
          absl::StrCat("algorithm.acgd_epsilon = ", a.acgd_epsilon,
                       " is out of range: must be > 0"));
    }
  }
  return absl::OkStatus();
}

template <typename T>
Competitive<T>::Competitive(const SessionConfig& config, GameLayout layout)
    : TypedAlgorithm<T>(config, std::move(layout)),
      adaptive_(config.algorithm.kind == AlgorithmKind::kAcgd) {
  const AlgorithmConfig& a = config.algorithm;
  krylov_.method =
      a.cgd_zero_sum ? KrylovMethod::kConjugateGradient : KrylovMethod::kGmres;
  krylov_.tolerance = a.cgd_tolerance;
  krylov_.max_iterations = a.cgd_max_iterations;
  const auto& players = this->layout().players();
  s_ = players[1].size < players[0].size ? 1 : 0;
  o_ = 1 - s_;
  // Entries never move (the session holds the closed phase's by reference).
  std::vector<PhaseSpec>& plan = this->plan();
  const int most = 2 * a.cgd_max_iterations + 5;
  plan.reserve(most);
  plan.push_back(GradientPhase(0, "gradient", this->AllPlayers()));
  for (int i = 1; i < most; ++i) {
    plan.push_back(ProductsPhase(i, "cgd", /*vjp=*/false, /*jvp=*/true));
  }
  if (adaptive_) sq_avg_ = Eigen::VectorXd::Zero(this->layout().dimension());
}

template <typename T>
Eigen::VectorXd Competitive<T>::BlockOf(const Eigen::VectorXd& v,
                                        int player) const {
  const PlayerLayout& p = this->layout().players()[player];
  return v.segment(p.offset, p.size);
}

template <typename T>
absl::Status Competitive<T>::OnGradient(
    absl::Span<const FlatVector* const> samples) {
  num_samples_ = static_cast<int>(samples.size());
  xi_ = this->mean_gradient().template cast<double>();
  const int64_t d = this->layout().dimension();
  h_.resize(d);
  for (int p = 0; p < 2; ++p) {
    const PlayerLayout& player = this->layout().players()[p];
    h_.segment(player.offset, player.size).setConstant(this->LearningRate(p));
  }
  if (adaptive_) {
    const AlgorithmConfig& a = this->config().algorithm;
    sq_pending_ =
        a.acgd_beta * sq_avg_ + (1.0 - a.acgd_beta) * xi_.cwiseProduct(xi_);
    const double t = static_cast<double>(this->step() + 1);
    const double correction = std::sqrt(1.0 - std::pow(a.acgd_beta, t));
    h_ = (correction * h_.array() /
          (sq_pending_.array().sqrt() + a.acgd_epsilon))
             .matrix();
  }
  rounds_ = 0;
  solver_.reset();
  Ask(Stage::kRhs, o_, BlockOf(h_, o_).cwiseProduct(BlockOf(xi_, o_)));
  return absl::OkStatus();
}

template <typename T>
void Competitive<T>::Ask(Stage stage, int player, const Eigen::VectorXd& u) {
  stage_ = stage;
  ++rounds_;
  const DType dtype = this->config().dtype;
  const int64_t d = this->layout().dimension();
  auto probe = std::make_shared<FlatVector>(dtype, d);
  VecMap<T> values = probe->template as<T>();
  values.setZero();
  const PlayerLayout& p = this->layout().players()[player];
  values.segment(p.offset, p.size) = u.template cast<T>();
  std::vector<std::shared_ptr<FlatVector>>& probes = this->mutable_probes();
  probes.assign(num_samples_, probe);
  const int next = this->phase().index + 1;
  this->plan()[next].label = StageLabel(stage);
  this->NextPhase();
}

template <typename T>
absl::Status Competitive<T>::OnProducts(const SampleSet&,
                                        const SampleSet& jvp) {
  MeanOf<T>(jvp, mean_);
  const Eigen::VectorXd answer = mean_.template cast<double>();
  const Eigen::VectorXd hs_sqrt = BlockOf(h_, s_).cwiseSqrt();
  const Eigen::VectorXd ho = BlockOf(h_, o_);
  switch (stage_) {
    case Stage::kRhs: {
      b_ = -hs_sqrt.cwiseProduct(BlockOf(xi_, s_) - BlockOf(answer, s_));
      if (warm_.size() > 0 && !warm_.isZero(0.0)) {
        Ask(Stage::kWarmInner, s_, hs_sqrt.cwiseProduct(warm_));
        return absl::OkStatus();
      }
      const Eigen::VectorXd zero = Eigen::VectorXd::Zero(b_.size());
      return Start(zero, b_);
    }
    case Stage::kWarmInner:
    case Stage::kInner:
      Ask(stage_ == Stage::kInner ? Stage::kOuter : Stage::kWarmOuter, o_,
          ho.cwiseProduct(BlockOf(answer, o_)));
      return absl::OkStatus();
    case Stage::kWarmOuter: {
      const Eigen::VectorXd az0 =
          warm_ - hs_sqrt.cwiseProduct(BlockOf(answer, s_));
      return Start(warm_, b_ - az0);
    }
    case Stage::kOuter: {
      const Eigen::VectorXd av =
          solver_->request() - hs_sqrt.cwiseProduct(BlockOf(answer, s_));
      solver_->Supply(av);
      return Continue();
    }
    case Stage::kResponse:
      return Finish(BlockOf(answer, o_));
  }
  return absl::InternalError("unknown CGD stage");
}

template <typename T>
absl::Status Competitive<T>::Start(const Eigen::VectorXd& z0,
                                   const Eigen::VectorXd& r0) {
  solver_.emplace(krylov_, b_.norm(), z0, r0);
  return Continue();
}

template <typename T>
absl::Status Competitive<T>::Continue() {
  const Eigen::VectorXd hs_sqrt = BlockOf(h_, s_).cwiseSqrt();
  if (!solver_->done()) {
    Ask(Stage::kInner, s_, hs_sqrt.cwiseProduct(solver_->request()));
    return absl::OkStatus();
  }
  const Eigen::VectorXd ds = hs_sqrt.cwiseProduct(solver_->solution());
  if (ds.isZero(0.0))
    return Finish(Eigen::VectorXd::Zero(BlockOf(h_, o_).size()));
  Ask(Stage::kResponse, s_, ds);
  return absl::OkStatus();
}

template <typename T>
absl::Status Competitive<T>::Finish(const Eigen::VectorXd& mos_ds) {
  const Eigen::VectorXd ds =
      BlockOf(h_, s_).cwiseSqrt().cwiseProduct(solver_->solution());
  const Eigen::VectorXd d_o =
      -BlockOf(h_, o_).cwiseProduct(BlockOf(xi_, o_) + mos_ds);
  // x += d through the base optimizer (SGD): direction -d / eta.
  direction_.resize(this->layout().dimension());
  for (int p = 0; p < 2; ++p) {
    const PlayerLayout& player = this->layout().players()[p];
    const Eigen::VectorXd& d = p == s_ ? ds : d_o;
    direction_.segment(player.offset, player.size) =
        (-d / this->LearningRate(p)).template cast<T>();
  }
  if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
    return s;
  }
  warm_ = solver_->solution();
  if (adaptive_) sq_avg_ = sq_pending_;
  StepStats& stats = this->mutable_stats();
  stats.cgd_rounds = rounds_;
  stats.cgd_iterations = solver_->iterations();
  stats.cgd_residual = solver_->relative_residual();
  solver_.reset();
  this->CompleteStep();
  return absl::OkStatus();
}

template <typename T>
std::unique_ptr<Algorithm> MakeCompetitiveTyped(const SessionConfig& config,
                                                GameLayout layout) {
  return std::make_unique<Competitive<T>>(config, std::move(layout));
}

std::unique_ptr<Algorithm> MakeCompetitive(const SessionConfig& config,
                                           GameLayout layout) {
  if (config.dtype == DType::kFloat32) {
    return MakeCompetitiveTyped<float>(config, std::move(layout));
  }
  return MakeCompetitiveTyped<double>(config, std::move(layout));
}

template class Competitive<float>;
template class Competitive<double>;

}  // namespace gameopt
