// The compressed wire formats (server/core/wire_codec.h) against
// references written from the formats' definitions: the representable
// values of bfloat16 / float16 enumerated as doubles, round-to-nearest-even
// as "the closer neighbour, the one with an even last bit on a tie", and
// stochastic rounding's expectation measured over many draws.
#include "server/core/wire_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/submission.h"
#include "server/core/wire_vector.h"

namespace gameopt {
namespace {

uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FloatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Value of a binary16 / bfloat16 pattern from the IEEE definition:
// (-1)^s * 2^(e - bias) * (1 + m / 2^mbits), subnormal when e == 0.
double FormatValue(uint16_t h, int ebits, int mbits) {
  const int bias = (1 << (ebits - 1)) - 1;
  const int e = (h >> mbits) & ((1 << ebits) - 1);
  const int m = h & ((1 << mbits) - 1);
  const double sign = (h >> (ebits + mbits)) ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(m, 1 - bias - mbits);
  return sign * std::ldexp((1 << mbits) + m, e - bias - mbits);
}

struct Format {
  Compression compression;
  int ebits, mbits;
  uint16_t (*encode)(float);
  float (*decode)(uint16_t);
};
const Format kBF16 = {Compression::kBFloat16, 8, 7, &FloatToBFloat16,
                      &BFloat16ToFloat};
const Format kF16 = {Compression::kFloat16, 5, 10, &FloatToFloat16,
                     &Float16ToFloat};

// The non-negative finite patterns, in increasing order of value.
std::vector<uint16_t> Positives(const Format& f) {
  std::vector<uint16_t> out;
  const uint16_t inf = static_cast<uint16_t>(((1 << f.ebits) - 1) << f.mbits);
  for (uint32_t h = 0; h < inf; ++h) out.push_back(static_cast<uint16_t>(h));
  return out;
}

// Round-to-nearest-even by the definition: the closest representable
// value; on a tie, the pattern with an even last bit; past the largest
// finite value by half an ulp or more, infinity.
uint16_t ReferenceNearest(const Format& f, float value) {
  static const std::vector<uint16_t> bf = Positives(kBF16);
  static const std::vector<uint16_t> hf = Positives(kF16);
  const std::vector<uint16_t>& table =
      f.compression == Compression::kBFloat16 ? bf : hf;
  const uint16_t sign = std::signbit(value)
                            ? static_cast<uint16_t>(1u << (f.ebits + f.mbits))
                            : 0;
  const double a = std::fabs(static_cast<double>(value));
  const uint16_t top = table.back();
  const double max = FormatValue(top, f.ebits, f.mbits);
  const double ulp = max - FormatValue(top - 1, f.ebits, f.mbits);
  if (a >= max + ulp / 2) return sign | static_cast<uint16_t>(top + 1);
  // The first pattern whose value is >= a.
  auto it = std::lower_bound(table.begin(), table.end(), a,
                             [&](uint16_t h, double v) {
                               return FormatValue(h, f.ebits, f.mbits) < v;
                             });
  if (it == table.end()) return sign | top;
  const uint16_t hi = *it;
  if (it == table.begin()) return sign | hi;
  const uint16_t lo = *(it - 1);
  const double dlo = a - FormatValue(lo, f.ebits, f.mbits);
  const double dhi = FormatValue(hi, f.ebits, f.mbits) - a;
  if (dlo < dhi) return sign | lo;
  if (dhi < dlo) return sign | hi;
  return sign | ((lo & 1) == 0 ? lo : hi);
}

TEST(WireCodec, EveryFiniteBFloat16AndFloat16RoundTripsExactly) {
  for (const Format* f : {&kBF16, &kF16}) {
    for (uint16_t h : Positives(*f)) {
      for (uint16_t s : {uint16_t{0}, static_cast<uint16_t>(0x8000)}) {
        const uint16_t bits = h | s;
        const float value = f->decode(bits);
        ASSERT_EQ(static_cast<double>(value),
                  FormatValue(bits, f->ebits, f->mbits))
            << CompressionName(f->compression) << " " << bits;
        ASSERT_EQ(f->encode(value), bits) << CompressionName(f->compression);
      }
    }
  }
}

TEST(WireCodec, NearestEvenMatchesTheDefinitionOnTiesSubnormalsAndRandom) {
  std::vector<float> values = {
      FloatOf(0x3f808000u),  // 1 + 2^-8: a bfloat16 tie, to even (1)
      FloatOf(0x3f818000u),  // a tie between 0x3f81 and 0x3f82: to 0x3f82
      FloatOf(0x3f808001u),  // just past a tie: up
      1.0f + std::ldexp(1.0f, -11),               // float16 tie: to 1
      1.0f + 3 * std::ldexp(1.0f, -11),           // float16 tie: up to even
      std::ldexp(1.0f, -25),                      // half the smallest float16
      3 * std::ldexp(1.0f, -25),                  // subnormal tie: to 2^-23
      std::ldexp(1.0f, -24) * 1.5f,               // subnormal tie: to 2^-23
      std::ldexp(1.0f, -14) * (1 - 1.0f / 4096),  // subnormal to normal
      65504.0f,
      65519.0f,
      65520.0f,  // float16's largest; the tie to inf
      std::numeric_limits<float>::denorm_min(),
      0.0f,
      -0.0f,
      std::numeric_limits<float>::max(),
      FloatOf(0x7f7f7fffu)};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    // Random bits over the finite float32 range, and some near 1.
    float v = FloatOf(rng());
    if (!std::isfinite(v)) continue;
    values.push_back(v);
    values.push_back(std::ldexp(FloatOf((rng() & 0x807fffffu) | 0x3f800000u),
                                static_cast<int>(rng() % 60) - 40));
  }
  for (const Format* f : {&kBF16, &kF16}) {
    for (float v : values) {
      ASSERT_EQ(f->encode(v), ReferenceNearest(*f, v))
          << CompressionName(f->compression) << " of " << v << " (0x"
          << std::hex << BitsOf(v) << ")";
    }
  }
}

TEST(WireCodec, NonFiniteValuesStayNonFiniteAndAreReportedByDecode) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (Compression c : {Compression::kBFloat16, Compression::kFloat16,
                        Compression::kInt8Block}) {
    for (float bad : {nan, inf, -inf}) {
      for (bool stochastic : {false, true}) {
        std::vector<float> in = {1.0f, 2.0f, bad, 4.0f};
        std::string bytes(CompressedBytes(c, in.size()), '\0');
        Encode(c, in.data(), in.size(), Rounding{stochastic, 3, 0},
               bytes.data());
        std::vector<float> out(in.size());
        // int8 blocks report the block's first index: its scale is bad.
        EXPECT_EQ(Decode(c, bytes.data(), in.size(), out.data()),
                  c == Compression::kInt8Block ? 0 : 2)
            << CompressionName(c) << " " << bad;
      }
    }
  }
}

