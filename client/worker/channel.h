// Channels to a gameopt server: plaintext or TLS (optionally with a client
// certificate for mutual TLS), with an optional bearer token sent on every
// call as `authorization: Bearer <token>` (server/service/auth.h).
//
// The token is added by a client interceptor rather than gRPC call
// credentials: gRPC refuses call credentials on plaintext channels, and
// tokens over plaintext are allowed (on loopback, say), so one mechanism
// serves both. Every stub on the channel (Worker, ShardedSession, ...)
// sends it without further code.
#ifndef GAMEOPT_CLIENT_WORKER_CHANNEL_H_
#define GAMEOPT_CLIENT_WORKER_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

namespace gameopt {

struct ChannelOptions {
  int max_message_mb = 1024;  // both directions (gRPC's default is 4 MiB)
  // TLS when tls_roots_file is set: PEM roots that signed the server's
  // certificate. With tls_cert_file and tls_key_file (PEM) the client
  // presents that certificate (servers with a client CA require one).
  std::string tls_roots_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Bearer token for servers with a tokens file; empty = none.
  std::string token;
};

// InvalidArgument naming the option and file when a PEM file is missing or
// unreadable, or a client certificate comes without its key (or TLS roots).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const ChannelOptions& options);

// A plaintext channel without token, with the message limits raised.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           int max_message_mb = 1024);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_CHANNEL_H_
