#include "server/core/layout.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gameopt {
namespace {

// Largest joint vector we accept: 2^40 coordinates is far past any model
// this service will host and keeps all offset arithmetic overflow-free.
constexpr int64_t kMaxDimension = int64_t{1} << 40;

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
    const std::vector<PlayerConfig>& players) {
  GameLayout layout;
  for (size_t p = 0; p < players.size(); ++p) {
    const PlayerConfig& player = players[p];
    if (!ValidName(player.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "].name '", player.name,
          "' must be 1-256 characters of [A-Za-z0-9_.:/-]"));
    }
    if (layout.FindPlayer(player.name) >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("players[", p, "].name '", player.name,
                       "' is used by another player"));
    }
    if (player.tensors.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "players[", p, "] ('", player.name, "') has no tensors"));
    }
    PlayerLayout out{player.name, {}, layout.dimension_, 0};
    layout.players_.push_back(out);
    PlayerLayout& added = layout.players_.back();
    for (size_t t = 0; t < player.tensors.size(); ++t) {
      const TensorConfig& tensor = player.tensors[t];
      const std::string where =
          absl::StrCat("players[", p, "].tensors[", t, "]");
      if (!ValidName(tensor.name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".name '", tensor.name,
            "' must be 1-256 characters of [A-Za-z0-9_.:/-]"));
      }
      if (layout.FindTensor(static_cast<int>(p), tensor.name) >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".name '", tensor.name,
                         "' is used twice in player '", player.name, "'"));
      }
      int64_t size = 1;
      for (int64_t dim : tensor.shape) {
        if (dim < 1 || size > kMaxDimension / dim) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ".shape ", ShapeString(tensor.shape),
                           " must have dimensions >= 1 and at most 2^40 "
                           "elements"));
        }
        size *= dim;
      }
      if (layout.dimension_ > kMaxDimension - size) {
        return absl::InvalidArgumentError(
            "the game has more than 2^40 coordinates");
      }
      added.tensors.push_back(
          TensorLayout{tensor.name, tensor.shape, layout.dimension_, size});
      added.size += size;
      layout.dimension_ += size;
    }
  }
  return layout;
}

int GameLayout::FindPlayer(absl::string_view name) const {
  for (size_t i = 0; i < players_.size(); ++i) {
    if (players_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int GameLayout::FindTensor(int player, absl::string_view name) const {
  const auto& tensors = players_[player].tensors;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace gameopt