// FindNonFinite (what a receiver checks without decoding) on every 16-bit
// pattern, alone and after 40 finite values (so that a vectorized loop
// meets it in a lane other than the first), against the definition: all
// exponent bits set.
TEST(WireCodec, FindNonFiniteFindsEveryNonFiniteHalfPattern) {
  for (auto [c, exponent] : {std::pair{Compression::kBFloat16, 0x7f80u},
                             std::pair{Compression::kFloat16, 0x7c00u}}) {
    std::vector<uint16_t> values(41, 0x3c00);  // finite in both formats
    for (uint32_t h = 0; h <= 0xffff; ++h) {
      const bool not_finite = (h & exponent) == exponent;
      values[0] = static_cast<uint16_t>(h);
      values[40] = static_cast<uint16_t>(h);
      const char* bytes = reinterpret_cast<const char*>(values.data());
      ASSERT_EQ(FindNonFinite(c, bytes, 1), not_finite ? 0 : -1)
          << CompressionName(c) << " " << h;
      ASSERT_EQ(FindNonFinite(c, bytes + 2, 40), not_finite ? 39 : -1)
          << CompressionName(c) << " " << h;
    }
  }
}

TEST(WireCodec, FiniteValuesPastTheRangeDoNotFit) {
  for (bool stochastic : {false, true}) {
    const Rounding rounding{stochastic, 1, 0};
    std::string bytes(8, '\0');
    const float big[] = {1.0f, 70000.0f};
    EXPECT_FALSE(Encode(Compression::kFloat16, big, 2, rounding, bytes.data()));
    const float fits[] = {1.0f, 65504.0f};
    EXPECT_TRUE(Encode(Compression::kFloat16, fits, 2, rounding, bytes.data()));
    const float max[] = {std::numeric_limits<float>::max()};
    // bfloat16's largest finite is below float32's: nearest-even overflows.
    if (!stochastic) {
      EXPECT_FALSE(
          Encode(Compression::kBFloat16, max, 1, rounding, bytes.data()));
    }
  }
}

