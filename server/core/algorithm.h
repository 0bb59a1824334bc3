// Algorithm: a game optimizer as a plan of phases (the algorithms and their
// formulas: AlgorithmConfig in config.h).
//
// Each step of an algorithm is a fixed sequence of phases. A phase asks the
// workers for either gradients (xi, or some players' blocks of it) or
// Jacobian products (J^T w_k and/or J w_k for server-chosen probes w_k) at
// one point, and the algorithm consumes the round's aggregated answers to
// move to the next phase, updating the parameters when a step completes:
//
//   simgd          gradient                -> x -= opt(xi)
//   altgd          gradient(p) per stage   -> x_p -= opt_p(xi_p), in order
//   conopt         gradient, products(vjp) -> g = xi + gamma J^T xi
//   sga            gradient, products(vjp, jvp)
//                                          -> g = xi + lambda A^T xi
//   extragradient  gradient at x           -> x' = x - opt(xi(x))
//                  gradient at x'          -> x -= opt(xi(x'))
//   optimistic     gradient                -> x -= opt(2 xi_t - xi_{t-1})
//   cgd, acgd      gradient, products(jvp) until the Krylov solve of the
//                  competitive step converges (cgd.h) -> x += dx
//   lola, sos      cross gradient of each loss, then per player
//                  products(vjp), products(jvp) (algorithms_lola.h)
//                                          -> g = xi_0 - p alpha chi
//
// with lookahead-minmax optionally wrapped around any of them. All players
// minimize. The Algorithm knows nothing about workers or rounds: the Session
// feeds it samples in a deterministic order. Not thread-safe.
#ifndef GAMEOPT_SERVER_CORE_ALGORITHM_H_
#define GAMEOPT_SERVER_CORE_ALGORITHM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/core/adaptive_gamma.h"
#include "server/core/config.h"
#include "server/core/diagnostics.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/lazy_probe.h"
#include "server/core/sample_set.h"
#include "server/core/snapshot.h"

namespace gameopt {

struct PhaseSpec {
  enum class Kind { kGradient, kProducts };
  Kind kind = Kind::kGradient;
  int index = 0;      // position within the step's plan
  std::string label;  // for people: "gradient", "extrapolation", ...
  // kGradient: the players whose gradient blocks are wanted (sorted).
  std::vector<int> players;
  // kGradient: -1 for xi (each player's block of its own loss); a player
  // index i for a cross-gradient round: the gradient of player i's loss
  // l_i with respect to the parameters of `players` (LOLA, SOS).
  int loss = -1;
  // kProducts: which products of each gradient sample's minibatch.
  bool vjp = false;  // J_k^T w_k
  bool jvp = false;  // J_k w_k
  // The task seed is a function of the step and the worker instead of the
  // round: the phases of a step that set it draw the same minibatches
  // (L-SVRHG's estimates at x and at the snapshot).
  bool step_seed = false;
  // Each sample is over the worker's whole shard instead of a minibatch
  // (L-SVRHG's full grad H at the snapshot); its products phase too.
  bool full_shard = false;
};

// A gradient round for `players` (sorted indices) and a products round.
inline PhaseSpec GradientPhase(int index, std::string label,
                               std::vector<int> players) {
  PhaseSpec spec;
  spec.kind = PhaseSpec::Kind::kGradient;
  spec.index = index;
  spec.label = std::move(label);
  spec.players = std::move(players);
  return spec;
}
inline PhaseSpec ProductsPhase(int index, std::string label, bool vjp,
                               bool jvp) {
  PhaseSpec spec;
  spec.kind = PhaseSpec::Kind::kProducts;
  spec.index = index;
  spec.label = std::move(label);
  spec.vjp = vjp;
  spec.jvp = jvp;
  return spec;
}

// Figures of the last completed phase, for logs and metrics.
struct StepStats {
  std::vector<double> xi_norm;   // per player, |mean gradient block|
  double correction_norm = 0.0;  // |gamma J^T xi| or |lambda A^T xi|
  double sga_lambda = 0.0;       // the lambda SGA used (alignment sign)
  double sos_p = 0.0;            // the p SOS used (1 for LOLA)
  int gradient_samples = 0;      // K of the last gradient phase
  int product_samples = 0;       // answered products of the last phase
  StepDiagnostics diagnostics;   // ConOpt and SGA (diagnostics.h)
  // ConOpt: the gamma of the next step (adaptive_gamma.h when adaptive,
  // else the configured one) and the adaptive rule's recent changes.
  double gamma = 0.0;
  std::vector<GammaChange> gamma_trajectory;
  // CGD and ACGD, of the last completed step: its products rounds (the
  // right-hand side, the warm start's residual, two per Krylov iteration,
  // the other player's response), the Krylov iterations and the relative
  // residual |b - A z| / |b| the solve stopped at.
  int cgd_rounds = 0;
  int cgd_iterations = 0;
  double cgd_residual = 0.0;
};

class Algorithm {
 public:
  // `config` must have passed ValidateConfig; initial values come from it.
  static absl::StatusOr<std::unique_ptr<Algorithm>> Create(
      const SessionConfig& config);

