#include "server/core/wire_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "server/core/target_clones.h"

namespace gameopt {
namespace {

// Values converted per chunk when the input or output is float64.
constexpr int64_t kChunk = 2048;  // a multiple of kInt8BlockSize
static_assert(kChunk % kInt8BlockSize == 0);

inline uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float Float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Chris Wellons' lowbias32: a bijection of 32-bit words that mixes well.
inline uint32_t Mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

inline uint32_t StreamKey(uint64_t seed) {
  return Mix32(static_cast<uint32_t>(seed) ^
               Mix32(static_cast<uint32_t>(seed >> 32) + 0x9e3779b9u));
}

// index * odd + key is a bijection, so over 2^32 consecutive indices the
// bits are every 32-bit word once.
inline uint32_t RandomAt(uint32_t key, uint32_t index) {
  return Mix32(index * 0x9e3779b9u + key);
}

constexpr uint32_t kF32Exponent = 0x7f800000u;

// ---------------------------------------------------------------- bfloat16

// The rounded top 16 bits of a float32 that is not NaN.
inline uint32_t BF16NearestBits(uint32_t u) {
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
inline uint32_t BF16StochasticBits(uint32_t u, uint32_t r) {
  return (u + (r >> 16)) >> 16;
}

// The same for any input; a NaN stays a (quiet) NaN.
inline uint16_t BF16Nearest(uint32_t u) {
  const bool nan = (u & 0x7fffffffu) > kF32Exponent;
  return static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : BF16NearestBits(u));
}

inline uint16_t BF16Stochastic(uint32_t u, uint32_t r) {
  const bool nan = (u & 0x7fffffffu) > kF32Exponent;
  return static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u)
                                   : BF16StochasticBits(u, r));
}

// ---------------------------------------------------------------- float16
// After Fabian Giesen's float_to_half_fast3_rtne / half_to_float.

constexpr uint32_t kF16Max = 0x47800000u;      // 65536: first too large
constexpr uint32_t kF16Normal = 0x38800000u;   // 2^-14: smallest normal
constexpr uint32_t kDenormMagic = 126u << 23;  // 0.5

// Branch-free selects (so that the loops vectorize): a if cond else b.
inline uint32_t Select(bool cond, uint32_t a, uint32_t b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(cond);
  return (a & mask) | (b & ~mask);
}

