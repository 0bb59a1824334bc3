// ShardedWorker: the worker loop of this library, for an experiment on S
// servers (see sharding.h); a Worker (worker.h) is one with S = 1. It joins
// the S sessions, and for every round
//   - assembles the full point (and, for PRODUCTS, the full probes) from the
//     S tasks, which must agree on step, phase and kind;
//   - draws the minibatches once, from shard 0's task seed, and computes
//     each gradient or product once on the full model;
//   - sends each shard its slice, to all S shards at once, and waits for
//     the S barriers (each shard runs its own).
// With S = 1 the session holds the game's own tensors: the worker decodes
// into and encodes from the full vectors directly, spawns no thread and
// takes no lock, and its errors carry no shard prefix.
//
//   ShardedWorker worker(channels, session_ids, game.get(), options);
//   absl::Status status = worker.Run();   // OK when every shard is DONE
//
// Calls to each shard are retried as in worker.h (task_link.h). Tasks that
// disagree across shards (sessions created apart, or with different
// configs) end Run() with FAILED_PRECONDITION. ShardedWorkers of one process
// join the shards one worker at a time, so their worker ids agree on every
// shard and each shard adds up the samples in the same order (bitwise
// reproducible runs); workers in different processes may get different ids
// on different shards, which changes only the order of the sums.
#ifndef GAMEOPT_CLIENT_WORKER_SHARDED_WORKER_H_
#define GAMEOPT_CLIENT_WORKER_SHARDED_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "client/worker/game.h"
#include "client/worker/sharding.h"
#include "client/worker/task_link.h"
#include "client/worker/tensor_codec.h"
#include "client/worker/worker_options.h"
#include "gameopt/v1/gameopt.grpc.pb.h"

namespace gameopt {

// Not thread-safe; one ShardedWorker per thread. `game` must outlive Run().
// channels[s] reaches the server of shard s, session_ids[s] its session.
class ShardedWorker {
 public:
  ShardedWorker(std::vector<std::shared_ptr<grpc::Channel>> channels,
                std::vector<std::string> session_ids, Game* game,
                WorkerOptions options = {});
  ~ShardedWorker();

  // Joins every shard and plays until all are DONE (OK), Stop() (CANCELLED),
  // or an error. InvalidArgument, before any call, for no channels, a
  // session id count other than the channel count, a game with too few
  // coordinates for S shards, or options.worker_id with S > 1.
  absl::Status Run();
  // Makes Run() return at the next task boundary. Thread-safe.
  void Stop() { stop_ = true; }

  int num_shards() const { return static_cast<int>(links_.size()); }
  // The worker's id on shard s.
  int64_t worker_id(int shard) const { return links_[shard]->worker_id(); }
  int64_t tasks_done() const { return tasks_done_; }

 private:
  struct Shard;
  bool sharded() const { return plan_.has_value(); }
  // Shard s's layout: the game's own with one shard.
  const FlatLayout& ShardLayout(int s) const;
  // Shard s's coordinates of `full`: `full` itself with one shard.
  const Eigen::VectorXd& Slice(int s, const Eigen::VectorXd& full);
  // Decodes shard s's `vector` into its coordinates of `full`.
  absl::Status DecodeSlice(int s, const v1::Vector& vector,
                           Eigen::VectorXd& full);
  // `status` with the shard named (sharded only).
  absl::Status OnShard(int s, const absl::Status& status) const;
  absl::Status JoinAll();
  absl::Status Accept();
  absl::Status Compute();
  void AddScalars(const v1::Task& task);
  // The dtype gradients and products go out in (WorkerOptions::send_dtype).
  v1::DType send_dtype() const;
  // The rounding of the task's `index`-th vector sent.
  Rounding SendRounding(const v1::Task& task, int index) const;
  // Runs fn(s) for every shard at once; the first error by shard order.
  template <typename Fn>
  absl::Status ForEachShard(Fn fn);

  Game* const game_;
  const WorkerOptions options_;
  const FlatLayout layout_;        // the game's
  std::optional<ShardPlan> plan_;  // S > 1
  absl::Status setup_;             // an error in the constructor's arguments
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<TaskLink>> links_;
  std::vector<Shard> shards_;

  int64_t tasks_done_ = 0;
  v1::DType dtype_ = v1::FLOAT32;  // the sessions', learned from params
  Eigen::VectorXd params_, gradient_, probe_, product_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_SHARDED_WORKER_H_
