// TypedAlgorithm<T>: the state and update machinery every algorithm shares
// (parameters, per-player base optimizers, clipping, lookahead, the phase
// plan). Internal to the core; algorithms.cc derives one class per
// algorithm from it.
#ifndef GAMEOPT_SERVER_CORE_TYPED_ALGORITHM_H_
#define GAMEOPT_SERVER_CORE_TYPED_ALGORITHM_H_

#include <memory>
#include <string>
#include <vector>

#include "server/core/algorithm.h"
#include "server/core/optimizer.h"

namespace gameopt {

template <typename T>
class TypedAlgorithm : public Algorithm {
 public:
  TypedAlgorithm(const SessionConfig& config, GameLayout layout);

  const GameLayout& layout() const override { return layout_; }
  const PhaseSpec& phase() const override { return plan_[phase_index_]; }
  int64_t step() const override { return step_; }
  int phases_per_step() const override {
    return static_cast<int>(plan_.size());
  }
  std::shared_ptr<const FlatVector> parameters() const override { return x_; }
  std::shared_ptr<const FlatVector> point() const override { return point_; }
  int64_t point_version() const override { return version_; }
  const std::vector<std::shared_ptr<FlatVector>>& probes() const override {
    return probes_;
  }
  const std::vector<std::shared_ptr<const LazyProbe>>& lazy_probes()
      const override {
    return lazy_probes_;
  }
  const std::vector<std::shared_ptr<const PackedVector>>& packed_probes()
      const override {
    return packed_probes_;
  }
  std::shared_ptr<const PackedVector> HandOutPackedProbe(size_t k) override;
  // Back to the step's first phase, evaluated at x.
  void RestartStep() override;
  const StepStats& stats() const override { return stats_; }
  double LearningRate(int player) const override;

  absl::Status CompleteGradient(const SampleSet& samples) override;
  absl::Status CompleteProducts(const SampleSet& vjp,
                                const SampleSet& jvp) override;

  AlgorithmState ExportState() const override;
  absl::Status ImportState(const AlgorithmState& state) override;

 protected:
  // Hooks for state a derived algorithm keeps between steps (optimistic's
  // previous gradient); the defaults have none.
  virtual void ExportExtra(AlgorithmState& state) const {}
  virtual absl::Status ImportExtra(const AlgorithmState& state) {
    return absl::OkStatus();
  }
  // For those hooks: `v` as the state vector `name` (nothing when `v` is
  // empty); and the vector `name` of `state` into `out`, left empty when
  // absent (DataLoss when `required`), DataLoss when it does not have the
  // session's dtype and dimension.
  void ExportVector(const Vec<T>& v, const std::string& name,
                    AlgorithmState& state) const;
  absl::Status ImportVector(const AlgorithmState& state,
                            const std::string& name, Vec<T>& out,
                            bool required = false) const;

  // Hooks: the algorithm's reaction to a closed phase. mean_gradient() holds
  // the mean of the samples when OnGradient runs.
  //
  // Sets `mean` to MeanOf(samples). An algorithm that reads the samples
  // anyway (the estimators' probes) overrides it to do both in one pass.
  virtual void AggregateGradient(const SampleSet& samples, Vec<T>& mean);
  // `samples` as vectors; empty when they were packed (only for an
  // algorithm that TakesPackedSamples, which reads them in
  // AggregateGradient alone).
  virtual absl::Status OnGradient(
      absl::Span<const FlatVector* const> samples) = 0;
  virtual absl::Status OnProducts(const SampleSet& vjp, const SampleSet& jvp) {
    return absl::InternalError("this algorithm has no products phase");
  }

  // x_p -= opt_p(g_p) for every player in `players` (all when empty), after
  // global-norm clipping of g over those players. Writes `target` (x when
  // null), advancing the optimizers' moments when `advance_state`.
  // Finite samples can still sum past float32's range: when g is not
  // finite nothing is written, the step starts over at its first phase
  // (fresh samples) and OutOfRange says why. `max_abs_g`, when not
  // negative, is max |g_i| over all of g as MaxAbs (kernels.h) gives it,
  // measured by the caller in the pass that formed g: the checks then read
  // g no more.
  absl::Status ApplyDirection(Eigen::Ref<Vec<T>> g,
                              const std::vector<int>& players,
                              FlatVector* target = nullptr,
                              bool advance_state = true,
                              double max_abs_g = -1.0);
  // Optimistic Adam over all players: u_p = the base optimizer's
  // normalized update of g_p (BaseOptimizer::NormalizedUpdate, moments
  // advanced), x_p -= lr_p (2 u_p - previous_p), clamped by clip_value;
  // then previous = u (zero-filled when empty: u_0 = 0). Checks and
  // refuses as ApplyDirection.
  absl::Status ApplyOptimisticUpdate(Vec<T>& g, Vec<T>& previous);
  // Moves to the next phase of the plan, or completes the step (lookahead,
  // step count) and starts the next one. Publishes the evaluation point.
  void NextPhase();
  // Completes the step from any phase: for plans whose steps take a
  // varying number of rounds (the entries after the current one unused).
  void CompleteStep();
  // Continues at phase `index` of the current step, at the current point
  // (for plans that skip phases: L-SVRHG's rounds at its snapshot).
  void JumpToPhase(int index) { phase_index_ = index; }
  // The finiteness checks of ApplyDirection and global-norm clipping of g
  // over `all`, against the parameters `base`; restarts the step and
  // returns OutOfRange when refused. `max_abs_g` as for ApplyDirection.
  absl::Status CheckDirection(Eigen::Ref<Vec<T>> g, const std::vector<int>& all,
                              const FlatVector& base, double max_abs_g = -1.0);
  // Evaluate the next phases at `point` instead of x (extragradient).
  void SetPoint(std::shared_ptr<FlatVector> point);
  // x, exclusively owned, for writing.
  FlatVector& MutableX();
  void RecordGradientNorms(const std::vector<int>& players);

