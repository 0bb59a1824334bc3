// absl::Status -> grpc::Status at the wire. absl's codes mirror
// google/rpc/code.proto, which grpc::StatusCode also mirrors, so the code is
// carried over unchanged and the message verbatim.
#ifndef GAMEOPT_SERVER_SERVICE_GRPC_STATUS_H_
#define GAMEOPT_SERVER_SERVICE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace gameopt {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_GRPC_STATUS_H_
