// The servers of one `gameopt_client play` run: the ones it was given
// (host:port list, one per shard) or in-process GameOptServers it starts on
// 127.0.0.1:0 and stops at the end.
#ifndef GAMEOPT_CLIENT_PLAY_SERVERS_H_
#define GAMEOPT_CLIENT_PLAY_SERVERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/worker/channel.h"
#include "grpcpp/grpcpp.h"
#include "server/service/server.h"

namespace gameopt {

// One channel per address of the comma-separated `addresses`, with
// `options`; MakeChannel's InvalidArgument for unreadable TLS files.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ChannelsTo(
    const std::string& addresses, const ChannelOptions& options);

// Not thread-safe. Stops the servers it started when destroyed (or at
// Shutdown()).
class PlayServers {
 public:
  // `addresses` empty: max(1, shards) in-process servers (message limit
  // options.max_message_mb, silent), reached through in-process channels.
  // Otherwise channels to `addresses`; with shards > 1 there must be
  // exactly that many (else InvalidArgument).
  static absl::StatusOr<PlayServers> Start(const std::string& addresses,
                                           int shards,
                                           const ChannelOptions& options);

  PlayServers(PlayServers&&) = default;
  PlayServers& operator=(PlayServers&&) = default;
  ~PlayServers() { Shutdown(); }

  const std::vector<std::shared_ptr<grpc::Channel>>& channels() const {
    return channels_;
  }
  // Stops the in-process servers (none for given addresses).
  void Shutdown();

 private:
  PlayServers() = default;

  std::vector<std::unique_ptr<GameOptServer>> local_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_PLAY_SERVERS_H_
