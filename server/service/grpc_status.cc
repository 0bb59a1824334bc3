#include "server/service/grpc_status.h"

#include <string>

namespace gameopt {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Codes 1..16 are identical in both enums; anything else is UNKNOWN.
  const int code = static_cast<int>(status.code());
  const grpc::StatusCode grpc_code = code >= 1 && code <= 16
                                         ? static_cast<grpc::StatusCode>(code)
                                         : grpc::StatusCode::UNKNOWN;
  return grpc::Status(grpc_code, std::string(status.message()));
}

}  // namespace gameopt
