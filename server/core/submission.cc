#include "server/core/submission.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "server/core/float_bits.h"
#include "server/core/parallel.h"
#include "server/core/quote.h"

namespace gameopt {
namespace {

// Values are checked a block at a time, right after the block is written,
// while it is still in L1.
constexpr int64_t kCheckBlock = 2048;

// Index of the first non-finite value of to[0, n), or -1.
template <typename T>
int64_t FirstNonFinite(const T* to, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(to[i])) return i;
  }
  return -1;
}

// Copies n little-endian values of type From (at any alignment) into `to`,
// converting to To, and returns the index of the first non-finite one (in
// To), or -1. (x86-64 and aarch64 are little-endian, so the wire layout is
// the memory layout.)
template <typename From, typename To>
int64_t CopyChecked(const char* from, To* to, int64_t n) {
  using B = FloatBits<To>;
  typename B::Bits flags = 0;
  if constexpr (std::is_same_v<From, To>) {
    // One pass: copy the bits and test them together.
    for (int64_t i = 0; i < n; ++i) {
      typename B::Bits bits;
      std::memcpy(&bits, from + i * sizeof(To), sizeof(To));
      std::memcpy(to + i, &bits, sizeof(To));
      flags |= NotFiniteFlag<To>(bits);
    }
  } else {
    for (int64_t begin = 0; begin < n; begin += kCheckBlock) {
      const int64_t end = std::min(n, begin + kCheckBlock);
      for (int64_t i = begin; i < end; ++i) {
        From v;
        std::memcpy(&v, from + i * sizeof(From), sizeof(From));
        to[i] = static_cast<To>(v);
      }
      for (int64_t i = begin; i < end; ++i) {
        typename B::Bits bits;
        std::memcpy(&bits, to + i, sizeof(To));
        flags |= NotFiniteFlag<To>(bits);
      }
    }
  }
  return (flags & B::kSign) == 0 ? -1 : FirstNonFinite(to, n);
}

template <typename To>
int64_t Copy(DType from, const char* bytes, To* to, int64_t n) {
  return from == DType::kFloat32 ? CopyChecked<float, To>(bytes, to, n)
                                 : CopyChecked<double, To>(bytes, to, n);
}

// Copy() over a tensor's pieces; a value split between two pieces is put
// together in `carry`.
template <typename To>
int64_t CopyPieces(const TensorView& view, To* to) {
  const size_t width = DTypeSize(view.dtype);
  char carry[8];
  size_t carried = 0;
  int64_t index = 0;
  for (absl::string_view piece : view.pieces) {
    const char* p = piece.data();
    size_t left = piece.size();
    if (carried > 0) {
      const size_t take = std::min(width - carried, left);
      std::memcpy(carry + carried, p, take);
      carried += take;
      p += take;
      left -= take;
      if (carried < width) continue;
      if (Copy(view.dtype, carry, to + index, 1) >= 0) return index;
      ++index;
      carried = 0;
    }
    const int64_t whole = static_cast<int64_t>(left / width);
    const int64_t bad = Copy(view.dtype, p, to + index, whole);
    if (bad >= 0) return index + bad;
    index += whole;
    carried = left - whole * width;
    std::memcpy(carry, p + whole * width, carried);
  }
  return -1;
}

