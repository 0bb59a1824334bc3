#include "client/worker/game.h"

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

}  // namespace gameopt
