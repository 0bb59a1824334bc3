// Tests server/service/proto_convert.h and config_convert.h: documented
// defaults, enum and dtype validation, zero-copy views, task encoding.
#include "server/service/proto_convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/config_convert.h"
#include "server/service/grpc_status.h"
#include "server/service/metrics_convert.h"
#include "server/service/spectrum_convert.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

using ::testing::HasSubstr;
using testing::QuadraticConfig;
using testing::QuadraticGame;

v1::SessionConfig MinimalConfig() {
  v1::SessionConfig config;
  for (const char* name : {"a", "b"}) {
    v1::PlayerConfig* player = config.add_players();
    player->set_name(name);
    v1::Tensor* tensor = player->add_tensors();
    tensor->set_name("x");
    tensor->add_shape(2);
  }
  return config;
}

TEST(SessionConfigFromProto, ZeroFieldsMeanTheDocumentedDefaults) {
  absl::StatusOr<SessionConfig> config =
      SessionConfigFromProto(MinimalConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->dtype, DType::kFloat32);
  EXPECT_EQ(config->workers_per_round, 1);
  EXPECT_EQ(config->quorum, 0);
  EXPECT_EQ(config->samples_per_worker, 1);
  EXPECT_EQ(config->phase_deadline, absl::Seconds(60));
  EXPECT_EQ(config->invalid_sample_policy, InvalidSamplePolicy::kReject);
  const AlgorithmConfig& a = config->algorithm;
  EXPECT_EQ(a.kind, AlgorithmKind::kSimGd);
  EXPECT_EQ(a.estimator, EstimatorKind::kPooled);
  EXPECT_EQ(a.gamma, 1.0);
  EXPECT_EQ(a.lambda0, 1.0);
  EXPECT_TRUE(a.sga_alignment);
  EXPECT_TRUE(a.extragradient_moments_at_extrapolation);
  EXPECT_EQ(a.lookahead_alpha, 0.5);
  const OptimizerConfig& o = config->players[0].optimizer;
  EXPECT_EQ(o.kind, OptimizerKind::kSgd);
  EXPECT_EQ(o.learning_rate, 0.01);
  EXPECT_EQ(o.momentum, 0.9);
  EXPECT_EQ(o.beta1, 0.9);
  EXPECT_EQ(o.beta2, 0.999);
  EXPECT_EQ(o.epsilon, 1e-8);
}

TEST(SessionConfigFromProto, ExplicitValuesAndOptionalsAreKept) {
  v1::SessionConfig proto = MinimalConfig();
  proto.set_dtype(v1::FLOAT64);
  proto.set_workers_per_round(4);
  proto.set_quorum(3);
  proto.set_samples_per_worker(2);
  proto.set_phase_deadline_seconds(-1);
  proto.set_invalid_sample_policy(v1::DROP);
  v1::AlgorithmConfig* a = proto.mutable_algorithm();
  a->set_kind(v1::SGA);
  a->set_lambda0(0.0);  // present: 0 is a value, not "default"
  a->set_sga_no_alignment(true);
  a->set_extragradient_frozen_moments(true);
  a->set_lookahead_k(5);
  a->set_estimator(v1::UNBIASED);
  v1::OptimizerConfig* o = proto.mutable_players(1)->mutable_optimizer();
  o->set_kind(v1::RMSPROP);
  o->set_rmsprop_preset(v1::TENSORFLOW1);
  o->set_epsilon(1e-6);  // overrides the preset's 1e-10
  absl::StatusOr<SessionConfig> config = SessionConfigFromProto(proto);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->dtype, DType::kFloat64);
  EXPECT_EQ(config->quorum, 3);
  EXPECT_EQ(config->phase_deadline, absl::InfiniteDuration());
  EXPECT_EQ(config->invalid_sample_policy, InvalidSamplePolicy::kDrop);
  EXPECT_EQ(config->algorithm.lambda0, 0.0);
  EXPECT_FALSE(config->algorithm.sga_alignment);
  EXPECT_FALSE(config->algorithm.extragradient_moments_at_extrapolation);
  EXPECT_EQ(config->algorithm.estimator, EstimatorKind::kUnbiased);
  const OptimizerConfig& rms = config->players[1].optimizer;
  EXPECT_EQ(rms.rmsprop_preset, RmsPropPreset::kTensorFlow1);
  EXPECT_EQ(rms.rmsprop_decay, 0.9);
  EXPECT_TRUE(rms.eps_inside_sqrt);
  EXPECT_EQ(rms.initial_accumulator, 1.0);
  EXPECT_EQ(rms.epsilon, 1e-6);
}

