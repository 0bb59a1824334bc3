#include "client/play_servers.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/worker/sharded_session.h"

namespace gameopt {

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ChannelsTo(
    const std::string& addresses, const ChannelOptions& options) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& address : SplitList(addresses)) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(address, options);
    if (!channel.ok()) return channel.status();
    channels.push_back(*std::move(channel));
  }
  return channels;
}

absl::StatusOr<PlayServers> PlayServers::Start(const std::string& addresses,
                                               int shards,
                                               const ChannelOptions& options) {
  PlayServers servers;
  if (!addresses.empty()) {
    absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
        ChannelsTo(addresses, options);
    if (!channels.ok()) return channels.status();
    if (shards > 1 && static_cast<int>(channels->size()) != shards) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shards=", shards, " but ", channels->size(),
                       " server address(es): give one address per shard"));
    }
    servers.channels_ = *std::move(channels);
    return servers;
  }
  for (int s = 0; s < std::max(1, shards); ++s) {
    GameOptServerOptions server_options;
    server_options.address = "127.0.0.1:0";
    server_options.max_message_mb = options.max_message_mb;
    server_options.log = nullptr;
    servers.local_.push_back(std::make_unique<GameOptServer>(server_options));
    absl::Status started = servers.local_.back()->Start();
    if (!started.ok()) return started;
    servers.channels_.push_back(servers.local_.back()->InProcessChannel());
  }
  return servers;
}

void PlayServers::Shutdown() {
  for (std::unique_ptr<GameOptServer>& server : local_) {
    if (server != nullptr) server->Shutdown();
  }
  local_.clear();
}

}  // namespace gameopt
