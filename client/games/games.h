// The registry of sample games: one entry point that builds a game by name
// from a single bag of options, for the reference client and the tests.
#ifndef GAMEOPT_CLIENT_GAMES_GAMES_H_
#define GAMEOPT_CLIENT_GAMES_GAMES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/games/dirac_gan.h"
#include "client/games/mog_gan.h"
#include "client/worker/game.h"

namespace gameopt {

// Knobs of every game; each game reads only its own.
struct GameOptions {
  // "bilinear": the matrix A (d > 1); "quadratic": J and b; "mog": the
  // initial parameters. Minibatch draws use DrawMinibatches' seed instead.
  uint64_t seed = 0;
  // "bilinear", "bilinear_sum": d, the dimension of each player's vector.
  int bilinear_dim = 1;
  // "bilinear_sum": n, the number of terms of the finite sum (>= 1).
  int bilinear_terms = 20;
  // "dirac": variant (see ParseDiracVariant), penalty weight, instance
  // noise std and batch, WGAN clip bound.
  DiracGanOptions dirac;
  // "quadratic": the players' block sizes (their number is the number of
  // players) and the minibatch noise std (0: deterministic).
  std::vector<int> quadratic_dims = {2, 2};
  double quadratic_noise_std = 0.0;
  // "mog": batch, network sizes, loss.
  MogGanOptions mog;
};

// Names MakeGame accepts.
std::vector<std::string> GameNames();

// Builds "bilinear", "bilinear_sum", "dirac", "quadratic", "mog" or
// "tandem" (see each game's header).
// An unknown name or an option out of range is InvalidArgument.
absl::StatusOr<std::unique_ptr<Game>> MakeGame(const std::string& name,
                                               const GameOptions& options);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_GAMES_H_
