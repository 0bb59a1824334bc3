// Builds a CreateSession config from a Game and command-line style options.
#ifndef GAMEOPT_CLIENT_WORKER_SESSION_BUILDER_H_
#define GAMEOPT_CLIENT_WORKER_SESSION_BUILDER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/worker/game.h"
#include "gameopt/v1/gameopt.pb.h"

namespace gameopt {

// Names as on gameopt_client's command line; see proto/gameopt/v1 for the
// meaning of each field.
struct SessionOptions {
  std::string name;
  // simgd altgd conopt sga extragradient optimistic optimistic_adam
  // extrapolation_from_the_past lead cgd acgd shgd l_svrhg
  std::string algorithm = "simgd";
  std::string optimizer = "sgd";           // sgd momentum nesterov rmsprop adam
  std::string rmsprop_preset = "pytorch";  // or "tf1"
  std::string estimator = "pooled";        // local pooled unbiased
  double learning_rate = 0.01;
  std::map<std::string, double> player_learning_rate;  // overrides
  double momentum = 0.9;        // momentum: (-1, 1), < 0 is negative momentum
  std::optional<double> gamma;  // conopt; server default 1
  // conopt: adapt gamma (proto AdaptiveGamma, its default rule), with a
  // spectrum estimate of the ConOpt field (smallest real parts, k = 1)
  // every adaptive_gamma_every steps: the session's spectrum schedule.
  bool adaptive_gamma = false;
  int64_t adaptive_gamma_every = 10;
  std::optional<double> lambda;  // sga; server default 1
  bool sga_alignment = true;
  // altgd: e.g. {{"discriminator", 5}, {"generator", 1}}.
  std::vector<std::pair<std::string, int>> altgd_order;
  bool extragradient_frozen_moments = false;
  int lookahead_k = 0;
  double lookahead_alpha = 0.5;
  double clip_global_norm = 0.0;
  std::map<std::string, double> clip_value;  // per player (WGAN)
  int workers = 1;
  int quorum = 0;
  int samples_per_worker = 1;
  double phase_deadline_seconds = 60.0;
  int64_t max_steps = 0;
  uint64_t seed = 0;
  bool float64 = true;
  bool drop_invalid_samples = false;
  // Compressed wire (WireConfig), both directions: "" or "none",
  // "bfloat16", "float16", "int8_block"; stochastic rounding of what each
  // side sends. The workers must send in it: WorkerOptions::send_dtype =
  // WireDType(options) and stochastic_rounding alike.
  std::string wire;
  bool wire_stochastic = false;
  // conopt / sga with estimator local: one round per step.
  bool fuse_local_products = false;
  // conopt / sga with estimator pooled or unbiased: the estimator's bias
  // meter (AlgorithmConfig.bias_meter; StepDiagnostics.relative_bias).
  bool bias_meter = false;
  // Every player's learning-rate schedule: constant, step, multistep,
  // exponential, cosine or linear (torch.optim.lr_scheduler's shapes).
  std::string lr_schedule = "constant";
  double lr_gamma = 0.1;               // step, multistep, exponential
  int64_t lr_step_size = 0;            // step
  std::vector<int64_t> lr_milestones;  // multistep
  int64_t lr_t_max = 0;                // cosine; 0 = max_steps
  double lr_eta_min = 0.0;             // cosine
  double lr_start_factor = 1.0 / 3.0;  // linear
  double lr_end_factor = 1.0;          // linear
  int64_t lr_total_steps = 5;          // linear
  std::optional<double> lead_alpha;    // lead; server default 0.1
  // l_svrhg: the snapshot's move probability; server default 0.1.
  std::optional<double> svrhg_probability;
  // conopt with estimator unbiased: variance-reduce the correction with
  // l_svrhg's snapshot (its svrhg_probability).
  bool svrhg_correction = false;
  // adam (and optimistic_adam): server defaults 0.9 and 0.999.
  std::optional<double> beta1;
  std::optional<double> beta2;
  // cgd / acgd: the Krylov solve (unset: the server's defaults 1e-6, 50,
  // 0.99, 1e-5); cgd_zero_sum declares l_2 = -l_1 (conjugate gradient,
  // else GMRES).
  std::optional<double> cgd_tolerance;
  int cgd_max_iterations = 0;
  bool cgd_zero_sum = false;
  std::optional<double> acgd_beta;
  std::optional<double> acgd_epsilon;
  // lola / sos: the look-ahead step alpha and SOS's a and b (unset: the
  // server's defaults 1, 0.5, 0.1).
  std::optional<double> lola_alpha;
  std::optional<double> sos_a;
  std::optional<double> sos_b;
};

// The wire dtype of SessionOptions::wire (DTYPE_UNSPECIFIED for "" and
// "none"); InvalidArgument listing the names otherwise.
absl::StatusOr<v1::DType> ParseWireDType(const std::string& name);

// InvalidArgument on unknown names (the message lists the known ones).
absl::StatusOr<v1::SessionConfig> BuildSessionConfig(
    const Game& game, const SessionOptions& options);

// "100,200" -> {100, 200}.
absl::StatusOr<std::vector<int64_t>> ParseMilestones(const std::string& text);

// "discriminator:5,generator:1" -> stages.
absl::StatusOr<std::vector<std::pair<std::string, int>>> ParseAltGdOrder(
    const std::string& text);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_SESSION_BUILDER_H_
