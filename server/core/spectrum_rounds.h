// SpectrumRounds: spectrum estimates of the game Jacobian at the current
// parameters, computed by the workers between steps.
//
// An Algorithm decorator. Between estimates it forwards everything to the
// algorithm it wraps. When an estimate is due (requested, or every N steps
// by SessionConfig::spectrum) and the wrapped algorithm is at a step
// boundary, it presents diagnostic phases instead, which the Session runs
// as ordinary rounds; the parameters do not move:
//
//   "spectrum: gradient"   one GRADIENT round at x: fixes the K minibatches
//                          and xi, the mean of their gradients
//   "spectrum: rotation"   PRODUCTS, vjp and jvp, the probe xi for every
//                          sample: J^T xi and J xi for the estimate's
//                          rotation index |A^T xi| / |S xi| and |J^T xi|
//                          against |xi| (SpectrumResult::diagnostics)
//   "spectrum: J v"        PRODUCTS, jvp, the probe v (the Arnoldi vector)
//                          for every sample: the mean answer is J v, with
//                          J = (1/K) sum_k J_k the round's mean Jacobian
//   "spectrum: field"      only for the algorithm field of ConOpt / SGA:
//                          PRODUCTS with the probe u = J v, vjp (J^T u)
//                          and/or jvp (J u)
//
// so a worker answering GRADIENT and PRODUCTS tasks needs nothing new.
// They run at a step boundary, before phase 0 of the step (Task.step is
// the completed steps, as for the step's own phases), and are numbered in
// the order they run: Task.phase = kFirstDiagnosticPhase + n for the n-th
// diagnostic round at this boundary (counting across the estimates that
// run there), so (step, phase) increases in time order over the tasks a
// worker answers. The step's own phases keep 0, 1, ... A task revoked to
// start an estimate (Session::EstimateSpectrum replaces an open phase-0
// round nobody has submitted to) is the one exception: its holder gets
// FAILED_PRECONDITION, rejoins, and is handed the diagnostic round. The
// operator A fed to the ArnoldiDriver (spectrum.h) is
//   game Jacobian:     A v = J v
//   algorithm field:   A v = J v + c1 J^T (J v) + c2 J (J v) with
//                      ConOpt c1 = gamma, c2 = 0 (J + gamma J^T J), SGA
//                      c1 = lambda0/2, c2 = -lambda0/2 (J + lambda0 A^T J,
//                      A = (J - J^T)/2), every other algorithm c1 = c2 = 0.
//                      ConOpt's gamma is the one of the step the estimate
//                      starts at (it adapts with adaptive gamma); each
//                      finished algorithm-field estimate goes to the
//                      wrapped algorithm (Algorithm::ObserveFieldSpectrum).
// These are the Jacobians of the followed fields at a stationary point
// (xi = 0), where the terms with second derivatives of xi vanish; away from
// one they are the linearization the ConOpt paper plots. Arnoldi runs in
// float64; in float32 sessions the probes and products are float32, so
// estimates are good to about 1e-6 relative.
//
// The rotation round costs one round per gradient round (two products per
// sample). Starting Arnoldi from xi instead of a random vector would give
// J xi from its first product, but xi is zero at the stationary points
// where the spectrum matters most and may lie in an invariant subspace
// (Arnoldi then stops short of the wanted eigenvalues), and J^T xi would
// still need a VJP: one extra round of both products is the cheapest
// correct way, and leaves the Arnoldi products as they were.
//
// Estimates queued at the same step share one gradient round and its
// rotation round. If the number
// of answered samples changes during an estimate (a worker left or missed a
// deadline), the operator changed under Arnoldi: the estimate fails with
// ABORTED. Diagnostic rounds shift round numbers, so later minibatch seeds
// differ from a run without them.
//
// Not thread-safe (the Session's lock guards it).
#ifndef GAMEOPT_SERVER_CORE_SPECTRUM_ROUNDS_H_
#define GAMEOPT_SERVER_CORE_SPECTRUM_ROUNDS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "server/core/algorithm.h"
#include "server/core/config.h"
#include "server/core/spectrum.h"

