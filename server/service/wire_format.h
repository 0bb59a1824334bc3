// The hot path's messages read and written in protobuf's wire format
// directly over gRPC's buffers, so that tensor values are copied once per
// direction at most:
//
//   in:  a SubmitGradientRequest / SubmitJacobianProductsRequest is parsed
//        in place (WireSubmission): the Submission's tensor views point into
//        the received slices, and DecodeSample copies each value once, into
//        the session's reusable buffer, checking it on the way;
//   out: a TaskResponse (TaskToWire) references the task's parameter and
//        probe vectors from its slices, keeping them alive until gRPC has
//        written them (the core copies on its next write if they are still
//        held), so the values reach the socket without a user-space copy.
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
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/layout.h"
#include "server/core/session.h"
#include "server/core/submission.h"

namespace gameopt {

// Reads protobuf's wire format from a sequence of chunks (a message's
// slices) without joining them, with protobuf 3's parser's rules. A limit
// bounds the message being read; PushLimit narrows it (a packed field),
// EnterMessage too and counts the nesting. Every read fails (false) past
// the limit or on malformed input. The chunks must outlive the reader.
class WireReader {
 public:
  static constexpr int kVarint = 0;
  static constexpr int kFixed64 = 1;
  static constexpr int kLengthDelimited = 2;
  static constexpr int kStartGroup = 3;
  static constexpr int kEndGroup = 4;
  static constexpr int kFixed32 = 5;
  // Protobuf's default recursion limit: nested messages and groups.
  static constexpr int kRecursionLimit = 100;

  explicit WireReader(const std::vector<grpc::Slice>& slices);

  bool AtLimit() const { return position_ >= limit_; }
  // At the limit, and no malformed tag was read (ReadTag's false meant the
  // end): a message read to its end.
  bool EndedCleanly() const { return !bad_tag_ && AtLimit(); }
  // Narrows the limit to the next `length` bytes, saving the old one.
  bool PushLimit(uint64_t length, uint64_t* old);
  void PopLimit(uint64_t old) { limit_ = old; }
  // A nested message of `length` bytes: PushLimit, and false past the
  // recursion limit. LeaveMessage undoes it.
  bool EnterMessage(uint64_t length, uint64_t* old);
  void LeaveMessage(uint64_t old) {
    limit_ = old;
    ++depth_;
  }

  // A field's tag (at most 5 bytes, as protobuf's, whose value it takes
  // modulo 2^32); false at the limit, on a malformed tag, tag 0 or field 0.
  bool ReadTag(int* field, int* wire_type);
  // At most 10 bytes, the bits past 64 dropped (as protobuf).
  bool ReadVarint(uint64_t* value);
  // A little-endian 64-bit value (wire type kFixed64).
  bool ReadFixed64(uint64_t* value);
  // A length prefix (at most 5 bytes, below 2^31) that fits in the limit.
  bool ReadLength(uint64_t* length);
  // The next `length` bytes as views into the chunks, appended.
  bool ReadPieces(uint64_t length, std::vector<absl::string_view>* pieces);
  // Skips the value of the field whose tag was read last: a group up to
  // its end-group tag of the same field number (within the recursion
  // limit); false for an end-group tag and wire types 6 and 7.
  bool Skip(int wire_type);

 private:
  void SkipEmpty();
  bool ReadByte(uint8_t* byte);
  bool SkipBytes(uint64_t n);
  bool SkipGroup(int field);

  std::vector<absl::string_view> chunks_;  // non-empty
  size_t chunk_ = 0;
  uint64_t offset_ = 0;  // in chunks_[chunk_]
  uint64_t position_ = 0;
  uint64_t limit_ = 0;
  int last_field_ = 0;
  int depth_ = kRecursionLimit;
  bool bad_tag_ = false;
};

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points past U+10FFFF), as protobuf wants of proto3 strings.
bool IsValidUtf8(absl::string_view text);

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

 private:
  struct Tensor {
    absl::string_view name;
    int dtype = 0;  // the proto enum's value
    std::vector<int64_t> shape;
    absl::string_view bytes;               // when in one slice
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
  std::deque<std::string> owned_;  // stable addresses
  std::string session_id_;
  int64_t worker_id_ = 0;
  int64_t round_ = 0;
  int64_t step_ = 0;
  int32_t phase_ = 0;
  int64_t known_params_version_ = 0;
  std::vector<Vector> first_;   // gradients, or vjp
  std::vector<Vector> second_;  // jvp (of a fused gradient round too)
  std::vector<Vector> third_;   // a fused gradient round's vjp
  std::vector<ScalarView> scalars_;
  Kind kind_ = Kind::kGradient;
};

// Serializes the TaskResponse that TaskToProto(task, layout,
// known_params_version) would build into `out`. Tensor values of at least
// kAliasMinBytes are referenced, not copied.
void TaskToWire(const Task& task, const GameLayout& layout,
                int64_t known_params_version, grpc::ByteBuffer* out);

// Smaller tensors are copied: a slice of their own would cost more.
inline constexpr size_t kAliasMinBytes = 16 << 10;

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_WIRE_FORMAT_H_
