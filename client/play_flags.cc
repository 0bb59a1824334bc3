#include "client/play_flags.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

// Game.
ABSL_FLAG(std::string, game, "bilinear",
          "bilinear, bilinear_sum, dirac, quadratic, mog or tandem");
ABSL_FLAG(int, dim, 1,
          "bilinear, bilinear_sum: dimension d of x and y (x^T A y)");
ABSL_FLAG(int, terms, 20,
          "bilinear_sum: n, the terms of the finite sum (a minibatch is one)");
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
          "simgd, altgd, conopt, sga, extragradient, optimistic, "
          "optimistic_adam (optimizer adam), extrapolation_from_the_past, "
          "lead (2 players, optimizer sgd or momentum), cgd or acgd (2 "
          "players, optimizer sgd), shgd (descent on 1/2 |xi|^2 with the "
          "--estimator's J^T xi; unbiased needs --workers 2 or "
          "--samples_per_worker 2), l_svrhg (its variance-reduced form: "
          "--estimator unbiased, --svrhg_probability)");
ABSL_FLAG(double, gamma, 1.0, "conopt: weight of the consensus term");
ABSL_FLAG(bool, adaptive_gamma, false,
          "conopt: adapt gamma from --gamma on (proto AdaptiveGamma's rule), "
          "with a spectrum estimate of the ConOpt field every "
          "--adaptive_gamma_every steps");
ABSL_FLAG(int64_t, adaptive_gamma_every, 10,
          "with --adaptive_gamma: steps between the field's spectrum "
          "estimates, which raise gamma");
ABSL_FLAG(double, lambda, 1.0, "sga: lambda0");
ABSL_FLAG(bool, sga_alignment, true, "sga: choose lambda's sign by alignment");
ABSL_FLAG(std::string, altgd_order, "",
          "altgd: e.g. discriminator:5,generator:1 (default: each once)");
ABSL_FLAG(int, lookahead, 0, "wrap in lookahead-minmax every K steps (0: off)");
ABSL_FLAG(double, lookahead_alpha, 0.5, "lookahead's alpha");
ABSL_FLAG(double, svrhg_probability, 0.1,
          "l_svrhg: probability that the snapshot moves to x after a step "
          "(then two full-shard rounds recompute grad H there)");
ABSL_FLAG(bool, svrhg_correction, false,
          "conopt with --estimator unbiased: variance-reduce the correction "
          "gamma J^T xi with l_svrhg's snapshot (SVRE-style)");
ABSL_FLAG(double, lead_alpha, 0.1,
          "lead: weight of the mixed-derivative correction (alpha)");
ABSL_FLAG(std::string, estimator, "pooled", "local, pooled or unbiased");
ABSL_FLAG(bool, fuse_local_products, false,
          "conopt / sga with --estimator local: the gradient round also "
          "carries the products, one round per step");
ABSL_FLAG(double, cgd_tolerance, 1e-6,
          "cgd / acgd: relative residual the Krylov solve of a step stops at");
ABSL_FLAG(int, cgd_max_iterations, 50,
          "cgd / acgd: Krylov iterations per step at most (2 product rounds "
          "each)");
ABSL_FLAG(bool, cgd_zero_sum, false,
          "cgd / acgd: the game is zero-sum (conjugate gradient; else GMRES)");
ABSL_FLAG(double, acgd_beta, 0.99, "acgd: decay of the mean squared gradient");
ABSL_FLAG(double, acgd_epsilon, 1e-5, "acgd: added to its square root");
ABSL_FLAG(double, lola_alpha, 1.0,
          "lola / sos: the opponents' look-ahead step alpha");
ABSL_FLAG(double, sos_a, 0.5, "sos: the a of p1 = min(1, -a |xi_0|^2 / dot)");
ABSL_FLAG(double, sos_b, 0.1, "sos: p2 = |xi|^2 when |xi| < b");
ABSL_FLAG(bool, bias_meter, false,
          "conopt / sga with --estimator pooled or unbiased: report the "
          "estimator's bias |P - U| / |P| (pooled minus leave-one-out "
          "J^T xi) every step; one more product per sample, same steps");
ABSL_FLAG(std::string, lr_schedule, "constant",
          "learning-rate schedule of every player: constant, step, "
          "multistep, exponential, cosine or linear (torch.optim."
          "lr_scheduler's StepLR, MultiStepLR, ExponentialLR, "
          "CosineAnnealingLR, LinearLR, stepped once per step)");