namespace gameopt {

// Task.phase of the first diagnostic round at a step boundary; the next
// ones count up from it (never reaching 0: -1 once 2^30 - 1 rounds ran at
// one boundary). Negative, so that it sorts before the step's phase 0.
inline constexpr int kFirstDiagnosticPhase = -(1 << 30);

// One finished estimate.
struct SpectrumResult {
  int64_t step = 0;  // completed steps when it was taken
  SpectrumOperatorKind op = SpectrumOperatorKind::kGameJacobian;
  std::string description;  // the operator, e.g. "J + 10 J^T J"
  SpectrumEstimate estimate;
  int rounds = 0;   // diagnostic rounds it took (shared gradient included)
  int samples = 0;  // K: minibatches J was averaged over
  // At the estimate's minibatches (the mean J and xi of its gradient
  // round): |xi|, |J^T xi|, the stationarity ratio and the rotation index
  // |A^T xi| / |S xi| (diagnostics.h; cancellation unused).
  StepDiagnostics diagnostics;
};

using SpectrumCallback = std::function<void(absl::StatusOr<SpectrumResult>)>;

class SpectrumRounds final : public Algorithm {
 public:
  SpectrumRounds(std::unique_ptr<Algorithm> inner, const SessionConfig& config);

  // ---- Algorithm: the diagnostic phase during an estimate, else inner's.
  const GameLayout& layout() const override { return inner_->layout(); }
  const PhaseSpec& phase() const override;
  int64_t step() const override { return inner_->step(); }
  int phases_per_step() const override { return inner_->phases_per_step(); }
  std::shared_ptr<const FlatVector> parameters() const override {
    return inner_->parameters();
  }
  std::shared_ptr<const FlatVector> point() const override {
    return inner_->point();
  }
  int64_t point_version() const override { return inner_->point_version(); }
  bool TakesPackedSamples() const override {
    return !active_ && inner_->TakesPackedSamples();
  }
  absl::Status CompleteGradient(const SampleSet& samples) override;
  const std::vector<std::shared_ptr<FlatVector>>& probes() const override;
  const std::vector<std::shared_ptr<const PackedVector>>& packed_probes()
      const override {
    return active_ ? Algorithm::packed_probes() : inner_->packed_probes();
  }
  std::shared_ptr<const PackedVector> HandOutPackedProbe(size_t k) override {
    return inner_->HandOutPackedProbe(k);
  }
  void RestartStep() override { inner_->RestartStep(); }
  const std::vector<std::shared_ptr<const LazyProbe>>& lazy_probes()
      const override {
    return active_ ? Algorithm::lazy_probes() : inner_->lazy_probes();
  }
  absl::Status CompleteProducts(const SampleSet& vjp,
                                const SampleSet& jvp) override;
  void SetOwnProducts(absl::Span<const FlatVector* const> own_vjp) override {
    if (!active_) inner_->SetOwnProducts(own_vjp);
  }
  const StepStats& stats() const override { return inner_->stats(); }
  double LearningRate(int player) const override {
    return inner_->LearningRate(player);
  }
  // Snapshots hold the wrapped algorithm's state: an estimate in progress
  // is a diagnostic, not state (a restored session runs none). A state
  // inside a step puts the estimate the schedule started at construction
  // back in the queue: it starts at the next step boundary, so the
  // restored round is the wrapped algorithm's.
  AlgorithmState ExportState() const override { return inner_->ExportState(); }
  absl::Status ImportState(const AlgorithmState& state) override;