TEST(WireCodec, Int8BlocksOfMultiplesOfTheScaleRoundTripExactly) {
  // s a power of two: 127 s, v / s and q * s are exact in float32.
  const float s = 0.125f;
  std::vector<float> in;
  for (int i = 0; i < 600; ++i) in.push_back(s * ((i * 37) % 255 - 127));
  in[0] = 127 * s;  // every block holds its max, so scale = s exactly
  in[256] = -127 * s;
  in[512] = 127 * s;
  for (bool stochastic : {false, true}) {
    std::string bytes(CompressedBytes(Compression::kInt8Block, in.size()),
                      '\0');
    ASSERT_EQ(bytes.size(), 600u + 4 * 3);
    ASSERT_TRUE(Encode(Compression::kInt8Block, in.data(), in.size(),
                       Rounding{stochastic, 5, 0}, bytes.data()));
    float scale;
    std::memcpy(&scale, bytes.data() + 260, 4);
    EXPECT_EQ(scale, s);
    std::vector<float> out(in.size());
    EXPECT_EQ(
        Decode(Compression::kInt8Block, bytes.data(), in.size(), out.data()),
        -1);
    EXPECT_EQ(out, in);
  }
  // An all-zero block: scale 0, values 0.
  std::vector<float> zeros(10, 0.0f);
  std::string bytes(CompressedBytes(Compression::kInt8Block, 10), '\1');
  ASSERT_TRUE(Encode(Compression::kInt8Block, zeros.data(), 10, Rounding(),
                     bytes.data()));
  EXPECT_EQ(bytes, std::string(14, '\0'));
}

TEST(WireCodec, Int8NearestRoundsHalfToEven) {
  // max 127: scale 1, q = v.
  const float in[] = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, 2.4f};
  const int8_t want[] = {127, 2, 4, -2, -4, 0, 2, 2};
  std::string bytes(CompressedBytes(Compression::kInt8Block, 8), '\0');
  ASSERT_TRUE(Encode(Compression::kInt8Block, in, 8, Rounding(), bytes.data()));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(static_cast<int8_t>(bytes[4 + i]), want[i]) << in[i];
  }
}

