// The vectors a round closes with (gradient samples, or products), as the
// kernels read them: each a dense FlatVector of the session, or a
// PackedVector, a sample kept in the format it arrived in (a compressed
// wire format, or raw values of the session's dtype) and decoded a block
// at a time where a kernel reads it.
//
// Why: decoding every sample into a vector of the session at submission
// writes a parameter-sized vector per sample, which the round's kernels
// then read again, and holds that vector next to the transport's receive
// buffers. Kept packed, a sample costs its wire bytes once (a finiteness
// check, and a copy only when the transport's buffers cannot be held),
// and the kernels decode each block into L1 right before they use it. The
// decoded values are those DecodeSample writes, so the results are
// bit-identical.
#ifndef GAMEOPT_SERVER_CORE_SAMPLE_SET_H_
#define GAMEOPT_SERVER_CORE_SAMPLE_SET_H_

#include <cassert>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/core/dtype.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/wire_codec.h"

namespace gameopt {

// A vector of a game in one format (a compressed wire format, or raw
// little-endian values of one dtype): per tensor of the layout, its
// encoded values, or nothing for the tensors of players a
// gradient phase did not ask for (their values are zero). The values are
// either referenced where they arrived (a transport's receive buffers,
// kept alive by the handle PackedVectorWriter was given) or copied into
// a buffer of its own, reused from round to round.
class PackedVector {
 public:
  // Whether it holds a sample (PackedVectorWriter) rather than being cleared.
  bool in_use() const { return dimension_ > 0; }
  int64_t dimension() const { return dimension_; }
  // Whether its values are referenced rather than copied.
  bool references() const { return keep_alive_ != nullptr; }

  // Drops the sample (and the buffers it referenced), keeping its own
  // buffer's memory.
  void Clear();

  // Values [begin, begin + n) as T (zero outside the sample's tensors).
  // Any n; the values are those Decode gives for the whole tensor.
  template <typename T>
  void Decode(int64_t begin, int64_t n, T* out) const;

  // Whether it holds every tensor in `format` (kNone: raw values of
  // `dtype`), referenced where they arrived: bytes that OverwriteValues
  // may write.
  bool WritableIn(Compression format, DType dtype) const;
  // Writes values [begin, begin + n) over the referenced bytes, in the
  // vector's format (raw values as they are, a compressed format rounded to
  // nearest-even: Encode's bytes). WritableIn(compression(), DTypeOf<T>())
  // must hold; in int8 blocks, the range must cover whole blocks of each
  // tensor it meets (from a block's first value to a block's or the
  // tensor's end). Every copy of this PackedVector sees the new bytes: only
  // for bytes nobody else reads (a transport's receive buffers of a
  // submission the session has consumed; estimator.h, FormProbesInPlace).
  template <typename T>
  void OverwriteValues(int64_t begin, int64_t n, const T* values);
  Compression compression() const { return compression_; }
  DType raw_dtype() const { return raw_; }
  // Tensor t's bytes (t in layout order), in order, as they are held.
  absl::Span<const absl::string_view> TensorPieces(size_t t) const;

 private:
  friend class PackedVectorWriter;
  struct Tensor {
    int64_t offset = 0;  // first coordinate
    int64_t size = 0;
    int first_piece = -1;  // its bytes: pieces_[first_piece, end_piece)
    int end_piece = -1;    // -1: absent (zeros)
  };
  // Bytes [begin, end) of `t`'s encoding: in place when they lie in one
  // piece, else gathered into `scratch` (end - begin bytes).
  const char* Bytes(const Tensor& t, size_t begin, size_t end,
                    char* scratch) const;
  // Values [i, i + m) of `t` into out, in chunks (any m).
  template <typename T>
  void DecodeTensor(const Tensor& t, int64_t i, int64_t m, T* out) const;
  // fn(tensor, from, to) for each tensor holding values of
  // [begin, begin + n), with [from, to) its part of them (from < to).
  template <typename F>
  void ForEachTensorIn(int64_t begin, int64_t n, F fn) const;
  // The first non-finite value of `t` (FindNonFinite), or -1.
  int64_t FindNonFinite(const Tensor& t) const;

