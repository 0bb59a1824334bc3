// Worker: joins a gameopt session and answers its tasks with a Game until
// the session is DONE. What any C++ user links to take part in training.
//
//   auto channel = MakeChannel("127.0.0.1:50051");  // channel.h: TLS, token
//   Worker worker(channel, session_id, game.get());
//   absl::Status status = worker.Run();   // OK when the session is DONE
//
// A Worker is a ShardedWorker (sharded_worker.h) with one shard: one loop
// serves both, and with one shard it sends the game's own tensors and
// copies nothing between shard and full vectors.
//
// Failures: UNAVAILABLE (server restarting or shutting down), CANCELLED
// (the server stopped with the call in flight), ABORTED (a round missed its
// quorum) and DEADLINE_EXCEEDED are retried with
// exponential backoff, resubmitting the same round (the server applies it
// once). FAILED_PRECONDITION (the round closed without us, e.g. after being
// dropped at a deadline) rejoins with the same worker id for the current
// task. Anything else ends Run() with the server's status.
#ifndef GAMEOPT_CLIENT_WORKER_WORKER_H_
#define GAMEOPT_CLIENT_WORKER_WORKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "client/worker/channel.h"
#include "client/worker/game.h"
#include "client/worker/sharded_worker.h"
#include "client/worker/worker_options.h"
#include "grpcpp/grpcpp.h"

namespace gameopt {

// Not thread-safe; one Worker per thread. `game` must outlive Run().
class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, std::string session_id,
         Game* game, WorkerOptions options = {})
      : loop_({std::move(channel)}, {std::move(session_id)}, game,
              std::move(options)) {}

  // Joins and plays until the session is DONE (OK), Stop() is called
  // (CANCELLED) or a non-retryable error.
  absl::Status Run() { return loop_.Run(); }
  // Makes Run() return at the next task boundary. Thread-safe.
  void Stop() { loop_.Stop(); }

  int64_t worker_id() const { return loop_.worker_id(0); }
  int64_t tasks_done() const { return loop_.tasks_done(); }

 private:
  ShardedWorker loop_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_WORKER_H_