ABSL_FLAG(double, lr_gamma, 0.1, "step, multistep, exponential: the decay");
ABSL_FLAG(int64_t, lr_step_size, 0, "step: decay every this many steps");
ABSL_FLAG(std::string, lr_milestones, "",
          "multistep: the steps to decay at, e.g. 1000,1500");
ABSL_FLAG(int64_t, lr_t_max, 0, "cosine: half period in steps (0: --steps)");
ABSL_FLAG(double, lr_eta_min, 0.0, "cosine: the minimum learning rate");
ABSL_FLAG(double, lr_start_factor, 1.0 / 3.0, "linear: the first factor");
ABSL_FLAG(double, lr_end_factor, 1.0, "linear: the last factor");
ABSL_FLAG(int64_t, lr_total_steps, 5,
          "linear: steps from start_factor to end_factor");
ABSL_FLAG(std::string, optimizer, "",
          "sgd, momentum, nesterov, rmsprop or adam (default: rmsprop for "
          "mog, else sgd)");
ABSL_FLAG(std::string, rmsprop_preset, "pytorch", "pytorch or tf1");
ABSL_FLAG(std::optional<double>, beta1, std::nullopt,
          "adam: beta1 (unset: 0.9)");
ABSL_FLAG(std::optional<double>, beta2, std::nullopt,
          "adam: beta2 (unset: 0.999)");
ABSL_FLAG(double, lr, -1,
          "learning rate (default: 1e-4 for mog, 0.05 for "
          "quadratic, else 0.2)");
ABSL_FLAG(double, momentum, 0.9,
          "momentum / nesterov coefficient; momentum in (-1, 1), negative "
          "= negative momentum (with --algorithm altgd: alternating)");
ABSL_FLAG(double, clip_norm, 0.0,
          "global-norm clipping of the update (0: off)");
// Session.
ABSL_FLAG(int, workers, 1, "worker threads (K per round)");
ABSL_FLAG(int, quorum, 0, "workers needed past the deadline (0: all)");
ABSL_FLAG(int, samples_per_worker, 1, "gradient samples per worker per round");
ABSL_FLAG(double, deadline, 60, "phase deadline in seconds");
ABSL_FLAG(int64_t, steps, 500, "steps to play");
ABSL_FLAG(uint64_t, seed, 1, "session seed (minibatch draws)");
ABSL_FLAG(bool, float32, false, "float32 server state (default float64)");
ABSL_FLAG(std::string, wire, "none",
          "compressed tensors on the wire, both ways: none, bfloat16, "
          "float16 or int8_block");
ABSL_FLAG(bool, wire_stochastic, false,
          "round what is sent on a compressed wire stochastically "
          "(unbiased) instead of to nearest-even");
// Where and what.
ABSL_FLAG(std::string, server, "",
          "host:port, or host:port,host:port,... one per shard (sharded); "
          "play and sweep: empty starts in-process servers");
ABSL_FLAG(int, shards, 1,
          "play without --server: shard over this many in-process servers");
ABSL_FLAG(std::string, name, "",
          "create: the session's name (default: the game's), which `work "
          "--session_name` finds it by");
ABSL_FLAG(std::string, out, "", "results folder (default results/GAME-ALGO)");
ABSL_FLAG(int, metrics_every, 0,
          "record metrics every N steps (default: 100 for mog, else 1)");
ABSL_FLAG(bool, live, true, "show the live progress line");
ABSL_FLAG(bool, plots, true, "draw PNG plots with gnuplot");
ABSL_FLAG(bool, keep_session, false, "leave the session on the server");
// Spectrum diagnostics.
ABSL_FLAG(int, spectrum_k, 0,
          "play: estimate J's (and the field's) eigenvalues, k per group, "
          "before and after training; spectrum: k per group (0: 3)");

ABSL_FLAG(int, max_message_mb, 1024, "largest gRPC message, MiB");
// Security (servers started with --tls_cert / --tokens_file).
ABSL_FLAG(std::string, tls_roots, "",
          "PEM roots that signed the server's certificate: speak TLS to "
          "--server (empty: plaintext)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for mutual TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, token, "",
          "bearer token sent on every call (default: the environment "
          "variable GAMEOPT_TOKEN)");

