#include "server/core/config.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/core/cgd.h"
#include "server/core/layout.h"
#include "server/core/lr_schedule.h"
#include "server/core/quote.h"

namespace gameopt {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view rule,
                 double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " = ", value, " is out of range: ", rule));
}

bool Finite(double v) { return std::isfinite(v); }
bool InUnit(double v) { return Finite(v) && v >= 0.0 && v < 1.0; }

absl::Status ValidateOptimizer(const OptimizerConfig& o,
                               const std::string& where) {
  if (!Finite(o.learning_rate) || o.learning_rate <= 0.0) {
    return Bad(where + ".learning_rate", "must be > 0 and finite",
               o.learning_rate);
  }
  if (o.kind == OptimizerKind::kMomentum &&
      !(Finite(o.momentum) && o.momentum > -1.0 && o.momentum < 1.0)) {
    return Bad(where + ".momentum",
               "must be in (-1, 1) (negative: negative momentum)", o.momentum);
  }
  if (o.kind == OptimizerKind::kNesterov && !InUnit(o.momentum)) {
    return Bad(where + ".momentum",
               "must be in [0, 1) for nesterov (negative momentum needs "
               "optimizer momentum)",
               o.momentum);
  }
  if (o.kind == OptimizerKind::kRmsProp) {
    if (!InUnit(o.rmsprop_decay)) {
      return Bad(where + ".rmsprop_decay", "must be in [0, 1)",
                 o.rmsprop_decay);
    }
    if (!Finite(o.initial_accumulator) || o.initial_accumulator < 0.0) {
      return Bad(where + ".initial_accumulator", "must be >= 0",
                 o.initial_accumulator);
    }
  }
  if (o.kind == OptimizerKind::kRmsProp || o.kind == OptimizerKind::kAdam) {
    if (!Finite(o.epsilon) || o.epsilon <= 0.0) {
      return Bad(where + ".epsilon", "must be > 0", o.epsilon);
    }
  }
  if (o.kind == OptimizerKind::kAdam) {
    if (!InUnit(o.beta1)) return Bad(where + ".beta1", "in [0, 1)", o.beta1);
    if (!InUnit(o.beta2)) return Bad(where + ".beta2", "in [0, 1)", o.beta2);
  }
  if (!Finite(o.clip_value) || o.clip_value < 0.0) {
    return Bad(where + ".clip_value", "must be >= 0 (0 = off)", o.clip_value);
  }
  return ValidateLrSchedule(o.schedule, where + ".schedule");
}

absl::Status ValidateInitialValues(const PlayerConfig& player,
                                   const GameLayout& layout, int p) {
  for (size_t t = 0; t < player.tensors.size(); ++t) {
    const TensorConfig& tensor = player.tensors[t];
    if (tensor.initial_values.empty()) continue;
    const int64_t size = layout.players()[p].tensors[t].size;
    const std::string where =
        absl::StrCat("players[", p, "].tensors[", t, "] ('", Quote(player.name),
                     "/", Quote(tensor.name), "').initial_values");
    const size_t elem = DTypeSize(tensor.initial_dtype);
    if (tensor.initial_values.size() != static_cast<size_t>(size) * elem) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " has ", tensor.initial_values.size(), " bytes; shape ",
          ShapeString(tensor.shape), " of ", DTypeName(tensor.initial_dtype),
          " needs ", size * static_cast<int64_t>(elem)));
    }
    for (int64_t i = 0; i < size; ++i) {
      double v;
      if (tensor.initial_dtype == DType::kFloat32) {
        float f;
        std::memcpy(&f, tensor.initial_values.data() + i * 4, 4);
        v = f;
      } else {
        std::memcpy(&v, tensor.initial_values.data() + i * 8, 8);
      }
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " is not finite at index ", i));
      }
    }
  }
  return absl::OkStatus();
}

