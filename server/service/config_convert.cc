#include "server/service/config_convert.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/service/spectrum_convert.h"

namespace gameopt {
namespace {

// Proto enum value <-> core enum. Value 0 (UNSPECIFIED) is not listed: it
// means the documented default, which the caller passes.
template <typename Core>
using EnumTable = std::pair<int, Core>;

constexpr EnumTable<AlgorithmKind> kAlgorithms[] = {
    {v1::SIMGD, AlgorithmKind::kSimGd},
    {v1::ALTGD, AlgorithmKind::kAltGd},
    {v1::CONOPT, AlgorithmKind::kConOpt},
    {v1::SGA, AlgorithmKind::kSga},
    {v1::EXTRAGRADIENT, AlgorithmKind::kExtragradient},
    {v1::OPTIMISTIC, AlgorithmKind::kOptimistic},
    {v1::OPTIMISTIC_ADAM, AlgorithmKind::kOptimisticAdam},
    {v1::EXTRAPOLATION_FROM_THE_PAST, AlgorithmKind::kExtrapolationFromThePast},
    {v1::LEAD, AlgorithmKind::kLead},
    {v1::CGD, AlgorithmKind::kCgd},
    {v1::ACGD, AlgorithmKind::kAcgd},
    {v1::LOLA, AlgorithmKind::kLola},
    {v1::SOS, AlgorithmKind::kSos},
    {v1::SHGD, AlgorithmKind::kShgd},
    {v1::L_SVRHG, AlgorithmKind::kLSvrhg},
};
constexpr EnumTable<OptimizerKind> kOptimizers[] = {
    {v1::SGD, OptimizerKind::kSgd},
    {v1::MOMENTUM, OptimizerKind::kMomentum},
    {v1::NESTEROV, OptimizerKind::kNesterov},
    {v1::RMSPROP, OptimizerKind::kRmsProp},
    {v1::ADAM, OptimizerKind::kAdam},
};
constexpr EnumTable<EstimatorKind> kEstimators[] = {
    {v1::LOCAL, EstimatorKind::kLocal},
    {v1::POOLED, EstimatorKind::kPooled},
    {v1::UNBIASED, EstimatorKind::kUnbiased},
};
constexpr EnumTable<RmsPropPreset> kPresets[] = {
    {v1::PYTORCH, RmsPropPreset::kPyTorch},
    {v1::TENSORFLOW1, RmsPropPreset::kTensorFlow1},
};
constexpr EnumTable<InvalidSamplePolicy> kPolicies[] = {
    {v1::REJECT, InvalidSamplePolicy::kReject},
    {v1::DROP, InvalidSamplePolicy::kDrop},
};
constexpr EnumTable<DType> kDTypes[] = {
    {v1::FLOAT32, DType::kFloat32},
    {v1::FLOAT64, DType::kFloat64},
};
constexpr EnumTable<Compression> kCompressions[] = {
    {v1::FLOAT32, Compression::kNone},
    {v1::FLOAT64, Compression::kNone},
    {v1::BFLOAT16, Compression::kBFloat16},
    {v1::FLOAT16, Compression::kFloat16},
    {v1::INT8_BLOCK, Compression::kInt8Block},
};

template <typename Core, size_t N>
absl::StatusOr<Core> FromProto(int value, Core unspecified,
                               const EnumTable<Core> (&table)[N],
                               absl::string_view field) {
  if (value == 0) return unspecified;
  for (const auto& [proto, core] : table) {
    if (proto == value) return core;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": unknown enum value ", value));
}

template <typename Core, size_t N>
int ToProto(Core value, const EnumTable<Core> (&table)[N]) {
  for (const auto& [proto, core] : table) {
    if (core == value) return proto;
  }
  return 0;
}

// `value` unless it is 0, the proto's "use the default".
double OrDefault(double value, double fallback) {
  return value == 0.0 ? fallback : value;
}

absl::StatusOr<OptimizerConfig> OptimizerFromProto(const v1::OptimizerConfig& p,
                                                   const std::string& field) {
  OptimizerConfig o;
  absl::StatusOr<OptimizerKind> kind =
      FromProto(p.kind(), OptimizerKind::kSgd, kOptimizers, field + ".kind");
  if (!kind.ok()) return kind.status();
  absl::StatusOr<RmsPropPreset> preset =
      FromProto(p.rmsprop_preset(), RmsPropPreset::kPyTorch, kPresets,
                field + ".rmsprop_preset");
  if (!preset.ok()) return preset.status();
  o.kind = *kind;
  // The preset also sets epsilon: apply it to RMSProp only, so that Adam
  // keeps its own default.
  if (o.kind == OptimizerKind::kRmsProp) o = WithRmsPropPreset(o, *preset);
  o.rmsprop_preset = *preset;
  o.learning_rate = OrDefault(p.learning_rate(), 0.01);
  o.momentum = p.has_momentum() ? p.momentum() : 0.9;
  if (p.has_rmsprop_decay()) o.rmsprop_decay = p.rmsprop_decay();
  if (p.has_epsilon()) o.epsilon = p.epsilon();
  if (p.has_eps_inside_sqrt()) o.eps_inside_sqrt = p.eps_inside_sqrt();
  if (p.has_initial_accumulator()) {
    o.initial_accumulator = p.initial_accumulator();
  }
  o.beta1 = p.has_beta1() ? p.beta1() : 0.9;
  o.beta2 = p.has_beta2() ? p.beta2() : 0.999;
  o.clip_value = p.clip_value();
  // Verbatim: ValidateConfig checks the fields of the schedule's kind.
  const v1::LearningRateSchedule& sched = p.schedule();
  if (!v1::LearningRateSchedule::Kind_IsValid(sched.kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".schedule.kind: unknown enum value ",
                     static_cast<int>(sched.kind())));
  }
  o.schedule.kind = static_cast<LrScheduleKind>(sched.kind());
  o.schedule.gamma = sched.gamma();
  o.schedule.step_size = sched.step_size();
  o.schedule.milestones.assign(sched.milestones().begin(),
                               sched.milestones().end());
  o.schedule.t_max = sched.t_max();
  o.schedule.eta_min = sched.eta_min();
  o.schedule.start_factor = sched.start_factor();
  o.schedule.end_factor = sched.end_factor();
  o.schedule.total_steps = sched.total_steps();
  return o;
}

