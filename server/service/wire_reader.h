// WireReader: protobuf's wire format read in place from a message's gRPC
// slices, with exactly protobuf 3's parser's acceptance rules; the hot
// path's submissions are parsed with it (wire_format.h).
#ifndef GAMEOPT_SERVER_SERVICE_WIRE_READER_H_
#define GAMEOPT_SERVER_SERVICE_WIRE_READER_H_

#include <cstdint>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/slice.h"

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
  // The next `length` bytes as one view when they lie in one chunk (the
  // usual case: no vector for the pieces); false, having read nothing,
  // when they span chunks or pass the limit.
  bool ReadContiguous(uint64_t length, absl::string_view* out);
  // Skips the value of the field whose tag was read last: a group up to
  // its end-group tag of the same field number (within the recursion
  // limit); false for an end-group tag and wire types 6 and 7.
  bool Skip(int wire_type);

 private:
  // A varint of at most `max_bytes` bytes, the low 7 bits first: stops
  // after a byte without the continuation bit (ended) or at the limit.
  struct VarintBytes {
    uint64_t value = 0;
    int bytes = 0;
    bool ended = false;
  };
  ABSL_ATTRIBUTE_ALWAYS_INLINE VarintBytes ReadVarintBytes(int max_bytes);
  // The next `n` bytes when they lie in one chunk within the limit (not
  // consumed); else null.
  const uint8_t* Peek(uint64_t n);
  void SkipEmpty();
  bool ReadByte(uint8_t* byte);
  bool SkipBytes(uint64_t n);
  bool SkipGroup(int field);

  absl::InlinedVector<absl::string_view, 4> chunks_;  // non-empty
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

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_WIRE_READER_H_
