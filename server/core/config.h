// SessionConfig: everything that defines one experiment, validated once at
// creation. Plain structs with documented defaults; the service fills them
// from the proto, tests fill them directly.
#ifndef GAMEOPT_SERVER_CORE_CONFIG_H_
#define GAMEOPT_SERVER_CORE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/dtype.h"
#include "server/core/wire_codec.h"

namespace gameopt {

// ---- Base optimizers (per player; all minimize) ----------------------------

enum class OptimizerKind { kSgd, kMomentum, kNesterov, kRmsProp, kAdam };

// RMSProp presets. TensorFlow 1 and PyTorch differ:
//   kPyTorch (default): s = a*s + (1-a)*g^2, x -= lr*g/(sqrt(s)+eps),
//                       a = 0.99, eps = 1e-8, s starts at 0.
//   kTensorFlow1:       s = d*s + (1-d)*g^2, x -= lr*g/sqrt(s+eps),
//                       d = 0.9, eps = 1e-10, s starts at 1 (as in
//                       tf.compat.v1.train.RMSPropOptimizer, which the
//                       ConOpt paper's code used).
enum class RmsPropPreset { kPyTorch, kTensorFlow1 };

// The learning rate as a function of the completed steps t
// (server/core/lr_schedule.h), torch.optim.lr_scheduler's closed forms with
// lr0 = OptimizerConfig::learning_rate:
//   kConstant:    lr0
//   kStep:        lr0 * gamma^floor(t / step_size)             (StepLR)
//   kMultiStep:   lr0 * gamma^(number of milestones <= t)   (MultiStepLR)
//   kExponential: lr0 * gamma^t                          (ExponentialLR)
//   kCosine:      eta_min + (lr0 - eta_min) (1 + cos(pi t / t_max)) / 2
//   kLinear:      lr0 * (start_factor + (end_factor - start_factor)
//                        * min(t, total_steps) / total_steps)  (LinearLR)
enum class LrScheduleKind {
  kConstant,
  kStep,
  kMultiStep,
  kExponential,
  kCosine,
  kLinear,
};

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double gamma = 0.1;               // kStep, kMultiStep, kExponential; > 0
  int64_t step_size = 1;            // kStep; >= 1
  std::vector<int64_t> milestones;  // kMultiStep; increasing, >= 1
  int64_t t_max = 1;                // kCosine; >= 1
  double eta_min = 0.0;             // kCosine; >= 0
  double start_factor = 1.0 / 3.0;  // kLinear; in (0, 1]
  double end_factor = 1.0;          // kLinear; in [0, 1]
  int64_t total_steps = 5;          // kLinear; >= 1
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double learning_rate = 0.01;  // > 0
  // kMomentum / kNesterov (PyTorch convention): v = mu*v + g;
  // heavy ball x -= lr*v, Nesterov x -= lr*(g + mu*v). kMomentum:
  // -1 < mu < 1; a negative mu is negative momentum (Gidel et al. 2019):
  // with a constant lr, x_{t+1} = x_t - lr g_t + mu (x_t - x_{t-1}), and
  // under kAltGd its alternating form. kNesterov: 0 <= mu < 1.
  double momentum = 0.9;
  // kRmsProp: applying a preset sets decay, epsilon, eps_inside_sqrt and
  // initial_accumulator; each may then be overridden.
  RmsPropPreset rmsprop_preset = RmsPropPreset::kPyTorch;
  double rmsprop_decay = 0.99;       // in [0, 1)
  double epsilon = 1e-8;             // RMSProp and Adam, > 0
  bool eps_inside_sqrt = false;      // RMSProp only
  double initial_accumulator = 0.0;  // RMSProp only, >= 0
  // kAdam (PyTorch convention, bias-corrected): betas in [0, 1).
  double beta1 = 0.9;
  double beta2 = 0.999;
  // After every update, clamp this player's parameters to [-c, c]
  // (WGAN weight clipping). 0 = off.
  double clip_value = 0.0;
  // The learning rate of step t; kConstant = learning_rate throughout.
  LrSchedule schedule;
};

// Returns `config` with the RMSProp preset's constants filled in.
OptimizerConfig WithRmsPropPreset(OptimizerConfig config, RmsPropPreset preset);

// ---- Algorithms ---------------------------------------------------------

enum class AlgorithmKind {
  kSimGd,
  kAltGd,
  kConOpt,
  kSga,
  kExtragradient,
  kOptimistic,
  kOptimisticAdam,
  kExtrapolationFromThePast,
  kLead,
  kCgd,     // competitive gradient descent (cgd.h)
  kAcgd,    // adaptive CGD: per-coordinate RMS-scaled step sizes (cgd.h)
  kShgd,    // stochastic Hamiltonian gradient descent: g = est. J^T xi
  kLSvrhg,  // loopless variance-reduced SHGD (algorithms_hamiltonian.cc)
  kLola,    // opponent shaping, n players (algorithms_lola.h)
  kSos,     // stable opponent shaping (algorithms_lola.h)
};