// The vector encoder on many whole blocks against the definition written
// value by value: s = max|v| / 127 in float32, q = round-half-even(v / s)
// clamped to [-127, 127]. Half the blocks have scale 1 and hold ties.
TEST(WireCodec, Int8VectorEncodeEqualsTheDefinition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  constexpr int kBlocks = 300;
  std::vector<float> in(kBlocks * kInt8BlockSize);
  for (int b = 0; b < kBlocks; ++b) {
    float* block = in.data() + b * kInt8BlockSize;
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    for (int i = 0; i < kInt8BlockSize; ++i) {
      block[i] = b % 2 == 0
                     ? normal(rng) * scale
                     : static_cast<float>(static_cast<int>(rng() % 254) - 127) +
                           0.5f * static_cast<float>(rng() % 2);
    }
    if (b % 2 == 1) block[rng() % kInt8BlockSize] = -127.0f;  // scale 1
  }
  std::string bytes(CompressedBytes(Compression::kInt8Block, in.size()), '\0');
  ASSERT_TRUE(Encode(Compression::kInt8Block, in.data(), in.size(), Rounding(),
                     bytes.data()));
  for (int b = 0; b < kBlocks; ++b) {
    const float* block = in.data() + b * kInt8BlockSize;
    float amax = 0.0f;
    for (int i = 0; i < kInt8BlockSize; ++i) {
      amax = std::max(amax, std::fabs(block[i]));
    }
    const float scale = amax / 127.0f;
    const char* got =
        bytes.data() +
        CompressedOffset(Compression::kInt8Block, b * int64_t{kInt8BlockSize});
    float got_scale;
    std::memcpy(&got_scale, got, 4);
    ASSERT_EQ(BitsOf(got_scale), BitsOf(scale)) << "block " << b;
    for (int i = 0; i < kInt8BlockSize; ++i) {
      const float q = std::nearbyint(block[i] / scale);  // half to even
      const int want = static_cast<int>(std::clamp(q, -127.0f, 127.0f));
      ASSERT_EQ(static_cast<int8_t>(got[4 + i]), want)
          << "block " << b << " value " << block[i];
    }
  }
}