absl::StatusOr<PlayerConfig> PlayerFromProto(const v1::PlayerConfig& p,
                                             const std::string& field) {
  PlayerConfig player;
  player.name = p.name();
  for (int t = 0; t < p.tensors_size(); ++t) {
    const v1::Tensor& tensor = p.tensors(t);
    // In a SessionConfig, DTYPE_UNSPECIFIED means FLOAT32.
    absl::StatusOr<DType> dtype = DTypeFromProto(
        tensor.dtype(), absl::StrCat(field, ".tensors[", t, "].dtype"),
        DType::kFloat32);
    if (!dtype.ok()) return dtype.status();
    player.tensors.push_back(
        TensorConfig{tensor.name(),
                     {tensor.shape().begin(), tensor.shape().end()},
                     tensor.data(),
                     *dtype});
  }
  absl::StatusOr<OptimizerConfig> optimizer =
      OptimizerFromProto(p.optimizer(), field + ".optimizer");
  if (!optimizer.ok()) return optimizer.status();
  player.optimizer = *std::move(optimizer);
  return player;
}

absl::StatusOr<AlgorithmConfig> AlgorithmFromProto(
    const v1::AlgorithmConfig& p) {
  AlgorithmConfig a;
  absl::StatusOr<AlgorithmKind> kind = FromProto(
      p.kind(), AlgorithmKind::kSimGd, kAlgorithms, "config.algorithm.kind");
  if (!kind.ok()) return kind.status();
  absl::StatusOr<EstimatorKind> estimator =
      FromProto(p.estimator(), EstimatorKind::kPooled, kEstimators,
                "config.algorithm.estimator");
  if (!estimator.ok()) return estimator.status();
  a.kind = *kind;
  a.estimator = *estimator;
  a.gamma = p.has_gamma() ? p.gamma() : 1.0;
  a.lambda0 = p.has_lambda0() ? p.lambda0() : 1.0;
  a.sga_alignment = !p.sga_no_alignment();
  for (const v1::AltGdStage& stage : p.altgd_order()) {
    a.altgd_order.push_back(
        AltGdStage{stage.player(), stage.steps() == 0 ? 1 : stage.steps()});
  }
  a.extragradient_moments_at_extrapolation = !p.extragradient_frozen_moments();
  a.lookahead_k = p.lookahead_k();
  a.lookahead_alpha = OrDefault(p.lookahead_alpha(), 0.5);
  a.clip_global_norm = p.clip_global_norm();
  a.fuse_local_products = p.fuse_local_products();
  a.bias_meter = p.bias_meter();
  const v1::AdaptiveGamma& r = p.adaptive_gamma();
  AdaptiveGammaConfig& rule = a.adaptive_gamma;
  rule.enabled = r.enabled();
  rule.margin = OrDefault(r.margin(), rule.margin);
  rule.max_cancellation =
      OrDefault(r.max_cancellation(), rule.max_cancellation);
  rule.min_stationarity_ratio = r.min_stationarity_ratio();
  rule.decrease = OrDefault(r.decrease(), rule.decrease);
  rule.increase = OrDefault(r.increase(), rule.increase);
  rule.min_gamma = OrDefault(r.min_gamma(), rule.min_gamma);
  rule.max_gamma = OrDefault(r.max_gamma(), rule.max_gamma);
  a.lead_alpha = p.has_lead_alpha() ? p.lead_alpha() : 0.1;
  if (p.has_svrhg_probability()) a.svrhg_probability = p.svrhg_probability();
  a.svrhg_correction = p.svrhg_correction();
  if (p.has_cgd_tolerance()) a.cgd_tolerance = p.cgd_tolerance();
  a.cgd_max_iterations =
      OrDefault(p.cgd_max_iterations(), a.cgd_max_iterations);
  a.cgd_zero_sum = p.cgd_zero_sum();
  if (p.has_acgd_beta()) a.acgd_beta = p.acgd_beta();
  if (p.has_acgd_epsilon()) a.acgd_epsilon = p.acgd_epsilon();
  if (p.has_lola_alpha()) a.lola_alpha = p.lola_alpha();
  if (p.has_sos_a()) a.sos_a = p.sos_a();
  if (p.has_sos_b()) a.sos_b = p.sos_b();
  return a;
}