// How the products phase estimates J^T xi from K gradient samples. Probe
// w_k for sample k:
//   kLocal:    w_k = xi_k                (biased by cov(J, xi))
//   kPooled:   w_k = S / K               (bias shrinks as 1/K)
//   kUnbiased: w_k = (S - xi_k) / (K-1)  (unbiased; needs K >= 2)
// with S = sum_k xi_k; the estimate is the mean over samples of J_k^T w_k.
enum class EstimatorKind { kLocal, kPooled, kUnbiased };

struct AltGdStage {
  std::string player;  // player name
  int steps = 1;       // consecutive updates of this player, >= 1
};

// kConOpt's adaptive gamma (server/core/adaptive_gamma.h has the rule).
struct AdaptiveGammaConfig {
  bool enabled = false;
  double margin = 0.3;                  // damping to raise below, in (0, 1]
  double max_cancellation = 0.4;        // kappa to lower at, > 0
  double min_stationarity_ratio = 0.0;  // lower below; 0 = off; >= 0
  double decrease = 0.5;                // factor, in (0, 1)
  double increase = 2.0;                // factor, > 1
  double min_gamma = 1e-3;              // bounds, 0 < min_gamma <= gamma
  double max_gamma = 1e3;               //   <= max_gamma
};

struct AlgorithmConfig {
  AlgorithmKind kind = AlgorithmKind::kSimGd;
  // kShgd (Loizou et al. 2020): descent on H = 1/2 |xi|^2, g = the
  // estimator's J^T xi = grad H (gamma and xi take no part). With
  // kUnbiased (K >= 2) g is unbiased for grad H of the mean field; kLocal
  // is the biased (1/K) sum_k J_k^T xi_k, kPooled its 1/K-bias form.
  //
  // kLSvrhg (Loizou et al. 2020, L-SVRHG), estimator kUnbiased: the
  // server keeps a snapshot w and grad H(w) over the workers' whole shards
  // (full-shard rounds, PhaseSpec::full_shard); each step
  //   g = grad H_ij(x) - grad H_ij(w) + grad H(w)
  // with the unbiased estimates at x and at w on the SAME minibatches
  // (PhaseSpec::step_seed). After the update, with probability
  // svrhg_probability (a coin drawn from the session seed and the step,
  // reproducible) w moves to the new x: the next step is then the
  // full-shard rounds at x and g = grad H(x). In (0, 1].
  double svrhg_probability = 0.1;
  // kConOpt with kUnbiased: the same variance reduction for the
  // correction term (SVRE-style): the snapshot plan of kLSvrhg, and
  //   g = xi(x; B) + gamma (grad H_ij(x) - grad H_ij(w) + grad H(w)),
  // xi(x; B) the mean gradient of the step's minibatches (the full-shard
  // step: xi and grad H over the whole shards). Fixed gamma.
  bool svrhg_correction = false;
  //
  // kConOpt: g = xi + gamma * J^T xi. gamma >= 0. With adaptive_gamma, the
  // initial value.
  double gamma = 1.0;
  AdaptiveGammaConfig adaptive_gamma;
  // kSga: g = xi + lambda * A^T xi, A^T xi = (J^T xi - J xi) / 2; with
  // alignment lambda = lambda0 * sign(<xi,J^T xi><A^T xi,J^T xi>/d + 0.1).
  double lambda0 = 1.0;  // >= 0
  bool sga_alignment = true;
  // kAltGd: the order in which players update within one step, each
  // `steps` times, each update on a fresh gradient at the current point.
  // Empty = every player once, in declaration order.
  std::vector<AltGdStage> altgd_order;
  // kExtragradient: whether the base optimizer's moments advance at the
  // extrapolation half-step too (as ExtraAdam does) or only at the update.
  bool extragradient_moments_at_extrapolation = true;
  // Lookahead-minmax around any algorithm: every k steps,
  // slow += alpha * (x - slow); x = slow. k = 0 turns it off.
  int lookahead_k = 0;
  double lookahead_alpha = 0.5;  // in (0, 1]
  EstimatorKind estimator = EstimatorKind::kPooled;
  // Rescale the joint update direction g to this global L2 norm when it is
  // longer. 0 = off.
  double clip_global_norm = 0.0;
  // kLocal estimator with kConOpt or kSga only: the gradient round also
  // collects every sample's products on its own gradient (the LOCAL probe),
  // so a step is one round; the algorithm completes its gradient and
  // products phases together when that round closes.
  bool fuse_local_products = false;
  // kOptimisticAdam (Daskalakis et al. 2018, Algorithm 1), every player's
  // base optimizer kAdam (its lr, betas and epsilon): with Adam's
  // bias-corrected moments of xi_t and u_t = m_hat_t / (sqrt(v_hat_t) +
  // eps), x_{t+1} = x_t - 2 lr u_t + lr u_{t-1}, u_0 = 0 (m_0 = 0), both
  // terms with step t's scheduled lr.
  //
  // kExtrapolationFromThePast (Gidel et al. 2019): one gradient per step,
  // taken at the extrapolated point x'_t = x_t - opt(xi(x'_{t-1}));
  // x_{t+1} = x_t - opt(xi(x'_t)). The extrapolation repeats the step just
  // taken: x'_{t+1} = x_{t+1} + (x_{t+1} - x_t) (clamped by clip_value),
  // which with SGD is x_{t+1} - lr xi(x'_t); x'_0 = x_0.
  //
  // kLead (Hemmat et al. 2020), two players x and y, base optimizer SGD or
  // kMomentum (mu = the paper's beta; SGD is beta = 0):
  //   x_{t+1} = x_t + beta dx - lr grad_x l_x - lead_alpha D_xy l_x dy
  //   y_{t+1} = y_t + beta dy - lr grad_y l_y - lead_alpha D_yx l_y dx
  // with dx = x_t - x_{t-1}, dy = y_t - y_{t-1} (0 at the first step); the
  // mixed products are the off-diagonal blocks of J (0, dy) and J (dx, 0).
  // The direction handed to the base optimizer is
  // g_i = xi_i + (lead_alpha / lr_i) (J d_other)_i.
  double lead_alpha = 0.1;  // >= 0
  // kCgd and kAcgd (server/core/cgd.h has the step): the Krylov solve of
  // each step stops at relative residual |b - A z| / |b| <= cgd_tolerance,
  // in (0, 1), or after cgd_max_iterations products of A, in [1, 1000].
  // cgd_zero_sum declares l_2 = -l_1 (A symmetric positive definite):
  // conjugate gradient; otherwise GMRES.
  double cgd_tolerance = 1e-6;
  int cgd_max_iterations = 50;
  bool cgd_zero_sum = false;
  // kAcgd: the RMS of the gradients, v = beta v + (1 - beta) xi^2, in
  // [0, 1), and the epsilon added to sqrt(v), > 0.
  double acgd_beta = 0.99;
  double acgd_epsilon = 1e-5;
  // kConOpt or kSga with the pooled or unbiased estimator: the estimator's
  // bias meter (bias_meter.h). The step's gradient round also collects
  // every sample's J_k^T xi_k on its own gradient (Task::fused_vjp), and
  // each step with K >= 2 answered samples reports |P - U| / |P|
  // (StepDiagnostics). The step itself is unchanged (bit for bit).
  bool bias_meter = false;
  // kLola and kSos (Letcher et al. 2019, "Stable Opponent Shaping in
  // Differentiable Games", the n-player forms; algorithms_lola.h has the
  // plan). With H = J = D + O (diagonal and off-diagonal blocks) and
  // chi_i = sum_{j != i} (D_i D_j l_j) (grad_j l_i):
  //   xi_0   = (I - lola_alpha O) xi                    (LookAhead)
  //   lola:  g = xi_0 - lola_alpha chi
  //   sos:   g = xi_0 - p lola_alpha chi, p = min(p1, p2),
  //     p1 = 1 if <-alpha chi, xi_0> >= 0,
  //          else min(1, -sos_a |xi_0|^2 / <-alpha chi, xi_0>),
  //     p2 = |xi|^2 if |xi| < sos_b, else 1.
  // g goes to every player's base optimizer. lola_alpha >= 0 (the
  // opponents' look-ahead step), sos_a and sos_b in (0, 1).
  double lola_alpha = 1.0;
  double sos_a = 0.5;
  double sos_b = 0.1;
};

