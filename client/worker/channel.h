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

// Works around a gRPC 1.51 bug (Debian bookworm's; grpc/grpc#35064, fixed
// in later releases) that fails a fresh channel's first connection now and
// then as "ipv4:...: No such file or directory": after a non-blocking
// connect(2) gRPC makes other calls before it reads errno, and one of them
// can lock an absl::Mutex behind another waiter for the first time in the
// process. Abseil then reads the CPU's frequency, once, from
// /sys/devices/system/cpu/cpu0/tsc_freq_khz (absent on this project's VMs
// and on many other kernels), which leaves errno = ENOENT. The channel then
// waits a second before it connects again, and a call without
// wait_for_ready fails UNAVAILABLE. Reading the frequency here, once per
// process, caches it: no later Mutex opens the file. MakeChannel calls
// this; code that creates channels otherwise should call it first.
// Idempotent and thread-safe.
void PrimeAbseilBeforeConnecting();

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_CHANNEL_H_