absl::StatusOr<absl::Duration> DeadlineFromProto(double seconds) {
  if (std::isnan(seconds)) {
    return absl::InvalidArgumentError(
        "config.phase_deadline_seconds is NaN (0 = 60 s, negative = forever)");
  }
  if (seconds == 0.0) return absl::Seconds(60);
  if (seconds < 0.0) return absl::InfiniteDuration();
  return absl::Seconds(seconds);
}

}  // namespace

absl::StatusOr<DType> DTypeFromProto(int dtype, absl::string_view field) {
  if (dtype == v1::DTYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is DTYPE_UNSPECIFIED: set FLOAT32 or FLOAT64"));
  }
  return FromProto(dtype, DType::kFloat32, kDTypes, field);
}

absl::StatusOr<DType> DTypeFromProto(int dtype, absl::string_view field,
                                     DType unspecified) {
  return FromProto(dtype, unspecified, kDTypes, field);
}

v1::DType DTypeToProto(DType dtype) {
  return static_cast<v1::DType>(ToProto(dtype, kDTypes));
}

absl::StatusOr<Compression> CompressionFromProto(int dtype,
                                                 absl::string_view field) {
  return FromProto(dtype, Compression::kNone, kCompressions, field);
}

absl::StatusOr<TensorDType> TensorDTypeFromProto(int dtype,
                                                 absl::string_view field) {
  TensorDType out;
  if (dtype == v1::BFLOAT16 || dtype == v1::FLOAT16 ||
      dtype == v1::INT8_BLOCK) {
    out.compression = *CompressionFromProto(dtype, field);
    return out;
  }
  absl::StatusOr<DType> plain = DTypeFromProto(dtype, field);
  if (!plain.ok()) return plain.status();
  out.dtype = *plain;
  return out;
}

v1::DType CompressionToProto(Compression compression) {
  if (compression == Compression::kNone) return v1::DTYPE_UNSPECIFIED;
  return static_cast<v1::DType>(ToProto(compression, kCompressions));
}

v1::DType TensorDTypeToProto(Compression compression, DType dtype) {
  return compression == Compression::kNone ? DTypeToProto(dtype)
                                           : CompressionToProto(compression);
}