// kLSvrhg, or kConOpt with svrhg_correction: the snapshot plan of
// algorithms_hamiltonian.h.
inline bool UsesSvrhgSnapshot(const AlgorithmConfig& a) {
  return a.kind == AlgorithmKind::kLSvrhg ||
         (a.kind == AlgorithmKind::kConOpt && a.svrhg_correction);
}

// ---- The session -----------------------------------------------------------

struct TensorConfig {
  std::string name;            // [A-Za-z0-9_.:/-]+, unique within the player
  std::vector<int64_t> shape;  // each dim >= 1; {} is a scalar
  // Raw little-endian values of `initial_dtype`, row-major; empty = zeros.
  std::string initial_values;
  DType initial_dtype = DType::kFloat32;
};

struct PlayerConfig {
  std::string name;  // as tensor names; unique within the session
  std::vector<TensorConfig> tensors;
  OptimizerConfig optimizer;
};

// What to do with a submission that fails validation (NaN, wrong shape).
enum class InvalidSamplePolicy {
  kReject,  // the call fails with InvalidArgument, the round is untouched
  kDrop,    // the worker counts as having answered, its sample is dropped
};

// ---- Spectrum diagnostics (server/core/spectrum_rounds.h) -----------------

// Which Jacobian a spectrum estimate is of.
enum class SpectrumOperatorKind {
  kGameJacobian,    // J = d xi / d x
  kAlgorithmField,  // the Jacobian of the field the algorithm follows (at a
                    // stationary point): ConOpt J + gamma J^T J, SGA
                    // J + lambda0 A^T J, the others J
};

