#include "client/worker/game.h"

#include "absl/strings/str_cat.h"

namespace gameopt {

int64_t NumElements(const TensorSpec& tensor) {
  int64_t count = 1;
  for (int64_t extent : tensor.shape) count *= extent;
  return count;
}

int64_t NumElements(const PlayerSpec& player) {
  int64_t count = 0;
  for (const TensorSpec& tensor : player.tensors) count += NumElements(tensor);
  return count;
}

int64_t Game::Dimension() const {
  int64_t count = 0;
  for (const PlayerSpec& player : players()) count += NumElements(player);
  return count;
}

absl::Status Game::DrawFullShard(int count) {
  return absl::FailedPreconditionError(
      absl::StrCat("game '", name(),
                   "' cannot compute over a whole shard (Task.full_shard, the "
                   "full-gradient rounds of algorithm L_SVRHG): implement "
                   "Game::DrawFullShard, or use another algorithm"));
}

}  // namespace gameopt
