// Rounds over the wire: every algorithm of the core, played by workers
// through real stubs against a real server on 127.0.0.1, ends with the
// parameters of a core Session driven directly with the same submissions.
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

// Runs `workers` RunWorker threads, each with its own channel, to DONE.
std::vector<WorkerRun> RunWorkers(int port, const std::string& session_id,
                                  const QuadraticGame& game, int workers,
                                  Recording* recording,
                                  v1::DType dtype = v1::FLOAT64) {
  std::vector<WorkerRun> runs(workers);
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<v1::GameOptimizer::Stub> stub = NewStub(port);
      WorkerOptions options;
      options.name = "worker" + std::to_string(i);
      options.dtype = dtype;
      options.recording = recording;
      runs[i] = RunWorker(*stub, session_id, game, options);
    });
  }
  for (std::thread& t : threads) t.join();
  return runs;
}

TEST(GameOptimizerService, ConOptWithFourWorkersMatchesTheCoreBitForBit) {
  constexpr int kWorkers = 4;
  constexpr int kSteps = 8;
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const QuadraticGame game = QuadraticGame::TwoPlayer(11);
  v1::SessionConfig config =
      QuadraticConfig(game, v1::CONOPT, kWorkers, kSteps);
  config.mutable_algorithm()->set_estimator(v1::UNBIASED);
  config.mutable_algorithm()->set_gamma(0.5);
  auto stub = NewStub(server->port());
  absl::StatusOr<std::string> id = CreateSession(*stub, config);
  ASSERT_TRUE(id.ok()) << id.status();

  Recording recording;
  for (const WorkerRun& run :
       RunWorkers(server->port(), *id, game, kWorkers, &recording)) {
    EXPECT_TRUE(run.status.ok()) << run.status.error_message();
    EXPECT_EQ(run.last_task.kind(), v1::DONE);
    EXPECT_EQ(run.submissions, 2 * kSteps);  // gradient + products per step
  }
  EXPECT_EQ(recording.rounds().size(), 2u * kSteps);
  ExpectMatchesCore(*stub, *id, config, recording, kWorkers);
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub, *id);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->done());
  EXPECT_EQ(status->step(), kSteps);
  EXPECT_EQ(status->gradient_samples(), kWorkers);
  EXPECT_EQ(server->service().live_reactors(), 0);
}

struct AlgorithmCase {
  std::string name;
  std::function<void(v1::SessionConfig&)> setup;
  // Rounds per step; 0: varies (CGD: at least the gradient, the rhs, one
  // Krylov iteration and the response).
  int phases_per_step;
  v1::DType dtype = v1::FLOAT64;
};

void PrintTo(const AlgorithmCase& c, std::ostream* os) { *os << c.name; }

class EveryAlgorithm : public ::testing::TestWithParam<AlgorithmCase> {};

TEST_P(EveryAlgorithm, CompletesOverTheWireAndMatchesTheCore) {
  constexpr int kWorkers = 2;
  constexpr int kSteps = 10;
  std::unique_ptr<GameOptServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const QuadraticGame game = QuadraticGame::TwoPlayer(21);
  v1::SessionConfig config =
      QuadraticConfig(game, v1::SIMGD, kWorkers, kSteps, GetParam().dtype);
  GetParam().setup(config);
  auto stub = NewStub(server->port());
  absl::StatusOr<std::string> id = CreateSession(*stub, config);
  ASSERT_TRUE(id.ok()) << id.status();

  Recording recording;
  for (const WorkerRun& run : RunWorkers(server->port(), *id, game, kWorkers,
                                         &recording, GetParam().dtype)) {
    EXPECT_TRUE(run.status.ok()) << run.status.error_message();
    EXPECT_EQ(run.last_task.kind(), v1::DONE);
    if (GetParam().phases_per_step > 0) {
      EXPECT_EQ(run.submissions, GetParam().phases_per_step * kSteps);
    } else {
      EXPECT_GE(run.submissions, 5 * kSteps);
    }
  }
  ExpectMatchesCore(*stub, *id, config, recording, kWorkers);
  absl::StatusOr<v1::GetParametersResponse> params = GetParameters(*stub, *id);
  ASSERT_TRUE(params.ok());
  EXPECT_FALSE(DecodeVector(game, params->params()) == game.x0());
}

