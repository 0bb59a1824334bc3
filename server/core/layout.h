// GameLayout: where each player's tensors live in the flat joint vector.
#ifndef GAMEOPT_SERVER_CORE_LAYOUT_H_
#define GAMEOPT_SERVER_CORE_LAYOUT_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
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

// Immutable after construction; safe to share between threads.
class GameLayout {
 public:
  // Fails with InvalidArgument on bad or duplicate names and shapes.
  static absl::StatusOr<GameLayout> Create(
      const std::vector<PlayerConfig>& players);

  const std::vector<PlayerLayout>& players() const { return players_; }
  int num_players() const { return static_cast<int>(players_.size()); }
  int64_t dimension() const { return dimension_; }  // d
  // Index of the player called `name`, or -1.
  int FindPlayer(absl::string_view name) const;
  // Index of tensor `name` of player `player`, or -1.
  int FindTensor(int player, absl::string_view name) const;

 private:
  std::vector<PlayerLayout> players_;
  int64_t dimension_ = 0;
};

// Shape as "[2, 3]" for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_LAYOUT_H_