absl::StatusOr<SessionConfig> SessionConfigFromProto(
    const v1::SessionConfig& proto) {
  SessionConfig config;
  config.name = proto.name();
  absl::StatusOr<DType> dtype =
      DTypeFromProto(proto.dtype(), "config.dtype", DType::kFloat32);
  if (!dtype.ok()) return dtype.status();
  config.dtype = *dtype;
  for (int p = 0; p < proto.players_size(); ++p) {
    absl::StatusOr<PlayerConfig> player = PlayerFromProto(
        proto.players(p), absl::StrCat("config.players[", p, "]"));
    if (!player.ok()) return player.status();
    config.players.push_back(*std::move(player));
  }
  absl::StatusOr<AlgorithmConfig> algorithm =
      AlgorithmFromProto(proto.algorithm());
  if (!algorithm.ok()) return algorithm.status();
  config.algorithm = *std::move(algorithm);
  config.workers_per_round =
      proto.workers_per_round() == 0 ? 1 : proto.workers_per_round();
  config.quorum = proto.quorum();
  absl::StatusOr<absl::Duration> deadline =
      DeadlineFromProto(proto.phase_deadline_seconds());
  if (!deadline.ok()) return deadline.status();
  config.phase_deadline = *deadline;
  if (std::isnan(proto.worker_lease_seconds())) {
    return absl::InvalidArgumentError(
        "config.worker_lease_seconds is NaN (0 = 10 s, negative = no lease)");
  }
  config.worker_lease = proto.worker_lease_seconds() == 0.0
                            ? kDefaultWorkerLease
                        : proto.worker_lease_seconds() < 0.0
                            ? absl::InfiniteDuration()
                            : absl::Seconds(proto.worker_lease_seconds());
  config.samples_per_worker =
      proto.samples_per_worker() == 0 ? 1 : proto.samples_per_worker();
  config.max_steps = proto.max_steps();
  config.seed = proto.seed();
  absl::StatusOr<InvalidSamplePolicy> policy =
      FromProto(proto.invalid_sample_policy(), InvalidSamplePolicy::kReject,
                kPolicies, "config.invalid_sample_policy");
  if (!policy.ok()) return policy.status();
  config.invalid_sample_policy = *policy;
  absl::StatusOr<SpectrumSchedule> spectrum =
      SpectrumScheduleFromProto(proto.spectrum());
  if (!spectrum.ok()) return spectrum.status();
  config.spectrum = *spectrum;
  absl::StatusOr<Compression> to_workers =
      CompressionFromProto(proto.wire().to_workers(), "config.wire.to_workers");
  if (!to_workers.ok()) return to_workers.status();
  absl::StatusOr<Compression> from_workers = CompressionFromProto(
      proto.wire().from_workers(), "config.wire.from_workers");
  if (!from_workers.ok()) return from_workers.status();
  config.wire.to_workers = *to_workers;
  config.wire.from_workers = *from_workers;
  config.wire.stochastic_rounding = proto.wire().stochastic_rounding();
  // The core names fields relative to the config.
  if (absl::Status status = ValidateConfig(config); !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("config.", status.message()));
  }
  return config;
}