inline uint16_t F16Nearest(uint32_t u) {
  const uint32_t sign = u & 0x80000000u;
  const uint32_t x = u ^ sign;
  const uint32_t big = Select(x > kF32Exponent, 0x7e00u, 0x7c00u);
  const uint32_t small = Bits(Float(x) + Float(kDenormMagic)) - kDenormMagic;
  const uint32_t normal = (x - (112u << 23) + 0xfffu + ((x >> 13) & 1u)) >> 13;
  const uint32_t o =
      Select(x >= kF16Max, big, Select(x < kF16Normal, small, normal));
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline uint16_t F16Stochastic(uint32_t u, uint32_t r) {
  const uint32_t sign = u & 0x80000000u;
  const uint32_t x = u ^ sign;
  uint32_t o;
  if (x >= kF32Exponent) {
    o = x > kF32Exponent ? 0x7e00u : 0x7c00u;
  } else if (x >= kF16Normal) {
    // Past 65504 this lands at or beyond 0x7c00: the overflow check sees it.
    o = std::min<uint32_t>((x - (112u << 23) + (r & 0x1fffu)) >> 13, 0x7c00u);
  } else {
    // Subnormal in float16: units of 2^-24. The value is m * 2^(e - 150)
    // = m * 2^-24 / 2^s, s = 126 - e >= 14, m the 24-bit significand.
    const uint32_t e = x >> 23;
    const uint32_t s = 126u - e;
    const uint64_t m = (x & 0x7fffffu) | 0x800000u;
    o = e == 0 || s > 32
            ? 0u  // below 2^-33: flushed to zero
            : static_cast<uint32_t>((m + (uint64_t{r} >> (32 - s))) >> s);
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline float F16ToFloat(uint16_t h) {
  const uint32_t shifted = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t exp = shifted & (0x7c00u << 13);
  const uint32_t normal = shifted + (112u << 23);
  const uint32_t special = normal + (112u << 23);  // inf / NaN
  const uint32_t sub =
      Bits(Float(normal + (1u << 23)) - Float(113u << 23));  // zero too
  const uint32_t o =
      Select(exp == (0x7c00u << 13), special, Select(exp == 0, sub, normal));
  return Float(o | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

// ---------------------------------------------------------------- int8

// Round half to even for |q| < 2^22 (the float32 addition rounds).
inline float RoundEven(float q) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (q + kMagic) - kMagic;
}

GAMEOPT_TARGET_CLONES void EncodeInt8Block(const float* in, int64_t n,
                                           bool stochastic, uint32_t key,
                                           uint32_t counter, char* out) {
  // max |v| on the bits: for non-negative floats their order is the
  // integers'; inf and NaN are the largest (then the scale is NaN).
  int32_t amax_bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t a = static_cast<int32_t>(Bits(in[i]) & 0x7fffffffu);
    amax_bits = a > amax_bits ? a : amax_bits;
  }
  float scale = Float(static_cast<uint32_t>(amax_bits)) / 127.0f;
  if (static_cast<uint32_t>(amax_bits) >= kF32Exponent) {
    scale = std::numeric_limits<float>::quiet_NaN();
  }
  std::memcpy(out, &scale, 4);
  int8_t q8[kInt8BlockSize];
  // 0 (an all-zero block: q = 0) and NaN (refused by the receiver).
  const float divisor = scale > 0.0f ? scale : 1.0f;
  if (stochastic) {
    for (int64_t i = 0; i < n; ++i) {
      const float q = in[i] / divisor;
      const float r = RoundEven(q);
      const float floor = r - static_cast<float>(r > q);
      const float frac = q - floor;  // exact, in [0, 1)
      const float u =
          static_cast<float>(static_cast<int32_t>(
              RandomAt(key, counter + static_cast<uint32_t>(i)) >> 8)) *
          (1.0f / 16777216.0f);
      const float up = floor + static_cast<float>(u < frac);
      q8[i] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, up)));
    }
  } else if (std::isfinite(scale)) {
    // |v / s| <= 127 (within rounding): r is an integer that int32 holds,
    // clamped in integers (GCC converts a float to int8 through compares
    // and blends; this loop is 3x shorter).
    for (int64_t i = 0; i < n; ++i) {
      const auto r = static_cast<int32_t>(RoundEven(in[i] / divisor));
      q8[i] = static_cast<int8_t>(r < -127 ? -127 : (r > 127 ? 127 : r));
    }
  } else {
    // A block holding inf or NaN (refused by every receiver: its scale is
    // NaN): the same bytes as always.
    for (int64_t i = 0; i < n; ++i) {
      const float r = RoundEven(in[i] / divisor);
      q8[i] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, r)));
    }
  }
  std::memcpy(out + 4, q8, n);
}

// Values per chunk of the 2-byte formats: the unit that a special value
// makes EncodeHalves encode again, value by value.
constexpr int64_t kHalfChunk = 1024;

// Encodes with `round(bits, index)` into 2-byte values; returns whether
// every finite input stayed finite (`inf` is the format's exponent mask).
// `fast` need only agree with `round` on magnitudes below `special` (bits
// of |v|, which `round` keeps finite): a chunk holding one at or above it
// (inf, NaN, a value that may round to inf; in practice never) is encoded
// again with `round`, value by value with the overflow check. The fast
// loop so tests one bound per value, not the rounded value's exponent and
// the input's (3x fewer instructions for bfloat16, measured in L1).
// Integer arithmetic (and exact float additions): every vector width gives
// the same bytes.
template <typename Fast, typename Round>
GAMEOPT_TARGET_CLONES bool EncodeHalves(const float* in, int64_t n,
                                        uint32_t special, uint32_t inf,
                                        char* out, Fast fast, Round round) {
  // Bit 31 of |v| + bias is set exactly when |v| >= special.
  const uint32_t bias = 0x80000000u - special;
  bool fits = true;
  // Written straight to out (no chunk buffer and copy: the copy was a
  // fifth of the encode's time); a chunk with a special value is written
  // again from `in`, which out does not overlap.
  for (int64_t begin = 0; begin < n; begin += kHalfChunk) {
    const int64_t len = std::min(kHalfChunk, n - begin);
    const float* from = in + begin;
    char* to = out + 2 * begin;
    uint32_t flags = 0;
    for (int64_t i = 0; i < len; ++i) {
      const uint32_t u = Bits(from[i]);
      flags |= (u & 0x7fffffffu) + bias;
      const auto h =
          static_cast<uint16_t>(fast(u, static_cast<uint32_t>(begin + i)));
      std::memcpy(to + 2 * i, &h, 2);
    }
    if ((flags >> 31) != 0) {
      for (int64_t i = 0; i < len; ++i) {
        const uint32_t u = Bits(from[i]);
        const uint32_t o = round(u, static_cast<uint32_t>(begin + i));
        fits =
            fits && !((o & inf) == inf && (u & kF32Exponent) != kF32Exponent);
        const auto h = static_cast<uint16_t>(o);
        std::memcpy(to + 2 * i, &h, 2);
      }
    }
  }
  return fits;
}