  int64_t dimension_ = 0;
  Compression compression_ = Compression::kNone;  // kNone: raw values
  DType raw_ = DType::kFloat32;                   // of this dtype
  std::vector<Tensor> tensors_;  // in layout order, every tensor
  std::vector<absl::string_view> pieces_;
  std::vector<size_t> starts_;  // each piece's first byte in its tensor
  std::vector<char> data_;      // the copies; grown only
  std::shared_ptr<const void> keep_alive_;
};

// Fills a PackedVector for `layout` in `compression` (kNone: raw values of
// dtype `raw`), the tensors of the players not `present` absent (zero). With
// `keep_alive` set, the views given to Add stay valid as long as it is held:
// they are referenced, not copied, and the PackedVector holds it until cleared.
class PackedVectorWriter {
 public:
  PackedVectorWriter(PackedVector& out, const GameLayout& layout,
                     absl::Span<const bool> present, Compression compression,
                     DType raw, std::shared_ptr<const void> keep_alive);
  // Tensor t of player p: its encoded values in consecutive pieces (a
  // piece may end inside a value or a block), exactly its size in the
  // format. Returns the index of its first value that is not
  // finite (FindNonFinite), or -1; long tensors are copied and checked on
  // several threads, with the same index.
  int64_t Add(int p, int t, absl::Span<const absl::string_view> pieces);

 private:
  PackedVector& out_;
  // On the stack for the usual game (a writer per sample).
  absl::InlinedVector<int, 8> first_;           // each player's first tensor
  absl::InlinedVector<size_t, 8> copy_offset_;  // per tensor, into data_
};

// K vectors of one length and dtype, each dense or packed. Built from
// dense vectors only (implicitly, so a span or vector of FlatVector
// pointers is a SampleSet) or from both kinds: per k exactly one of
// dense[k] and packed[k] is set.
class SampleSet {
 public:
  SampleSet() = default;
  template <typename C, typename = std::enable_if_t<std::is_convertible_v<
                            const C&, absl::Span<const FlatVector* const>>>>
  SampleSet(const C& dense)  // NOLINT: implicit on purpose
      : dense_(dense) {}
  SampleSet(absl::Span<const FlatVector* const> dense,
            absl::Span<const PackedVector* const> packed)
      : dense_(dense), packed_(packed) {
    assert(packed.empty() || packed.size() == dense.size());
  }

  size_t size() const { return dense_.size(); }
  bool empty() const { return dense_.empty(); }
  // Whether some vector is packed.
  bool has_packed() const;
  // The dense vectors; only for a set without packed ones (the algorithms
  // that read whole vectors, which never get packed ones:
  // Algorithm::TakesPackedSamples).
  absl::Span<const FlatVector* const> dense() const {
    assert(!has_packed());
    return dense_;
  }
  int64_t dimension() const;
  // Vector k when it is packed, else null.
  const PackedVector* packed(size_t k) const {
    return packed_.empty() ? nullptr : packed_[k];
  }

  // Values [begin, begin + n) of vector k: a pointer into the dense
  // vector, or the packed one decoded into `scratch` (n values).
  template <typename T>
  const T* Block(size_t k, int64_t begin, int64_t n, T* scratch) const {
    if (!packed_.empty() && packed_[k] != nullptr) {
      packed_[k]->Decode(begin, n, scratch);
      return scratch;
    }
    return dense_[k]->as<T>().data() + begin;
  }

 private:
  absl::Span<const FlatVector* const> dense_;
  absl::Span<const PackedVector* const> packed_;  // empty: all dense
};

extern template void PackedVector::Decode<float>(int64_t, int64_t,
                                                 float*) const;
extern template void PackedVector::Decode<double>(int64_t, int64_t,
                                                  double*) const;
extern template void PackedVector::OverwriteValues<float>(int64_t, int64_t,
                                                          const float*);
extern template void PackedVector::OverwriteValues<double>(int64_t, int64_t,
                                                           const double*);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SAMPLE_SET_H_
