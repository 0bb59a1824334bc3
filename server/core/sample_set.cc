#include "server/core/sample_set.h"

#include <algorithm>

namespace gameopt {
namespace {

// Values [i, i + m) of one tensor's encoding at `bytes` into `out`. Where
// an int8 block starts before i, its first values are decoded into a
// scratch block and the rest dropped.
template <typename T>
void DecodeRange(Compression c, const char* bytes, int64_t i, int64_t m,
                 T* out) {
  if (c == Compression::kInt8Block && i % kInt8BlockSize != 0) {
    const int64_t start = i - i % kInt8BlockSize;
    const int64_t head = std::min(m, start + kInt8BlockSize - i);
    T block[kInt8BlockSize];
    gameopt::Decode(c, bytes + CompressedOffset(c, start), i - start + head,
                    block);
    std::copy(block + (i - start), block + (i - start) + head, out);
    i += head;
    m -= head;
    out += head;
  }
  if (m > 0) gameopt::Decode(c, bytes + CompressedOffset(c, i), m, out);
}

}  // namespace

template <typename T>
void PackedVector::Decode(int64_t begin, int64_t n, T* out) const {
  const int64_t end = begin + n;
  // The last tensor that starts at or before `begin`.
  auto it = std::upper_bound(
      tensors_.begin(), tensors_.end(), begin,
      [](int64_t at, const Tensor& t) { return at < t.offset; });
  if (it != tensors_.begin()) --it;
  for (; it != tensors_.end() && it->offset < end; ++it) {
    const int64_t from = std::max(begin, it->offset);
    const int64_t to = std::min(end, it->offset + it->size);
    if (to <= from) continue;
    T* dst = out + (from - begin);
    if (it->byte_offset < 0) {
      std::fill(dst, dst + (to - from), T(0));
    } else {
      DecodeRange(compression_, data_.data() + it->byte_offset,
                  from - it->offset, to - from, dst);
    }
  }
}

PackedVectorWriter::PackedVectorWriter(PackedVector& out,
                                       const GameLayout& layout,
                                       const std::vector<bool>& present,
                                       Compression compression)
    : out_(out) {
  out.dimension_ = layout.dimension();
  out.compression_ = compression;
  out.tensors_.clear();
  int64_t bytes = 0;
  for (int p = 0; p < layout.num_players(); ++p) {
    first_.push_back(static_cast<int>(out.tensors_.size()));
    for (const TensorLayout& tensor : layout.players()[p].tensors) {
      PackedVector::Tensor t;
      t.offset = tensor.offset;
      t.size = tensor.size;
      if (present[p]) {
        t.byte_offset = bytes;
        bytes += static_cast<int64_t>(CompressedBytes(compression, t.size));
      }
      out.tensors_.push_back(t);
    }
  }
  out.bytes_ = static_cast<size_t>(bytes);
  // Grown only: a resize down and up again would zero the whole buffer.
  if (out.data_.size() < static_cast<size_t>(bytes)) out.data_.resize(bytes);
}

char* PackedVectorWriter::TensorBytes(int p, int t) {
  return out_.data_.data() + out_.tensors_[first_[p] + t].byte_offset;
}

bool SampleSet::has_packed() const {
  for (const PackedVector* p : packed_) {
    if (p != nullptr) return true;
  }
  return false;
}

int64_t SampleSet::dimension() const {
  if (empty()) return 0;
  return dense_[0] != nullptr ? dense_[0]->size() : packed_[0]->dimension();
}

template void PackedVector::Decode<float>(int64_t, int64_t, float*) const;
template void PackedVector::Decode<double>(int64_t, int64_t, double*) const;

}  // namespace gameopt