// The mean of `draws` stochastic encodings of each value is the value,
// within 4 standard errors; every draw is one of the value's two
// neighbours in the format.
void ExpectUnbiased(Compression c, const std::vector<float>& values,
                    float block_max) {
  constexpr int kDraws = 20000;
  for (float v : values) {
    // A block holding v and block_max (sets the int8 scale), repeated.
    std::vector<float> in(kDraws * 2);
    for (int i = 0; i < kDraws; ++i) {
      in[2 * i] = v;
      in[2 * i + 1] = block_max;
    }
    std::string bytes(CompressedBytes(c, in.size()), '\0');
    ASSERT_TRUE(
        Encode(c, in.data(), in.size(), Rounding{true, 11, 0}, bytes.data()));
    std::vector<double> out(in.size());
    ASSERT_EQ(Decode(c, bytes.data(), in.size(), out.data()), -1);
    double sum = 0, sum2 = 0, lo = out[0], hi = out[0];
    for (int i = 0; i < kDraws; ++i) {
      const double d = out[2 * i];
      sum += d;
      sum2 += d * d;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    const double mean = sum / kDraws;
    const double var = std::max(0.0, sum2 / kDraws - mean * mean);
    const double se = std::sqrt(var / kDraws);
    EXPECT_LE(lo, v);
    EXPECT_GE(hi, v);
    // Two values at most: the neighbours (one when v is representable).
    int others = 0;
    for (int i = 0; i < kDraws; ++i) {
      others += out[2 * i] != lo && out[2 * i] != hi;
    }
    EXPECT_EQ(others, 0) << CompressionName(c) << " " << v;
    // 4 standard errors, plus the float32 rounding of v itself.
    EXPECT_NEAR(mean, v, 4 * se + 1e-7 * std::fabs(v) + 1e-30)
        << CompressionName(c) << " of " << v << " se " << se;
  }
}

TEST(WireCodec, StochasticRoundingIsUnbiased) {
  const std::vector<float> values = {
      1.0f + 1.0f / 3, 0.1f,    -0.7f,    123.456f, -3.3e-3f,
      1.0f + 1e-4f,    6.1e-6f, -2.9e-7f, 3e-8f,    60000.3f};
  ExpectUnbiased(Compression::kBFloat16, values, 1.0f);
  // float16's subnormals (below 6.1e-5) included.
  ExpectUnbiased(Compression::kFloat16, values, 1.0f);
  ExpectUnbiased(Compression::kInt8Block,
                 {0.3f, -0.77f, 1.0f / 3, 0.001f, -0.999f}, 1.0f);
}

// Encode's vector loops against the one-value definitions, on vectors
// whose chunks hold values at and around the magnitudes where rounding
// may reach inf (the encoder's slow path) among ordinary ones, at every
// lane position: the same 2-byte values, and "does not fit" exactly when
// a finite value became inf.
TEST(WireCodec, VectorEncodeEqualsTheOneValueDefinitionAroundSpecials) {
  const std::vector<uint32_t> edges = {
      0x7f7f7fffu, 0x7f7f8000u, 0x7f7f0000u, 0x7f7f0001u, 0x7f7fffffu,
      0x7f800000u, 0x7f800001u, 0x7fc00000u, 0x7fffffffu, 0x477fe000u,
      0x477fe001u, 0x477fefffu, 0x477ff000u, 0x477fffffu, 0x47800000u,
      0x3f808000u, 0x00000001u, 0x00000000u};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  for (uint32_t edge : edges) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      // Ordinary values, then the edge at several lane positions of two
      // chunks (the encoder's chunks are 1024 values).
      std::vector<float> in(2100);
      for (float& v : in) v = normal(rng);
      for (size_t at :
           {size_t{3}, size_t{17}, size_t{1023}, size_t{1024}, size_t{2099}}) {
        in[at] = FloatOf(edge | sign);
      }
      for (const Format* f : {&kBF16, &kF16}) {
        for (bool stochastic : {false, true}) {
          const Rounding rounding{stochastic, 5, 40};
          std::string bytes(2 * in.size(), '\0');
          const bool fits = Encode(f->compression, in.data(), in.size(),
                                   rounding, bytes.data());
          bool each_fits = true;
          for (size_t i = 0; i < in.size(); ++i) {
            // The value alone, its random bits at its own index.
            char one[2];
            Rounding r = rounding;
            r.counter += i;
            Encode(f->compression, &in[i], 1, r, one);
            uint16_t want;
            std::memcpy(&want, one, 2);
            const uint16_t inf =
                static_cast<uint16_t>(((1 << f->ebits) - 1) << f->mbits);
            if (!stochastic) {
              ASSERT_EQ(want, f->encode(in[i]));
            } else if (f == &kBF16 && !std::isnan(in[i])) {
              const uint32_t u = BitsOf(in[i]);
              ASSERT_EQ(want,
                        static_cast<uint16_t>(
                            (u + (WireRandomBits(5, 40 + i) >> 16)) >> 16));
            }
            // A finite value that became inf or NaN does not fit.
            each_fits &= !((want & inf) == inf && std::isfinite(in[i]));
            uint16_t got;
            std::memcpy(&got, bytes.data() + 2 * i, 2);
            ASSERT_EQ(got, want)
                << CompressionName(f->compression) << " stochastic "
                << stochastic << " edge 0x" << std::hex << (edge | sign)
                << " at " << std::dec << i;
          }
          EXPECT_EQ(fits, each_fits)
              << CompressionName(f->compression) << " stochastic " << stochastic
              << " edge 0x" << std::hex << (edge | sign);
        }
      }
    }
  }
}

TEST(WireCodec, ChunkedEncodingEqualsOneEncode) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> in(4096);
  for (float& v : in) v = normal(rng);
  for (Compression c : {Compression::kBFloat16, Compression::kFloat16,
                        Compression::kInt8Block}) {
    std::string whole(CompressedBytes(c, in.size()), '\0');
    std::string parts(whole.size(), '\0');
    ASSERT_TRUE(
        Encode(c, in.data(), in.size(), Rounding{true, 9, 100}, whole.data()));
    ASSERT_TRUE(
        Encode(c, in.data(), 1024, Rounding{true, 9, 100}, parts.data()));
    ASSERT_TRUE(Encode(c, in.data() + 1024, 3072, Rounding{true, 9, 1124},
                       parts.data() + CompressedOffset(c, 1024)));
    EXPECT_EQ(whole, parts) << CompressionName(c);
  }
}

}  // namespace
}  // namespace gameopt