  virtual ~Algorithm() = default;

  virtual const GameLayout& layout() const = 0;
  virtual const PhaseSpec& phase() const = 0;
  // Completed steps.
  virtual int64_t step() const = 0;
  // Number of phases in one step.
  virtual int phases_per_step() const = 0;
  // The parameters x (for extragradient: not the extrapolated point).
  virtual std::shared_ptr<const FlatVector> parameters() const = 0;
  // Where the current phase is evaluated, and a version number that changes
  // whenever that point does. Holding the pointer keeps the values alive and
  // unchanged; the algorithm copies on its next write.
  virtual std::shared_ptr<const FlatVector> point() const = 0;
  virtual int64_t point_version() const = 0;

  // Whether the round that closes the current phase may hand over samples
  // that are packed (sample_set.h: kept in the format they arrived in, decoded
  // block by block by the kernels that read them). Only algorithms whose
  // every read of the phase's samples goes through those kernels say yes;
  // the others always get dense vectors (SampleSet::dense()).
  virtual bool TakesPackedSamples() const { return false; }

  // Closes a gradient phase. `samples` are full-length vectors (zero outside
  // phase().players), in the order that defines the aggregate, at least one.
  virtual absl::Status CompleteGradient(const SampleSet& samples) = 0;

  // In a products phase: the probes, one per sample of the gradient phase
  // that opened it, in the same order.
  virtual const std::vector<std::shared_ptr<FlatVector>>& probes() const = 0;
  // When not empty, one per probe: the probes are formed where their
  // tasks are encoded (LazyProbe) and the entries of probes() are null.
  virtual const std::vector<std::shared_ptr<const LazyProbe>>& lazy_probes()
      const {
    static const auto* none = new std::vector<std::shared_ptr<const LazyProbe>>;
    return *none;
  }

  // When not empty, one per probe: probe k is held in the bytes of
  // gradient sample k, written over (FormProbesInPlace), and the entries
  // of probes() are null.
  virtual const std::vector<std::shared_ptr<const PackedVector>>&
  packed_probes() const {
    static const auto* none =
        new std::vector<std::shared_ptr<const PackedVector>>;
    return *none;
  }
  // Packed probe k for its worker's task. The algorithm keeps it only
  // weakly from then on (its products phase never reads the probes): the
  // task's holders (a transport sending it) decide how long it lives, so
  // the products phase does not hold K probes next to the K products.
  // Null once it is gone (the worker lost its task and asks again:
  // Session drops it from the products round).
  virtual std::shared_ptr<const PackedVector> HandOutPackedProbe(size_t k) {
    return packed_probes()[k];
  }
  // Back to the first phase of the current step, evaluated at x (a
  // products phase whose probes are all gone).
  virtual void RestartStep() = 0;

  // Closes a products phase with the answered samples (a subset of the
  // probes when workers dropped out, at least one). vjp is empty unless
  // phase().vjp, jvp unless phase().jvp; when both, they pair up.
  virtual absl::Status CompleteProducts(const SampleSet& vjp,
                                        const SampleSet& jvp) = 0;

  // With AlgorithmConfig::bias_meter, right before CompleteProducts of the
  // step's products phase: each answered sample's J_k^T xi_k from the
  // fused gradient round, paired with the vjp answers (empty when some are
  // missing, e.g. after a restore inside the step: no reading then). The
  // vectors stay valid through CompleteProducts. The others ignore it.
  virtual void SetOwnProducts(absl::Span<const FlatVector* const> own_vjp) {}

  virtual const StepStats& stats() const = 0;
  // A finished estimate of the algorithm field (spectrum_rounds.h) taken
  // at `step` completed steps, with the coefficients of stats() then.
  // ConOpt's adaptive gamma raises gamma on it; the others ignore it.
  virtual void ObserveFieldSpectrum(int64_t step,
                                    const SpectrumEstimate& estimate) {}
  // The learning rate of `player`'s base optimizer for the current step
  // (its OptimizerConfig::schedule at step()).
  virtual double LearningRate(int player) const = 0;

  // The state to resume from at the start of the current phase: x, the
  // point of an extrapolation, the optimizers' slots and step counts,
  // lookahead's slow weights, optimistic's stored gradient, and in a
  // products phase the mean gradient and the probes. Copies what a later
  // phase writes in place; shares x (copied on the algorithm's next write).
  // A products phase some of whose probes are gone (HandOutPackedProbe) exports
  // the start of its step instead (phase 0, which it reached unchanged):
  // restored, the step's gradient round runs again.
  virtual AlgorithmState ExportState() const = 0;
  // Replaces the state with one exported by an algorithm of the same
  // config. DataLoss names the entry that does not fit (a missing vector, a
  // wrong size or dtype, a phase outside the plan); the state is then
  // unspecified, so callers discard the algorithm.
  virtual absl::Status ImportState(const AlgorithmState& state) = 0;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ALGORITHM_H_
