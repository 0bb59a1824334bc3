// L-SVRHG (Loizou et al., ICML 2020, "Stochastic Hamiltonian Gradient
// Methods for Smooth Games", Algorithm 3 with the snapshot moved to the
// new iterate). The plan of a step:
//
//   0 gradient at x            (step seed: minibatches B_t)
//   1 products at x            -> e_x = unbiased estimate of J^T xi on B_t
//   2 gradient at w            (step seed: the same B_t)
//   3 products at w            -> e_w, the same estimate at w;
//                                 g = e_x - e_w + grad H(w)
//   4 gradient at x, full shard
//   5 products at x, full shard -> grad H(x) (pooled over the shards);
//                                 w = x, g = grad H(w)
//
// A step runs 0-3 when the snapshot's full gradient is known, else 4-5
// (w then equals x, so e_x - e_w = 0 and the step is the exact
// Hamiltonian gradient step). After the update a coin with probability
// svrhg_probability, drawn from the session seed and the step (nothing to
// checkpoint), moves the snapshot: the next step runs 4-5 at the new x.
//
// ConOpt with svrhg_correction runs the same plan and keeps the step's
// mean gradient xi of round 0 (round 4: over the full shards); its
// direction is g = xi + gamma (e_x - e_w + grad H(w)), resp.
// xi + gamma grad H(x).
#include "server/core/algorithms_hamiltonian.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/estimator.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {
namespace {

constexpr int kFullGradient = 4;

// A gradient round for every player, its task seed from the step when
// `step_seed` (the same minibatches at x and at the snapshot); a products
// round (J^T w); each over whole shards when `full_shard`.
PhaseSpec Gradient(int index, std::string label, std::vector<int> players,
                   bool step_seed, bool full_shard) {
  PhaseSpec spec = GradientPhase(index, std::move(label), std::move(players));
  spec.step_seed = step_seed;
  spec.full_shard = full_shard;
  return spec;
}
PhaseSpec Products(int index, std::string label, bool full_shard) {
  PhaseSpec spec = ProductsPhase(index, std::move(label), /*vjp=*/true,
                                 /*jvp=*/false);
  spec.full_shard = full_shard;
  return spec;
}

template <typename T>
class LSvrhg final : public TypedAlgorithm<T> {
 public:
  LSvrhg(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)),
        conopt_(config.algorithm.kind == AlgorithmKind::kConOpt) {
    const std::vector<int> all = this->AllPlayers();
    this->plan().push_back(Gradient(0, "gradient", all, true, false));
    this->plan().push_back(Products(1, "hamiltonian", false));
    this->plan().push_back(Gradient(2, "snapshot gradient", all, true, false));
    this->plan().push_back(Products(3, "snapshot hamiltonian", false));
    this->plan().push_back(Gradient(4, "full gradient", all, false, true));
    this->plan().push_back(Products(5, "full hamiltonian", true));
    this->JumpToPhase(kFullGradient);  // no snapshot yet
  }

