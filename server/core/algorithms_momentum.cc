// The phase plans of optimistic Adam, extrapolation from the past and LEAD
// (formulas: AlgorithmConfig in config.h). Negative momentum needs no plan
// of its own: it is the momentum base optimizer with mu < 0, under AltGD
// for the alternating form.
#include "server/core/algorithms_momentum.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {
namespace {

// x_{t+1} = x_t - 2 lr u_t + lr u_{t-1}, u = Adam's m_hat / (sqrt(v_hat) +
// eps) of the mean gradient.
template <typename T>
class OptimisticAdam final : public TypedAlgorithm<T> {
 public:
  OptimisticAdam(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
  }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    // A refused step leaves previous_ as it was.
    if (absl::Status s =
            this->ApplyOptimisticUpdate(this->mean_gradient(), previous_);
        !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

  // "previous_update": u_{t-1}, absent before the first step.
  void ExportExtra(AlgorithmState& state) const override {
    this->ExportVector(previous_, "previous_update", state);
  }
  absl::Status ImportExtra(const AlgorithmState& state) override {
    return this->ImportVector(state, "previous_update", previous_);
  }

 private:
  Vec<T> previous_;
};

// One gradient per step at the extrapolated point; the update moves x, the
// extrapolation repeats that step from the new x.
template <typename T>
class ExtrapolationFromThePast final : public TypedAlgorithm<T> {
 public:
  ExtrapolationFromThePast(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
  }

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const>) override {
    before_ = this->parameters()->template as<T>();
    if (absl::Status s = this->ApplyDirection(this->mean_gradient(), {});
        !s.ok()) {
      return s;
    }
    const FlatVector& x = *this->parameters();
    step_ = x.template as<T>() - before_;
    this->NextPhase();  // lookahead may move x here
    MakeExclusive(extrapolated_, x.dtype(), x.size());
    VecMap<T> point = extrapolated_->template as<T>();
    point = this->parameters()->template as<T>() + step_;
    for (int p = 0; p < this->layout().num_players(); ++p) {
      const double c = this->config().players[p].optimizer.clip_value;
      if (c <= 0.0) continue;
      const PlayerLayout& player = this->layout().players()[p];
      auto block = point.segment(player.offset, player.size);
      block = block.cwiseMax(static_cast<T>(-c)).cwiseMin(static_cast<T>(c));
    }
    this->SetPoint(extrapolated_);
    return absl::OkStatus();
  }

 private:
  Vec<T> before_, step_;
  std::shared_ptr<FlatVector> extrapolated_;
};

// LEAD: gradient, then J (0, dy) for x's correction and J (dx, 0) for y's,
// then g_i = xi_i + (alpha / lr_i) C_i into SGD or heavy-ball momentum.
template <typename T>
class Lead final : public TypedAlgorithm<T> {
 public:
  Lead(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    const std::vector<PlayerLayout>& p = this->layout().players();
    this->plan().push_back(GradientPhase(0, "gradient", this->AllPlayers()));
    this->plan().push_back(
        ProductsPhase(1, "lead " + p[0].name, /*vjp=*/false, /*jvp=*/true));
    this->plan().push_back(
        ProductsPhase(2, "lead " + p[1].name, /*vjp=*/false, /*jvp=*/true));
  }

 protected:
  absl::Status OnGradient(
      absl::Span<const FlatVector* const> samples) override {
    SetProbes(/*player=*/0, samples.size());
    this->NextPhase();
    return absl::OkStatus();
  }

  absl::Status OnProducts(const SampleSet&, const SampleSet& jvp) override {
    const int player = this->phase().index - 1;  // whose correction
    MeanOf<T>(jvp, mean_);
    const int64_t d = this->layout().dimension();
    if (correction_.size() != d) correction_ = Vec<T>::Zero(d);
    this->Block(correction_, player) = this->Block(mean_, player);
    if (player == 0) {
      SetProbes(1, this->probes().size());
      this->NextPhase();
      return absl::OkStatus();
    }
    direction_ = this->mean_gradient();
    for (int p = 0; p < 2; ++p) {
      const T scale = static_cast<T>(this->config().algorithm.lead_alpha /
                                     this->LearningRate(p));
      this->Block(direction_, p) += scale * this->Block(correction_, p);
    }
    this->mutable_stats().correction_norm =
        static_cast<double>(correction_.norm()) *
        this->config().algorithm.lead_alpha;
    before_ = this->parameters()->template as<T>();
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    change_ = this->parameters()->template as<T>() - before_;
    this->NextPhase();
    return absl::OkStatus();
  }

  // In the second products phase: "lead.correction", the first player's
  // block of it. Always after the first step: "lead.change", x_t - x_{t-1}.
  void ExportExtra(AlgorithmState& state) const override {
    this->ExportVector(change_, "lead.change", state);
    if (this->phase().index == 2) {
      this->ExportVector(correction_, "lead.correction", state);
    }
  }
  absl::Status ImportExtra(const AlgorithmState& state) override {
    if (absl::Status s = this->ImportVector(state, "lead.change", change_);
        !s.ok()) {
      return s;
    }
    // Required in the second products phase.
    return this->ImportVector(state, "lead.correction", correction_,
                              this->phase().index == 2);
  }

 private:
  // The probe of `player`'s correction for every sample: the other
  // player's last change, zero on `player`'s own block.
  void SetProbes(int player, size_t samples) {
    const int64_t d = this->layout().dimension();
    auto probe = std::make_shared<FlatVector>(this->config().dtype, d);
    VecMap<T> w = probe->template as<T>();
    w.setZero();
    if (change_.size() == d) {
      const int other = 1 - player;
      const PlayerLayout& o = this->layout().players()[other];
      w.segment(o.offset, o.size) = change_.segment(o.offset, o.size);
    }
    this->mutable_probes().assign(samples, probe);
  }

  Vec<T> mean_, correction_, direction_, before_, change_;
};

}  // namespace

template <typename T>
std::unique_ptr<Algorithm> MakeMomentumAlgorithm(const SessionConfig& config,
                                                 GameLayout layout) {
  switch (config.algorithm.kind) {
    case AlgorithmKind::kOptimisticAdam:
      return std::make_unique<OptimisticAdam<T>>(config, std::move(layout));
    case AlgorithmKind::kExtrapolationFromThePast:
      return std::make_unique<ExtrapolationFromThePast<T>>(config,
                                                           std::move(layout));
    case AlgorithmKind::kLead:
      return std::make_unique<Lead<T>>(config, std::move(layout));
    default:
      return nullptr;
  }
}

template std::unique_ptr<Algorithm> MakeMomentumAlgorithm<float>(
    const SessionConfig& config, GameLayout layout);
template std::unique_ptr<Algorithm> MakeMomentumAlgorithm<double>(
    const SessionConfig& config, GameLayout layout);

}  // namespace gameopt