void Optimizer(v1::SessionConfig& config, v1::Optimizer kind) {
  for (v1::PlayerConfig& player : *config.mutable_players()) {
    player.mutable_optimizer()->set_kind(kind);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Service, EveryAlgorithm,
    ::testing::Values(
        AlgorithmCase{"simgd_momentum",
                      [](v1::SessionConfig& c) { Optimizer(c, v1::MOMENTUM); },
                      1},
        AlgorithmCase{"altgd_gen_twice_nesterov",
                      [](v1::SessionConfig& c) {
                        auto* a = c.mutable_algorithm();
                        a->set_kind(v1::ALTGD);
                        auto* gen = a->add_altgd_order();
                        gen->set_player("gen");
                        gen->set_steps(2);
                        a->add_altgd_order()->set_player("disc");
                        Optimizer(c, v1::NESTEROV);
                      },
                      3},
        AlgorithmCase{"conopt_pooled_rmsprop_tf1",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::CONOPT);
                        c.mutable_algorithm()->set_gamma(2.0);
                        Optimizer(c, v1::RMSPROP);
                        for (auto& p : *c.mutable_players()) {
                          p.mutable_optimizer()->set_rmsprop_preset(
                              v1::TENSORFLOW1);
                        }
                      },
                      2},
        AlgorithmCase{"conopt_local_float32",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::CONOPT);
                        c.mutable_algorithm()->set_estimator(v1::LOCAL);
                      },
                      2, v1::FLOAT32},
        // Raw values of the session's dtype, unbiased: the probes are
        // formed in the samples' bytes and sent from there.
        AlgorithmCase{"conopt_unbiased",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::CONOPT);
                        c.mutable_algorithm()->set_estimator(v1::UNBIASED);
                      },
                      2},
        AlgorithmCase{"conopt_unbiased_float32",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::CONOPT);
                        c.mutable_algorithm()->set_estimator(v1::UNBIASED);
                      },
                      2, v1::FLOAT32},
        AlgorithmCase{"sga_adam",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::SGA);
                        Optimizer(c, v1::ADAM);
                      },
                      2},
        AlgorithmCase{"extragradient_frozen_moments_adam",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::EXTRAGRADIENT);
                        c.mutable_algorithm()->set_extragradient_frozen_moments(
                            true);
                        Optimizer(c, v1::ADAM);
                      },
                      2},
        AlgorithmCase{"shgd_unbiased",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::SHGD);
                        c.mutable_algorithm()->set_estimator(v1::UNBIASED);
                      },
                      2},
        AlgorithmCase{"optimistic",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::OPTIMISTIC);
                      },
                      1},
        AlgorithmCase{"lookahead_extragradient",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::EXTRAGRADIENT);
                        c.mutable_algorithm()->set_lookahead_k(3);
                        c.mutable_algorithm()->set_lookahead_alpha(0.3);
                      },
                      2},
        AlgorithmCase{"altgd_negative_momentum",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::ALTGD);
                        Optimizer(c, v1::MOMENTUM);
                        for (auto& p : *c.mutable_players()) {
                          p.mutable_optimizer()->set_momentum(-0.5);
                        }
                      },
                      2},
        AlgorithmCase{"optimistic_adam",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::OPTIMISTIC_ADAM);
                        Optimizer(c, v1::ADAM);
                      },
                      1},
        AlgorithmCase{"extrapolation_from_the_past_float32",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(
                            v1::EXTRAPOLATION_FROM_THE_PAST);
                      },
                      1, v1::FLOAT32},
        AlgorithmCase{"lead_momentum",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::LEAD);
                        c.mutable_algorithm()->set_lead_alpha(0.5);
                        Optimizer(c, v1::MOMENTUM);
                        for (auto& p : *c.mutable_players()) {
                          p.mutable_optimizer()->set_momentum(0.3);
                        }
                      },
                      3},
        AlgorithmCase{"cgd_gmres",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::CGD);
                        c.mutable_algorithm()->set_cgd_tolerance(1e-10);
                      },
                      0},
        // Two players: two cross-gradient rounds, a VJP and a JVP round
        // per player.
        AlgorithmCase{"lola_momentum",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::LOLA);
                        c.mutable_algorithm()->set_lola_alpha(0.3);
                        Optimizer(c, v1::MOMENTUM);
                      },
                      6},
        AlgorithmCase{"sos_float32",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::SOS);
                        c.mutable_algorithm()->set_sos_b(0.9);
                      },
                      6, v1::FLOAT32},
        AlgorithmCase{"acgd_float32",
                      [](v1::SessionConfig& c) {
                        c.mutable_algorithm()->set_kind(v1::ACGD);
                        c.mutable_algorithm()->set_cgd_max_iterations(3);
                        c.mutable_algorithm()->set_acgd_beta(0.9);
                      },
                      0, v1::FLOAT32}),
    [](const ::testing::TestParamInfo<AlgorithmCase>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace gameopt::testing