TEST(SessionConfigFromProto, BadValuesAreInvalidArgumentNamingTheField) {
  struct Case {
    std::function<void(v1::SessionConfig&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](v1::SessionConfig& c) { c.set_dtype(static_cast<v1::DType>(9)); },
       "config.dtype"},
      {[](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(static_cast<v1::Algorithm>(42));
       },
       "config.algorithm.kind"},
      {[](v1::SessionConfig& c) {
         c.mutable_players(1)->mutable_optimizer()->set_kind(
             static_cast<v1::Optimizer>(17));
       },
       "config.players[1].optimizer.kind"},
      {[](v1::SessionConfig& c) {
         c.mutable_players(0)->mutable_optimizer()->set_learning_rate(-1);
       },
       "config.players[0].optimizer.learning_rate"},
      {[](v1::SessionConfig& c) { c.mutable_players()->RemoveLast(); },
       "config.players"},
      {[](v1::SessionConfig& c) {
         c.mutable_players(0)->mutable_tensors(0)->set_shape(0, 0);
       },
       "players[0].tensors[0]"},
      {[](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->set_estimator(v1::UNBIASED);
       },
       "config.algorithm.estimator"},
      {[](v1::SessionConfig& c) { c.set_phase_deadline_seconds(NAN); },
       "config.phase_deadline_seconds"},
      {[](v1::SessionConfig& c) { c.set_quorum(5); }, "config.quorum"},
  };
  for (const Case& c : cases) {
    v1::SessionConfig proto = MinimalConfig();
    c.edit(proto);
    absl::StatusOr<SessionConfig> config = SessionConfigFromProto(proto);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << c.field;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(c.field));
  }
}

TEST(SessionConfigFromProto, AdaptiveGammaZeroFieldsMeanDefaultsAndRoundTrip) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::SessionConfig proto = QuadraticConfig(game, v1::CONOPT, 1, 10);
  v1::AdaptiveGamma* rule = proto.mutable_algorithm()->mutable_adaptive_gamma();
  rule->set_enabled(true);
  rule->set_max_cancellation(0.6);
  v1::SpectrumSchedule* schedule = proto.mutable_spectrum();
  schedule->set_every_steps(10);
  v1::SpectrumOptions* field = schedule->add_options();
  field->set_operator_(v1::ALGORITHM_FIELD);
  field->set_smallest_real(true);
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  const AdaptiveGammaConfig& r = core->algorithm.adaptive_gamma;
  EXPECT_TRUE(r.enabled);
  EXPECT_EQ(r.max_cancellation, 0.6);
  const AdaptiveGammaConfig defaults;
  EXPECT_EQ(r.margin, defaults.margin);
  EXPECT_EQ(r.min_stationarity_ratio, 0.0);
  EXPECT_EQ(r.decrease, defaults.decrease);
  EXPECT_EQ(r.increase, defaults.increase);
  EXPECT_EQ(r.min_gamma, defaults.min_gamma);
  EXPECT_EQ(r.max_gamma, defaults.max_gamma);
  v1::SessionConfig back;
  SessionConfigToProto(*core, &back);
  EXPECT_TRUE(back.algorithm().adaptive_gamma().enabled());
  EXPECT_EQ(back.algorithm().adaptive_gamma().max_cancellation(), 0.6);
  EXPECT_EQ(back.algorithm().adaptive_gamma().margin(), defaults.margin);
  // Off: nothing written, as in a config from before the option.
  core->algorithm.adaptive_gamma.enabled = false;
  v1::SessionConfig off;
  SessionConfigToProto(*core, &off);
  EXPECT_FALSE(off.algorithm().has_adaptive_gamma());
}

