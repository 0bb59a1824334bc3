// The phase plans of the algorithms (AlgorithmKind in config.h), one class
// each, and the factory.
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/algorithms_hamiltonian.h"
#include "server/core/algorithms_lola.h"
#include "server/core/algorithms_momentum.h"
#include "server/core/bias_meter.h"
#include "server/core/cgd.h"
#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {
namespace {

// x -= opt(xi).
template <typename T>
class SimGd final : public TypedAlgorithm<T> {
 public:
  SimGd(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
  }
  bool TakesPackedSamples() const override { return true; }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    if (absl::Status s = this->ApplyDirection(this->mean_gradient(), {});
        !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }
};

// Players update one after another, each on a fresh gradient at the point
// the previous updates reached.
template <typename T>
class AltGd final : public TypedAlgorithm<T> {
 public:
  AltGd(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    std::vector<AltGdStage> order = config.algorithm.altgd_order;
    if (order.empty()) {
      for (const PlayerLayout& p : this->layout().players()) {
        order.push_back({p.name, 1});
      }
    }
    for (const AltGdStage& stage : order) {
      const int player = this->layout().FindPlayer(stage.player);
      for (int i = 0; i < stage.steps; ++i) {
        const int index = static_cast<int>(this->plan().size());
        this->plan().push_back(GradientPhase(
            index, absl::StrCat(stage.player, " ", i + 1, "/", stage.steps),
            {player}));
      }
    }
  }

  bool TakesPackedSamples() const override { return true; }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    if (absl::Status s =
            this->ApplyDirection(this->mean_gradient(), this->phase().players);
        !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }
};

// ConOpt, SGA and SHGD: a gradient phase, then a products phase on probes
// the estimator forms from the gradient samples.
template <typename T>
class CorrectedGradient final : public TypedAlgorithm<T> {
 public:
  CorrectedGradient(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)),
        sga_(config.algorithm.kind == AlgorithmKind::kSga),
        shgd_(config.algorithm.kind == AlgorithmKind::kShgd),
        gamma_(config.algorithm.gamma) {
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
    this->plan().push_back(
        ProductsPhase(1, sga_ ? "sga" : (shgd_ ? "hamiltonian" : "consensus"),
                      /*vjp=*/true, /*jvp=*/sga_));
    if (!sga_ && !shgd_ && config.algorithm.adaptive_gamma.enabled) {
      adaptive_.emplace(config.algorithm.adaptive_gamma, gamma_);
    }
    if (!sga_ && !shgd_) this->mutable_stats().gamma = gamma_;
  }

  void ObserveFieldSpectrum(int64_t step,
                            const SpectrumEstimate& estimate) override {
    if (!adaptive_) return;
    adaptive_->OnFieldSpectrum(step, estimate);
    PublishGamma();
  }

  void SetOwnProducts(absl::Span<const FlatVector* const> own_vjp) override {
    own_vjp_.assign(own_vjp.begin(), own_vjp.end());
  }

  // ConOpt reads its samples and products only in the estimator's and the
  // consensus direction's kernels; the bias meter reads whole products.
  bool TakesPackedSamples() const override {
    return !sga_ && !shgd_ && !this->config().algorithm.bias_meter;
  }

 protected:
  // The probes and the mean gradient in one pass over the samples.
  void AggregateGradient(const SampleSet& samples, Vec<T>& mean) override {
    const EstimatorKind estimator = this->config().algorithm.estimator;
    auto& lazy = this->mutable_lazy_probes();
    lazy.clear();
    const WireConfig& wire = this->config().wire;
    // (Stochastic rounding draws a stream per task from the full values:
    // those probes stay lazy.)
    const bool nearest =
        wire.to_workers == Compression::kNone || !wire.stochastic_rounding;
    if (TakesPackedSamples() && nearest &&
        CanFormProbesInPlace(estimator, samples, DTypeOf<T>(),
                             wire.to_workers)) {
      // The unbiased probes in the samples' own bytes, in the wire's
      // format (raw, or a compressed one that the samples came in and the
      // probes go out in), let go of once sent: ConOpt's products phase
      // reads the mean and the products, never the probes
      // (TypedAlgorithm::HandOutPackedProbe).
      FormProbesInPlace<T>(samples, this->layout(), mean,
                           this->mutable_packed_probes());
      this->mutable_probes().assign(samples.size(), nullptr);
      probes_status_ = absl::OkStatus();
      return;
    } else if (FormsProbesWhereSent(samples)) {
      probes_status_ = FormProbes<T>(estimator, samples, this->layout(),
                                     wire.to_workers, mean, lazy);
      if (probes_status_.ok()) {
        this->mutable_probes().assign(samples.size(), nullptr);
        return;
      }
    } else {
      // ConOpt's pooled probe is the mean bit for bit: one buffer holds
      // both through the products phase (ShareMeanWithProbe).
      const bool share = !sga_ && !shgd_ && estimator == EstimatorKind::kPooled;
      auto& probes = this->mutable_probes();
      probes_status_ =
          ComputeProbes<T>(estimator, samples, probes, share ? nullptr : &mean);
      if (share && probes_status_.ok()) {
        this->ShareMeanWithProbe(probes[0]);
        return;
      }
    }
    if (!probes_status_.ok()) MeanOf<T>(samples, mean);
  }

