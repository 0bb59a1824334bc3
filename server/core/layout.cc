#include "server/core/layout.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/quote.h"

namespace gameopt {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                    c == ':' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<GameLayout> GameLayout::Create(
    const std::vector<PlayerConfig>& players, int64_t max_coordinates) {
  max_coordinates = std::min(max_coordinates, kMaxGameCoordinates);
  if (players.size() > static_cast<size_t>(kMaxPlayers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("players: a game has at most ", kMaxPlayers,
                     " players, got ", players.size()));
  }
  GameLayout layout;
  for (size_t p = 0; p < players.size(); ++p) {
    const PlayerConfig& player = players[p];
    if (!ValidName(player.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("players[", p, "].name '", Quote(player.name),
                       "' must be 1-256 characters of [A-Za-z0-9_.:/-]"));
    }
    if (layout.FindPlayer(player.name) >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("players[", p, "].name '", Quote(player.name),
                       "' is used by another player"));
    }
    if (player.tensors.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "] ('", Quote(player.name), "') has no tensors"));
    }
    if (player.tensors.size() > static_cast<size_t>(kMaxTensorsPerPlayer)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "].tensors: a player has at most ",
          kMaxTensorsPerPlayer, " tensors, got ", player.tensors.size()));
    }
    PlayerLayout out{player.name, {}, layout.dimension_, 0};
    layout.players_.push_back(out);
    layout.player_index_[player.name] = static_cast<int>(p);
    layout.tensor_index_.emplace_back();
    PlayerLayout& added = layout.players_.back();
    for (size_t t = 0; t < player.tensors.size(); ++t) {
      const TensorConfig& tensor = player.tensors[t];
      const std::string where =
          absl::StrCat("players[", p, "].tensors[", t, "]");
      if (!ValidName(tensor.name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".name '", Quote(tensor.name),
                         "' must be 1-256 characters of [A-Za-z0-9_.:/-]"));
      }
      if (layout.FindTensor(static_cast<int>(p), tensor.name) >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".name '", Quote(tensor.name), "' is used twice in player '",
            Quote(player.name), "'"));
      }
      int64_t size = 1;
      for (int64_t dim : tensor.shape) {
        if (dim < 1 || size > kMaxGameCoordinates / dim) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ".shape ", ShapeString(tensor.shape),
                           " must have dimensions >= 1 and at most 2^40 "
                           "elements"));
        }
        size *= dim;
      }
      if (layout.dimension_ > max_coordinates - size) {
        return absl::ResourceExhaustedError(
            absl::StrCat(where, ".shape ", ShapeString(tensor.shape),
                         " brings the game to ", layout.dimension_ + size,
                         " coordinates; this server accepts at "
                         "most ",
                         max_coordinates, " per session"));
      }
      layout.tensor_index_.back()[tensor.name] = static_cast<int>(t);
      added.tensors.push_back(
          TensorLayout{tensor.name, tensor.shape, layout.dimension_, size});
      added.size += size;
      layout.dimension_ += size;
    }
  }
  return layout;
}

int GameLayout::FindPlayer(absl::string_view name, int hint) const {
  if (hint >= 0 && hint < num_players() && players_[hint].name == name) {
    return hint;
  }
  auto it = player_index_.find(name);
  return it == player_index_.end() ? -1 : it->second;
}

int GameLayout::FindTensor(int player, absl::string_view name, int hint) const {
  const std::vector<TensorLayout>& tensors = players_[player].tensors;
  if (hint >= 0 && hint < static_cast<int>(tensors.size()) &&
      tensors[hint].name == name) {
    return hint;
  }
  const auto& index = tensor_index_[player];
  auto it = index.find(name);
  return it == index.end() ? -1 : it->second;
}

}  // namespace gameopt
