// Shared helpers of the core tests: random quadratic games (the sample
// game of client/games) with a dense reference, and submissions built from
// plain vectors.
#ifndef GAMEOPT_TESTS_CORE_TEST_UTIL_H_
#define GAMEOPT_TESTS_CORE_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Dense"
#include "absl/strings/str_cat.h"
#include "client/games/quadratic.h"
#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/session.h"
#include "server/core/submission.h"
#include "server/core/wire_codec.h"

namespace gameopt::testing {

// A float32 vector of d standard normal values drawn from `seed`.
inline FlatVector RandomFloat32(int64_t d, uint64_t seed) {
  FlatVector v(DType::kFloat32, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < d; ++i) v.as<float>()[i] = normal(rng);
  return v;
}

// The random quadratic game of client/games/quadratic.h (players p0, p1,
// ..., player i owning dims[i] coordinates; l_i(x) = 1/2 x^T A_i x + b_i^T x)
// as dense matrices: xi(x) = J x + c, J's symmetric part positive definite
// plus an antisymmetric coupling between players, so the game has a unique
// equilibrium that is stable for small steps but rotates. x0 is a standard
// Gaussian draw from `seed` (not the game's all-ones start, so that no
// value is exact in float32).
struct QuadraticGame {
  std::vector<int> dims;
  Eigen::MatrixXd J;  // d x d
  Eigen::VectorXd c;  // d
  Eigen::VectorXd x0;

  static QuadraticGame Random(std::vector<int> dims, uint64_t seed) {
    const gameopt::QuadraticGame game(dims, seed);
    QuadraticGame g;
    g.dims = std::move(dims);
    g.J = game.J();
    g.c = game.b();
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    g.x0.resize(g.c.size());
    for (int i = 0; i < g.x0.size(); ++i) g.x0(i) = normal(rng);
    return g;
  }

  int dimension() const { return static_cast<int>(c.size()); }
  Eigen::VectorXd Xi(const Eigen::VectorXd& x) const { return J * x + c; }
  Eigen::VectorXd Equilibrium() const { return -J.lu().solve(c); }
};

inline std::string Bytes(const double* values, int64_t n) {
  return std::string(reinterpret_cast<const char*>(values), n * 8);
}

// SessionConfig of players p0, p1, ... each with one float64 tensor "x" of
// shape {dims[i]}, its initial values the matching block of x0, and SGD at
// learning_rates[i].
inline SessionConfig BlockPlayersConfig(
    const std::vector<int>& dims, const Eigen::VectorXd& x0, AlgorithmKind kind,
    const std::vector<double>& learning_rates) {
  SessionConfig config;
  config.dtype = DType::kFloat64;
  config.algorithm.kind = kind;
  int offset = 0;
  for (size_t i = 0; i < dims.size(); ++i) {
    PlayerConfig player;
    player.name = absl::StrCat("p", i);
    TensorConfig tensor;
    tensor.name = "x";
    tensor.shape = {dims[i]};
    tensor.initial_dtype = DType::kFloat64;
    tensor.initial_values = Bytes(x0.data() + offset, dims[i]);
    player.tensors.push_back(tensor);
    player.optimizer.kind = OptimizerKind::kSgd;
    player.optimizer.learning_rate = learning_rates[i];
    config.players.push_back(player);
    offset += dims[i];
  }
  return config;
}

// SessionConfig of a quadratic game: BlockPlayersConfig with x0 and one
// learning rate for every player.
inline SessionConfig QuadraticConfig(const QuadraticGame& game,
                                     AlgorithmKind kind,
                                     double learning_rate = 0.05) {
  return BlockPlayersConfig(
      game.dims, game.x0, kind,
      std::vector<double>(game.dims.size(), learning_rate));
}

// One player "a" with one tensor "w" of n values.
inline GameLayout OneTensorLayout(int64_t n) {
  std::vector<PlayerConfig> players(1);
  players[0].name = "a";
  players[0].tensors.push_back(TensorConfig{});
  players[0].tensors[0].name = "w";
  players[0].tensors[0].shape = {n};
  return *GameLayout::Create(players);
}

// Players "a" (w: 300), "b" (v: 5) and "c" (m: 2 x 700): tensors that
// start inside int8 blocks and kernel blocks, and one that spans several.
inline GameLayout ThreePlayers() {
  std::vector<PlayerConfig> players(3);
  const char* names[] = {"a", "b", "c"};
  const char* tensors[] = {"w", "v", "m"};
  const std::vector<int64_t> shapes[] = {{300}, {5}, {2, 700}};
  for (int p = 0; p < 3; ++p) {
    players[p].name = names[p];
    players[p].tensors.push_back(TensorConfig{});
    players[p].tensors[0].name = tensors[p];
    players[p].tensors[0].shape = shapes[p];
  }
  return *GameLayout::Create(players);
}

// A sample of `layout`'s `players` in compressed format c, or raw values of
// dtype `raw` when c is kNone: each tensor's values encoded, the bytes owned
// by the builder, optionally cut into pieces.
class WireSampleBuilder {
 public:
  explicit WireSampleBuilder(const GameLayout& layout) : layout_(layout) {}