  const SessionConfig& config() const { return config_; }
  std::vector<PhaseSpec>& plan() { return plan_; }
  // The mean gradient of the last gradient phase: empty while it is held
  // in a probe instead (ShareMeanWithProbe).
  Vec<T>& mean_gradient() { return xi_; }
  // ConOpt's pooled probe S/K is bitwise the mean gradient (ProbeBlock):
  // `probe` then holds both, and mean_gradient() is let go, which saves a
  // parameter-sized buffer through the products phase. Until the next
  // gradient phase (or ImportState) the mean is read from `probe`:
  // RecordGradientNorms, ExportState's "xi" (shared, not copied),
  // TakeSharedMean().
  void ShareMeanWithProbe(std::shared_ptr<FlatVector> probe) {
    shared_mean_ = std::move(probe);
    xi_ = Vec<T>();
  }
  // The probe that holds the mean gradient, or null, let go of: the
  // caller then holds the reference the algorithm had.
  std::shared_ptr<FlatVector> TakeSharedMean() {
    return std::move(shared_mean_);
  }
  StepStats& mutable_stats() { return stats_; }
  std::vector<std::shared_ptr<FlatVector>>& mutable_probes() { return probes_; }
  std::vector<std::shared_ptr<const LazyProbe>>& mutable_lazy_probes() {
    return lazy_probes_;
  }
  // FormProbesInPlace's output.
  std::vector<std::shared_ptr<const PackedVector>>& mutable_packed_probes() {
    return packed_probes_;
  }
  std::vector<int> AllPlayers() const;
  // Player `player`'s segment of v (a Vec<T> or an Eigen::Ref to one).
  template <typename V>
  auto Block(V& v, int player) {
    const PlayerLayout& p = layout_.players()[player];
    return v.segment(p.offset, p.size);
  }

 private:
  const SessionConfig config_;
  const GameLayout layout_;
  std::vector<PhaseSpec> plan_;
  int phase_index_ = 0;
  int64_t step_ = 0;
  int64_t version_ = 1;         // 0 means "holds none" on the wire
  bool x_dirty_ = false;        // x written since the point was last published
  bool extrapolating_ = false;  // point_ is not x_ (extragradient)
  std::shared_ptr<FlatVector> x_;
  std::shared_ptr<FlatVector> point_;         // == x_ unless extrapolating
  std::vector<BaseOptimizer<T>> optimizers_;  // one per player
  // max |x| per player block as the last ApplyDirection's Step measured it;
  // negative when unknown (x written since by anything else: MutableX).
  std::vector<double> x_max_abs_;
  Vec<T> slow_;    // lookahead's slow weights
  Vec<T> xi_;      // mean gradient of the last gradient phase
  Vec<T> update_;  // scratch of ApplyOptimisticUpdate
  // When set, holds the mean gradient instead of xi_ (ShareMeanWithProbe).
  std::shared_ptr<FlatVector> shared_mean_;
  std::vector<std::shared_ptr<FlatVector>> probes_;
  // When not empty, the probes in the samples' bytes (probes_'s entries
  // are then null), and those let go of by HandOutPackedProbe (null here).
  // Only an algorithm whose products phase does not read the probes and
  // follows phase 0 with nothing changed forms them (ExportState).
  std::vector<std::shared_ptr<const PackedVector>> packed_probes_;
  std::vector<std::weak_ptr<const PackedVector>> sent_packed_probes_;
  // When not empty, the probes (probes_'s entries are then null).
  std::vector<std::shared_ptr<const LazyProbe>> lazy_probes_;
  StepStats stats_;
};

extern template class TypedAlgorithm<float>;
extern template class TypedAlgorithm<double>;

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_TYPED_ALGORITHM_H_