TEST(SessionConfigFromProto, BiasMeterRoundTripsAndIsOffInOlderConfigs) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::SessionConfig proto = QuadraticConfig(game, v1::CONOPT, 2, 10);
  // A config from before the field (a checkpoint of the previous release):
  // the meter is off.
  absl::StatusOr<SessionConfig> older = SessionConfigFromProto(proto);
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_FALSE(older->algorithm.bias_meter);
  proto.mutable_algorithm()->set_bias_meter(true);
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_TRUE(core->algorithm.bias_meter);
  v1::SessionConfig back;
  SessionConfigToProto(*core, &back);
  EXPECT_TRUE(back.algorithm().bias_meter());
  proto.mutable_algorithm()->set_estimator(v1::LOCAL);
  absl::StatusOr<SessionConfig> local = SessionConfigFromProto(proto);
  EXPECT_EQ(local.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(local.status().message()),
              HasSubstr("algorithm.bias_meter"));
}

TEST(StepDiagnosticsToProto, EveryFieldTravels) {
  StepDiagnostics d = StationarityDiagnostics(2.0, 0.5);
  AddRotationIndex(3.0, 4.0, d);
  d.cancellation = 0.25;
  d.has_bias_meter = true;
  d.bias_norm = 0.125;
  d.pooled_jt_xi_norm = 0.5;
  d.relative_bias = 0.25;
  v1::SessionStatus status;
  StepDiagnosticsToProto(d, &status);
  const v1::StepDiagnostics& p = status.diagnostics();
  EXPECT_EQ(p.xi_norm(), 2.0);
  EXPECT_EQ(p.jt_xi_norm(), 0.5);
  EXPECT_EQ(p.stationarity_ratio(), 0.25);
  EXPECT_TRUE(p.has_rotation_index());
  EXPECT_EQ(p.s_xi_norm(), 1.5);
  EXPECT_EQ(p.a_xi_norm(), 2.0);
  EXPECT_EQ(p.cancellation(), 0.25);
  EXPECT_TRUE(p.has_bias_meter());
  EXPECT_EQ(p.bias_norm(), 0.125);
  EXPECT_EQ(p.pooled_jt_xi_norm(), 0.5);
  EXPECT_EQ(p.relative_bias(), 0.25);
  // A spectrum estimate's diagnostics.
  SpectrumResult result;
  result.diagnostics = d;
  v1::Spectrum spectrum;
  SpectrumResultToProto(result, &spectrum);
  EXPECT_EQ(spectrum.diagnostics().SerializeAsString(), p.SerializeAsString());
  v1::Spectrum none;
  SpectrumResultToProto(SpectrumResult{}, &none);
  EXPECT_FALSE(none.has_diagnostics());
}

TEST(SessionConfigToProto, RoundTripsToTheSameCoreConfig) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::SessionConfig proto = QuadraticConfig(game, v1::ALTGD, 2, 10);
  v1::AltGdStage* stage = proto.mutable_algorithm()->add_altgd_order();
  stage->set_player("disc");
  stage->set_steps(2);
  proto.mutable_players(0)->mutable_optimizer()->set_kind(v1::ADAM);
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  v1::SessionConfig back;
  SessionConfigToProto(*core, &back);
  EXPECT_TRUE(back.players(0).tensors(0).data().empty());
  // Put the initial values back: they are left out by design.
  for (int p = 0; p < back.players_size(); ++p) {
    *back.mutable_players(p)->mutable_tensors() = proto.players(p).tensors();
  }
  absl::StatusOr<SessionConfig> again = SessionConfigFromProto(back);
  ASSERT_TRUE(again.ok()) << again.status();
  v1::SessionConfig twice;
  SessionConfigToProto(*again, &twice);
  v1::SessionConfig once;
  SessionConfigToProto(*core, &once);
  EXPECT_EQ(once.SerializeAsString(), twice.SerializeAsString());
  EXPECT_EQ(once.algorithm().altgd_order(0).steps(), 2);
  EXPECT_EQ(once.phase_deadline_seconds(), -1.0);
}