  // Whether the probes are never stored (lazy_probe.h): encoded in the
  // pass that sums the samples, for a compressed wire to the workers, which
  // encodes every probe anyway; every sample packed where it arrived (so
  // that the probes can hold them cheaply); pooled or unbiased.
  bool FormsProbesWhereSent(const SampleSet& samples) const {
    const SessionConfig& c = this->config();
    if (c.wire.to_workers == Compression::kNone) return false;
    if (c.algorithm.estimator != EstimatorKind::kPooled &&
        c.algorithm.estimator != EstimatorKind::kUnbiased) {
      return false;
    }
    for (size_t k = 0; k < samples.size(); ++k) {
      const PackedVector* packed = samples.packed(k);
      if (packed == nullptr || !packed->references()) return false;
    }
    return true;
  }

  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    if (!probes_status_.ok()) return probes_status_;
    this->NextPhase();
    return absl::OkStatus();
  }

  absl::Status OnProducts(const SampleSet& vjp, const SampleSet& jvp) override {
    const AlgorithmConfig& a = this->config().algorithm;
    Vec<T>& xi = this->mean_gradient();
    if (shgd_) return HamiltonianStep(vjp);
    if (!sga_) {
      // g = xi + gamma J^T xi in one pass over the products, in place of
      // xi (a new gradient phase sets it again); the same pass measures the
      // norms and max |g| for the step's checks. When the pooled probe
      // holds xi, g is written over it once the probes are let go, unless
      // a transport or a checkpoint still holds it: then next to it.
      std::shared_ptr<FlatVector> held = this->TakeSharedMean();
      if (held != nullptr) this->mutable_probes().clear();
      const bool over_probe = held != nullptr && held.use_count() == 1;
      if (held != nullptr && !over_probe) xi.resize(held->size());
      ConstVecMap<T> source = held != nullptr
                                  ? std::as_const(*held).template as<T>()
                                  : ConstVecMap<T>(xi.data(), xi.size());
      VecMap<T> g =
          over_probe ? held->template as<T>() : VecMap<T>(xi.data(), xi.size());
      const ConsensusNorms norms =
          ConsensusDirection<T>(source, vjp, static_cast<T>(gamma_), g);
      const double xi_norm = norms.xi;
      this->mutable_stats().correction_norm = norms.correction;
      double jt_xi_norm = 0.0;
      if (gamma_ > 0.0) {
        jt_xi_norm = this->stats().correction_norm / gamma_;
      } else {  // g = xi: J^T xi is not in the direction
        MeanOf<T>(vjp, jt_xi_);
        jt_xi_norm = static_cast<double>(jt_xi_.norm());
      }
      StepDiagnostics diagnostics =
          StationarityDiagnostics(xi_norm, jt_xi_norm);
      diagnostics.cancellation =
          CancellationFromNorms(xi_norm, norms.correction, norms.direction);
      this->mutable_stats().diagnostics = diagnostics;
      AddBiasMeter(vjp);
      this->mutable_stats().sga_lambda = 0.0;
      // A failure restarts the step: xi, overwritten, is computed again.
      if (absl::Status s = this->ApplyDirection(g, {}, nullptr, true,
                                                norms.direction_max_abs);
          !s.ok()) {
        return s;
      }
      if (adaptive_) {
        adaptive_->OnStep(this->step() + 1, diagnostics);
        PublishGamma();
      }
      // Lazy probes hold the gradient round's packed samples (the
      // request buffers): let go of them now, not when the next gradient
      // round's samples have arrived next to them.
      this->mutable_lazy_probes().clear();
      this->mutable_packed_probes().clear();
      this->NextPhase();
      return absl::OkStatus();
    }
    MeanOf<T>(vjp, jt_xi_);                   // J^T xi
    MeanOf<T>(jvp, j_xi_);                    // J xi
    correction_ = T(0.5) * (jt_xi_ - j_xi_);  // A^T xi
    StepDiagnostics diagnostics = StationarityDiagnostics(
        static_cast<double>(xi.norm()), static_cast<double>(jt_xi_.norm()));
    AddRotationIndex(static_cast<double>((j_xi_ + jt_xi_).norm()),
                     2.0 * static_cast<double>(correction_.norm()),
                     diagnostics);
    this->mutable_stats().diagnostics = diagnostics;
    AddBiasMeter(vjp);
    double lambda = a.lambda0;
    if (a.sga_alignment) {
      const double d = static_cast<double>(xi.size());
      const double align = static_cast<double>(xi.dot(jt_xi_)) *
                               static_cast<double>(correction_.dot(jt_xi_)) /
                               d +
                           0.1;
      lambda = align >= 0.0 ? a.lambda0 : -a.lambda0;
    }
    this->mutable_stats().sga_lambda = lambda;
    correction_ *= static_cast<T>(lambda);
    const T xi_squared = xi.squaredNorm();
    this->mutable_stats().diagnostics.cancellation =
        xi_squared > T(0)
            ? -static_cast<double>(xi.dot(correction_) / xi_squared)
            : 0.0;
    this->mutable_stats().correction_norm =
        static_cast<double>(correction_.norm());
    direction_ = xi + correction_;
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

  // "adaptive_gamma": float64 AdaptiveGamma::Export(), with adaptive gamma
  // only. Absent (a checkpoint from before it): the rule restarts from the
  // configured gamma.
  void ExportExtra(AlgorithmState& state) const override {
    if (!adaptive_) return;
    const std::vector<double> values = adaptive_->Export();
    auto vector = std::make_shared<FlatVector>(
        DType::kFloat64, static_cast<int64_t>(values.size()));
    vector->template as<double>() =
        Eigen::Map<const Vec<double>>(values.data(), values.size());
    state.vectors.push_back({"adaptive_gamma", std::move(vector)});
  }
  absl::Status ImportExtra(const AlgorithmState& state) override {
    for (const NamedVector& v : state.vectors) {
      if (v.name != "adaptive_gamma") continue;
      if (!adaptive_) {
        return absl::DataLossError(
            "state vector 'adaptive_gamma' in a session without adaptive "
            "gamma");
      }
      if (v.value == nullptr || v.value->dtype() != DType::kFloat64) {
        return absl::DataLossError(
            "state vector 'adaptive_gamma' is not float64");
      }
      const auto values = v.value->template as<double>();
      if (absl::Status s = adaptive_->Import(
              absl::MakeConstSpan(values.data(), values.size()));
          !s.ok()) {
        return s;
      }
      PublishGamma();
    }
    return absl::OkStatus();
  }

 private:
  // SHGD: g = the estimated J^T xi = grad H, H = 1/2 |xi|^2.
  absl::Status HamiltonianStep(const SampleSet& vjp) {
    MeanOf<T>(vjp, direction_);
    const double g_norm = static_cast<double>(direction_.norm());
    this->mutable_stats().correction_norm = g_norm;
    this->mutable_stats().sga_lambda = 0.0;
    this->mutable_stats().diagnostics = StationarityDiagnostics(
        static_cast<double>(this->mean_gradient().norm()), g_norm);
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

  // The bias meter's reading from the step's answers and the samples' own
  // products (SetOwnProducts), which it then forgets.
  void AddBiasMeter(const SampleSet& vjp) {
    StepDiagnostics& d = this->mutable_stats().diagnostics;
    d.has_bias_meter = false;
    std::vector<const FlatVector*> own;
    own.swap(own_vjp_);
    // P and U are over all K samples of the gradient round (the probes are
    // built from S): a worker missing from the products round leaves none.
    if (own.empty() ||
        static_cast<int>(vjp.size()) != this->stats().gradient_samples) {
      return;
    }
    const std::optional<BiasMeterReading> reading =
        MeasureBias(this->config().algorithm.estimator, vjp.dense(), own);
    if (!reading) return;
    d.has_bias_meter = true;
    d.bias_norm = reading->bias_norm;
    d.pooled_jt_xi_norm = reading->pooled_norm;
    d.relative_bias = reading->relative_bias;
  }

  void PublishGamma() {
    gamma_ = adaptive_->gamma();
    this->mutable_stats().gamma = gamma_;
    this->mutable_stats().gamma_trajectory = adaptive_->trajectory();
  }

  const bool sga_;
  const bool shgd_;
  double gamma_;  // ConOpt: of the next step
  std::optional<AdaptiveGamma> adaptive_;
  // Whether AggregateGradient computed the probes, or why not.
  absl::Status probes_status_;
  // The bias meter's J_k^T xi_k for the products phase about to close.
  std::vector<const FlatVector*> own_vjp_;
  // SGA; jt_xi_ also ConOpt with gamma 0 (diagnostics)
  Vec<T> jt_xi_, j_xi_, correction_, direction_;
};

// x' = x - opt(xi(x)); x -= opt(xi(x')), each on its own minibatches.
template <typename T>
class Extragradient final : public TypedAlgorithm<T> {
 public:
  Extragradient(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    this->plan().push_back(
        GradientPhase(0, "extrapolation", this->AllPlayers()));
    this->plan().push_back(GradientPhase(1, "update", this->AllPlayers()));
  }

  bool TakesPackedSamples() const override { return true; }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    if (this->phase().index == 0) {
      const FlatVector& x = *this->parameters();
      MakeExclusive(extrapolated_, x.dtype(), x.size());
      extrapolated_->template as<T>() = x.template as<T>();
      if (absl::Status s = this->ApplyDirection(
              this->mean_gradient(), {}, extrapolated_.get(),
              this->config().algorithm.extragradient_moments_at_extrapolation);
          !s.ok()) {
        return s;
      }
      this->SetPoint(extrapolated_);
    } else if (absl::Status s = this->ApplyDirection(this->mean_gradient(), {});
               !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<FlatVector> extrapolated_;
};

// x -= opt(2 xi_t - xi_{t-1}); the first step uses xi_{-1} = xi_0, i.e. it
// is a plain gradient step.
template <typename T>
class Optimistic final : public TypedAlgorithm<T> {
 public:
  Optimistic(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
  }

  bool TakesPackedSamples() const override { return true; }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    const Vec<T>& xi = this->mean_gradient();
    const Vec<T>& previous = previous_.size() == 0 ? xi : previous_;
    direction_ = T(2) * xi - previous;
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    previous_ = xi;
    this->NextPhase();
    return absl::OkStatus();
  }

  // "previous": xi_{t-1}, absent before the first step.
  void ExportExtra(AlgorithmState& state) const override {
    if (previous_.size() == 0) return;
    auto previous =
        std::make_shared<FlatVector>(this->config().dtype, previous_.size());
    previous->template as<T>() = previous_;
    state.vectors.push_back({"previous", std::move(previous)});
  }
  absl::Status ImportExtra(const AlgorithmState& state) override {
    previous_.resize(0);
    for (const NamedVector& v : state.vectors) {
      if (v.name != "previous") continue;
      if (v.value->dtype() != this->config().dtype ||
          v.value->size() != this->layout().dimension()) {
        return absl::DataLossError("state vector 'previous' has a wrong size");
      }
      previous_ = v.value->template as<T>();
    }
    return absl::OkStatus();
  }

 private:
  Vec<T> previous_, direction_;
};

template <typename T>
std::unique_ptr<Algorithm> MakeTyped(const SessionConfig& config,
                                     GameLayout layout) {
  switch (config.algorithm.kind) {
    case AlgorithmKind::kSimGd:
      return std::make_unique<SimGd<T>>(config, std::move(layout));
    case AlgorithmKind::kAltGd:
      return std::make_unique<AltGd<T>>(config, std::move(layout));
    case AlgorithmKind::kConOpt:
      if (config.algorithm.svrhg_correction) {
        return MakeLSvrhg<T>(config, std::move(layout));
      }
      return std::make_unique<CorrectedGradient<T>>(config, std::move(layout));
    case AlgorithmKind::kSga:
    case AlgorithmKind::kShgd:
      return std::make_unique<CorrectedGradient<T>>(config, std::move(layout));
    case AlgorithmKind::kExtragradient:
      return std::make_unique<Extragradient<T>>(config, std::move(layout));
    case AlgorithmKind::kOptimistic:
      return std::make_unique<Optimistic<T>>(config, std::move(layout));
    case AlgorithmKind::kOptimisticAdam:
    case AlgorithmKind::kExtrapolationFromThePast:
    case AlgorithmKind::kLead:
      return MakeMomentumAlgorithm<T>(config, std::move(layout));
    case AlgorithmKind::kCgd:
    case AlgorithmKind::kAcgd:
      return MakeCompetitive(config, std::move(layout));
    case AlgorithmKind::kLola:
    case AlgorithmKind::kSos:
      return MakeOpponentShaping<T>(config, std::move(layout));
    case AlgorithmKind::kLSvrhg:
      return MakeLSvrhg<T>(config, std::move(layout));
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Algorithm>> Algorithm::Create(
    const SessionConfig& config) {
  absl::Status status = ValidateConfig(config);
  if (!status.ok()) return status;
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config.players);
  if (!layout.ok()) return layout.status();
  if (config.dtype == DType::kFloat32) {
    return MakeTyped<float>(config, *std::move(layout));
  }
  return MakeTyped<double>(config, *std::move(layout));
}

}  // namespace gameopt