// adaptive_gamma.h: ConOpt only, factors and bounds in range, and the
// spectrum estimates that raise gamma scheduled.
absl::Status ValidateAdaptiveGamma(const SessionConfig& config) {
  const AlgorithmConfig& a = config.algorithm;
  const AdaptiveGammaConfig& r = a.adaptive_gamma;
  if (!r.enabled) return absl::OkStatus();
  const std::string where = "algorithm.adaptive_gamma";
  if (a.kind != AlgorithmKind::kConOpt) {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     " adapts ConOpt's gamma: it needs algorithm "
                     "conopt (got ",
                     AlgorithmName(a.kind), ")"));
  }
  if (!(r.margin > 0 && r.margin <= 1)) {
    return Bad(where + ".margin", "must be in (0, 1]", r.margin);
  }
  if (!Finite(r.max_cancellation) || r.max_cancellation <= 0) {
    return Bad(where + ".max_cancellation", "must be > 0", r.max_cancellation);
  }
  if (!Finite(r.min_stationarity_ratio) || r.min_stationarity_ratio < 0) {
    return Bad(where + ".min_stationarity_ratio", "must be >= 0 (0 = off)",
               r.min_stationarity_ratio);
  }
  if (!(r.decrease > 0 && r.decrease < 1)) {
    return Bad(where + ".decrease", "must be in (0, 1)", r.decrease);
  }
  if (!Finite(r.increase) || r.increase <= 1) {
    return Bad(where + ".increase", "must be > 1", r.increase);
  }
  if (!Finite(r.min_gamma) || !Finite(r.max_gamma) || r.min_gamma <= 0 ||
      r.min_gamma > a.gamma || a.gamma > r.max_gamma) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " needs 0 < min_gamma <= gamma <= max_gamma (got ",
                     r.min_gamma, " <= ", a.gamma, " <= ", r.max_gamma,
                     "): set the bounds around the initial gamma"));
  }
  bool field = false;
  for (const SpectrumRequest& q : config.spectrum.requests) {
    field |= q.op == SpectrumOperatorKind::kAlgorithmField && q.smallest_real;
  }
  if (config.spectrum.every_steps <= 0 || !field) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        " raises gamma from spectrum estimates of the ConOpt field: set "
        "spectrum.every_steps > 0 and add a spectrum request with operator "
        "ALGORITHM_FIELD and smallest_real (got every_steps ",
        config.spectrum.every_steps, field ? "" : ", no such request", ")"));
  }
  return absl::OkStatus();
}

// An algorithm whose steps have no estimated J^T xi (`what` says what its
// products are instead): INVALID_ARGUMENT unless the estimator is unset.
absl::Status RefuseEstimator(const AlgorithmConfig& a, absl::string_view what) {
  if (a.estimator == EstimatorKind::kPooled) return absl::OkStatus();
  const absl::string_view name = AlgorithmName(a.kind);
  return absl::InvalidArgumentError(absl::StrCat(
      "algorithm.estimator = ", EstimatorName(a.estimator), " with ", name,
      ": the estimators form J^T xi for conopt and sga; ", name, " ", what,
      ", leave the estimator unset (pooled)"));
}

// Optimistic Adam, extrapolation from the past and LEAD: the base
// optimizers they are defined with, LEAD's two players and alpha, and no
// estimator (their steps have no estimated J^T xi).
absl::Status ValidateGanMethods(const SessionConfig& config) {
  const AlgorithmConfig& a = config.algorithm;
  if (a.kind != AlgorithmKind::kOptimisticAdam &&
      a.kind != AlgorithmKind::kExtrapolationFromThePast &&
      a.kind != AlgorithmKind::kLead) {
    return absl::OkStatus();
  }
  const std::string name(AlgorithmName(a.kind));
  if (absl::Status s = RefuseEstimator(a, "has no such product"); !s.ok()) {
    return s;
  }
  if (!Finite(a.lead_alpha) || a.lead_alpha < 0.0) {
    return Bad("algorithm.lead_alpha", "must be >= 0", a.lead_alpha);
  }
  for (size_t p = 0; p < config.players.size(); ++p) {
    const OptimizerKind kind = config.players[p].optimizer.kind;
    if (a.kind == AlgorithmKind::kOptimisticAdam &&
        kind != OptimizerKind::kAdam) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "].optimizer is ", OptimizerName(kind),
          ": optimistic_adam applies the optimistic step to Adam's "
          "normalized update, so every player's optimizer must be adam (its "
          "learning_rate, beta1, beta2 and epsilon are used); for the "
          "optimistic step on another optimizer use algorithm optimistic"));
    }
    if (a.kind == AlgorithmKind::kLead && kind != OptimizerKind::kSgd &&
        kind != OptimizerKind::kMomentum) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "].optimizer is ", OptimizerName(kind),
          ": lead is defined with heavy-ball momentum; use optimizer "
          "momentum (its momentum is LEAD's beta) or sgd (beta = 0)"));
    }
  }
  if (a.kind == AlgorithmKind::kLead && config.players.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lead needs exactly 2 players (its correction is the mixed "
        "derivative times the one opponent's last change), got ",
        config.players.size()));
  }
  return absl::OkStatus();
}

