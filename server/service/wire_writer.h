// WireWriter: protobuf's wire format written into gRPC slices, the writing
// half of wire_reader.h; the hot path's tasks are written with it
// (TaskToWire, wire_format.h).
#ifndef GAMEOPT_SERVER_SERVICE_WIRE_WRITER_H_
#define GAMEOPT_SERVER_SERVICE_WIRE_WRITER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/flat_vector.h"
#include "server/service/wire_reader.h"

namespace gameopt {

// Bytes values smaller than this are copied by WireWriter::DataField: a
// slice of their own would cost more than the copy.
inline constexpr size_t kAliasMinBytes = 16 << 10;
// WireWriter::Reserve's most; the gathered bytes of a larger message grow
// past it as needed.
inline constexpr size_t kReserveMaxBytes = 64 << 10;
// Gathered bytes of at least this size become a slice as they are (the
// slice owns the string); smaller ones are copied into a slice, which
// costs less than the second allocation.
inline constexpr size_t kHandOverMinBytes = 4 << 10;

// The size of a varint (1 to 10 bytes).
constexpr size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Protobuf writes a negative int32 / int64 / enum as 10 bytes,
// sign-extended: the varint of its two's complement.
constexpr uint64_t AsVarint(int64_t value) {
  return static_cast<uint64_t>(value);
}

// The size of field `field`'s tag (1 byte up to field 15, 2 up to 2047).
constexpr size_t TagSize(int field) {
  return VarintSize(static_cast<uint64_t>(field) << 3);
}

// The serialized size of a varint field as proto3 writes it (nothing for
// 0), and of a length-delimited field of `length` bytes.
constexpr size_t VarintFieldSize(int field, uint64_t value) {
  return value == 0 ? 0 : TagSize(field) + VarintSize(value);
}
constexpr size_t LengthDelimitedSize(int field, size_t length) {
  return TagSize(field) + VarintSize(length) + length;
}

// Writes fields in the order called into slices: small values are
// gathered into copied slices, bytes values of at least kAliasMinBytes
// referenced in place (DataField). A nested message is its tag and its
// length (computed with the sizes above) followed by its fields.
// Thread-compatible; one message per writer.
class WireWriter {
 public:
  // Room for the message's first `bytes` (its computed size: one
  // allocation for a message that is all gathered), up to
  // kReserveMaxBytes.
  void Reserve(size_t bytes) {
    pending_.reserve(std::min(bytes, kReserveMaxBytes));
  }
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      pending_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    pending_.push_back(static_cast<char>(value));
  }
  void Tag(int field, int wire_type) {
    Varint((static_cast<uint64_t>(field) << 3) | wire_type);
  }
  // Proto3 leaves zero scalars and empty strings out; `always` writes an
  // empty string (an element of a repeated string field).
  void VarintField(int field, uint64_t value) {
    if (value == 0) return;
    Tag(field, WireReader::kVarint);
    Varint(value);
  }
  void StringField(int field, absl::string_view value, bool always = false) {
    if (value.empty() && !always) return;
    Tag(field, WireReader::kLengthDelimited);
    Varint(value.size());
    pending_.append(value.data(), value.size());
  }
  // A bytes field whose `size` bytes at `data` live in `owner` (a
  // FlatVector, an EncodedVector), which the slice keeps alive until gRPC
  // is done with it.
  void DataField(int field, const char* data, size_t size,
                 const std::shared_ptr<const void>& owner);
  // The same for a bytes value held in consecutive pieces.
  void DataField(int field, absl::Span<const absl::string_view> pieces,
                 const std::shared_ptr<const void>& owner);
  // Moves the message written into `out`.
  void Finish(grpc::ByteBuffer* out);

 private:
  void Flush();

  std::vector<grpc::Slice> slices_;
  std::string pending_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_WIRE_WRITER_H_