// The magnitudes (float32 bits) from which a format's rounding may reach
// inf: bfloat16 nearest from 0x7f7f8000 (adding 0x8000 carries into the
// exponent), stochastic from 0x7f7f0001 (adding up to 0xffff); float16
// nearest from 65520 (the tie above 65504), stochastic from 0x477fe001
// (adding up to 0x1fff below the kept bits).
constexpr uint32_t kBF16NearestSpecial = 0x7f7f8000u;
constexpr uint32_t kBF16StochasticSpecial = 0x7f7f0001u;
constexpr uint32_t kF16NearestSpecial = 0x477ff000u;
constexpr uint32_t kF16StochasticSpecial = 0x477fe001u;

bool EncodeFloat(Compression compression, const float* in, int64_t n,
                 const Rounding& rounding, char* out) {
  const uint32_t key = StreamKey(rounding.seed);
  const uint32_t counter = static_cast<uint32_t>(rounding.counter);
  switch (compression) {
    case Compression::kBFloat16:
      if (rounding.stochastic) {
        auto random = [&](uint32_t i) { return RandomAt(key, counter + i); };
        return EncodeHalves(
            in, n, kBF16StochasticSpecial, 0x7f80u, out,
            [&](uint32_t u, uint32_t i) {
              return BF16StochasticBits(u, random(i));
            },
            [&](uint32_t u, uint32_t i) {
              return BF16Stochastic(u, random(i));
            });
      }
      return EncodeHalves(
          in, n, kBF16NearestSpecial, 0x7f80u, out,
          [](uint32_t u, uint32_t) { return BF16NearestBits(u); },
          [](uint32_t u, uint32_t) { return BF16Nearest(u); });
    case Compression::kFloat16:
      if (rounding.stochastic) {
        auto round = [&](uint32_t u, uint32_t i) {
          return F16Stochastic(u, RandomAt(key, counter + i));
        };
        return EncodeHalves(in, n, kF16StochasticSpecial, 0x7c00u, out, round,
                            round);
      }
      {
        auto round = [](uint32_t u, uint32_t) { return F16Nearest(u); };
        return EncodeHalves(in, n, kF16NearestSpecial, 0x7c00u, out, round,
                            round);
      }
    case Compression::kInt8Block:
      for (int64_t b = 0; b < n; b += kInt8BlockSize) {
        const int64_t len = std::min(kInt8BlockSize, n - b);
        EncodeInt8Block(in + b, len, rounding.stochastic, key,
                        counter + static_cast<uint32_t>(b),
                        out + CompressedOffset(compression, b));
      }
      return true;
    case Compression::kNone:
      break;
  }
  return false;
}

// Decodes 2-byte values at `in` (any alignment, read in place: copying
// them to an aligned chunk first took about 40% of the decode in
// gameopt_bench conopt/16M/4/bf16) with `to_float(h)`; returns nonzero if
// an input was inf or NaN (`inf` is the format's exponent mask).
// Value i of the 2-byte values at `in` (any alignment).
inline uint16_t Half(const char* in, int64_t i) {
  uint16_t h;
  std::memcpy(&h, in + 2 * i, 2);
  return h;
}

template <typename To, typename ToFloat>
GAMEOPT_TARGET_CLONES uint32_t DecodeHalves(const char* in, int64_t n,
                                            uint32_t inf, To* out,
                                            ToFloat to_float) {
  uint32_t flags = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = Half(in, i);
    flags |= static_cast<uint32_t>((h & inf) == inf);
    out[i] = static_cast<To>(to_float(h));
  }
  return flags;
}

// Block-scaled int8 values at `in` into out; returns the index of the
// first block whose scale is not finite, or -1.
template <typename To>
GAMEOPT_TARGET_CLONES int64_t DecodeInt8Blocks(const char* in, int64_t n,
                                               To* out) {
  for (int64_t b = 0; b < n; b += kInt8BlockSize) {
    const int64_t len = std::min(kInt8BlockSize, n - b);
    const char* block = in + CompressedOffset(Compression::kInt8Block, b);
    float scale;
    std::memcpy(&scale, block, 4);
    if (!std::isfinite(scale)) return b;
    const int8_t* q = reinterpret_cast<const int8_t*>(block + 4);
    for (int64_t i = 0; i < len; ++i) {
      out[b + i] = static_cast<To>(static_cast<float>(q[i]) * scale);
    }
  }
  return -1;
}

