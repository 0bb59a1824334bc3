// ShardedSession: one experiment as seen by a client: a session on each of
// S servers. S = 1 is an ordinary session (the game's own tensors); S > 1
// is sharded (sharding.h): each server holds a slice of every player.
//
//   std::vector<std::shared_ptr<grpc::Channel>> channels = ...;  // S
//   auto session = ShardedSession::Create(channels, *game, config);
//   session->RunWorker(game.get(), {});            // on K threads
//   auto x = session->GetParameters();             // the full vector
//
// Its id is the shards' session ids joined by ',' ("s1" or "s1,s4,s1"):
// what `gameopt_client create` prints and `work --session` takes.
#ifndef GAMEOPT_CLIENT_WORKER_SHARDED_SESSION_H_
#define GAMEOPT_CLIENT_WORKER_SHARDED_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/worker/game.h"
#include "client/worker/sharding.h"
#include "client/worker/worker_options.h"
#include "gameopt/v1/gameopt.grpc.pb.h"

namespace gameopt {

// "a:1,b:2" -> {"a:1", "b:2"}; also for session ids.
std::vector<std::string> SplitList(const std::string& text);

struct SessionParameters {
  int64_t step = 0;        // shard 0's
  Eigen::VectorXd values;  // x in the game's layout
};

class ShardedSession {
 public:
  // Creates the session on every server from the unsharded `config` (as
  // BuildSessionConfig makes it), waiting up to `wait` for the servers to
  // answer. `ids` (empty, or one per server): the session ids to ask for
  // (CreateSessionRequest.session_id), e.g. ids a tokens file names. Sharded:
  // CheckShardable's InvalidArgument for what cannot be sharded exactly. If a
  // shard fails, those already created are deleted.
  static absl::StatusOr<ShardedSession> Create(
      std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
      const v1::SessionConfig& config, absl::Duration wait = absl::Seconds(60),
      const std::vector<std::string>& ids = {});
  // An existing experiment: one id per server, in shard order.
  static absl::StatusOr<ShardedSession> Open(
      std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
      std::vector<std::string> ids);
  // Waits up to `wait` until every server holds exactly one unfinished
  // session named `name` (SessionConfig.name); asks at least once. NotFound
  // after `wait`; FailedPrecondition when a server holds several.
  static absl::StatusOr<ShardedSession> OpenByName(
      std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
      const std::string& name, absl::Duration wait = absl::Seconds(120));

  int num_shards() const { return static_cast<int>(ids_.size()); }
  const std::vector<std::string>& ids() const { return ids_; }
  std::string id() const;

  // One worker on the calling thread until the session is DONE: a
  // ShardedWorker of S shards (with S = 1, what a Worker is). `game` must be
  // this session's game.
  absl::Status RunWorker(Game* game, const WorkerOptions& options) const;

  absl::StatusOr<SessionParameters> GetParameters() const;
  // Best effort on every shard; the first error.
  absl::Status Delete() const;

 private:
  ShardedSession(std::vector<std::shared_ptr<grpc::Channel>> channels,
                 std::vector<PlayerSpec> players, std::vector<std::string> ids);

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<PlayerSpec> players_;
  std::vector<std::string> ids_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_SHARDED_SESSION_H_