TEST(SessionConfigFromProto, GanMethodsAndLeadAlpha) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::SessionConfig proto = QuadraticConfig(game, v1::LEAD, 2, 10);
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(core->algorithm.kind, AlgorithmKind::kLead);
  EXPECT_EQ(core->algorithm.lead_alpha, 0.1);      // unset: the default
  proto.mutable_algorithm()->set_lead_alpha(0.0);  // set: kept, 0 too
  core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok());
  EXPECT_EQ(core->algorithm.lead_alpha, 0.0);
  v1::SessionConfig back;
  SessionConfigToProto(*core, &back);
  EXPECT_TRUE(back.algorithm().has_lead_alpha());
  EXPECT_EQ(back.algorithm().kind(), v1::LEAD);
  // Optimistic Adam needs Adam (validated on the way in).
  for (v1::PlayerConfig& p : *proto.mutable_players()) {
    p.mutable_optimizer()->set_kind(v1::ADAM);
  }
  for (v1::Algorithm kind :
       {v1::OPTIMISTIC_ADAM, v1::EXTRAPOLATION_FROM_THE_PAST, v1::SHGD}) {
    proto.mutable_algorithm()->set_kind(kind);
    core = SessionConfigFromProto(proto);
    ASSERT_TRUE(core.ok()) << core.status();
    back.Clear();
    SessionConfigToProto(*core, &back);
    EXPECT_EQ(back.algorithm().kind(), kind);
    EXPECT_FALSE(back.algorithm().has_lead_alpha());
  }
  // L-SVRHG: its probability (default 0.1), the unbiased estimator.
  proto.mutable_algorithm()->set_kind(v1::L_SVRHG);
  proto.mutable_algorithm()->set_estimator(v1::UNBIASED);
  core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(core->algorithm.kind, AlgorithmKind::kLSvrhg);
  EXPECT_EQ(core->algorithm.svrhg_probability, 0.1);
  proto.mutable_algorithm()->set_svrhg_probability(0.25);
  core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(core->algorithm.svrhg_probability, 0.25);
  back.Clear();
  SessionConfigToProto(*core, &back);
  EXPECT_EQ(back.algorithm().svrhg_probability(), 0.25);
  proto.mutable_algorithm()->set_svrhg_probability(1.5);
  EXPECT_EQ(SessionConfigFromProto(proto).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SessionConfigFromProto, LolaAndSosParameters) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(1);
  v1::SessionConfig proto = QuadraticConfig(game, v1::SOS, 1, 10);
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(core->algorithm.kind, AlgorithmKind::kSos);
  // Unset: the defaults.
  EXPECT_EQ(core->algorithm.lola_alpha, 1.0);
  EXPECT_EQ(core->algorithm.sos_a, 0.5);
  EXPECT_EQ(core->algorithm.sos_b, 0.1);
  proto.mutable_algorithm()->set_lola_alpha(0.0);  // set: kept, 0 too
  proto.mutable_algorithm()->set_sos_a(0.25);
  proto.mutable_algorithm()->set_sos_b(0.75);
  core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  v1::SessionConfig back;
  SessionConfigToProto(*core, &back);
  EXPECT_TRUE(back.algorithm().has_lola_alpha());
  EXPECT_EQ(back.algorithm().lola_alpha(), 0.0);
  EXPECT_EQ(back.algorithm().sos_a(), 0.25);
  EXPECT_EQ(back.algorithm().sos_b(), 0.75);
  EXPECT_EQ(back.algorithm().kind(), v1::SOS);
  proto.mutable_algorithm()->set_sos_b(1.0);
  EXPECT_EQ(SessionConfigFromProto(proto).status().code(),
            absl::StatusCode::kInvalidArgument);
  proto.mutable_algorithm()->set_kind(v1::SIMGD);
  proto.mutable_algorithm()->clear_sos_b();
  core = SessionConfigFromProto(proto);
  ASSERT_TRUE(core.ok()) << core.status();
  back.Clear();
  SessionConfigToProto(*core, &back);
  EXPECT_FALSE(back.algorithm().has_lola_alpha());
}