// LOLA and SOS: at least two players, alpha, SOS's a and b, and no
// estimator (their products have probes of their own, not J^T xi).
absl::Status ValidateOpponentShaping(const SessionConfig& config) {
  const AlgorithmConfig& a = config.algorithm;
  if (a.kind != AlgorithmKind::kLola && a.kind != AlgorithmKind::kSos) {
    return absl::OkStatus();
  }
  const std::string name(AlgorithmName(a.kind));
  if (absl::Status s = RefuseEstimator(
          a,
          "probes J with the opponents' cross gradients and averages "
          "the answers");
      !s.ok()) {
    return s;
  }
  if (config.players.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        " shapes the opponents' learning: it needs at least 2 players, "
        "got ",
        config.players.size()));
  }
  if (!Finite(a.lola_alpha) || a.lola_alpha < 0.0) {
    return Bad("algorithm.lola_alpha", "must be >= 0", a.lola_alpha);
  }
  if (a.kind == AlgorithmKind::kSos) {
    if (!(Finite(a.sos_a) && a.sos_a > 0.0 && a.sos_a < 1.0)) {
      return Bad("algorithm.sos_a", "must be in (0, 1)", a.sos_a);
    }
    if (!(Finite(a.sos_b) && a.sos_b > 0.0 && a.sos_b < 1.0)) {
      return Bad("algorithm.sos_b", "must be in (0, 1)", a.sos_b);
    }
  }
  return absl::OkStatus();
}

