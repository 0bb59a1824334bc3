#include "server/core/sample_set.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <type_traits>

#include "server/core/float_bits.h"
#include "server/core/parallel.h"

namespace gameopt {
namespace {

// Values decoded per call of the codec: a multiple of kInt8BlockSize, so
// that every chunk after the first starts a block.
constexpr int64_t kDecodeChunk = 2048;
static_assert(kDecodeChunk % kInt8BlockSize == 0);
// Bytes of a chunk in any format (raw float64 is the largest).
constexpr size_t kChunkBytes = kDecodeChunk * sizeof(double);
static_assert(kChunkBytes >=
              CompressedBytes(Compression::kInt8Block, kDecodeChunk));

// The first value of an encoding's unit (its int8 block) holding value i.
int64_t UnitStart(Compression c, int64_t i) {
  return c == Compression::kInt8Block ? i - i % kInt8BlockSize : i;
}

// Bytes of n values in a PackedVector's format: compressed in `c`, or raw
// `raw` values when c is kNone. Also the offset of value n (a unit's
// first).
size_t FormatBytes(Compression c, DType raw, int64_t n) {
  return c == Compression::kNone ? static_cast<size_t>(n) * DTypeSize(raw)
                                 : CompressedBytes(c, n);
}

// Decodes n values at `bytes` (a unit's first) into out.
template <typename T>
void DecodeValues(Compression c, DType raw, const char* bytes, int64_t n,
                  T* out) {
  if (c != Compression::kNone) {
    gameopt::Decode(c, bytes, n, out);
  } else if (raw == DTypeOf<T>()) {
    std::memcpy(out, bytes, static_cast<size_t>(n) * sizeof(T));
  } else {
    using From = std::conditional_t<std::is_same_v<T, float>, double, float>;
    for (int64_t i = 0; i < n; ++i) {
      From v;
      std::memcpy(&v, bytes + i * sizeof(From), sizeof(From));
      out[i] = static_cast<T>(v);
    }
  }
}

}  // namespace

void PackedVector::Clear() {
  dimension_ = 0;
  tensors_.clear();
  pieces_.clear();
  starts_.clear();
  keep_alive_.reset();
}

const char* PackedVector::Bytes(const Tensor& t, size_t begin, size_t end,
                                char* scratch) const {
  // The last piece that starts at or before `begin`.
  const auto first = starts_.begin() + t.first_piece;
  const auto last = starts_.begin() + t.end_piece;
  int p =
      static_cast<int>(std::upper_bound(first, last, begin) - starts_.begin()) -
      1;
  size_t at = begin - starts_[p];
  if (at + (end - begin) <= pieces_[p].size()) return pieces_[p].data() + at;
  for (size_t got = 0; got < end - begin; ++p, at = 0) {
    const size_t take = std::min(end - begin - got, pieces_[p].size() - at);
    std::memcpy(scratch + got, pieces_[p].data() + at, take);
    got += take;
  }
  return scratch;
}

template <typename T>
void PackedVector::DecodeTensor(const Tensor& t, int64_t i, int64_t m,
                                T* out) const {
  const Compression c = compression_;
  char scratch[kChunkBytes];
  while (m > 0) {
    // Decode from the start of i's unit; drop the values before i.
    // (A chunk that starts inside a block ends at a block's end.)
    const int64_t start = UnitStart(c, i);
    const int64_t len = std::min(m, kDecodeChunk - (i - start));
    const char* bytes = Bytes(t, FormatBytes(c, raw_, start),
                              FormatBytes(c, raw_, i + len), scratch);
    if (start == i) {
      DecodeValues(c, raw_, bytes, len, out);
    } else {
      T block[kInt8BlockSize];
      const int64_t head = std::min(len, start + kInt8BlockSize - i);
      gameopt::Decode(c, bytes, i - start + head, block);
      std::copy(block + (i - start), block + (i - start) + head, out);
      // The rest of this chunk's bytes start at the next block.
      if (len > head) {
        gameopt::Decode(c, bytes + CompressedBytes(c, i - start + head),
                        len - head, out + head);
      }
    }
    i += len;
    m -= len;
    out += len;
  }
}

template <typename F>
void PackedVector::ForEachTensorIn(int64_t begin, int64_t n, F fn) const {
  const int64_t end = begin + n;
  // The last tensor that starts at or before `begin`.
  auto it = std::upper_bound(
      tensors_.begin(), tensors_.end(), begin,
      [](int64_t at, const Tensor& t) { return at < t.offset; });
  if (it != tensors_.begin()) --it;
  for (; it != tensors_.end() && it->offset < end; ++it) {
    const int64_t from = std::max(begin, it->offset);
    const int64_t to = std::min(end, it->offset + it->size);
    if (to > from) fn(*it, from, to);
  }
}

template <typename T>
void PackedVector::Decode(int64_t begin, int64_t n, T* out) const {
  ForEachTensorIn(begin, n, [&](const Tensor& t, int64_t from, int64_t to) {
    T* dst = out + (from - begin);
    if (t.first_piece < 0) {
      std::fill(dst, dst + (to - from), T(0));
    } else {
      DecodeTensor(t, from - t.offset, to - from, dst);
    }
  });
}

bool PackedVector::WritableIn(Compression format, DType dtype) const {
  if (!in_use() || !references() || compression_ != format || raw_ != dtype) {
    return false;
  }
  for (const Tensor& t : tensors_) {
    if (t.first_piece < 0) return false;
  }
  return true;
}

template <typename T>
void PackedVector::OverwriteValues(int64_t begin, int64_t n, const T* values) {
  assert(WritableIn(compression_, DTypeOf<T>()));
  const Compression c = compression_;
  ForEachTensorIn(begin, n, [&](const Tensor& t, int64_t from, int64_t to) {
    const T* in = values + (from - begin);
    const int64_t count = to - from;
    const size_t at_byte = FormatBytes(c, raw_, from - t.offset);
    size_t left = FormatBytes(c, raw_, count);
    // The piece holding byte `at_byte`, then on across pieces.
    const auto first = starts_.begin() + t.first_piece;
    const auto last = starts_.begin() + t.end_piece;
    int p = static_cast<int>(std::upper_bound(first, last, at_byte) -
                             starts_.begin()) -
            1;
    // The bytes are the transport's buffers, held for this vector alone
    // (see the declaration); the views are read-only by type only.
    auto bytes_at = [&](int q, size_t offset) {
      return const_cast<char*>(pieces_[q].data()) + offset;
    };
    size_t at = at_byte - starts_[p];
    // The values' bytes: raw as they are, else encoded, straight into the
    // piece when they lie in one (nearly always), else into `encoded`.
    const char* src = reinterpret_cast<const char*>(in);
    char encoded[kChunkBytes];
    if (c != Compression::kNone) {
      assert(UnitStart(c, from - t.offset) == from - t.offset);
      assert(count <= kDecodeChunk);
      Rounding nearest;
      nearest.counter = static_cast<uint64_t>(from);
      const bool one_piece = at + left <= pieces_[p].size();
      gameopt::Encode(c, in, count, nearest,
                      one_piece ? bytes_at(p, at) : encoded);
      if (one_piece) return;
      src = encoded;
    }
    for (; left > 0; ++p, at = 0) {
      const size_t take = std::min(left, pieces_[p].size() - at);
      std::memcpy(bytes_at(p, at), src, take);
      src += take;
      left -= take;
    }
  });
}

absl::Span<const absl::string_view> PackedVector::TensorPieces(size_t t) const {
  const Tensor& tensor = tensors_[t];
  if (tensor.first_piece < 0) return {};
  return absl::MakeConstSpan(pieces_.data() + tensor.first_piece,
                             tensor.end_piece - tensor.first_piece);
}

int64_t PackedVector::FindNonFinite(const Tensor& t) const {
  const Compression c = compression_;
  // Over chunks of whole units; the smallest index any range finds.
  const auto check = [&](int64_t begin, int64_t end) -> int64_t {
    char scratch[kChunkBytes];
    for (int64_t i = begin; i < end; i += kDecodeChunk) {
      const int64_t len = std::min(end - i, kDecodeChunk);
      const char* bytes = Bytes(t, FormatBytes(c, raw_, i),
                                FormatBytes(c, raw_, i + len), scratch);
      const int64_t bad =
          c != Compression::kNone   ? gameopt::FindNonFinite(c, bytes, len)
          : raw_ == DType::kFloat32 ? FindNonFiniteRaw<float>(bytes, len)
                                    : FindNonFiniteRaw<double>(bytes, len);
      if (bad >= 0) return i + bad;
    }
    return -1;
  };
  return ParallelFirst(t.size, check);
}

PackedVectorWriter::PackedVectorWriter(PackedVector& out,
                                       const GameLayout& layout,
                                       absl::Span<const bool> present,
                                       Compression compression, DType raw,
                                       std::shared_ptr<const void> keep_alive)
    : out_(out) {
  out.Clear();
  out.dimension_ = layout.dimension();
  out.compression_ = compression;
  out.raw_ = raw;
  out.keep_alive_ = std::move(keep_alive);
  size_t bytes = 0;
  for (int p = 0; p < layout.num_players(); ++p) {
    first_.push_back(static_cast<int>(out.tensors_.size()));
    for (const TensorLayout& tensor : layout.players()[p].tensors) {
      PackedVector::Tensor t;
      t.offset = tensor.offset;
      t.size = tensor.size;
      out.tensors_.push_back(t);
      copy_offset_.push_back(bytes);
      if (present[p]) bytes += FormatBytes(compression, raw, tensor.size);
    }
  }
  // Copies go to a buffer of the whole sample's size, grown only: a
  // resize down and up again would zero it all.
  if (out.keep_alive_ == nullptr && out.data_.size() < bytes) {
    out.data_.resize(bytes);
  }
}

int64_t PackedVectorWriter::Add(int p, int t,
                                absl::Span<const absl::string_view> pieces) {
  PackedVector::Tensor& tensor = out_.tensors_[first_[p] + t];
  tensor.first_piece = static_cast<int>(out_.pieces_.size());
  if (out_.keep_alive_ != nullptr) {
    size_t at = 0;
    for (absl::string_view piece : pieces) {
      if (piece.empty()) continue;
      out_.pieces_.push_back(piece);
      out_.starts_.push_back(at);
      at += piece.size();
    }
  } else {
    char* to = out_.data_.data() + copy_offset_[first_[p] + t];
    size_t at = 0;
    for (absl::string_view piece : pieces) {
      std::memcpy(to + at, piece.data(), piece.size());
      at += piece.size();
    }
    out_.pieces_.push_back(absl::string_view(to, at));
    out_.starts_.push_back(0);
  }
  tensor.end_piece = static_cast<int>(out_.pieces_.size());
  if (tensor.end_piece == tensor.first_piece) {  // no values
    out_.pieces_.push_back(absl::string_view());
    out_.starts_.push_back(0);
    tensor.end_piece = tensor.first_piece + 1;
  }
  return out_.FindNonFinite(tensor);
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
template void PackedVector::OverwriteValues<float>(int64_t, int64_t,
                                                   const float*);
template void PackedVector::OverwriteValues<double>(int64_t, int64_t,
                                                    const double*);

}  // namespace gameopt