// Decodes a compressed tensor spread over pieces: runs of whole values
// (whole blocks for kInt8Block) are decoded in place; one that straddles
// two pieces is gathered first.
template <typename To>
int64_t DecodePieces(const TensorView& view, To* to, int64_t n) {
  const Compression c = view.compression;
  const int64_t granule = c == Compression::kInt8Block ? kInt8BlockSize : 1;
  const size_t granule_bytes = CompressedBytes(c, granule);
  char scratch[4 + kInt8BlockSize];
  size_t p = 0, pos = 0;
  int64_t i = 0;
  while (i < n) {
    while (pos == view.pieces[p].size()) {
      ++p;
      pos = 0;
    }
    const size_t avail = view.pieces[p].size() - pos;
    int64_t k = static_cast<int64_t>(avail / granule_bytes) * granule;
    if (CompressedBytes(c, n - i) <= avail) k = n - i;
    k = std::min(k, n - i);
    const char* from = view.pieces[p].data() + pos;
    if (k > 0) {
      pos += CompressedBytes(c, k);
    } else {
      k = std::min(granule, n - i);
      size_t need = CompressedBytes(c, k), got = 0;
      while (got < need) {
        while (pos == view.pieces[p].size()) {
          ++p;
          pos = 0;
        }
        const size_t take = std::min(need - got, view.pieces[p].size() - pos);
        std::memcpy(scratch + got, view.pieces[p].data() + pos, take);
        got += take;
        pos += take;
      }
      from = scratch;
    }
    const int64_t bad = Decode(c, from, k, to + i);
    if (bad >= 0) return i + bad;
    i += k;
  }
  return -1;
}

template <typename To>
int64_t Copy(const TensorView& view, To* to, int64_t n) {
  if (view.compression != Compression::kNone) {
    return view.pieces.empty()
               ? Decode(view.compression, view.bytes.data(), n, to)
               : DecodePieces(view, to, n);
  }
  return view.pieces.empty() ? Copy(view.dtype, view.bytes.data(), to, n)
                             : CopyPieces(view, to);
}

// Byte offset of value i of the view's values.
size_t ValueOffset(const TensorView& view, int64_t i) {
  return view.compression != Compression::kNone
             ? CompressedOffset(view.compression, i)
             : static_cast<size_t>(i) * DTypeSize(view.dtype);
}

// The view of bytes [begin, end) of `view`'s values; `starts` holds the
// byte offset of each of its pieces, `storage` the part's pieces.
TensorView Part(const TensorView& view, size_t begin, size_t end,
                const std::vector<size_t>& starts,
                std::vector<absl::string_view>& storage) {
  TensorView part = view;
  if (view.pieces.empty()) {
    part.bytes = view.bytes.substr(begin, end - begin);
    return part;
  }
  size_t p = std::upper_bound(starts.begin(), starts.end(), begin) -
             starts.begin() - 1;
  for (; p < view.pieces.size() && starts[p] < end; ++p) {
    const size_t from = std::max(begin, starts[p]) - starts[p];
    const size_t to = std::min(end, starts[p] + view.pieces[p].size());
    storage.push_back(view.pieces[p].substr(from, to - starts[p] - from));
  }
  part.pieces = storage;
  return part;
}

// Copy() split across threads for long tensors (parallel.h): each range of
// values, a whole number of int8 blocks but for the tensor's end, is
// decoded from its part of the bytes with the same per-value operations,
// so the values are the same for any thread count; so is the index
// returned (the smallest of the ranges').
template <typename To>
int64_t ParallelCopy(const TensorView& view, To* to, int64_t n) {
  static_assert(kParallelAlign % kInt8BlockSize == 0,
                "ranges must hold whole int8 blocks");
  if (n < kParallelMinCoordinates) return Copy(view, to, n);
  std::vector<size_t> starts;
  size_t at = 0;
  for (absl::string_view piece : view.pieces) {
    starts.push_back(at);
    at += piece.size();
  }
  return ParallelFirst(n, [&](int64_t begin, int64_t end) -> int64_t {
    std::vector<absl::string_view> storage;
    const TensorView part = Part(view, ValueOffset(view, begin),
                                 ValueOffset(view, end), starts, storage);
    const int64_t bad = Copy(part, to + begin, end - begin);
    return bad < 0 ? -1 : begin + bad;
  });
}

}  // namespace

size_t TensorView::size_bytes() const {
  if (pieces.empty()) return bytes.size();
  size_t size = 0;
  for (absl::string_view piece : pieces) size += piece.size();
  return size;
}

