// The bits of float and double, and the test for "not finite" on them,
// shared by the decoders of submissions (submission.cc) and the checks of
// samples kept as they arrived (sample_set.cc).
#ifndef GAMEOPT_SERVER_CORE_FLOAT_BITS_H_
#define GAMEOPT_SERVER_CORE_FLOAT_BITS_H_

#include <cstdint>
#include <cstring>

namespace gameopt {

// A value is not finite when its exponent bits are all set. Then
// (bits & kExponent) + kLowestExponentBit carries into the sign bit, and
// only then, so the OR of that over a block (NotFiniteFlag) vectorizes with
// SSE2.
template <typename T>
struct FloatBits;
template <>
struct FloatBits<float> {
  using Bits = uint32_t;
  static constexpr Bits kExponent = 0x7f800000u;
  static constexpr Bits kLowestExponentBit = 0x00800000u;
  static constexpr Bits kSign = 0x80000000u;
};
template <>
struct FloatBits<double> {
  using Bits = uint64_t;
  static constexpr Bits kExponent = 0x7ff0000000000000u;
  static constexpr Bits kLowestExponentBit = 0x0010000000000000u;
  static constexpr Bits kSign = 0x8000000000000000u;
};

// Has the sign bit set when `bits` is a value that is not finite.
template <typename T>
constexpr typename FloatBits<T>::Bits NotFiniteFlag(
    typename FloatBits<T>::Bits bits) {
  return (bits & FloatBits<T>::kExponent) + FloatBits<T>::kLowestExponentBit;
}

// Index of the first value of n little-endian T at `bytes` (any alignment)
// that is not finite, or -1: one vectorized pass, and a second only when
// there is one.
template <typename T>
int64_t FindNonFiniteRaw(const char* bytes, int64_t n) {
  using Bits = typename FloatBits<T>::Bits;
  Bits flags = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, bytes + i * sizeof(T), sizeof(T));
    flags |= NotFiniteFlag<T>(bits);
  }
  if ((flags & FloatBits<T>::kSign) == 0) return -1;
  for (int64_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, bytes + i * sizeof(T), sizeof(T));
    if ((NotFiniteFlag<T>(bits) & FloatBits<T>::kSign) != 0) return i;
  }
  return -1;
}

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_FLOAT_BITS_H_
