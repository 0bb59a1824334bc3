#include "tests/bench/baselines.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "tests/bench/echo.grpc.pb.h"

namespace gameopt::bench {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// ---------------------------------------------------------------- gRPC

class EchoServer::Service final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const Blob* request, Blob* response) override {
    // Hand the received bytes back without copying them once more: the
    // copies left are protobuf's parse and serialization, as in any
    // protobuf service.
    response->mutable_data()->swap(*const_cast<Blob*>(request)->mutable_data());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

EchoServer::EchoServer() : service_(std::make_unique<Service>()) {}

EchoServer::~EchoServer() {
  if (server_ != nullptr) server_->Shutdown();
}

absl::Status EchoServer::Start() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError("echo server: cannot listen");
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

RawMethod::RawMethod(std::shared_ptr<grpc::Channel> channel, const char* name)
    : channel_(std::move(channel)),
      method_(name, grpc::internal::RpcMethod::NORMAL_RPC, channel_) {}

grpc::Status RawMethod::Call(const grpc::ByteBuffer& request,
                             grpc::ByteBuffer* response) const {
  grpc::ClientContext context;
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel_.get(), method_, &context, request, response);
}

grpc::ByteBuffer Serialized(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

absl::StatusOr<Window> RunEchoClient(const std::string& target,
                                     const std::vector<int64_t>& sizes,
                                     int64_t warmup, int64_t count) {
  RawMethod echo(NewChannel(target), "/gameopt.bench.Echo/Echo");
  std::vector<grpc::ByteBuffer> requests;
  for (int64_t size : sizes) {
    Blob blob;
    blob.mutable_data()->assign(size, '\1');
    requests.push_back(Serialized(blob));
  }
  Window window;
  for (int64_t step = 0; step < warmup + count; ++step) {
    if (step == warmup) window.start_ns = NowNs();
    for (const grpc::ByteBuffer& request : requests) {
      grpc::ByteBuffer response;
      grpc::Status status = echo.Call(request, &response);
      if (!status.ok()) {
        return absl::UnavailableError(
            absl::StrCat("echo: ", status.error_message()));
      }
      if (response.Length() != request.Length()) {
        return absl::InternalError("echo: wrong size back");
      }
    }
  }
  window.end_ns = NowNs();
  return window;
}

// ---------------------------------------------------------------- TCP

namespace {

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= n;
  }
  return true;
}

bool RecvAll(int fd, char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= n;
  }
  return true;
}

void NoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void Serve(int fd) {
  std::vector<char> buffer;
  while (true) {
    uint64_t size;
    if (!RecvAll(fd, reinterpret_cast<char*>(&size), 8)) break;
    if (buffer.size() < size) buffer.resize(size);
    if (!RecvAll(fd, buffer.data(), size) ||
        !SendAll(fd, reinterpret_cast<const char*>(&size), 8) ||
        !SendAll(fd, buffer.data(), size)) {
      break;
    }
  }
  close(fd);
}

}  // namespace

TcpEchoServer::~TcpEchoServer() {
  stop_ = true;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  for (std::thread& t : connections_) t.join();
}

absl::Status TcpEchoServer::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 ||
      bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::UnavailableError(
        absl::StrCat("tcp echo: cannot listen: ", std::strerror(errno)));
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
  return absl::OkStatus();
}

void TcpEchoServer::Accept() {
  while (!stop_) {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    NoDelay(fd);
    connections_.emplace_back([fd] { Serve(fd); });
  }
}

absl::StatusOr<Window> RunTcpClient(int port, const std::vector<int64_t>& sizes,
                                    int64_t warmup, int64_t count) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (fd < 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("tcp: cannot connect: ", std::strerror(errno)));
  }
  NoDelay(fd);
  int64_t largest = 0;
  for (int64_t size : sizes) largest = std::max(largest, size);
  std::vector<char> out(largest, '\1'), in(largest);
  Window window;
  bool ok = true;
  for (int64_t step = 0; ok && step < warmup + count; ++step) {
    if (step == warmup) window.start_ns = NowNs();
    for (int64_t size : sizes) {
      uint64_t header = size, back = 0;
      ok = SendAll(fd, reinterpret_cast<const char*>(&header), 8) &&
           SendAll(fd, out.data(), size) &&
           RecvAll(fd, reinterpret_cast<char*>(&back), 8) && back == header &&
           RecvAll(fd, in.data(), size);
      if (!ok) break;
    }
  }
  window.end_ns = NowNs();
  close(fd);
  if (!ok) return absl::UnavailableError("tcp: connection broke");
  return window;
}

}  // namespace gameopt::bench