namespace {

// Names a tensor of a sample for an error message. Built only when an
// error needs it: a valid submission, the common case, formats no strings.
using TensorWhere = absl::FunctionRef<std::string()>;

// One flag per player or tensor, on the stack for the usual game (the
// checks run for every sample of every round).
using Flags = absl::InlinedVector<bool, 8>;

// Which of the layout's players are in `players`.
Flags PlayerFlags(const GameLayout& layout, const std::vector<int>& players) {
  Flags in(layout.num_players(), false);
  for (int p : players) in[p] = true;
  return in;
}

// The checks DecodeSample makes of every sample but the values' own, and
// `each(p, t, view, where)` for every tensor that passes them (its player
// and index in the layout, `where()` naming it for errors), in order; the
// first error stops it.
absl::Status CheckSample(
    const SampleView& sample, const GameLayout& layout,
    const std::vector<int>& players, absl::string_view field,
    Compression accepted,
    absl::FunctionRef<absl::Status(int, int, const TensorView&, TensorWhere)>
        each) {
  const Flags wanted = PlayerFlags(layout, players);
  Flags seen(layout.num_players(), false);
  for (size_t i = 0; i < sample.size(); ++i) {
    const PlayerValues& values = sample[i];
    // Workers send the players asked for, and their tensors, in order.
    const int p =
        layout.FindPlayer(values.player, i < players.size() ? players[i] : -1);
    if (p < 0 || !wanted[p]) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".players[", i, "]: player '", Quote(values.player), "' ",
          p < 0 ? "is not a player of this session"
                : "was not asked for in this task"));
    }
    if (seen[p]) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": player '", Quote(values.player), "' appears twice"));
    }
    seen[p] = true;
    const PlayerLayout& player = layout.players()[p];
    Flags have(player.tensors.size(), false);
    for (size_t j = 0; j < values.tensors.size(); ++j) {
      const TensorView& view = values.tensors[j];
      const auto where = [&] {
        return absl::StrCat(field, " player '", Quote(player.name),
                            "' tensor '", Quote(view.name), "'");
      };
      const int t = layout.FindTensor(p, view.name, static_cast<int>(j));
      if (t < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), ": no such tensor in this player"));
      }
      if (have[t]) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), ": appears twice"));
      }
      have[t] = true;
      const TensorLayout& tensor = player.tensors[t];
      if (!std::equal(view.shape.begin(), view.shape.end(),
                      tensor.shape.begin(), tensor.shape.end())) {
        return absl::InvalidArgumentError(absl::StrCat(
            where(), ": shape ",
            ShapeString({view.shape.begin(), view.shape.end()}),
            " does not match the session's ", ShapeString(tensor.shape)));
      }
      const bool compressed = view.compression != Compression::kNone;
      if (compressed && view.compression != accepted) {
        return absl::InvalidArgumentError(absl::StrCat(
            where(), ": dtype ", CompressionName(view.compression),
            " is not accepted by this session: send float32, float64",
            accepted == Compression::kNone
                ? ""
                : absl::StrCat(" or ", CompressionName(accepted)),
            " (the session's wire.from_workers)"));
      }
      const size_t expected =
          compressed ? CompressedBytes(view.compression, tensor.size)
                     : tensor.size * DTypeSize(view.dtype);
      const size_t size_bytes = view.size_bytes();
      if (size_bytes != expected) {
        return absl::InvalidArgumentError(absl::StrCat(
            where(), ": ", size_bytes, " bytes of data, but shape ",
            ShapeString(tensor.shape), " of ",
            compressed ? CompressionName(view.compression)
                       : DTypeName(view.dtype),
            " needs ", expected));
      }
      if (absl::Status status = each(p, t, view, where); !status.ok()) {
        return status;
      }
    }
    for (size_t t = 0; t < have.size(); ++t) {
      if (!have[t]) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, " player '", Quote(player.name), "': tensor '",
            Quote(player.tensors[t].name),
            "' is missing (send zeros for parameters without a gradient)"));
      }
    }
  }
  for (int p : players) {
    if (!seen[p]) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": player '", Quote(layout.players()[p].name),
                       "' is missing"));
    }
  }
  return absl::OkStatus();
}

