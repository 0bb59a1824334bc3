#include "client/worker/session_builder.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/worker/tensor_codec.h"

namespace gameopt {
namespace {

// Parses a lower-case name into a proto enum via its generated _Parse.
template <typename Enum>
absl::StatusOr<Enum> ParseEnum(const std::string& what, const std::string& name,
                               bool (*parse)(const std::string&, Enum*),
                               const char* known) {
  Enum value;
  if (!parse(absl::AsciiStrToUpper(name), &value) ||
      static_cast<int>(value) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown ", what, " '", name, "'; expected one of: ", known));
  }
  return value;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ParseMilestones(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t step;
    if (!absl::SimpleAtoi(item, &step)) {
      return absl::InvalidArgumentError(
          absl::StrCat("milestone '", item, "' is not a step number"));
    }
    out.push_back(step);
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> ParseAltGdOrder(
    const std::string& text) {
  std::vector<std::pair<std::string, int>> order;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    int steps = 1;
    if (parts.size() > 2 ||
        (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &steps))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "altgd order item '", item, "' must be PLAYER or PLAYER:STEPS"));
    }
    order.emplace_back(parts[0], steps);
  }
  return order;
}

absl::StatusOr<v1::DType> ParseWireDType(const std::string& name) {
  if (name.empty() || name == "none") return v1::DTYPE_UNSPECIFIED;
  if (name == "bfloat16") return v1::BFLOAT16;
  if (name == "float16") return v1::FLOAT16;
  if (name == "int8_block") return v1::INT8_BLOCK;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown wire dtype '", name,
                   "': none, bfloat16, float16 or int8_block"));
}

