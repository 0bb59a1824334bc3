// gameopt_client: the reference client. Plays the sample games of
// DESIGN.md section 7 against a gameopt server.
//
//   gameopt_client play --game bilinear --algorithm conopt --gamma 1
//       --lr 0.2 --workers 2 --steps 500 [--server 127.0.0.1:50051]
//       [--out results/bilinear-conopt]
//
// Without --server it starts an in-process server.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/play.h"

// Game.
ABSL_FLAG(std::string, game, "bilinear", "bilinear, dirac, quadratic or mog");
ABSL_FLAG(int, dim, 1, "bilinear: dimension d of x and y (x^T A y)");
ABSL_FLAG(std::string, variant, "gan",
          "dirac: gan, nsgan, wgan, wgan-gp, r1 or instance-noise");
ABSL_FLAG(double, penalty, 0.3, "dirac: weight of the wgan-gp / r1 penalty");
ABSL_FLAG(double, noise, 0.5, "dirac: instance noise std");
ABSL_FLAG(double, clip, 1.0, "dirac wgan: clip the discriminator to [-c, c]");
ABSL_FLAG(std::string, players, "2,2",
          "quadratic: each player's dimension, comma-separated");
ABSL_FLAG(double, quadratic_noise, 0.0, "quadratic: minibatch noise std");
ABSL_FLAG(int, batch, 512, "mog: minibatch size (real and generated)");
ABSL_FLAG(bool, saturating, false, "mog: saturating generator loss");
ABSL_FLAG(uint64_t, game_seed, 1, "seed of the game's own draws (init, A)");
// Algorithm and optimizer.
ABSL_FLAG(std::string, algorithm, "simgd",
          "simgd, altgd, conopt, sga, extragradient or optimistic");
ABSL_FLAG(double, gamma, 1.0, "conopt: weight of the consensus term");
ABSL_FLAG(double, lambda, 1.0, "sga: lambda0");
ABSL_FLAG(bool, sga_alignment, true, "sga: choose lambda's sign by alignment");
ABSL_FLAG(std::string, altgd_order, "",
          "altgd: e.g. discriminator:5,generator:1 (default: each once)");
ABSL_FLAG(int, lookahead, 0, "wrap in lookahead-minmax every K steps (0: off)");
ABSL_FLAG(double, lookahead_alpha, 0.5, "lookahead's alpha");
ABSL_FLAG(std::string, estimator, "pooled", "local, pooled or unbiased");
ABSL_FLAG(std::string, optimizer, "",
          "sgd, momentum, nesterov, rmsprop or adam (default: rmsprop for "
          "mog, else sgd)");
ABSL_FLAG(std::string, rmsprop_preset, "pytorch", "pytorch or tf1");
ABSL_FLAG(double, lr, -1, "learning rate (default: 1e-4 for mog, 0.05 for "
          "quadratic, else 0.2)");
ABSL_FLAG(double, momentum, 0.9, "momentum / nesterov coefficient");
ABSL_FLAG(double, clip_norm, 0.0, "global-norm clipping of the update (0: off)");
// Session.
ABSL_FLAG(int, workers, 1, "worker threads (K per round)");
ABSL_FLAG(int, quorum, 0, "workers needed past the deadline (0: all)");
ABSL_FLAG(int, samples_per_worker, 1, "gradient samples per worker per round");
ABSL_FLAG(double, deadline, 60, "phase deadline in seconds");
ABSL_FLAG(int64_t, steps, 500, "steps to play");
ABSL_FLAG(uint64_t, seed, 1, "session seed (minibatch draws)");
ABSL_FLAG(bool, float32, false, "float32 server state (default float64)");
// Where and what.
ABSL_FLAG(std::string, server, "", "host:port; empty starts one in-process");
ABSL_FLAG(int, max_message_mb, 1024, "largest gRPC message, MiB");
ABSL_FLAG(std::string, out, "", "results folder (default results/GAME-ALGO)");
ABSL_FLAG(int, metrics_every, 0,
          "record metrics every N steps (default: 100 for mog, else 1)");
ABSL_FLAG(bool, live, true, "show the live progress line");
ABSL_FLAG(bool, plots, true, "draw PNG plots with gnuplot");
ABSL_FLAG(bool, keep_session, false, "leave the session on the server");