// Nonzero if a 2-byte value at `in` has all the exponent bits of `inf`.
// (h & inf) plus inf's lowest bit carries into bit 15 then, and only then
// (NotFiniteFlag's test, float_bits.h), so the OR stays in 16-bit lanes:
// 30% faster than a compare widened to 32 bits (measured on 16M values).
GAMEOPT_TARGET_CLONES uint32_t AnyHalfNotFinite(const char* in, int64_t n,
                                                uint32_t inf) {
  const auto mask = static_cast<uint16_t>(inf);
  const auto carry = static_cast<uint16_t>(inf & (~inf + 1));
  uint16_t flags = 0;
  for (int64_t i = 0; i < n; ++i) {
    flags |= static_cast<uint16_t>((Half(in, i) & mask) + carry);
  }
  return flags >> 15;
}

template <typename To>
int64_t DecodeTo(Compression compression, const char* in, int64_t n, To* out) {
  uint32_t flags = 0;
  switch (compression) {
    case Compression::kBFloat16:
      flags = DecodeHalves(in, n, 0x7f80u, out, [](uint16_t h) {
        return Float(static_cast<uint32_t>(h) << 16);
      });
      break;
    case Compression::kFloat16:
      flags = DecodeHalves(in, n, 0x7c00u, out,
                           [](uint16_t h) { return F16ToFloat(h); });
      break;
    case Compression::kInt8Block:
      return DecodeInt8Blocks(in, n, out);
    case Compression::kNone:
      return 0;
  }
  if (flags == 0) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) return i;
  }
  return -1;
}

}  // namespace

absl::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "none";
    case Compression::kBFloat16:
      return "bfloat16";
    case Compression::kFloat16:
      return "float16";
    case Compression::kInt8Block:
      return "int8_block";
  }
  return "?";
}

bool Encode(Compression compression, const float* in, int64_t n,
            const Rounding& rounding, char* out) {
  return EncodeFloat(compression, in, n, rounding, out);
}

bool Encode(Compression compression, const double* in, int64_t n,
            const Rounding& rounding, char* out) {
  float chunk[kChunk];
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t len = std::min(kChunk, n - begin);
    for (int64_t i = 0; i < len; ++i) {
      chunk[i] = static_cast<float>(in[begin + i]);
    }
    Rounding r = rounding;
    r.counter += static_cast<uint64_t>(begin);
    if (!EncodeFloat(compression, chunk, len, r,
                     out + CompressedOffset(compression, begin))) {
      return false;
    }
  }
  return true;
}

int64_t Decode(Compression compression, const char* in, int64_t n, float* out) {
  return DecodeTo(compression, in, n, out);
}

int64_t Decode(Compression compression, const char* in, int64_t n,
               double* out) {
  return DecodeTo(compression, in, n, out);
}

int64_t FindNonFinite(Compression compression, const char* in, int64_t n) {
  switch (compression) {
    case Compression::kBFloat16:
    case Compression::kFloat16: {
      const uint32_t inf =
          compression == Compression::kBFloat16 ? 0x7f80u : 0x7c00u;
      if (AnyHalfNotFinite(in, n, inf) == 0) return -1;
      for (int64_t i = 0; i < n; ++i) {
        if ((Half(in, i) & inf) == inf) return i;
      }
      return -1;
    }
    case Compression::kInt8Block:
      for (int64_t b = 0; b < n; b += kInt8BlockSize) {
        float scale;
        std::memcpy(&scale, in + CompressedOffset(Compression::kInt8Block, b),
                    4);
        if (!std::isfinite(scale)) return b;
      }
      return -1;
    case Compression::kNone:
      break;
  }
  return -1;
}

uint16_t FloatToBFloat16(float value) { return BF16Nearest(Bits(value)); }
float BFloat16ToFloat(uint16_t bits) {
  return Float(static_cast<uint32_t>(bits) << 16);
}
uint16_t FloatToFloat16(float value) { return F16Nearest(Bits(value)); }
float Float16ToFloat(uint16_t bits) { return F16ToFloat(bits); }

uint32_t WireRandomBits(uint64_t seed, uint64_t index) {
  return RandomAt(StreamKey(seed), static_cast<uint32_t>(index));
}

}  // namespace gameopt
