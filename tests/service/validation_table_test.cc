// Input hardening, table by table: every kind of bad input to every RPC,
// sent to a real server on 127.0.0.1 through real stubs. Each row checks
// the status code and that the message names the field; after each row
// every session's status and parameters are byte-identical to before (the
// bad request touched nothing), and a valid round afterwards leaves the
// session exactly where the same valid rounds leave a clean session.
//
//
// errors_test.cc shows one example per status code; these tables are the
// exhaustive list: CreateSession here, the submissions in
// validation_submit_test.cc, the other RPCs and the regression tests of the
// gaps the tables found in validation_rpc_test.cc.
#include "tests/service/validation_table.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace gameopt::testing {
namespace {

// ---- CreateSession ----------------------------------------------------------

TEST_F(ValidationTableTest, CreateSessionRejectsEveryBadConfigField) {
  const v1::SessionConfig base = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  // A live session with state (a completed round) that no row may touch.
  Scenario dirty(*stub_, game_, base), clean(*stub_, game_, base);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }

  struct ConfigRow {
    std::string what;
    std::function<void(v1::SessionConfig&)> edit;
    std::string text;
    grpc::StatusCode code = kInvalid;
  };
  auto optimizer = [](v1::SessionConfig& c) {
    return c.mutable_players(1)->mutable_optimizer();
  };
  auto with = [optimizer](v1::Optimizer kind,
                          std::function<void(v1::OptimizerConfig*)> set) {
    return [optimizer, kind, set](v1::SessionConfig& c) {
      optimizer(c)->set_kind(kind);
      set(optimizer(c));
    };
  };
  auto tensor = [](v1::SessionConfig& c, int p, int t) {
    return c.mutable_players(p)->mutable_tensors(t);
  };
  const std::string name257(257, 'a');
  const std::vector<ConfigRow> rows = {
      // Players.
      {"no players", [](v1::SessionConfig& c) { c.clear_players(); },
       "players: a game needs at least 2 players, got 0"},
      {"one player",
       [](v1::SessionConfig& c) { c.mutable_players()->RemoveLast(); },
       "at least 2 players, got 1"},
      {"empty player name",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name(""); },
       "config.players[1].name ''"},
      {"player name with a space",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("d isc"); },
       "config.players[1].name 'd isc'"},
      {"player name with a newline",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("d\nisc"); },
       "config.players[1].name"},
      {"player name not ASCII",
       [](v1::SessionConfig& c) {
         c.mutable_players(1)->set_name("d\xc3\xa9");
       },
       "config.players[1].name"},
      {"player name of 257 characters",
       [&](v1::SessionConfig& c) { c.mutable_players(1)->set_name(name257); },
       "config.players[1].name"},
      {"duplicate player name",
       [](v1::SessionConfig& c) { c.mutable_players(1)->set_name("gen"); },
       "config.players[1].name 'gen' is used by another player"},
      {"player without tensors",
       [](v1::SessionConfig& c) { c.mutable_players(1)->clear_tensors(); },
       "config.players[1] ('disc') has no tensors"},
      // Tensors: names, shapes, dtypes, initial values.
      {"empty tensor name",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name(""); },
       "config.players[0].tensors[1].name ''"},
      {"tensor name with a bad character",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name("b*"); },
       "config.players[0].tensors[1].name 'b*'"},
      {"tensor name of 257 characters",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name(name257); },
       "config.players[0].tensors[1].name"},
      {"duplicate tensor name",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_name("w"); },
       "config.players[0].tensors[1].name 'w' is used twice"},
      {"zero dimension",
       [&](v1::SessionConfig& c) { tensor(c, 0, 0)->set_shape(1, 0); },
       "config.players[0].tensors[0].shape [2, 0]"},
      {"negative dimension",
       [&](v1::SessionConfig& c) { tensor(c, 0, 0)->set_shape(0, -2); },
       "config.players[0].tensors[0].shape [-2, 2]"},
      {"shape whose product overflows int64",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 0);
         t->clear_data();
         t->set_shape(0, int64_t{1} << 32);
         t->set_shape(1, int64_t{1} << 32);
       },
       "config.players[0].tensors[0].shape [4294967296, 4294967296]"},
      {"shape past 2^40 elements",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 0);
         t->clear_data();
         t->set_shape(0, int64_t{1} << 21);
         t->set_shape(1, int64_t{1} << 20);
       },
       "config.players[0].tensors[0].shape"},
      {"unknown session dtype",
       [](v1::SessionConfig& c) { c.set_dtype(static_cast<v1::DType>(7)); },
       "config.dtype: unknown enum value 7"},
      {"unknown tensor dtype",
       [&](v1::SessionConfig& c) {
         tensor(c, 1, 0)->set_dtype(static_cast<v1::DType>(9));
       },
       "config.players[1].tensors[0].dtype: unknown enum value 9"},
      {"initial values one byte short",
       [&](v1::SessionConfig& c) {
         tensor(c, 0, 1)->mutable_data()->resize(15);
       },
       "players[0].tensors[1] ('gen/b').initial_values has 15 bytes"},
      {"initial values of the wrong dtype",
       [&](v1::SessionConfig& c) { tensor(c, 0, 1)->set_dtype(v1::FLOAT32); },
       "players[0].tensors[1] ('gen/b').initial_values has 16 bytes"},
      {"initial value NaN",
       [&](v1::SessionConfig& c) { Poke(tensor(c, 1, 0), 2, kNaN); },
       "players[1].tensors[0] ('disc/w').initial_values is not finite at "
       "index 2"},
      {"initial value inf",
       [&](v1::SessionConfig& c) { Poke(tensor(c, 1, 1), 0, -kInf); },
       "players[1].tensors[1] ('disc/s').initial_values is not finite"},
      {"float32 initial value NaN",
       [&](v1::SessionConfig& c) {
         v1::Tensor* t = tensor(c, 0, 1);
         t->set_dtype(v1::FLOAT32);
         t->mutable_data()->assign(8, '\0');
         Poke(t, 1, kNaN);
       },
       "players[0].tensors[1] ('gen/b').initial_values is not finite at "
       "index 1"},
      // Base optimizers.
      {"unknown optimizer",
       [&](v1::SessionConfig& c) {
         optimizer(c)->set_kind(static_cast<v1::Optimizer>(42));
       },
       "config.players[1].optimizer.kind: unknown enum value 42"},
      {"unknown RMSProp preset",
       [&](v1::SessionConfig& c) {
         optimizer(c)->set_rmsprop_preset(static_cast<v1::RmsPropPreset>(3));
       },
       "config.players[1].optimizer.rmsprop_preset: unknown enum value 3"},
      {"negative learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(-0.1); },
       "config.players[1].optimizer.learning_rate = -0.1"},
      {"NaN learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(kNaN); },
       "config.players[1].optimizer.learning_rate"},
      {"infinite learning rate",
       [&](v1::SessionConfig& c) { optimizer(c)->set_learning_rate(kInf); },
       "config.players[1].optimizer.learning_rate"},
      {"momentum 1", with(v1::MOMENTUM, [](auto* o) { o->set_momentum(1.0); }),
       "config.players[1].optimizer.momentum = 1"},
      {"negative Nesterov momentum",
       with(v1::NESTEROV, [](auto* o) { o->set_momentum(-0.1); }),
       "config.players[1].optimizer.momentum"},
      {"RMSProp decay 1",
       with(v1::RMSPROP, [](auto* o) { o->set_rmsprop_decay(1.0); }),
       "config.players[1].optimizer.rmsprop_decay = 1"},
      {"RMSProp epsilon 0",
       with(v1::RMSPROP, [](auto* o) { o->set_epsilon(0.0); }),
       "config.players[1].optimizer.epsilon = 0"},
      {"RMSProp negative initial accumulator",
       with(v1::RMSPROP, [](auto* o) { o->set_initial_accumulator(-1.0); }),
       "config.players[1].optimizer.initial_accumulator = -1"},
      {"Adam negative epsilon",
       with(v1::ADAM, [](auto* o) { o->set_epsilon(-1e-8); }),
       "config.players[1].optimizer.epsilon"},
      {"Adam beta1 1", with(v1::ADAM, [](auto* o) { o->set_beta1(1.0); }),
       "config.players[1].optimizer.beta1 = 1"},
      {"Adam NaN beta2", with(v1::ADAM, [](auto* o) { o->set_beta2(kNaN); }),
       "config.players[1].optimizer.beta2"},
      {"negative clip value",
       [&](v1::SessionConfig& c) { optimizer(c)->set_clip_value(-1.0); },
       "config.players[1].optimizer.clip_value = -1"},
      {"NaN clip value",
       [&](v1::SessionConfig& c) { optimizer(c)->set_clip_value(kNaN); },
       "config.players[1].optimizer.clip_value"},
      // The algorithm.
      {"unknown algorithm",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(static_cast<v1::Algorithm>(99));
       },
       "config.algorithm.kind: unknown enum value 99"},
      {"unknown estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_estimator(static_cast<v1::Estimator>(9));
       },
       "config.algorithm.estimator: unknown enum value 9"},
      {"negative gamma",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_gamma(-1.0); },
       "config.algorithm.gamma = -1"},
      {"NaN gamma",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_gamma(kNaN); },
       "config.algorithm.gamma"},
      {"negative lambda0",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_lambda0(-2.0); },
       "config.algorithm.lambda0 = -2"},
      {"negative lookahead k",
       [](v1::SessionConfig& c) { c.mutable_algorithm()->set_lookahead_k(-1); },
       "config.algorithm.lookahead_k = -1"},
      {"lookahead alpha above 1",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_lookahead_k(5);
         c.mutable_algorithm()->set_lookahead_alpha(1.5);
       },
       "config.algorithm.lookahead_alpha = 1.5"},
      {"negative lookahead alpha",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_lookahead_k(5);
         c.mutable_algorithm()->set_lookahead_alpha(-0.5);
       },
       "config.algorithm.lookahead_alpha"},
      {"negative global clip norm",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_clip_global_norm(-1.0);
       },
       "config.algorithm.clip_global_norm = -1"},
      {"fused products with the pooled estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->set_fuse_local_products(true);
       },
       "algorithm.fuse_local_products needs algorithm conopt or sga with "
       "estimator local"},
      {"adaptive gamma without the field's spectrum estimates",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->mutable_adaptive_gamma()->set_enabled(true);
       },
       "spectrum.every_steps > 0 and add a spectrum request with operator "
       "ALGORITHM_FIELD and smallest_real"},
      {"adaptive gamma with sga",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SGA);
         c.mutable_algorithm()->mutable_adaptive_gamma()->set_enabled(true);
       },
       "algorithm.adaptive_gamma adapts ConOpt's gamma: it needs algorithm "
       "conopt"},
      {"adaptive gamma with a decrease that is no decrease",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         auto* rule = c.mutable_algorithm()->mutable_adaptive_gamma();
         rule->set_enabled(true);
         rule->set_decrease(1.5);
       },
       "algorithm.adaptive_gamma.decrease"},
      {"fused products with simgd",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_estimator(v1::LOCAL);
         c.mutable_algorithm()->set_fuse_local_products(true);
       },
       "algorithm.fuse_local_products"},
      {"step schedule without a step size",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(1)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::STEP);
         s->set_gamma(0.5);
       },
       "players[1].optimizer.schedule.step_size = 0"},
      {"exponential schedule with gamma 0",
       [](v1::SessionConfig& c) {
         c.mutable_players(0)
             ->mutable_optimizer()
             ->mutable_schedule()
             ->set_kind(v1::LearningRateSchedule::EXPONENTIAL);
       },
       "players[0].optimizer.schedule.gamma = 0"},
      {"multistep milestones not increasing",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::MULTI_STEP);
         s->set_gamma(0.1);
         s->add_milestones(5);
         s->add_milestones(5);
       },
       "players[0].optimizer.schedule.milestones[1] = 5"},
      {"cosine schedule with negative eta_min",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::COSINE);
         s->set_t_max(10);
         s->set_eta_min(-1);
       },
       "players[0].optimizer.schedule.eta_min = -1"},
      {"linear schedule with start factor 0",
       [](v1::SessionConfig& c) {
         auto* s =
             c.mutable_players(0)->mutable_optimizer()->mutable_schedule();
         s->set_kind(v1::LearningRateSchedule::LINEAR);
         s->set_end_factor(1);
         s->set_total_steps(4);
       },
       "players[0].optimizer.schedule.start_factor = 0"},
      {"unknown schedule kind",
       [](v1::SessionConfig& c) {
         c.mutable_players(0)
             ->mutable_optimizer()
             ->mutable_schedule()
             ->set_kind(static_cast<v1::LearningRateSchedule::Kind>(17));
       },
       "config.players[0].optimizer.schedule.kind: unknown enum value 17"},
      {"unbiased estimator with one sample per round",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::CONOPT);
         c.mutable_algorithm()->set_estimator(v1::UNBIASED);
         c.set_workers_per_round(1);
       },
       "config.algorithm.estimator = unbiased needs at least 2"},
      {"altgd stage of an unknown player",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         c.mutable_algorithm()->add_altgd_order()->set_player("ghost");
       },
       "config.algorithm.altgd_order[0].player 'ghost'"},
      {"altgd stage of 1001 steps",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         v1::AltGdStage* stage = c.mutable_algorithm()->add_altgd_order();
         stage->set_player("gen");
         stage->set_steps(1001);
       },
       "config.algorithm.altgd_order[0].steps = 1001"},
      {"altgd stage of negative steps",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::ALTGD);
         v1::AltGdStage* stage = c.mutable_algorithm()->add_altgd_order();
         stage->set_player("disc");
         stage->set_steps(-3);
       },
       "config.algorithm.altgd_order[0].steps = -3"},
      // LOLA and SOS.
      {"lola with a negative alpha",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::LOLA);
         c.mutable_algorithm()->set_lola_alpha(-0.5);
       },
       "config.algorithm.lola_alpha = -0.5"},
      {"sos with a = 1",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SOS);
         c.mutable_algorithm()->set_sos_a(1.0);
       },
       "config.algorithm.sos_a = 1"},
      {"sos with the local estimator",
       [](v1::SessionConfig& c) {
         c.mutable_algorithm()->set_kind(v1::SOS);
         c.mutable_algorithm()->set_estimator(v1::LOCAL);
       },
       "leave the estimator unset (pooled)"},
      // Workers, quorum, deadline, samples, steps, policy.
      {"negative workers per round",
       [](v1::SessionConfig& c) { c.set_workers_per_round(-1); },
       "config.workers_per_round = -1"},
      {"10001 workers per round",
       [](v1::SessionConfig& c) { c.set_workers_per_round(10001); },
       "config.workers_per_round = 10001"},
      {"negative quorum", [](v1::SessionConfig& c) { c.set_quorum(-1); },
       "config.quorum = -1"},
      {"quorum above K", [](v1::SessionConfig& c) { c.set_quorum(3); },
       "config.quorum = 3"},
      {"NaN deadline",
       [](v1::SessionConfig& c) { c.set_phase_deadline_seconds(kNaN); },
       "config.phase_deadline_seconds is NaN"},
      {"deadline that rounds to zero",
       [](v1::SessionConfig& c) { c.set_phase_deadline_seconds(1e-300); },
       "config.phase_deadline must be positive"},
      {"negative samples per worker",
       [](v1::SessionConfig& c) { c.set_samples_per_worker(-1); },
       "config.samples_per_worker = -1"},
      {"1025 samples per worker",
       [](v1::SessionConfig& c) { c.set_samples_per_worker(1025); },
       "config.samples_per_worker = 1025"},
      {"negative max steps", [](v1::SessionConfig& c) { c.set_max_steps(-5); },
       "config.max_steps = -5"},
      {"unknown invalid-sample policy",
       [](v1::SessionConfig& c) {
         c.set_invalid_sample_policy(static_cast<v1::InvalidSamplePolicy>(4));
       },
       "config.invalid_sample_policy: unknown enum value 4"},
      // Size.
      {"config over the message limit",
       [](v1::SessionConfig& c) {
         c.set_name(std::string((kMaxMessageMb << 20) + 1, 'n'));
       },
       "", kExhausted},
  };
  std::vector<Row> table;
  for (const ConfigRow& row : rows) {
    table.push_back(Row{row.what,
                        [this, &base, row] {
                          v1::SessionConfig config = base;
                          row.edit(config);
                          return SendCreate(config);
                        },
                        row.code, row.text});
  }
  RunTable(table);

  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

}  // namespace
}  // namespace gameopt::testing