struct SpectrumRequest {
  SpectrumOperatorKind op = SpectrumOperatorKind::kGameJacobian;
  int k = 3;                    // per group, in [1, 100]
  int max_applications = 2000;  // operator products, in [1, 100000]
  double tol = 1e-8;            // relative residual, in (0, 1)
  // Also the k eigenvalues of smallest real part (SpectrumOptions).
  bool smallest_real = false;
};

// Estimate the spectrum every `every_steps` completed steps (at steps 0,
// N, 2N, ... and at max_steps) between steps, once per request (e.g. J and
// the algorithm field; they share the gradient round). 0 = only on request.
struct SpectrumSchedule {
  int64_t every_steps = 0;                // >= 0
  std::vector<SpectrumRequest> requests;  // empty = one default request
};

// The default worker lease (SessionConfig::worker_lease).
inline constexpr absl::Duration kDefaultWorkerLease = absl::Seconds(10);

// Compressed tensors on the wire (wire_codec.h); the state stays `dtype`.
struct WireConfig {
  // Parameters and probes sent to workers; kNone: in the session's dtype.
  Compression to_workers = Compression::kNone;
  // The format workers may send gradients and products in besides float32
  // and float64; any other compressed format is refused.
  Compression from_workers = Compression::kNone;
  // Probes sent to workers are rounded stochastically (unbiased) instead of
  // to nearest-even; parameters always round to nearest-even, so that every
  // worker computes at the same point. Workers read it to round what they
  // send the same way.
  bool stochastic_rounding = false;
};

struct SessionConfig {
  std::string name;  // free text, for people
  DType dtype = DType::kFloat32;
  std::vector<PlayerConfig> players;  // >= 2
  AlgorithmConfig algorithm;
  // Workers that make a round, and how many of them must have answered for
  // the round to proceed once the phase deadline has passed.
  int workers_per_round = 1;  // K >= 1
  int quorum = 0;             // 1..K; 0 = K
  // Time a phase stays open for stragglers. absl::InfiniteDuration() = wait
  // forever.
  absl::Duration phase_deadline = absl::Seconds(60);
  // Liveness (liveness.h): a worker with no call in flight that made no
  // call for this long is dropped. absl::InfiniteDuration() = no lease.
  absl::Duration worker_lease = kDefaultWorkerLease;
  // Gradient samples (microbatches) each worker submits per gradient phase.
  int samples_per_worker = 1;
  // The session is DONE after this many steps. 0 = no limit.
  int64_t max_steps = 0;
  // Mixed into the seed every task carries, for reproducible minibatches.
  uint64_t seed = 0;
  InvalidSamplePolicy invalid_sample_policy = InvalidSamplePolicy::kReject;
  SpectrumSchedule spectrum;
  WireConfig wire;
};

// Checks every field; InvalidArgument names the first bad one.
absl::Status ValidateConfig(const SessionConfig& config);

// InvalidArgument naming `field`.k etc. when out of range.
absl::Status ValidateSpectrumRequest(const SpectrumRequest& request,
                                     absl::string_view field);

// Names used on command lines and in the API ("simgd", "rmsprop", ...).
absl::StatusOr<AlgorithmKind> ParseAlgorithm(absl::string_view name);
absl::StatusOr<OptimizerKind> ParseOptimizer(absl::string_view name);
absl::StatusOr<EstimatorKind> ParseEstimator(absl::string_view name);
absl::StatusOr<RmsPropPreset> ParseRmsPropPreset(absl::string_view name);
absl::StatusOr<LrScheduleKind> ParseLrSchedule(absl::string_view name);
absl::StatusOr<SpectrumOperatorKind> ParseSpectrumOperator(
    absl::string_view name);  // "jacobian" or "field"
absl::string_view AlgorithmName(AlgorithmKind kind);
absl::string_view OptimizerName(OptimizerKind kind);
absl::string_view EstimatorName(EstimatorKind kind);
absl::string_view RmsPropPresetName(RmsPropPreset preset);
absl::string_view LrScheduleName(LrScheduleKind kind);
absl::string_view SpectrumOperatorName(SpectrumOperatorKind kind);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_CONFIG_H_
