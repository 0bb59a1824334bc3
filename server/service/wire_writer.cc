#include "server/service/wire_writer.h"

namespace gameopt {
namespace {

void Release(void* keep) {
  delete static_cast<std::shared_ptr<const void>*>(keep);
}

void DeleteString(void* bytes) { delete static_cast<std::string*>(bytes); }

}  // namespace

void WireWriter::DataField(int field, const char* data, size_t size,
                           const std::shared_ptr<const void>& owner) {
  const absl::string_view piece(data, size);
  DataField(field, absl::MakeConstSpan(&piece, 1), owner);
}

void WireWriter::DataField(int field,
                           absl::Span<const absl::string_view> pieces,
                           const std::shared_ptr<const void>& owner) {
  size_t size = 0;
  for (absl::string_view piece : pieces) size += piece.size();
  if (size == 0) return;
  Tag(field, WireReader::kLengthDelimited);
  Varint(size);
  for (absl::string_view piece : pieces) {
    if (piece.size() < kAliasMinBytes) {
      pending_.append(piece.data(), piece.size());
      continue;
    }
    Flush();
    auto* keep = new std::shared_ptr<const void>(owner);
    slices_.emplace_back(const_cast<char*>(piece.data()), piece.size(),
                         &Release, keep);
  }
}

void WireWriter::Finish(grpc::ByteBuffer* out) {
  Flush();
  grpc::ByteBuffer buffer(slices_.data(), slices_.size());
  out->Swap(&buffer);
}

void WireWriter::Flush() {
  if (pending_.empty()) return;
  if (pending_.size() < kHandOverMinBytes) {
    slices_.emplace_back(pending_);
  } else {
    auto* bytes = new std::string(std::move(pending_));
    slices_.emplace_back(bytes->data(), bytes->size(), &DeleteString, bytes);
  }
  pending_.clear();
}

}  // namespace gameopt