TEST(SubmissionFromProto, ViewsTheRequestWithoutCopying) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(2);
  v1::Task task;
  task.set_round(3);
  task.set_step(1);
  task.set_phase(0);
  task.set_num_samples(2);
  task.add_players("gen");
  task.add_players("disc");
  const v1::SubmitGradientRequest request =
      testing::GradientRequest(game, "s1", 1, task, game.x0());
  Submission submission;
  ASSERT_TRUE(SubmissionFromProto(request, &submission).ok());
  EXPECT_EQ(submission.round, 3);
  EXPECT_EQ(submission.step, 1);
  ASSERT_EQ(submission.gradients.size(), 2u);
  const TensorView& view = submission.gradients[1][0].tensors[0];
  const v1::Tensor& tensor = request.gradients(1).players(0).tensors(0);
  EXPECT_EQ(view.bytes.data(), tensor.data().data());
  EXPECT_EQ(view.shape.data(), tensor.shape().data());
  EXPECT_EQ(view.name.data(), tensor.name().data());
  EXPECT_EQ(view.dtype, DType::kFloat64);
}

TEST(SubmissionFromProto, UnspecifiedDtypeIsInvalidArgumentNamingTheTensor) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(2);
  v1::SubmitJacobianProductsRequest request;
  *request.add_vjp() = testing::EncodeVector(game, game.x0(), v1::FLOAT32);
  request.mutable_vjp(0)->mutable_players(1)->mutable_tensors(1)->set_dtype(
      v1::DTYPE_UNSPECIFIED);
  Submission submission;
  absl::Status status = SubmissionFromProto(request, &submission);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("vjp[0].players[1].tensors[1] ('disc/s').dtype"));
}

TEST(TaskToProto, SendsParametersOnlyWhenTheWorkerLacksThem) {
  const QuadraticGame game = QuadraticGame::TwoPlayer(3);
  absl::StatusOr<SessionConfig> config =
      SessionConfigFromProto(QuadraticConfig(game, v1::CONOPT, 1, 0));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config->players);
  ASSERT_TRUE(layout.ok());
  auto x = std::make_shared<FlatVector>(DType::kFloat64, 10);
  for (int i = 0; i < 10; ++i) x->as<double>()(i) = game.x0()(i);
  Task task;
  task.kind = Task::Kind::kProducts;
  task.worker_id = 2;
  task.params_version = 5;
  task.params = x;
  task.vjp = true;
  task.probes = {x};
  v1::TaskResponse with, without, fresh;
  TaskToProto(task, *layout, 4, &with);
  TaskToProto(task, *layout, 5, &without);
  TaskToProto(task, *layout, -1, &fresh);
  EXPECT_EQ(with.worker_id(), 2);
  EXPECT_EQ(with.task().kind(), v1::PRODUCTS);
  EXPECT_TRUE(with.task().params_included());
  EXPECT_EQ(testing::VectorBytes(with.task().params()), testing::FlatBytes(*x));
  EXPECT_EQ(with.task().params().players(0).tensors(0).shape_size(), 2);
  EXPECT_EQ(with.task().params().players(1).tensors(1).shape_size(), 0);
  EXPECT_FALSE(without.task().params_included());
  EXPECT_FALSE(without.task().has_params());
  EXPECT_EQ(without.task().params_version(), 5);
  EXPECT_TRUE(fresh.task().params_included());
  ASSERT_EQ(without.task().probes_size(), 1);
  EXPECT_TRUE(testing::DecodeVector(game, without.task().probes(0)) ==
              game.x0());
}

TEST(ToGrpcStatus, MirrorsCodesAndMessages) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status status =
      ToGrpcStatus(absl::FailedPreconditionError("at step 3"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "at step 3");
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace gameopt
