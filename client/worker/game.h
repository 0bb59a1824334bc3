// The oracle a worker answers: a differentiable game with exact products.
//
// Conventions (as in proto/gameopt/v1/gameopt.proto):
// - Every player minimizes its own loss l_i(x) over the joint parameters x.
// - x, gradients and products are flat double vectors laid out player by
//   player in the order of players(), and inside a player tensor by tensor in
//   the order of its TensorSpec list, each tensor row-major. The sizes add up
//   to Dimension().
// - xi(x) = (grad_{x_1} l_1, ..., grad_{x_n} l_n) is the simultaneous
//   gradient field, J = d xi / d x its (non-symmetric) Jacobian.
//
// A Game object holds the minibatches it drew, so it is NOT thread-safe: give
// each worker thread its own instance (see Clone()).
#ifndef GAMEOPT_CLIENT_WORKER_GAME_H_
#define GAMEOPT_CLIENT_WORKER_GAME_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"

namespace gameopt {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // row-major; {} is a scalar
};

struct PlayerSpec {
  std::string name;
  std::vector<TensorSpec> tensors;
};

// Number of coordinates of one tensor / of all of a player's tensors.
int64_t NumElements(const TensorSpec& tensor);
int64_t NumElements(const PlayerSpec& player);

// Points a game generates at x next to reference points, for a client's
// end-of-run picture: e.g. a GAN's generator samples around the modes of
// its data.
struct SamplePicture {
  Eigen::MatrixXd samples;  // 2 x n
  Eigen::MatrixXd centers;  // 2 x m, the reference points
  double center_std = 0.0;  // spread of the data around each reference point
};

class Game {
 public:
  virtual ~Game() = default;

  // A fresh, independent instance with the same configuration (and no
  // minibatches drawn), for another worker thread.
  virtual std::unique_ptr<Game> Clone() const = 0;

  virtual std::string name() const = 0;
  virtual std::vector<PlayerSpec> players() const = 0;
  int64_t Dimension() const;

  // Where the session starts, flat as above.
  virtual Eigen::VectorXd InitialParameters() const = 0;

  // Draws `count` fresh minibatches (sample slots 0..count-1) from a random
  // stream seeded by `seed`. Deterministic games ignore it. A worker calls it
  // once per GRADIENT task; the VJP/JVP task that follows refers to the same
  // slots, so J_k and xi_k come from the same minibatch.
  virtual void DrawMinibatches(int count, uint64_t seed) = 0;

  // Instead of DrawMinibatches, for a GRADIENT task with Task.full_shard
  // (L_SVRHG's full-gradient rounds): every one of the `count` sample slots
  // is the worker's whole data (e.g. the mean over all terms of a finite
  // sum), and so are the products that follow. The default, for games
  // without a finite data set, is FailedPrecondition saying so.
  virtual absl::Status DrawFullShard(int count);

  // xi(x) on minibatch `sample`.
  virtual Eigen::VectorXd Gradient(const Eigen::VectorXd& x, int sample) = 0;
  // J(x)^T w on minibatch `sample` (has components in every player's block).
  virtual Eigen::VectorXd Vjp(const Eigen::VectorXd& x,
                              const Eigen::VectorXd& w, int sample) = 0;
  // J(x) u on minibatch `sample`.
  virtual Eigen::VectorXd Jvp(const Eigen::VectorXd& x,
                              const Eigen::VectorXd& u, int sample) = 0;
  // grad_x l_player(x) on minibatch `sample`: the gradient of one player's
  // loss with respect to every player's parameters (block `player` is
  // xi_player, the others are the cross gradients grad_j l_player), for
  // the CROSS_GRADIENT tasks of LOLA and SOS. nullopt, the default: the
  // game does not provide them (the worker then fails such a task).
  virtual std::optional<Eigen::VectorXd> LossGradient(const Eigen::VectorXd& x,
                                                      int player, int sample) {
    return std::nullopt;
  }

  // Game-specific figures of merit at x, e.g. {"distance", 0.3} (distance
  // from the equilibrium) or {"modes_covered", 8}. Deterministic for a given
  // x (games draw any samples they need from a fixed seed).
  virtual std::vector<std::pair<std::string, double>> Metrics(
      const Eigen::VectorXd& x) const = 0;

  // Game-specific end-of-run figures beyond Metrics(): the points the game
  // generates at x (deterministic for a given x, like Metrics()), or
  // nullopt, the default, for games that generate none. The reference
  // client plots them (samples.png).
  virtual std::optional<SamplePicture> Samples(const Eigen::VectorXd& x) const {
    return std::nullopt;
  }
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_GAME_H_
