// GameLayout: where each player's tensors live in the flat joint vector.
#ifndef GAMEOPT_SERVER_CORE_LAYOUT_H_
#define GAMEOPT_SERVER_CORE_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/config.h"

namespace gameopt {

struct TensorLayout {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the joint vector
  int64_t size = 0;    // product of shape
};

struct PlayerLayout {
  std::string name;
  std::vector<TensorLayout> tensors;
  int64_t offset = 0;  // of the player's block in the joint vector
  int64_t size = 0;    // coordinates in the block
};

// Bounds on a game's layout. They keep one request from taking the
// machine: offsets stay overflow-free, and a config or submission is
// decoded in time linear in its size.
inline constexpr int kMaxPlayers = 1024;
inline constexpr int kMaxTensorsPerPlayer = 1 << 16;
inline constexpr int64_t kMaxGameCoordinates = int64_t{1} << 40;

// Immutable after construction; safe to share between threads.
class GameLayout {
 public:
  // Fails with InvalidArgument on bad or duplicate names and shapes, and
  // past the bounds above; ResourceExhausted, naming the tensor that
  // crosses it, when the game has more than `max_coordinates` coordinates
  // (a server's limit, at most kMaxGameCoordinates).
  static absl::StatusOr<GameLayout> Create(
      const std::vector<PlayerConfig>& players,
      int64_t max_coordinates = kMaxGameCoordinates);

  const std::vector<PlayerLayout>& players() const { return players_; }
  int num_players() const { return static_cast<int>(players_.size()); }
  int64_t dimension() const { return dimension_; }  // d
  // Index of the player called `name`, or -1. Constant time. `hint`, an
  // index to compare first, spares the hash for names that come in the
  // layout's order (workers send them so).
  int FindPlayer(absl::string_view name, int hint = -1) const;
  // Index of tensor `name` of player `player`, or -1. Constant time.
  int FindTensor(int player, absl::string_view name, int hint = -1) const;

 private:
  std::vector<PlayerLayout> players_;
  int64_t dimension_ = 0;
  // Name -> index, for players and for each player's tensors.
  absl::flat_hash_map<std::string, int> player_index_;
  std::vector<absl::flat_hash_map<std::string, int>> tensor_index_;
};

// Shape as "[2, 3]" for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_LAYOUT_H_
