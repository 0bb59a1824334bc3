// Compressed tensors on the wire: bfloat16, float16 and block-scaled int8,
// encoded from and decoded into the float32 / float64 values of a session
// or a worker. The server's state never leaves float32 / float64; only the
// bytes of Tensor.data are compressed.
//
// Formats (little-endian, row-major, one tensor at a time):
//   kBFloat16   2 bytes per value: the top 16 bits of the float32.
//   kFloat16    2 bytes per value: IEEE 754 binary16.
//   kInt8Block  blocks of kInt8BlockSize values (the last one shorter):
//               a float32 scale s = max|v| / 127 of the block, then one
//               int8 q per value in [-127, 127]; the value is q * s
//               (float32 product). An all-zero block has s = 0.
//
// Rounding: nearest-even by default (deterministic: every worker library
// writes the same bytes), or stochastic: a value between the two
// neighbours a < v < b of the format rounds up with probability
// (v - a) / (b - a), so E[decoded] = v and sums / means of decoded values
// (the pooled and unbiased estimators) stay unbiased. float64 values are
// first rounded to float32 (nearest-even), so for them the expectation is
// that float32 value (relative error <= 2^-24).
//
// Non-finite values are kept (NaN stays NaN, inf stays inf; an int8 block
// with one gets a non-finite scale) so that the receiver refuses them as it
// refuses a non-finite float32. A finite value past the format's largest
// (float16: 65504) does not fit: Encode reports it, and the sender sends
// that tensor uncompressed instead.
#ifndef GAMEOPT_SERVER_CORE_WIRE_CODEC_H_
#define GAMEOPT_SERVER_CORE_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace gameopt {

enum class Compression { kNone, kBFloat16, kFloat16, kInt8Block };

inline constexpr int64_t kInt8BlockSize = 256;

// "none", "bfloat16", "float16", "int8_block".
absl::string_view CompressionName(Compression compression);

// Bytes of n values (kNone: not a wire format here; 0).
constexpr size_t CompressedBytes(Compression compression, int64_t n) {
  switch (compression) {
    case Compression::kBFloat16:
    case Compression::kFloat16:
      return 2 * static_cast<size_t>(n);
    case Compression::kInt8Block:
      return static_cast<size_t>(n) +
             4 * static_cast<size_t>((n + kInt8BlockSize - 1) / kInt8BlockSize);
    case Compression::kNone:
      break;
  }
  return 0;
}

// Byte offset of value `index` (a multiple of kInt8BlockSize for
// kInt8Block) in an encoding: where a chunk of a longer encode starts.
constexpr size_t CompressedOffset(Compression compression, int64_t index) {
  return CompressedBytes(compression, index);
}

struct Rounding {
  bool stochastic = false;
  // The random stream: value i of an encode uses bits that are a fixed
  // function of (seed, counter + i), so chunks encoded on several threads
  // give the bytes of one encode.
  uint64_t seed = 0;
  uint64_t counter = 0;
};

// Encodes in[0, n) into out (CompressedBytes(compression, n) bytes), which
// must not overlap in. For kInt8Block, n is the whole tensor or a multiple
// of kInt8BlockSize.
// Returns false when a finite value does not fit the format (out is then
// unspecified). Loops the compiler vectorizes.
bool Encode(Compression compression, const float* in, int64_t n,
            const Rounding& rounding, char* out);
bool Encode(Compression compression, const double* in, int64_t n,
            const Rounding& rounding, char* out);

// Decodes n values from `in` (at any alignment) into out and returns the
// index of the first non-finite value, or -1.
int64_t Decode(Compression compression, const char* in, int64_t n, float* out);
int64_t Decode(Compression compression, const char* in, int64_t n, double* out);

// The index Decode returns for these n values, the first that is not
// finite (an int8 block's first when its scale is not), or -1, without
// decoding them: what a receiver that keeps the values encoded checks.
int64_t FindNonFinite(Compression compression, const char* in, int64_t n);

// One value each way, for tests and readers of the format.
uint16_t FloatToBFloat16(float value);  // nearest-even
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToFloat16(float value);  // nearest-even
float Float16ToFloat(uint16_t bits);

// The random bits Encode uses for value `index` of a stream.
uint32_t WireRandomBits(uint64_t seed, uint64_t index);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_WIRE_CODEC_H_
