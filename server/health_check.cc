// gameopt_health_check: asks a gRPC server for its grpc.health.v1 status, for
// container HEALTHCHECKs and scripts (Debian ships no grpc_health_probe).
//
//   gameopt_health_check [--address=127.0.0.1:50052]
//       [--service=gameopt.v1.GameOptimizer] [--timeout_s=3]
//
// Exit status: 0 when the server answers SERVING; 1 otherwise (NOT_SERVING,
// unknown service, unreachable, deadline), with one line on stderr saying
// which. On success it prints "SERVING" on stdout.
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/worker/channel.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50052",
          "host:port of the server (gameopt_server's --health_address, or "
          "its API --address, which serves health too)");
ABSL_FLAG(std::string, service, "",
          "service to ask about; empty = the server as a whole");
ABSL_FLAG(double, timeout_s, 3.0, "deadline of the call in seconds");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gameopt_health_check [--address=HOST:PORT] [--service=NAME]: exits 0 "
      "when grpc.health.v1.Health/Check answers SERVING");
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_address);
  // MakeChannel: a probe is a fresh process, whose first connection must
  // not fail spuriously (PrimeAbseilBeforeConnecting says why).
  auto stub = grpc::health::v1::Health::NewStub(gameopt::MakeChannel(address));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(
                           absl::GetFlag(FLAGS_timeout_s) * 1000)));
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "gameopt_health_check: %s: %s (code %d)\n",
                 address.c_str(), status.error_message().c_str(),
                 static_cast<int>(status.error_code()));
    return 1;
  }
  const std::string name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
          response.status());
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    std::fprintf(stderr, "gameopt_health_check: %s: %s\n", address.c_str(),
                 name.c_str());
    return 1;
  }
  std::printf("%s\n", name.c_str());
  return 0;
}
