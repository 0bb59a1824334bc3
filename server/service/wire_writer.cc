#include "server/service/wire_writer.h"

namespace gameopt {
namespace {

void Release(void* keep) {
  delete static_cast<std::shared_ptr<const void>*>(keep);
}

}  // namespace

void WireWriter::DataField(int field, const char* data, size_t size,
                           const std::shared_ptr<const void>& owner) {
  if (size == 0) return;
  Tag(field, WireReader::kLengthDelimited);
  Varint(size);
  if (size < kAliasMinBytes) {
    pending_.append(data, size);
    return;
  }
  Flush();
  auto* keep = new std::shared_ptr<const void>(owner);
  slices_.emplace_back(const_cast<char*>(data), size, &Release, keep);
}

void WireWriter::Finish(grpc::ByteBuffer* out) {
  Flush();
  grpc::ByteBuffer buffer(slices_.data(), slices_.size());
  out->Swap(&buffer);
}

void WireWriter::Flush() {
  if (pending_.empty()) return;
  slices_.emplace_back(pending_);
  pending_.clear();
}

}  // namespace gameopt
