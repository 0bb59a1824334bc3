// proto <-> core: the only place gameopt.v1 messages meet the core's types
// (with config_convert.h for SessionConfig). Every function validates what
// the core does not (enum values, dtypes) and leaves the rest to the core,
// whose InvalidArgument messages name the field.
//
// Tensor bytes are little-endian values of the tensor's dtype, row-major;
// the joint vector is laid out player by player, tensor by tensor (see
// server/core/layout.h). All functions are thread-compatible.
#ifndef GAMEOPT_SERVER_SERVICE_PROTO_CONVERT_H_
#define GAMEOPT_SERVER_SERVICE_PROTO_CONVERT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gameopt/v1/gameopt.pb.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/session.h"
#include "server/core/submission.h"
#include "server/core/wire_vector.h"
#include "server/service/config_convert.h"

namespace gameopt {

// The service reads submissions in their raw form (WireSubmission,
// wire_format.h) and writes tasks with TaskToWire; SubmissionFromProto and
// TaskToProto are the protobuf-message forms those are tested against
// (tests/bench/hot_path_test.cc, tests/fuzz) and that in-process tests use.
//
// Zero copy: `out` views the request's names, shapes and bytes, so it is
// valid only while `request` is alive and unchanged. A tensor without a
// dtype (DTYPE_UNSPECIFIED) or with an unknown one is InvalidArgument naming
// the field, e.g. "gradients[0].players[1].tensors[0].dtype". Shapes, sizes,
// values and missing tensors are checked by the session (DecodeSample).
absl::Status SubmissionFromProto(const v1::SubmitGradientRequest& request,
                                 Submission* out);
absl::Status SubmissionFromProto(
    const v1::SubmitJacobianProductsRequest& request, Submission* out);
absl::Status SampleFromProto(const v1::Vector& vector, absl::string_view field,
                             SampleView* out);

// Whether a task at `version` carries the parameter values for a worker
// that says it holds `known`. Versions start at 0 in the core while the
// proto lets a worker say "none" with 0 or -1, so known <= 0 always gets
// the values.
bool ShouldSendParams(int64_t version, int64_t known);

// `values` (the layout's dimension, in its dtype) as one Vector over every
// player, each tensor's slice as raw bytes of values.dtype().
void VectorToProto(const FlatVector& values, const GameLayout& layout,
                   v1::Vector* out);

// The wire enum of a task's kind.
v1::TaskKind TaskKindToProto(Task::Kind kind);
// The wire enum of `task`: CROSS_GRADIENT for a gradient task with a loss
// player (Task::loss >= 0), else TaskKindToProto(task.kind).
v1::TaskKind TaskKindToProto(const Task& task);

// The wire enum of a worker's state (its name, WorkerStateName, goes in
// the string fields older clients read).
v1::WorkerState WorkerStateToProto(WorkerState state);

// `encoded` (EncodeVector of `values`) as VectorToProto writes `values`,
// each tensor in its encoded format.
void EncodedVectorToProto(const FlatVector& values,
                          const EncodedVector& encoded,
                          const GameLayout& layout, v1::Vector* out);

// The worker's task; params included per ShouldSendParams. With
// wire.to_workers set, params and probes are encoded in it (TaskRounding).
void TaskToProto(const Task& task, const GameLayout& layout,
                 int64_t known_params_version, v1::TaskResponse* out,
                 const WireConfig& wire = WireConfig());

void SessionStatusToProto(const SessionInfo& info, const SessionConfig& config,
                          v1::SessionStatus* out);
// Appends the reported scalars' means (SessionStatus / SessionMetrics).
void ScalarsToProto(absl::Span<const NamedValue> scalars,
                    google::protobuf::RepeatedPtrField<v1::Scalar>* out);
void ParametersToProto(const ParametersSnapshot& snapshot,
                       const GameLayout& layout,
                       v1::GetParametersResponse* out);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_PROTO_CONVERT_H_