// L-SVRHG: the unbiased estimator, a probability, and rounds whose
// samples are the same workers' (the estimates at x and at the snapshot
// must be on the same minibatches).
absl::Status ValidateLSvrhg(const SessionConfig& config) {
  const AlgorithmConfig& a = config.algorithm;
  const absl::string_view name = a.kind == AlgorithmKind::kLSvrhg
                                     ? "l_svrhg"
                                     : "conopt with svrhg_correction";
  if (a.estimator != EstimatorKind::kUnbiased) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.estimator = ", EstimatorName(a.estimator), " with ", name,
        ": its variance reduction corrects the unbiased "
        "estimate of grad H; set estimator unbiased (and 2 or more samples "
        "per round)"));
  }
  if (!(a.svrhg_probability > 0.0 && a.svrhg_probability <= 1.0)) {
    return Bad("algorithm.svrhg_probability", "must be in (0, 1]",
               a.svrhg_probability);
  }
  if (config.quorum != 0 && config.quorum != config.workers_per_round) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " with quorum ", config.quorum, " < workers_per_round ",
        config.workers_per_round,
        ": the snapshot round must see the same minibatches as the step's "
        "first round, so every worker must answer both; use quorum 0"));
  }
  if (config.invalid_sample_policy == InvalidSamplePolicy::kDrop) {
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        " with invalid_sample_policy DROP: a dropped sample would leave the "
        "estimates at x and at the snapshot on different minibatches; use "
        "REJECT"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAlgorithm(const SessionConfig& config,
                               const GameLayout& layout) {
  const AlgorithmConfig& a = config.algorithm;
  if (!Finite(a.gamma) || a.gamma < 0.0) {
    return Bad("algorithm.gamma", "must be >= 0", a.gamma);
  }
  if (!Finite(a.lambda0) || a.lambda0 < 0.0) {
    return Bad("algorithm.lambda0", "must be >= 0", a.lambda0);
  }
  if (a.lookahead_k < 0) {
    return Bad("algorithm.lookahead_k", "must be >= 0 (0 = off)",
               a.lookahead_k);
  }
  if (a.lookahead_k > 0 &&
      (!Finite(a.lookahead_alpha) || a.lookahead_alpha <= 0.0 ||
       a.lookahead_alpha > 1.0)) {
    return Bad("algorithm.lookahead_alpha", "must be in (0, 1]",
               a.lookahead_alpha);
  }
  if (!Finite(a.clip_global_norm) || a.clip_global_norm < 0.0) {
    return Bad("algorithm.clip_global_norm", "must be >= 0 (0 = off)",
               a.clip_global_norm);
  }
  // One phase per stage step: a bounded plan keeps Create quick and small.
  constexpr int64_t kMaxAltGdPhases = 10000;
  int64_t altgd_phases = 0;
  for (const AltGdStage& stage : a.altgd_order) {
    altgd_phases += std::clamp<int64_t>(stage.steps, 0, 1000);
  }
  if (altgd_phases > kMaxAltGdPhases) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.altgd_order has ", altgd_phases,
        " stage steps in all; one step of the plan may have at most ",
        kMaxAltGdPhases));
  }
  for (size_t i = 0; i < a.altgd_order.size(); ++i) {
    const AltGdStage& stage = a.altgd_order[i];
    if (layout.FindPlayer(stage.player) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "algorithm.altgd_order[", i, "].player '", Quote(stage.player),
          "' is not a player of the session"));
    }
    if (stage.steps < 1 || stage.steps > 1000) {
      return Bad(absl::StrCat("algorithm.altgd_order[", i, "].steps"),
                 "must be in [1, 1000]", stage.steps);
    }
  }
  if (absl::Status s = ValidateAdaptiveGamma(config); !s.ok()) return s;
  if (absl::Status s = ValidateGanMethods(config); !s.ok()) return s;
  if (absl::Status s = ValidateCompetitive(config); !s.ok()) return s;
  if (absl::Status s = ValidateOpponentShaping(config); !s.ok()) return s;
  const bool uses_products =
      a.kind == AlgorithmKind::kConOpt || a.kind == AlgorithmKind::kSga;
  const bool estimates_jt_xi = uses_products ||
                               a.kind == AlgorithmKind::kShgd ||
                               a.kind == AlgorithmKind::kLSvrhg;
  if (a.svrhg_correction) {
    if (a.kind != AlgorithmKind::kConOpt) {
      return absl::InvalidArgumentError(absl::StrCat(
          "algorithm.svrhg_correction with ", AlgorithmName(a.kind),
          ": it variance-reduces ConOpt's correction gamma J^T xi; use "
          "algorithm conopt (or l_svrhg for the Hamiltonian alone)"));
    }
    if (a.adaptive_gamma.enabled || a.fuse_local_products || a.bias_meter) {
      return absl::InvalidArgumentError(
          "algorithm.svrhg_correction runs L-SVRHG's snapshot plan, with a "
          "fixed gamma: unset adaptive_gamma, fuse_local_products and "
          "bias_meter");
    }
  }
  if (UsesSvrhgSnapshot(a)) {
    if (absl::Status s = ValidateLSvrhg(config); !s.ok()) return s;
  }
  if (a.fuse_local_products &&
      (!uses_products || a.estimator != EstimatorKind::kLocal)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.fuse_local_products needs algorithm conopt or sga with "
        "estimator local (got ",
        AlgorithmName(a.kind), " with estimator ", EstimatorName(a.estimator),
        "): only the local estimator's probe "
        "(each sample's own gradient) is known to the worker in the "
        "gradient round"));
  }
  if (a.bias_meter &&
      (!uses_products || a.estimator == EstimatorKind::kLocal)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.bias_meter needs algorithm conopt or sga with estimator "
        "pooled or unbiased (got ",
        AlgorithmName(a.kind), " with estimator ", EstimatorName(a.estimator),
        uses_products
            ? "): the local estimator's probes are the samples' own "
              "gradients, so J_k^T (sum_j xi_j), which the pooled and "
              "leave-one-out estimates need, is never computed"
            : "): it compares two estimates of J^T xi, which only the "
              "products phase of conopt and sga computes"));
  }
  const int min_samples =
      config.samples_per_worker *
      (config.quorum == 0 ? config.workers_per_round : config.quorum);
  if (estimates_jt_xi && a.estimator == EstimatorKind::kUnbiased &&
      min_samples < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.estimator = unbiased needs at least 2 gradient samples "
        "per round, but quorum x samples_per_worker = ",
        min_samples,
        ": run 2 or more workers per round (workers_per_round and quorum), "
        "or set samples_per_worker >= 2 so one worker submits two "
        "microbatch gradients"));
  }
  return absl::OkStatus();
}

}  // namespace