  // ---- Estimates.
  // Queues an estimate at the parameters of the next step boundary (`done`
  // may be empty: the result only goes to history()). `id` names it for
  // Cancel. `request` must pass ValidateSpectrumRequest.
  void Enqueue(uint64_t id, const SpectrumRequest& request,
               SpectrumCallback done);
  // Starts the next queued estimate if none runs and the wrapped algorithm
  // is at a step boundary. True if phase() changed (the caller opens a new
  // round).
  bool StartIfIdle();
  // True while an estimate runs (the session is not done meanwhile).
  bool active() const { return active_.has_value(); }
  // Withdraws the callback of estimate `id` and the estimate with it: a
  // queued one is dropped, a running one stops (no more diagnostic rounds,
  // nothing in history(); the next queued estimate starts if it can) and
  // `*stopped` (optional) becomes true, so the caller opens a new round.
  // Returns the callback, or an empty function if unknown.
  SpectrumCallback Cancel(uint64_t id, bool* stopped = nullptr);
  // Estimates finished or failed since the last call, with their callbacks
  // (empty for scheduled ones and cancelled calls): the caller runs them
  // outside its lock.
  std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
  TakeFinished();
  // Every waiting callback, for answering them at session close.
  std::vector<SpectrumCallback> TakeAllCallbacks();
  // Finished estimates, oldest first.
  const std::vector<SpectrumResult>& history() const { return history_; }
  // The wrapped algorithm, whose state is the optimizer's (a snapshot needs
  // no estimate in progress: estimates are diagnostics, not state).
  const Algorithm& inner() const { return *inner_; }

 private:
  struct Job {
    uint64_t id = 0;
    SpectrumRequest request;
    SpectrumCallback done;
  };
  enum class Stage { kGradient, kRotation, kJv, kField };

  // After the wrapped algorithm closed a phase: schedules and starts.
  void AfterInnerPhase(int64_t step_before);
  void EnqueueScheduled();
  void SetStage(Stage stage);
  // Probes for every sample: `v` in the session's dtype.
  void SetProbes(const Eigen::VectorXd& v);
  // Feeds A v to the driver; finishes the job or asks for the next v.
  void Apply(const Eigen::VectorXd& product);
  void Finish(absl::StatusOr<SpectrumResult> result);
  // Fails the running estimate (the round itself closed fine: OK).
  absl::Status Abort(absl::Status why);
  // The mean of `answers` in float64, or ABORTED if not one per sample.
  absl::StatusOr<Eigen::VectorXd> Mean(
      absl::Span<const FlatVector* const> answers) const;
  std::string Describe(SpectrumOperatorKind op) const;

  std::unique_ptr<Algorithm> inner_;
  const DType dtype_;
  SpectrumSchedule schedule_;  // requests filled in
  const int64_t max_steps_;
  const uint64_t seed_;
  const AlgorithmKind algorithm_;
  double c1_ = 0.0;  // the algorithm field's J^T J coefficient
  double c2_ = 0.0;  // and its J J coefficient

  std::deque<Job> queue_;
  std::optional<Job> active_;
  std::optional<ArnoldiDriver> driver_;
  Stage stage_ = Stage::kGradient;
  PhaseSpec phase_;
  std::vector<std::shared_ptr<FlatVector>> probes_;
  int samples_ = 0;             // K of the diagnostic gradient round
  int64_t samples_step_ = -1;   // the step they were drawn at; -1: none
  Eigen::VectorXd jv_;          // J v, while the field stage runs
  Eigen::VectorXd xi_;          // the mean gradient of the held samples
  StepDiagnostics rotation_;    // at the held samples, once measured
  int64_t rotation_step_ = -1;  // samples_step_ when rotation_ was
  int rounds_ = 0;
  // Diagnostic rounds presented at the step boundary boundary_step_ (for
  // their phase numbers).
  int64_t boundary_step_ = -1;
  int64_t boundary_rounds_ = 0;
  std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
      finished_;
  std::vector<SpectrumResult> history_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SPECTRUM_ROUNDS_H_
