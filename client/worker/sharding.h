// Sharding one experiment's parameters over S servers, for models too large
// for one server. No server change is involved: each shard is an ordinary
// session on its own server, and the client library does the splitting.
//
// The plan. Player p has a flat block of n_p coordinates (its tensors in
// order, each row-major: the layout of gameopt.proto). Shard s of S owns
// coordinates [floor(s n_p / S), floor((s + 1) n_p / S)) of every player's
// block, so each shard holds a slice of every player (n_p >= S is required:
// a tensor cannot be empty). Shard s's session has the same players, in the
// same order, each with ONE float tensor named "slice" of shape {length},
// holding that range of the initial values, and otherwise the same config
// (algorithm, optimizers, learning rates, K, seed, max_steps).
//
// Why it is exact. Every shardable algorithm is a per-coordinate function of
// the round's gradient samples and Jacobian products: the base optimizers
// (SGD, momentum, Nesterov, RMSProp, Adam), clip_value, the estimators'
// probes (local, pooled, unbiased), ConOpt's xi + gamma J^T xi, SGA without
// alignment, extragradient, optimistic GD, optimistic Adam, extrapolation
// from the past, LEAD (its probes are the last change, per coordinate),
// lookahead and AltGD's per-player phases. A ShardedWorker (sharded_worker.h)
// assembles the full point and probes from the shards' tasks, computes each
// product once on the full model and sends each shard its slice, so every
// coordinate sees the same numbers as on one server. Refused (CheckShardable),
// because they need a reduction over all coordinates: SGA's alignment (a global
// dot product), clip_global_norm, CGD and ACGD (their Krylov solves). Also
// refused, because shards could then disagree on which samples a round holds:
// quorum < K and DROP of invalid samples.
#ifndef GAMEOPT_CLIENT_WORKER_SHARDING_H_
#define GAMEOPT_CLIENT_WORKER_SHARDING_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/worker/game.h"
#include "client/worker/tensor_codec.h"
#include "gameopt/v1/gameopt.pb.h"

namespace gameopt {

// The name of each shard player's single tensor.
inline constexpr char kShardTensorName[] = "slice";

class ShardPlan {
 public:
  // InvalidArgument when num_shards < 1 or a player has fewer coordinates
  // than shards.
  static absl::StatusOr<ShardPlan> Create(std::vector<PlayerSpec> players,
                                          int num_shards);

  int num_shards() const { return num_shards_; }
  // The full game's layout.
  const FlatLayout& layout() const { return layout_; }
  // Shard s's layout: the players in order, each one "slice" tensor.
  const FlatLayout& shard_layout(int s) const { return shard_layouts_[s]; }
  // First coordinate of player p's block that shard s owns (p's offset in
  // the player's block, not in the flat vector); Begin(p, S) = n_p.
  int64_t Begin(int player, int shard) const;

  // full -> shard s's flat vector (its slices, players in order).
  void Gather(int shard, const Eigen::VectorXd& full,
              Eigen::VectorXd& out) const;
  // Shard s's flat vector -> its coordinates of `full` (the others stay).
  void Scatter(int shard, const Eigen::VectorXd& values,
               Eigen::VectorXd& full) const;

 private:
  ShardPlan(std::vector<PlayerSpec> players, int num_shards);

  int num_shards_;
  FlatLayout layout_;
  std::vector<int64_t> block_sizes_;  // n_p
  std::vector<FlatLayout> shard_layouts_;
};

// OK when `config` can be sharded exactly; otherwise InvalidArgument naming
// the setting and why (see the file comment).
absl::Status CheckShardable(const v1::SessionConfig& config);

// The S session configs of a sharded experiment from the config of the
// unsharded one (as BuildSessionConfig makes it: every player's tensors in
// the layout of plan.layout(), with initial values). Checks CheckShardable.
absl::StatusOr<std::vector<v1::SessionConfig>> ShardSessionConfigs(
    const v1::SessionConfig& config, const ShardPlan& plan);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_SHARDING_H_