OptimizerConfig WithRmsPropPreset(OptimizerConfig config,
                                  RmsPropPreset preset) {
  config.rmsprop_preset = preset;
  if (preset == RmsPropPreset::kPyTorch) {
    config.rmsprop_decay = 0.99;
    config.epsilon = 1e-8;
    config.eps_inside_sqrt = false;
    config.initial_accumulator = 0.0;
  } else {
    config.rmsprop_decay = 0.9;
    config.epsilon = 1e-10;
    config.eps_inside_sqrt = true;
    config.initial_accumulator = 1.0;
  }
  return config;
}

absl::Status ValidateConfig(const SessionConfig& config) {
  if (config.players.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("players: a game needs at least 2 players, got ",
                     config.players.size()));
  }
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config.players);
  if (!layout.ok()) return layout.status();
  for (size_t p = 0; p < config.players.size(); ++p) {
    absl::Status s =
        ValidateOptimizer(config.players[p].optimizer,
                          absl::StrCat("players[", p, "].optimizer"));
    if (!s.ok()) return s;
    s = ValidateInitialValues(config.players[p], *layout, static_cast<int>(p));
    if (!s.ok()) return s;
  }
  if (config.workers_per_round < 1 || config.workers_per_round > 10000) {
    return Bad("workers_per_round", "must be in [1, 10000]",
               config.workers_per_round);
  }
  if (config.quorum < 0 || config.quorum > config.workers_per_round) {
    return Bad("quorum", "must be in [1, workers_per_round] (0 = all)",
               config.quorum);
  }
  if (config.phase_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "phase_deadline must be positive (or infinite to wait forever)");
  }
  if (config.worker_lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "worker_lease must be positive (or infinite for no lease)");
  }
  if (config.samples_per_worker < 1 || config.samples_per_worker > 1024) {
    return Bad("samples_per_worker", "must be in [1, 1024]",
               config.samples_per_worker);
  }
  if (config.max_steps < 0) {
    return Bad("max_steps", "must be >= 0 (0 = no limit)",
               static_cast<double>(config.max_steps));
  }
  if (config.spectrum.every_steps < 0) {
    return Bad("spectrum.every_steps", "must be >= 0 (0 = only on request)",
               static_cast<double>(config.spectrum.every_steps));
  }
  for (size_t i = 0; i < config.spectrum.requests.size(); ++i) {
    absl::Status s =
        ValidateSpectrumRequest(config.spectrum.requests[i],
                                absl::StrCat("spectrum.requests[", i, "]"));
    if (!s.ok()) return s;
  }
  return ValidateAlgorithm(config, *layout);
}

absl::Status ValidateSpectrumRequest(const SpectrumRequest& request,
                                     absl::string_view field) {
  const std::string where(field);
  if (request.k < 1 || request.k > 100) {
    return Bad(where + ".k", "must be in [1, 100]", request.k);
  }
  if (request.max_applications < 1 || request.max_applications > 100000) {
    return Bad(where + ".max_applications", "must be in [1, 100000]",
               request.max_applications);
  }
  if (!(request.tol > 0 && request.tol < 1)) {
    return Bad(where + ".tol", "must be in (0, 1)", request.tol);
  }
  return absl::OkStatus();
}

// ---- Names -----------------------------------------------------------------