 protected:
  absl::Status OnGradient(
      absl::Span<const FlatVector* const> samples) override {
    const int index = this->phase().index;
    const EstimatorKind estimator = index == kFullGradient
                                        ? EstimatorKind::kPooled
                                        : this->config().algorithm.estimator;
    if (index == 2 && static_cast<int>(samples.size()) != samples_at_x_) {
      this->RestartStep();
      return absl::FailedPreconditionError(absl::StrCat(
          "l_svrhg: the snapshot round has ", samples.size(),
          " sample(s), the step's first round had ", samples_at_x_,
          " (a worker left or joined): the estimates need the same "
          "minibatches; the step starts over"));
    }
    samples_at_x_ = static_cast<int>(samples.size());
    if (conopt_ && index != 2) xi_ = this->mean_gradient();
    if (absl::Status s =
            ComputeProbes<T>(estimator, samples, this->mutable_probes());
        !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

  absl::Status OnProducts(const SampleSet& vjp, const SampleSet&) override {
    switch (this->phase().index) {
      case 1:
        MeanOf<T>(vjp, at_x_);
        this->SetPoint(snapshot_);
        this->NextPhase();
        return absl::OkStatus();
      case 3:
        MeanOf<T>(vjp, direction_);
        direction_ = at_x_ - direction_ + full_;
        return Update();
      default:  // 5
        MeanOf<T>(vjp, full_);
        snapshot_ = std::make_shared<FlatVector>(*this->parameters());
        direction_ = full_;
        return Update();
    }
  }

  // SHGD's g, or ConOpt's xi + gamma g, into the base optimizer.
  absl::Status Update() {
    if (conopt_) {
      direction_ *= static_cast<T>(this->config().algorithm.gamma);
      this->mutable_stats().correction_norm =
          static_cast<double>(direction_.norm());
      direction_ += xi_;
    } else {
      this->mutable_stats().correction_norm =
          static_cast<double>(direction_.norm());
    }
    return UpdateWith();
  }

  // "svrhg.snapshot" (w) and "svrhg.full" (grad H(w)) once known,
  // "svrhg.at_x" (e_x) in phases 2 and 3, and the scalar "svrhg.samples"
  // (the samples of the step's first round, which the round at w must
  // match).
  void ExportExtra(AlgorithmState& state) const override {
    state.scalars.push_back({"svrhg.samples", samples_at_x_});
    if (full_.size() > 0) {
      state.vectors.push_back({"svrhg.snapshot", snapshot_});
      this->ExportVector(full_, "svrhg.full", state);
    }
    if (this->phase().index == 2 || this->phase().index == 3) {
      this->ExportVector(at_x_, "svrhg.at_x", state);
    }
    if (conopt_ && this->phase().index != 0 &&
        this->phase().index != kFullGradient) {
      this->ExportVector(xi_, "svrhg.xi", state);
    }
  }
  absl::Status ImportExtra(const AlgorithmState& state) override {
    snapshot_.reset();
    samples_at_x_ = 0;
    for (const NamedScalar& s : state.scalars) {
      if (s.name == "svrhg.samples") {
        samples_at_x_ =
            static_cast<int>(std::clamp<int64_t>(s.value, 0, 1 << 30));
      }
    }
    Vec<T> snapshot;
    for (auto [name, vec] :
         {std::pair<const char*, Vec<T>*>{"svrhg.snapshot", &snapshot},
          {"svrhg.full", &full_},
          {"svrhg.at_x", &at_x_},
          {"svrhg.xi", &xi_}}) {
      if (absl::Status s = this->ImportVector(state, name, *vec); !s.ok()) {
        return s;
      }
    }
    if (snapshot.size() > 0) {
      snapshot_ =
          std::make_shared<FlatVector>(this->config().dtype, snapshot.size());
      snapshot_->template as<T>() = snapshot;
    }
    const int index = this->phase().index;
    if (index < kFullGradient && (snapshot_ == nullptr || full_.size() == 0)) {
      return absl::DataLossError(
          "l_svrhg: no state vectors 'svrhg.snapshot' and 'svrhg.full' in "
          "a step that uses the snapshot");
    }
    if ((index == 2 || index == 3) && at_x_.size() == 0) {
      return absl::DataLossError(
          "l_svrhg: no state vector 'svrhg.at_x' in the snapshot's rounds");
    }
    if (conopt_ && index != 0 && index != kFullGradient && xi_.size() == 0) {
      return absl::DataLossError(
          "conopt with svrhg_correction: no state vector 'svrhg.xi' after "
          "the step's gradient round");
    }
    return absl::OkStatus();
  }

 private:
  // x -= opt(g), then the coin: the snapshot moves to the new x with
  // probability p, and the next step computes its full gradient.
  absl::Status UpdateWith() {
    const int64_t step = this->step();
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    std::mt19937_64 coin(this->config().seed * 0x9E3779B97F4A7C15ull +
                         static_cast<uint64_t>(step));
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(coin);
    const bool moves = u < this->config().algorithm.svrhg_probability;
    this->CompleteStep();
    if (moves) {
      full_.resize(0);
      this->JumpToPhase(kFullGradient);
    }
    return absl::OkStatus();
  }

  std::shared_ptr<FlatVector> snapshot_;  // w
  Vec<T> full_;       // grad H(w) over the full shards; empty: to compute
  Vec<T> at_x_;       // e_x of the current step
  Vec<T> direction_;  // g
  int samples_at_x_ = 0;
  const bool conopt_;  // ConOpt's variance-reduced correction
  Vec<T> xi_;          // conopt_: the step's mean gradient at x
};

}  // namespace

template <typename T>
std::unique_ptr<Algorithm> MakeLSvrhg(const SessionConfig& config,
                                      GameLayout layout) {
  return std::make_unique<LSvrhg<T>>(config, std::move(layout));
}

template std::unique_ptr<Algorithm> MakeLSvrhg<float>(const SessionConfig&,
                                                      GameLayout);
template std::unique_ptr<Algorithm> MakeLSvrhg<double>(const SessionConfig&,
                                                       GameLayout);

}  // namespace gameopt
