// The hot path's messages read and written in protobuf's wire format
// directly over gRPC's buffers, so that tensor values are copied once per
// direction at most:
//
//   in:  a SubmitGradientRequest / SubmitJacobianProductsRequest is parsed
//        in place (WireSubmission): the Submission's tensor views point into
//        the received slices, and DecodeSample copies each value once, into
//        the session's reusable buffer, checking it on the way;
//   out: a TaskResponse (TaskToWire, with WireWriter) references the
//        task's parameter and probe vectors from its slices, keeping them
//        alive until gRPC has written them (the core copies on its next
//        write if they are still held), so the values reach the socket
//        without a user-space copy.
//
// Field numbers come from the generated code (k...FieldNumber);
// tests/service/wire_format_test.cc checks through the descriptors that
// the parser reads every field of the submit requests and TaskToWire
// writes every field of the TaskResponse.
//
// Protobuf's generated code would copy each tensor into a std::string and
// out again (and allocate a parameter-sized string per message). The
// messages are the same: TaskToWire writes, byte for byte, what
// TaskToProto + SerializeToString writes, and WireSubmission accepts what
// protobuf accepts (fields in any order, repeated scalars packed or not,
// unknown fields skipped, groups included, known fields with another wire
// type skipped as unknown) and rejects exactly what protobuf rejects
// (truncated or overlong varints, tags and lengths, lengths past the
// message, tag 0 and field 0, unmatched end groups, wire types 6 and 7,
// strings that are not UTF-8, nesting past protobuf's recursion limit of
// 100), and converts it as SubmissionFromProto does.
#ifndef GAMEOPT_SERVER_SERVICE_WIRE_FORMAT_H_
#define GAMEOPT_SERVER_SERVICE_WIRE_FORMAT_H_

#include <cstdint>
#include <forward_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/layout.h"
#include "server/core/session.h"
#include "server/core/submission.h"
#include "server/service/wire_reader.h"
#include "server/service/wire_writer.h"

namespace gameopt {

// A submit request parsed in place. Holds references to the request's
// slices, so its views stay valid as long as it lives. Not copyable.
// Thread-compatible.
class WireSubmission {
 public:
  enum class Kind { kGradient, kProducts };

  WireSubmission() = default;
  WireSubmission(const WireSubmission&) = delete;
  WireSubmission& operator=(const WireSubmission&) = delete;

  // Parses `buffer` as a serialized SubmitGradientRequest (kGradient) or
  // SubmitJacobianProductsRequest (kProducts). InvalidArgument when it is
  // not well-formed protobuf.
  absl::Status Parse(const grpc::ByteBuffer& buffer, Kind kind);

  const std::string& session_id() const { return session_id_; }
  int64_t worker_id() const { return worker_id_; }
  int64_t known_params_version() const { return known_params_version_; }

  // The parsed request as the core's Submission, viewing this object's
  // slices; InvalidArgument naming the field for a tensor without a known
  // dtype, exactly as SubmissionFromProto.
  absl::Status ToSubmission(Submission* out) const;

  // For tests: the slices the request arrived in.
  size_t num_slices() const { return slices_.size(); }

  // Hands the slices over to a handle that keeps them, and so the views of
  // ToSubmission, alive (Submission::keep_alive): a session may then keep
  // a sample where it arrived (PackSample). Call after ToSubmission; the
  // views stay where they are (the slices do not move).
  std::shared_ptr<const void> ShareSlices();

 private:
  struct Tensor {
    absl::string_view name;
    int dtype = 0;  // the proto enum's value
    absl::InlinedVector<int64_t, 4> shape;
    absl::string_view bytes;                // when in one slice
    std::vector<absl::string_view> pieces;  // otherwise
  };
  struct Player {
    absl::string_view name;
    std::vector<Tensor> tensors;
  };
  using Vector = std::vector<Player>;

  absl::Status ParseVector(WireReader& reader, Vector* out);
  absl::Status ParsePlayer(WireReader& reader, Player* out);
  absl::Status ParseTensor(WireReader& reader, Tensor* out);
  absl::Status ParseScalar(WireReader& reader, ScalarView* out);
  // A string field; copied into owned_ when it spans slices.
  absl::Status ReadString(WireReader& reader, absl::string_view* out);

  std::vector<grpc::Slice> slices_;
  // Stable addresses, and no allocation while empty (a deque allocates).
  std::forward_list<std::string> owned_;
  std::string session_id_;
  int64_t worker_id_ = 0;
  int64_t round_ = 0;
  int64_t step_ = 0;
  int32_t phase_ = 0;
  int64_t known_params_version_ = 0;
  std::vector<Vector> gradients_;  // a gradient request's only
  std::vector<Vector> vjp_;        // products, or a fused gradient round's
  std::vector<Vector> jvp_;
  std::vector<ScalarView> scalars_;
  std::string loss_player_;  // a gradient request's only
};

// Serializes the TaskResponse that TaskToProto(task, layout,
// known_params_version, wire) would build into `out`. Tensor values of at
// least kAliasMinBytes (wire_writer.h) are referenced, not copied. With
// wire.to_workers, params and probes are encoded first (probes per task;
// the parameters once per version, shared by the workers that get them).
void TaskToWire(const Task& task, const GameLayout& layout,
                int64_t known_params_version, grpc::ByteBuffer* out,
                const WireConfig& wire = WireConfig());

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_WIRE_FORMAT_H_
