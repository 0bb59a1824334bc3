// The baselines of gameopt_bench, each moving the same bytes the same
// number of times as a gameopt round does:
//   - a plain gRPC echo service (echo.proto: bytes in, the same bytes out),
//     the best a protobuf-over-gRPC service can do with the payload;
//   - raw TCP ping-pong on loopback (length-prefixed messages echoed by a
//     thread per connection), the best any protocol can do here.
// Servers listen on 127.0.0.1 only.
#ifndef GAMEOPT_TESTS_BENCH_BASELINES_H_
#define GAMEOPT_TESTS_BENCH_BASELINES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/channel.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/server.h"
#include "grpcpp/support/byte_buffer.h"

namespace gameopt::bench {

// Largest message of the bench: 2 GiB - 1, gRPC's int limit.
inline constexpr int kMaxMessageBytes = 0x7fffffff;

// A client's timed window, CLOCK_MONOTONIC nanoseconds (comparable across
// the processes of one machine).
struct Window {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};
int64_t NowNs();

// A channel with the bench's message limits.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target);

// Unary calls of one method with serialized messages (grpc::ByteBuffer), as
// the generated stub makes them but without protobuf on the client: the
// bench's clients send prepared bytes and read what they need from the
// answer, so that their own work stays small next to the server's.
class RawMethod {
 public:
  // `name` as "/package.Service/Method"; must outlive the object.
  RawMethod(std::shared_ptr<grpc::Channel> channel, const char* name);
  grpc::Status Call(const grpc::ByteBuffer& request,
                    grpc::ByteBuffer* response) const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::internal::RpcMethod method_;
};

// The bytes of `message`, serialized once, as a one-slice buffer.
grpc::ByteBuffer Serialized(const google::protobuf::MessageLite& message);

// gRPC echo on 127.0.0.1:0.
class EchoServer {
 public:
  EchoServer();
  ~EchoServer();
  absl::Status Start();
  int port() const { return port_; }

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Raw TCP echo on 127.0.0.1:0: reads an 8-byte length and that many bytes,
// writes them back, per connection, until the peer closes.
class TcpEchoServer {
 public:
  TcpEchoServer() = default;
  ~TcpEchoServer();
  absl::Status Start();
  int port() const { return port_; }

 private:
  void Accept();
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

// One client: `warmup` then `count` timed steps, each sending a message of
// every size of `sizes` in turn (a gameopt step's requests) and receiving
// it back. The messages are prepared once. The echo client sends a
// serialized Blob through RawMethod, as the gameopt workers send theirs.
absl::StatusOr<Window> RunEchoClient(const std::string& target,
                                     const std::vector<int64_t>& sizes,
                                     int64_t warmup, int64_t count);
absl::StatusOr<Window> RunTcpClient(int port, const std::vector<int64_t>& sizes,
                                    int64_t warmup, int64_t count);

}  // namespace gameopt::bench

#endif  // GAMEOPT_TESTS_BENCH_BASELINES_H_
