// SessionConfig: proto <-> core. Part of the service's conversion layer
// (proto_convert.h holds the rest); no other server code sees gameopt.v1
// config messages.
#ifndef GAMEOPT_SERVER_SERVICE_CONFIG_CONVERT_H_
#define GAMEOPT_SERVER_SERVICE_CONFIG_CONVERT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gameopt/v1/gameopt.pb.h"
#include "server/core/config.h"
#include "server/core/dtype.h"

namespace gameopt {

// The core config of `proto`, with the proto's documented defaults applied
// (a zero scalar or an absent optional means "default": learning_rate 0.01,
// momentum 0.9, beta1 0.9, beta2 0.999, gamma and lambda0 1, lookahead_alpha
// 0.5, workers_per_round 1, samples_per_worker 1, altgd steps 1, phase
// deadline 60 s, a negative deadline waits forever). RMSPROP applies its
// preset first, then the optional overrides. Unknown enum values and every
// rule of ValidateConfig are InvalidArgument naming the field.
absl::StatusOr<SessionConfig> SessionConfigFromProto(
    const v1::SessionConfig& proto);

// The reverse, for SessionStatus: every default spelled out, initial values
// left out (tensors carry names and shapes only).
void SessionConfigToProto(const SessionConfig& config, v1::SessionConfig* out);

// FLOAT32 / FLOAT64. DTYPE_UNSPECIFIED is `unspecified` when given, else
// InvalidArgument naming `field`, as is any unknown value.
absl::StatusOr<DType> DTypeFromProto(int dtype, absl::string_view field);
absl::StatusOr<DType> DTypeFromProto(int dtype, absl::string_view field,
                                     DType unspecified);
v1::DType DTypeToProto(DType dtype);

// BFLOAT16 / FLOAT16 / INT8_BLOCK; DTYPE_UNSPECIFIED, FLOAT32 and FLOAT64
// are kNone (uncompressed); any other value InvalidArgument naming `field`.
absl::StatusOr<Compression> CompressionFromProto(int dtype,
                                                 absl::string_view field);
// kNone: DTYPE_UNSPECIFIED.
v1::DType CompressionToProto(Compression compression);

// A Tensor's dtype: FLOAT32 / FLOAT64 (compression kNone) or a compressed
// format (dtype then unused). DTYPE_UNSPECIFIED and unknown values are
// InvalidArgument naming `field`, as DTypeFromProto.
struct TensorDType {
  DType dtype = DType::kFloat32;
  Compression compression = Compression::kNone;
};
absl::StatusOr<TensorDType> TensorDTypeFromProto(int dtype,
                                                 absl::string_view field);
// The Tensor dtype of values in `compression`, or raw `dtype` values when
// it is kNone.
v1::DType TensorDTypeToProto(Compression compression, DType dtype);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CONFIG_CONVERT_H_