  // v: full-length values (as float32); its blocks of `players`.
  SampleView Make(Compression c, const std::vector<float>& v,
                  const std::vector<int>& players, bool split = false,
                  DType raw = DType::kFloat32) {
    SampleView sample;
    for (int p : players) {
      const PlayerLayout& player = layout_.players()[p];
      PlayerValues values;
      values.player = player.name;
      for (const TensorLayout& tensor : player.tensors) {
        const float* in = v.data() + tensor.offset;
        std::string& bytes = bytes_.emplace_back(
            c == Compression::kNone ? tensor.size * DTypeSize(raw)
                                    : CompressedBytes(c, tensor.size),
            '\0');
        if (c != Compression::kNone) {
          EXPECT_TRUE(Encode(c, in, tensor.size, Rounding(), bytes.data()));
        } else if (raw == DType::kFloat32) {
          std::memcpy(bytes.data(), in, bytes.size());
        } else {
          for (int64_t i = 0; i < tensor.size; ++i) {
            const double x = in[i];
            std::memcpy(bytes.data() + 8 * i, &x, 8);
          }
        }
        TensorView view{tensor.name, raw, absl::MakeConstSpan(tensor.shape),
                        bytes,       {},  c};
        if (split) {
          auto& pieces = pieces_.emplace_back();
          for (size_t at = 0, len = 1; at < bytes.size(); at += len, len += 5) {
            pieces.push_back(absl::string_view(bytes).substr(at, len));
          }
          view.pieces = pieces;
        }
        values.tensors.push_back(view);
      }
      sample.push_back(values);
    }
    return sample;
  }

 private:
  const GameLayout& layout_;
  std::deque<std::string> bytes_;
  std::deque<std::vector<absl::string_view>> pieces_;
};

inline std::vector<float> Wave(int64_t n, float scale, float phase) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    v[i] = scale * std::sin(0.37f * static_cast<float>(i) + phase);
  }
  return v;
}

// Builds SampleViews over owned copies of the values (views stay valid as
// long as the builder lives).
class SampleBuilder {
 public:
  explicit SampleBuilder(const GameLayout& layout) : layout_(layout) {}

  // The blocks of `players` (all when empty) of a full-length vector.
  SampleView Make(const Eigen::VectorXd& v, std::vector<int> players = {}) {
    if (players.empty()) {
      for (int p = 0; p < layout_.num_players(); ++p) players.push_back(p);
    }
    SampleView view;
    for (int p : players) {
      const PlayerLayout& player = layout_.players()[p];
      PlayerValues values;
      values.player = player.name;
      for (const TensorLayout& tensor : player.tensors) {
        bytes_.push_back(Bytes(v.data() + tensor.offset, tensor.size));
        values.tensors.push_back(TensorView{tensor.name, DType::kFloat64,
                                            absl::MakeConstSpan(tensor.shape),
                                            bytes_.back()});
      }
      view.push_back(values);
    }
    return view;
  }

 private:
  const GameLayout& layout_;
  std::deque<std::string> bytes_;  // stable addresses
};

inline Eigen::VectorXd ToEigen(const FlatVector& v) {
  if (v.dtype() == DType::kFloat64) return v.as<double>();
  return v.as<float>().cast<double>();
}