std::atomic<int64_t> packed_samples{0};
std::atomic<int64_t> referenced_samples{0};

absl::Status NotFinite(const std::string& where, int64_t index) {
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": value at index ", index, " is not finite (NaN or inf)"));
}

}  // namespace

absl::Status DecodeSample(const SampleView& sample, const GameLayout& layout,
                          const std::vector<int>& players, DType dtype,
                          absl::string_view field, FlatVector& out,
                          Compression accepted) {
  if (out.dtype() != dtype || out.size() != layout.dimension()) {
    out = FlatVector(dtype, layout.dimension());
  }
  absl::Status status = CheckSample(
      sample, layout, players, field, accepted,
      [&](int p, int t, const TensorView& view, TensorWhere where) {
        const TensorLayout& tensor = layout.players()[p].tensors[t];
        const int64_t bad =
            dtype == DType::kFloat32
                ? ParallelCopy(view, out.as<float>().data() + tensor.offset,
                               tensor.size)
                : ParallelCopy(view, out.as<double>().data() + tensor.offset,
                               tensor.size);
        return bad >= 0 ? NotFinite(where(), bad) : absl::OkStatus();
      });
  if (!status.ok()) return status;
  const Flags wanted = PlayerFlags(layout, players);
  for (int p = 0; p < layout.num_players(); ++p) {
    if (wanted[p]) continue;
    const PlayerLayout& player = layout.players()[p];
    if (dtype == DType::kFloat32) {
      out.as<float>().segment(player.offset, player.size).setZero();
    } else {
      out.as<double>().segment(player.offset, player.size).setZero();
    }
  }
  return absl::OkStatus();
}

std::optional<Compression> PackFormat(const SampleView& sample,
                                      Compression accepted, DType dtype) {
  bool raw = false, compressed = false;
  for (const PlayerValues& values : sample) {
    for (const TensorView& view : values.tensors) {
      if (view.compression == Compression::kNone && view.dtype == dtype) {
        raw = true;
      } else if (view.compression != Compression::kNone &&
                 view.compression == accepted) {
        compressed = true;
      } else {
        return std::nullopt;
      }
    }
  }
  if (raw && compressed) return std::nullopt;
  return compressed ? accepted : Compression::kNone;
}

absl::Status PackSample(const SampleView& sample, const GameLayout& layout,
                        const std::vector<int>& players,
                        absl::string_view field, PackedVector& out,
                        Compression accepted, DType dtype,
                        std::shared_ptr<const void> keep_alive) {
  const std::optional<Compression> format = PackFormat(sample, accepted, dtype);
  if (!format.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ": its tensors are not all in one format that can be kept "
                     "packed (PackFormat)"));
  }
  const Flags present = PlayerFlags(layout, players);
  const bool references = keep_alive != nullptr;
  PackedVectorWriter writer(out, layout, present, *format, dtype,
                            std::move(keep_alive));
  absl::Status status = CheckSample(
      sample, layout, players, field, accepted,
      [&](int p, int t, const TensorView& view, TensorWhere where) {
        const int64_t bad =
            view.pieces.empty()
                ? writer.Add(p, t, absl::MakeConstSpan(&view.bytes, 1))
                : writer.Add(p, t, view.pieces);
        return bad >= 0 ? NotFinite(where(), bad) : absl::OkStatus();
      });
  if (!status.ok()) {
    out.Clear();
  } else {
    packed_samples.fetch_add(1, std::memory_order_relaxed);
    if (references) referenced_samples.fetch_add(1, std::memory_order_relaxed);
  }
  return status;
}

int64_t PackedSamples() {
  return packed_samples.load(std::memory_order_relaxed);
}

int64_t ReferencedSamples() {
  return referenced_samples.load(std::memory_order_relaxed);
}

}  // namespace gameopt