namespace gameopt {
namespace {

absl::StatusOr<PlayConfig> ConfigFromFlags() {
  PlayConfig config;
  config.game = absl::GetFlag(FLAGS_game);
  const bool mog = config.game == "mog";
  GameOptions& g = config.game_options;
  g.seed = absl::GetFlag(FLAGS_game_seed);
  g.bilinear_dim = absl::GetFlag(FLAGS_dim);
  absl::StatusOr<DiracVariant> variant =
      ParseDiracVariant(absl::GetFlag(FLAGS_variant));
  if (!variant.ok()) return variant.status();
  g.dirac.variant = *variant;
  g.dirac.penalty_weight = absl::GetFlag(FLAGS_penalty);
  g.dirac.noise_std = absl::GetFlag(FLAGS_noise);
  g.dirac.clip = absl::GetFlag(FLAGS_clip);
  g.quadratic_dims.clear();
  for (absl::string_view item :
       absl::StrSplit(absl::GetFlag(FLAGS_players), ',', absl::SkipEmpty())) {
    int dim;
    if (!absl::SimpleAtoi(item, &dim)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--players: '", item, "' is not a number"));
    }
    g.quadratic_dims.push_back(dim);
  }
  g.quadratic_noise_std = absl::GetFlag(FLAGS_quadratic_noise);
  g.mog.batch = absl::GetFlag(FLAGS_batch);
  g.mog.saturating = absl::GetFlag(FLAGS_saturating);

  SessionOptions& s = config.session;
  s.algorithm = absl::GetFlag(FLAGS_algorithm);
  s.gamma = absl::GetFlag(FLAGS_gamma);
  s.lambda = absl::GetFlag(FLAGS_lambda);
  s.sga_alignment = absl::GetFlag(FLAGS_sga_alignment);
  auto order = ParseAltGdOrder(absl::GetFlag(FLAGS_altgd_order));
  if (!order.ok()) return order.status();
  s.altgd_order = *order;
  s.lookahead_k = absl::GetFlag(FLAGS_lookahead);
  s.lookahead_alpha = absl::GetFlag(FLAGS_lookahead_alpha);
  s.estimator = absl::GetFlag(FLAGS_estimator);
  s.optimizer = absl::GetFlag(FLAGS_optimizer);
  if (s.optimizer.empty()) s.optimizer = mog ? "rmsprop" : "sgd";
  s.rmsprop_preset = absl::GetFlag(FLAGS_rmsprop_preset);
  s.learning_rate = absl::GetFlag(FLAGS_lr);
  if (s.learning_rate < 0) {
    s.learning_rate = mog ? 1e-4 : config.game == "quadratic" ? 0.05 : 0.2;
  }
  s.momentum = absl::GetFlag(FLAGS_momentum);
  s.clip_global_norm = absl::GetFlag(FLAGS_clip_norm);
  if (config.game == "dirac" && g.dirac.variant == DiracVariant::kWgan) {
    s.clip_value["discriminator"] = g.dirac.clip;
  }
  s.workers = absl::GetFlag(FLAGS_workers);
  s.quorum = absl::GetFlag(FLAGS_quorum);
  s.samples_per_worker = absl::GetFlag(FLAGS_samples_per_worker);
  s.phase_deadline_seconds = absl::GetFlag(FLAGS_deadline);
  s.seed = absl::GetFlag(FLAGS_seed);
  s.float64 = !absl::GetFlag(FLAGS_float32);

  config.steps = absl::GetFlag(FLAGS_steps);
  config.server = absl::GetFlag(FLAGS_server);
  config.max_message_mb = absl::GetFlag(FLAGS_max_message_mb);
  config.out_dir = absl::GetFlag(FLAGS_out);
  if (config.out_dir.empty()) {
    config.out_dir = absl::StrCat("results/", config.game, "-", s.algorithm);
  }
  config.metrics_every = absl::GetFlag(FLAGS_metrics_every);
  if (config.metrics_every <= 0) config.metrics_every = mog ? 100 : 1;
  config.live = absl::GetFlag(FLAGS_live);
  config.plots = absl::GetFlag(FLAGS_plots);
  config.keep_session = absl::GetFlag(FLAGS_keep_session);
  return config;
}

int PlayCommand() {
  absl::StatusOr<PlayConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "gameopt_client: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<PlayResult> result = Play(*config);
  if (!result.ok()) {
    std::fprintf(stderr, "gameopt_client: %s\n",
                 result.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", ResultLine(*config, *result).c_str());
  for (const std::string& file : result->files) {
    std::printf("wrote %s\n", file.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace gameopt

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gameopt_client play --game G --algorithm A [--workers K] [--steps N] "
      "[--server HOST:PORT] [hyper-parameters]\n  Games: bilinear, dirac, "
      "quadratic, mog. Algorithms: simgd, altgd, conopt, sga, extragradient, "
      "optimistic (--lookahead K wraps any). See --help for every flag.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() > 1 ? args[1] : "";
  if (command == "play") return gameopt::PlayCommand();
  std::fprintf(stderr, "usage: %s\n",
               std::string(absl::ProgramUsageMessage()).c_str());
  return 2;
}
