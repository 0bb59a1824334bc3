#include "client/worker/sharding.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

std::vector<PlayerSpec> ShardPlayers(const std::vector<PlayerSpec>& players,
                                     const std::vector<int64_t>& sizes,
                                     int shard, int num_shards) {
  std::vector<PlayerSpec> out;
  for (size_t p = 0; p < players.size(); ++p) {
    const int64_t begin = sizes[p] * shard / num_shards;
    const int64_t end = sizes[p] * (shard + 1) / num_shards;
    out.push_back({players[p].name, {{kShardTensorName, {end - begin}}}});
  }
  return out;
}

}  // namespace

ShardPlan::ShardPlan(std::vector<PlayerSpec> players, int num_shards)
    : num_shards_(num_shards), layout_(players) {
  for (const PlayerSpec& player : players) {
    block_sizes_.push_back(NumElements(player));
  }
  for (int s = 0; s < num_shards; ++s) {
    shard_layouts_.emplace_back(
        ShardPlayers(players, block_sizes_, s, num_shards));
  }
}

absl::StatusOr<ShardPlan> ShardPlan::Create(std::vector<PlayerSpec> players,
                                            int num_shards) {
  if (num_shards < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the number of shards must be >= 1, got ", num_shards));
  }
  for (const PlayerSpec& player : players) {
    if (NumElements(player) < num_shards) {
      return absl::InvalidArgumentError(
          absl::StrCat("player '", player.name, "' has ", NumElements(player),
                       " coordinates, fewer than the ", num_shards,
                       " shards: every shard needs a slice of every player"));
    }
  }
  return ShardPlan(std::move(players), num_shards);
}

int64_t ShardPlan::Begin(int player, int shard) const {
  return block_sizes_[player] * shard / num_shards_;
}

void ShardPlan::Gather(int shard, const Eigen::VectorXd& full,
                       Eigen::VectorXd& out) const {
  out.resize(shard_layouts_[shard].dimension());
  int64_t at = 0;
  for (size_t p = 0; p < block_sizes_.size(); ++p) {
    const int64_t offset = layout_.PlayerOffset(layout_.players()[p].name);
    const int64_t begin = Begin(p, shard);
    const int64_t length = Begin(p, shard + 1) - begin;
    out.segment(at, length) = full.segment(offset + begin, length);
    at += length;
  }
}

void ShardPlan::Scatter(int shard, const Eigen::VectorXd& values,
                        Eigen::VectorXd& full) const {
  int64_t at = 0;
  for (size_t p = 0; p < block_sizes_.size(); ++p) {
    const int64_t offset = layout_.PlayerOffset(layout_.players()[p].name);
    const int64_t begin = Begin(p, shard);
    const int64_t length = Begin(p, shard + 1) - begin;
    full.segment(offset + begin, length) = values.segment(at, length);
    at += length;
  }
}

absl::Status CheckShardable(const v1::SessionConfig& config) {
  const v1::AlgorithmConfig& a = config.algorithm();
  const char* const kWhy =
      " needs a reduction over all coordinates, which no shard sees; "
      "run it on one server";
  if (a.kind() == v1::SGA && !a.sga_no_alignment()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharding: SGA's alignment (the sign of <xi, J^T xi><A^T xi, J^T xi>)",
        kWhy, ", or turn the alignment off (a fixed lambda0 shards exactly)"));
  }
  if (a.kind() == v1::L_SVRHG ||
      (a.kind() == v1::CONOPT && a.svrhg_correction())) {
    return absl::InvalidArgumentError(
        "sharding: L_SVRHG (and CONOPT with svrhg_correction) keeps one "
        "snapshot and its full-shard gradient "
        "per session, and its coin is not coordinated across shard "
        "servers; run it on one server");
  }
  if (a.kind() == v1::CGD || a.kind() == v1::ACGD) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharding: ", v1::Algorithm_Name(a.kind()),
        "'s Krylov solve (dot products of whole vectors every iteration)",
        kWhy));
  }
  if (a.kind() == v1::LOLA || a.kind() == v1::SOS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharding: ", v1::Algorithm_Name(a.kind()),
        "'s cross gradients (each loss differentiated with respect to every "
        "player's parameters) and SOS's p (dot products of whole vectors)",
        kWhy));
  }
  if (a.clip_global_norm() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sharding: clip_global_norm = ", a.clip_global_norm(),
                     " (the norm of the whole update)", kWhy,
                     ", or clip per coordinate with clip_value"));
  }
  const int k = config.workers_per_round() > 0 ? config.workers_per_round() : 1;
  if (config.quorum() != 0 && config.quorum() != k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharding: quorum = ", config.quorum(), " < K = ", k,
        " would let the shards close a round with different workers' "
        "samples; use quorum 0 (all K workers)"));
  }
  if (config.invalid_sample_policy() == v1::DROP) {
    return absl::InvalidArgumentError(
        "sharding: invalid_sample_policy DROP would drop a sample on the "
        "shard holding its bad coordinates only; use REJECT");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SessionConfig>> ShardSessionConfigs(
    const v1::SessionConfig& config, const ShardPlan& plan) {
  if (absl::Status status = CheckShardable(config); !status.ok()) {
    return status;
  }
  const FlatLayout& layout = plan.layout();
  if (config.players_size() != static_cast<int>(layout.players().size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("sharding: the config has ", config.players_size(),
                     " players, the game ", layout.players().size()));
  }
  // The initial point, flat (absent data: zeros, as on the server).
  v1::Vector initial;
  for (const v1::PlayerConfig& player : config.players()) {
    v1::PlayerTensors* tensors = initial.add_players();
    tensors->set_player(player.name());
    for (const v1::Tensor& tensor : player.tensors()) {
      if (!tensor.data().empty()) *tensors->add_tensors() = tensor;
    }
  }
  Eigen::VectorXd x = Eigen::VectorXd::Zero(layout.dimension());
  if (absl::Status status = DecodeVector(initial, layout, x); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sharding: ", status.message()));
  }
  std::vector<v1::SessionConfig> shards;
  Eigen::VectorXd slice;
  for (int s = 0; s < plan.num_shards(); ++s) {
    v1::SessionConfig shard = config;
    plan.Gather(s, x, slice);
    v1::Vector values;
    EncodeVector(slice, plan.shard_layout(s), {}, v1::FLOAT64, values);
    for (int p = 0; p < shard.players_size(); ++p) {
      *shard.mutable_players(p)->mutable_tensors() =
          values.players(p).tensors();
    }
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace gameopt