namespace gameopt {

ChannelOptions ChannelFromFlags() {
  ChannelOptions channel;
  channel.max_message_mb = absl::GetFlag(FLAGS_max_message_mb);
  channel.tls_roots_file = absl::GetFlag(FLAGS_tls_roots);
  channel.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  channel.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  channel.token = absl::GetFlag(FLAGS_token);
  if (channel.token.empty()) {
    const char* env = std::getenv("GAMEOPT_TOKEN");
    if (env != nullptr) channel.token = env;
  }
  return channel;
}

absl::StatusOr<PlayConfig> ConfigFromFlags() {
  PlayConfig config;
  config.game = absl::GetFlag(FLAGS_game);
  const bool mog = config.game == "mog";
  GameOptions& g = config.game_options;
  g.seed = absl::GetFlag(FLAGS_game_seed);
  g.bilinear_dim = absl::GetFlag(FLAGS_dim);
  g.bilinear_terms = absl::GetFlag(FLAGS_terms);
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
  s.adaptive_gamma = absl::GetFlag(FLAGS_adaptive_gamma);
  s.adaptive_gamma_every = absl::GetFlag(FLAGS_adaptive_gamma_every);
  s.lambda = absl::GetFlag(FLAGS_lambda);
  s.sga_alignment = absl::GetFlag(FLAGS_sga_alignment);
  auto order = ParseAltGdOrder(absl::GetFlag(FLAGS_altgd_order));
  if (!order.ok()) return order.status();
  s.altgd_order = *order;
  s.lookahead_k = absl::GetFlag(FLAGS_lookahead);
  s.lookahead_alpha = absl::GetFlag(FLAGS_lookahead_alpha);
  s.lead_alpha = absl::GetFlag(FLAGS_lead_alpha);
  s.svrhg_probability = absl::GetFlag(FLAGS_svrhg_probability);
  s.svrhg_correction = absl::GetFlag(FLAGS_svrhg_correction);
  s.beta1 = absl::GetFlag(FLAGS_beta1);
  s.beta2 = absl::GetFlag(FLAGS_beta2);
  s.estimator = absl::GetFlag(FLAGS_estimator);
  s.fuse_local_products = absl::GetFlag(FLAGS_fuse_local_products);
  s.cgd_tolerance = absl::GetFlag(FLAGS_cgd_tolerance);
  s.cgd_max_iterations = absl::GetFlag(FLAGS_cgd_max_iterations);
  s.cgd_zero_sum = absl::GetFlag(FLAGS_cgd_zero_sum);
  s.acgd_beta = absl::GetFlag(FLAGS_acgd_beta);
  s.acgd_epsilon = absl::GetFlag(FLAGS_acgd_epsilon);
  s.bias_meter = absl::GetFlag(FLAGS_bias_meter);
  s.lola_alpha = absl::GetFlag(FLAGS_lola_alpha);
  s.sos_a = absl::GetFlag(FLAGS_sos_a);
  s.sos_b = absl::GetFlag(FLAGS_sos_b);
  s.lr_schedule = absl::GetFlag(FLAGS_lr_schedule);
  s.lr_gamma = absl::GetFlag(FLAGS_lr_gamma);
  s.lr_step_size = absl::GetFlag(FLAGS_lr_step_size);
  auto milestones = ParseMilestones(absl::GetFlag(FLAGS_lr_milestones));
  if (!milestones.ok()) return milestones.status();
  s.lr_milestones = *milestones;
  s.lr_t_max = absl::GetFlag(FLAGS_lr_t_max);
  s.lr_eta_min = absl::GetFlag(FLAGS_lr_eta_min);
  s.lr_start_factor = absl::GetFlag(FLAGS_lr_start_factor);
  s.lr_end_factor = absl::GetFlag(FLAGS_lr_end_factor);
  s.lr_total_steps = absl::GetFlag(FLAGS_lr_total_steps);
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
  s.wire = absl::GetFlag(FLAGS_wire);
  s.wire_stochastic = absl::GetFlag(FLAGS_wire_stochastic);
  if (absl::Status wire = ParseWireDType(s.wire).status(); !wire.ok()) {
    return wire;
  }

  config.steps = absl::GetFlag(FLAGS_steps);
  config.server = absl::GetFlag(FLAGS_server);
  config.shards = absl::GetFlag(FLAGS_shards);
  config.channel = ChannelFromFlags();
  config.out_dir = absl::GetFlag(FLAGS_out);
  if (config.out_dir.empty()) {
    config.out_dir = absl::StrCat("results/", config.game, "-", s.algorithm);
  }
  config.metrics_every = absl::GetFlag(FLAGS_metrics_every);
  if (config.metrics_every <= 0) config.metrics_every = mog ? 100 : 1;
  config.live = absl::GetFlag(FLAGS_live);
  config.plots = absl::GetFlag(FLAGS_plots);
  config.keep_session = absl::GetFlag(FLAGS_keep_session);
  config.spectrum_k = absl::GetFlag(FLAGS_spectrum_k);
  config.session.name = absl::GetFlag(FLAGS_name);
  return config;
}

}  // namespace gameopt