absl::StatusOr<v1::SessionConfig> BuildSessionConfig(
    const Game& game, const SessionOptions& options) {
  v1::SessionConfig config;
  config.set_name(options.name.empty() ? game.name() : options.name);
  config.set_dtype(options.float64 ? v1::FLOAT64 : v1::FLOAT32);

  auto algorithm = ParseEnum<v1::Algorithm>(
      "algorithm", options.algorithm, v1::Algorithm_Parse,
      "simgd, altgd, conopt, sga, extragradient, optimistic, "
      "optimistic_adam, extrapolation_from_the_past, lead, cgd, acgd, shgd, "
      "l_svrhg, lola, sos");
  if (!algorithm.ok()) return algorithm.status();
  auto optimizer = ParseEnum<v1::Optimizer>(
      "optimizer", options.optimizer, v1::Optimizer_Parse,
      "sgd, momentum, nesterov, rmsprop, adam");
  if (!optimizer.ok()) return optimizer.status();
  auto estimator =
      ParseEnum<v1::Estimator>("estimator", options.estimator,
                               v1::Estimator_Parse, "local, pooled, unbiased");
  if (!estimator.ok()) return estimator.status();
  const std::string preset_name =
      options.rmsprop_preset == "tf1" ? "tensorflow1" : options.rmsprop_preset;
  auto preset = ParseEnum<v1::RmsPropPreset>(
      "RMSProp preset", preset_name, v1::RmsPropPreset_Parse, "pytorch, tf1");
  if (!preset.ok()) return preset.status();

  const std::pair<const char*, v1::LearningRateSchedule::Kind> kSchedules[] = {
      {"constant", v1::LearningRateSchedule::CONSTANT},
      {"step", v1::LearningRateSchedule::STEP},
      {"multistep", v1::LearningRateSchedule::MULTI_STEP},
      {"exponential", v1::LearningRateSchedule::EXPONENTIAL},
      {"cosine", v1::LearningRateSchedule::COSINE},
      {"linear", v1::LearningRateSchedule::LINEAR}};
  std::optional<v1::LearningRateSchedule::Kind> schedule_kind;
  for (const auto& [name, kind] : kSchedules) {
    if (options.lr_schedule == name) schedule_kind = kind;
  }
  if (!schedule_kind) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown learning-rate schedule '", options.lr_schedule,
        "'; expected one of: constant, step, multistep, exponential, cosine, "
        "linear"));
  }
  v1::LearningRateSchedule schedule;
  if (*schedule_kind != v1::LearningRateSchedule::CONSTANT) {
    schedule.set_kind(*schedule_kind);
    schedule.set_gamma(options.lr_gamma);
    schedule.set_step_size(options.lr_step_size);
    for (int64_t m : options.lr_milestones) schedule.add_milestones(m);
    schedule.set_t_max(options.lr_t_max > 0 ? options.lr_t_max
                                            : options.max_steps);
    schedule.set_eta_min(options.lr_eta_min);
    schedule.set_start_factor(options.lr_start_factor);
    schedule.set_end_factor(options.lr_end_factor);
    schedule.set_total_steps(options.lr_total_steps);
  }

  const Eigen::VectorXd initial = game.InitialParameters();
  const FlatLayout layout(game.players());
  for (const PlayerSpec& spec : game.players()) {
    v1::PlayerConfig* player = config.add_players();
    player->set_name(spec.name);
    v1::Vector values;
    EncodeVector(initial, layout, {spec.name}, v1::FLOAT64, values);
    *player->mutable_tensors() = values.players(0).tensors();
    v1::OptimizerConfig* opt = player->mutable_optimizer();
    opt->set_kind(*optimizer);
    auto lr = options.player_learning_rate.find(spec.name);
    opt->set_learning_rate(lr == options.player_learning_rate.end()
                               ? options.learning_rate
                               : lr->second);
    opt->set_momentum(options.momentum);
    opt->set_rmsprop_preset(*preset);
    if (options.beta1) opt->set_beta1(*options.beta1);
    if (options.beta2) opt->set_beta2(*options.beta2);
    auto clip = options.clip_value.find(spec.name);
    if (clip != options.clip_value.end()) opt->set_clip_value(clip->second);
    if (schedule.kind() != v1::LearningRateSchedule::CONSTANT) {
      *opt->mutable_schedule() = schedule;
    }
  }

  v1::AlgorithmConfig* a = config.mutable_algorithm();
  a->set_kind(*algorithm);
  if (options.gamma) a->set_gamma(*options.gamma);
  if (options.lambda) a->set_lambda0(*options.lambda);
  a->set_sga_no_alignment(!options.sga_alignment);
  for (const auto& [player, steps] : options.altgd_order) {
    v1::AltGdStage* stage = a->add_altgd_order();
    stage->set_player(player);
    stage->set_steps(steps);
  }
  a->set_extragradient_frozen_moments(options.extragradient_frozen_moments);
  a->set_lookahead_k(options.lookahead_k);
  a->set_lookahead_alpha(options.lookahead_alpha);
  a->set_estimator(*estimator);
  a->set_clip_global_norm(options.clip_global_norm);
  a->set_fuse_local_products(options.fuse_local_products);
  if (options.lead_alpha) a->set_lead_alpha(*options.lead_alpha);
  a->set_svrhg_correction(options.svrhg_correction);
  if (options.svrhg_probability &&
      (*algorithm == v1::L_SVRHG || options.svrhg_correction)) {
    a->set_svrhg_probability(*options.svrhg_probability);
  }
  if (*algorithm == v1::CGD || *algorithm == v1::ACGD) {
    if (options.cgd_tolerance) a->set_cgd_tolerance(*options.cgd_tolerance);
    a->set_cgd_max_iterations(options.cgd_max_iterations);
    a->set_cgd_zero_sum(options.cgd_zero_sum);
  }
  if (*algorithm == v1::ACGD) {
    if (options.acgd_beta) a->set_acgd_beta(*options.acgd_beta);
    if (options.acgd_epsilon) a->set_acgd_epsilon(*options.acgd_epsilon);
  }
  if (*algorithm == v1::LOLA || *algorithm == v1::SOS) {
    if (options.lola_alpha) a->set_lola_alpha(*options.lola_alpha);
  }
  if (*algorithm == v1::SOS) {
    if (options.sos_a) a->set_sos_a(*options.sos_a);
    if (options.sos_b) a->set_sos_b(*options.sos_b);
  }
  a->set_bias_meter(options.bias_meter);
  if (options.adaptive_gamma) {
    a->mutable_adaptive_gamma()->set_enabled(true);
    v1::SpectrumSchedule* schedule = config.mutable_spectrum();
    schedule->set_every_steps(options.adaptive_gamma_every);
    v1::SpectrumOptions* field = schedule->add_options();
    field->set_operator_(v1::ALGORITHM_FIELD);
    field->set_k(1);
    field->set_smallest_real(true);
  }

  config.set_workers_per_round(options.workers);
  config.set_quorum(options.quorum);
  config.set_phase_deadline_seconds(options.phase_deadline_seconds);
  config.set_samples_per_worker(options.samples_per_worker);
  config.set_max_steps(options.max_steps);
  config.set_seed(options.seed);
  config.set_invalid_sample_policy(options.drop_invalid_samples ? v1::DROP
                                                                : v1::REJECT);
  absl::StatusOr<v1::DType> wire = ParseWireDType(options.wire);
  if (!wire.ok()) return wire.status();
  if (*wire != v1::DTYPE_UNSPECIFIED || options.wire_stochastic) {
    config.mutable_wire()->set_to_workers(*wire);
    config.mutable_wire()->set_from_workers(*wire);
    config.mutable_wire()->set_stochastic_rounding(options.wire_stochastic);
  }
  return config;
}

}  // namespace gameopt