namespace {

template <typename Enum, size_t N>
absl::StatusOr<Enum> ParseName(
    absl::string_view what, absl::string_view name,
    const std::pair<absl::string_view, Enum> (&table)[N]) {
  std::string known;
  for (const auto& [key, value] : table) {
    if (key == name) return value;
    absl::StrAppend(&known, known.empty() ? "" : ", ", key);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown ", what, " '", Quote(name), "'; expected one of: ", known));
}

template <typename Enum, size_t N>
absl::string_view NameOf(Enum value,
                         const std::pair<absl::string_view, Enum> (&table)[N]) {
  for (const auto& [key, v] : table) {
    if (v == value) return key;
  }
  return "?";
}

constexpr std::pair<absl::string_view, AlgorithmKind> kAlgorithms[] = {
    {"simgd", AlgorithmKind::kSimGd},
    {"altgd", AlgorithmKind::kAltGd},
    {"conopt", AlgorithmKind::kConOpt},
    {"sga", AlgorithmKind::kSga},
    {"extragradient", AlgorithmKind::kExtragradient},
    {"optimistic", AlgorithmKind::kOptimistic},
    {"optimistic_adam", AlgorithmKind::kOptimisticAdam},
    {"extrapolation_from_the_past", AlgorithmKind::kExtrapolationFromThePast},
    {"lead", AlgorithmKind::kLead},
    {"cgd", AlgorithmKind::kCgd},
    {"acgd", AlgorithmKind::kAcgd},
    {"lola", AlgorithmKind::kLola},
    {"sos", AlgorithmKind::kSos},
    {"shgd", AlgorithmKind::kShgd},
    {"l_svrhg", AlgorithmKind::kLSvrhg},
};
constexpr std::pair<absl::string_view, OptimizerKind> kOptimizers[] = {
    {"sgd", OptimizerKind::kSgd},
    {"momentum", OptimizerKind::kMomentum},
    {"nesterov", OptimizerKind::kNesterov},
    {"rmsprop", OptimizerKind::kRmsProp},
    {"adam", OptimizerKind::kAdam},
};
constexpr std::pair<absl::string_view, EstimatorKind> kEstimators[] = {
    {"local", EstimatorKind::kLocal},
    {"pooled", EstimatorKind::kPooled},
    {"unbiased", EstimatorKind::kUnbiased},
};
constexpr std::pair<absl::string_view, RmsPropPreset> kPresets[] = {
    {"pytorch", RmsPropPreset::kPyTorch},
    {"tf1", RmsPropPreset::kTensorFlow1},
};
constexpr std::pair<absl::string_view, LrScheduleKind> kLrSchedules[] = {
    {"constant", LrScheduleKind::kConstant},
    {"step", LrScheduleKind::kStep},
    {"multistep", LrScheduleKind::kMultiStep},
    {"exponential", LrScheduleKind::kExponential},
    {"cosine", LrScheduleKind::kCosine},
    {"linear", LrScheduleKind::kLinear},
};
constexpr std::pair<absl::string_view, SpectrumOperatorKind> kOperators[] = {
    {"jacobian", SpectrumOperatorKind::kGameJacobian},
    {"field", SpectrumOperatorKind::kAlgorithmField},
};

}  // namespace

absl::StatusOr<AlgorithmKind> ParseAlgorithm(absl::string_view name) {
  return ParseName("algorithm", name, kAlgorithms);
}
absl::StatusOr<OptimizerKind> ParseOptimizer(absl::string_view name) {
  return ParseName("optimizer", name, kOptimizers);
}
absl::StatusOr<EstimatorKind> ParseEstimator(absl::string_view name) {
  return ParseName("estimator", name, kEstimators);
}
absl::StatusOr<RmsPropPreset> ParseRmsPropPreset(absl::string_view name) {
  return ParseName("RMSProp preset", name, kPresets);
}
absl::string_view AlgorithmName(AlgorithmKind kind) {
  return NameOf(kind, kAlgorithms);
}
absl::string_view OptimizerName(OptimizerKind kind) {
  return NameOf(kind, kOptimizers);
}
absl::string_view EstimatorName(EstimatorKind kind) {
  return NameOf(kind, kEstimators);
}
absl::string_view RmsPropPresetName(RmsPropPreset preset) {
  return NameOf(preset, kPresets);
}
absl::StatusOr<LrScheduleKind> ParseLrSchedule(absl::string_view name) {
  return ParseName("learning-rate schedule", name, kLrSchedules);
}
absl::string_view LrScheduleName(LrScheduleKind kind) {
  return NameOf(kind, kLrSchedules);
}
absl::StatusOr<SpectrumOperatorKind> ParseSpectrumOperator(
    absl::string_view name) {
  return ParseName("spectrum operator", name, kOperators);
}
absl::string_view SpectrumOperatorName(SpectrumOperatorKind kind) {
  return NameOf(kind, kOperators);
}

}  // namespace gameopt