// Captures a session callback's result.
struct Reply {
  bool called = false;
  absl::StatusOr<Task> result = absl::UnknownError("not called");
  TaskCallback Callback() {
    return [this](absl::StatusOr<Task> r) {
      called = true;
      result = std::move(r);
    };
  }
};

// Drives `algorithm` until step `steps` with exact gradients and products
// of `game`, as `samples` identical workers would (so every estimator is
// exact).
inline void DriveCore(const QuadraticGame& game, Algorithm* algorithm,
                      int steps, int samples = 2) {
  const GameLayout& layout = algorithm->layout();
  const int d = game.dimension();
  std::vector<FlatVector> buffers(samples, FlatVector(DType::kFloat64, d));
  std::vector<FlatVector> vjp = buffers, jvp = buffers;
  while (algorithm->step() < steps) {
    const PhaseSpec& phase = algorithm->phase();
    const Eigen::VectorXd point = ToEigen(*algorithm->point());
    std::vector<const FlatVector*> a, b;
    if (phase.kind == PhaseSpec::Kind::kGradient) {
      Eigen::VectorXd xi = Eigen::VectorXd::Zero(d);
      const Eigen::VectorXd full = game.Xi(point);
      for (int p : phase.players) {
        const PlayerLayout& pl = layout.players()[p];
        xi.segment(pl.offset, pl.size) = full.segment(pl.offset, pl.size);
      }
      for (auto& s : buffers) {
        s.as<double>() = xi;
        a.push_back(&s);
      }
      EXPECT_TRUE(algorithm->CompleteGradient(a).ok());
    } else {
      for (int k = 0; k < samples; ++k) {
        const Eigen::VectorXd w = ToEigen(*algorithm->probes()[k]);
        vjp[k].as<double>() = game.J.transpose() * w;
        jvp[k].as<double>() = game.J * w;
        if (phase.vjp) a.push_back(&vjp[k]);
        if (phase.jvp) b.push_back(&jvp[k]);
      }
      EXPECT_TRUE(algorithm->CompleteProducts(a, b).ok());
    }
  }
}

// The parameters after `steps` steps of the algorithm of `config`, driven
// by DriveCore.
inline Eigen::VectorXd RunCore(const QuadraticGame& game,
                               const SessionConfig& config, int steps,
                               int samples = 2) {
  std::unique_ptr<Algorithm> algorithm = *Algorithm::Create(config);
  DriveCore(game, algorithm.get(), steps, samples);
  return ToEigen(*algorithm->parameters());
}

// The session's parameters x, byte for byte.
inline std::string ParametersBytes(const Session& session) {
  const ParametersSnapshot params = session.Parameters();
  return std::string(static_cast<const char*>(params.values->data()),
                     params.values->bytes());
}

// Gaussian noise of standard deviation `sd` in d coordinates, drawn from
// `seed` (a task's seed: what a worker's minibatch would add).
inline Eigen::VectorXd SeedNoise(uint64_t seed, int d, double sd = 0.1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, sd);
  Eigen::VectorXd noise(d);
  for (int i = 0; i < d; ++i) noise(i) = normal(rng);
  return noise;
}

// Submits `s`, the answer to `task`, by the method its kind calls for.
inline void SubmitAnswer(Session& session, const Task& task,
                         const Submission& s, Reply& reply) {
  if (task.kind == Task::Kind::kGradient) {
    session.SubmitGradient(task.worker_id, s, reply.Callback());
  } else {
    session.SubmitProducts(task.worker_id, s, reply.Callback());
  }
}

// One round of a session's workers, tasks[w] being worker w's: each
// answers with answer(task), the last first, so that worker 0's submission
// closes the round; tasks[w] becomes each one's next task. False, after a
// test failure with the status, when a submission fails.
inline bool PlayRound(Session& session, std::vector<Task>& tasks,
                      const std::function<Submission(const Task&)>& answer) {
  std::vector<Reply> replies(tasks.size());
  for (size_t w = tasks.size(); w-- > 0;) {
    SubmitAnswer(session, tasks[w], answer(tasks[w]), replies[w]);
  }
  for (size_t w = 0; w < tasks.size(); ++w) {
    EXPECT_TRUE(replies[w].result.ok()) << replies[w].result.status();
    if (!replies[w].result.ok()) return false;
    tasks[w] = *replies[w].result;
  }
  return true;
}

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_CORE_TEST_UTIL_H_