namespace {

void OptimizerToProto(const OptimizerConfig& o, v1::OptimizerConfig* out) {
  out->set_kind(static_cast<v1::Optimizer>(ToProto(o.kind, kOptimizers)));
  out->set_learning_rate(o.learning_rate);
  out->set_momentum(o.momentum);
  out->set_rmsprop_preset(
      static_cast<v1::RmsPropPreset>(ToProto(o.rmsprop_preset, kPresets)));
  out->set_rmsprop_decay(o.rmsprop_decay);
  out->set_epsilon(o.epsilon);
  out->set_eps_inside_sqrt(o.eps_inside_sqrt);
  out->set_initial_accumulator(o.initial_accumulator);
  out->set_beta1(o.beta1);
  out->set_beta2(o.beta2);
  out->set_clip_value(o.clip_value);
  if (o.schedule.kind != LrScheduleKind::kConstant) {
    v1::LearningRateSchedule* s = out->mutable_schedule();
    s->set_kind(static_cast<v1::LearningRateSchedule::Kind>(o.schedule.kind));
    s->set_gamma(o.schedule.gamma);
    s->set_step_size(o.schedule.step_size);
    for (int64_t m : o.schedule.milestones) s->add_milestones(m);
    s->set_t_max(o.schedule.t_max);
    s->set_eta_min(o.schedule.eta_min);
    s->set_start_factor(o.schedule.start_factor);
    s->set_end_factor(o.schedule.end_factor);
    s->set_total_steps(o.schedule.total_steps);
  }
}

void AlgorithmToProto(const AlgorithmConfig& a, v1::AlgorithmConfig* out) {
  out->set_kind(static_cast<v1::Algorithm>(ToProto(a.kind, kAlgorithms)));
  out->set_gamma(a.gamma);
  out->set_lambda0(a.lambda0);
  out->set_sga_no_alignment(!a.sga_alignment);
  for (const AltGdStage& stage : a.altgd_order) {
    v1::AltGdStage* added = out->add_altgd_order();
    added->set_player(stage.player);
    added->set_steps(stage.steps);
  }
  out->set_extragradient_frozen_moments(
      !a.extragradient_moments_at_extrapolation);
  out->set_lookahead_k(a.lookahead_k);
  out->set_lookahead_alpha(a.lookahead_alpha);
  out->set_estimator(
      static_cast<v1::Estimator>(ToProto(a.estimator, kEstimators)));
  out->set_clip_global_norm(a.clip_global_norm);
  out->set_fuse_local_products(a.fuse_local_products);
  out->set_bias_meter(a.bias_meter);
  if (a.adaptive_gamma.enabled) {
    const AdaptiveGammaConfig& rule = a.adaptive_gamma;
    v1::AdaptiveGamma* r = out->mutable_adaptive_gamma();
    r->set_enabled(true);
    r->set_margin(rule.margin);
    r->set_max_cancellation(rule.max_cancellation);
    r->set_min_stationarity_ratio(rule.min_stationarity_ratio);
    r->set_decrease(rule.decrease);
    r->set_increase(rule.increase);
    r->set_min_gamma(rule.min_gamma);
    r->set_max_gamma(rule.max_gamma);
  }
  if (a.kind == AlgorithmKind::kLead) out->set_lead_alpha(a.lead_alpha);
  if (a.kind == AlgorithmKind::kLola || a.kind == AlgorithmKind::kSos) {
    out->set_lola_alpha(a.lola_alpha);
    out->set_sos_a(a.sos_a);
    out->set_sos_b(a.sos_b);
  }
  if (UsesSvrhgSnapshot(a)) {
    out->set_svrhg_probability(a.svrhg_probability);
  }
  out->set_svrhg_correction(a.svrhg_correction);
  const AlgorithmConfig defaults;
  if (a.kind == AlgorithmKind::kCgd || a.kind == AlgorithmKind::kAcgd ||
      a.cgd_tolerance != defaults.cgd_tolerance ||
      a.cgd_max_iterations != defaults.cgd_max_iterations || a.cgd_zero_sum ||
      a.acgd_beta != defaults.acgd_beta ||
      a.acgd_epsilon != defaults.acgd_epsilon) {
    out->set_cgd_tolerance(a.cgd_tolerance);
    out->set_cgd_max_iterations(a.cgd_max_iterations);
    out->set_cgd_zero_sum(a.cgd_zero_sum);
    out->set_acgd_beta(a.acgd_beta);
    out->set_acgd_epsilon(a.acgd_epsilon);
  }
}

}  // namespace

void SessionConfigToProto(const SessionConfig& config, v1::SessionConfig* out) {
  out->set_name(config.name);
  out->set_dtype(DTypeToProto(config.dtype));
  for (const PlayerConfig& player : config.players) {
    v1::PlayerConfig* p = out->add_players();
    p->set_name(player.name);
    for (const TensorConfig& tensor : player.tensors) {
      v1::Tensor* t = p->add_tensors();
      t->set_name(tensor.name);
      t->set_dtype(DTypeToProto(config.dtype));
      for (int64_t dim : tensor.shape) t->add_shape(dim);
    }
    OptimizerToProto(player.optimizer, p->mutable_optimizer());
  }
  AlgorithmToProto(config.algorithm, out->mutable_algorithm());
  out->set_workers_per_round(config.workers_per_round);
  out->set_quorum(config.quorum);
  out->set_phase_deadline_seconds(
      config.phase_deadline == absl::InfiniteDuration()
          ? -1.0
          : absl::ToDoubleSeconds(config.phase_deadline));
  out->set_worker_lease_seconds(
      config.worker_lease == absl::InfiniteDuration()
          ? -1.0
          : absl::ToDoubleSeconds(config.worker_lease));
  out->set_samples_per_worker(config.samples_per_worker);
  out->set_max_steps(config.max_steps);
  out->set_seed(config.seed);
  out->set_invalid_sample_policy(static_cast<v1::InvalidSamplePolicy>(
      ToProto(config.invalid_sample_policy, kPolicies)));
  SpectrumScheduleToProto(config.spectrum, out->mutable_spectrum());
  if (config.wire.to_workers != Compression::kNone ||
      config.wire.from_workers != Compression::kNone ||
      config.wire.stochastic_rounding) {
    v1::WireConfig* wire = out->mutable_wire();
    wire->set_to_workers(CompressionToProto(config.wire.to_workers));
    wire->set_from_workers(CompressionToProto(config.wire.from_workers));
    wire->set_stochastic_rounding(config.wire.stochastic_rounding);
  }
}

}  // namespace gameopt
