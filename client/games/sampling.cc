#include "client/games/sampling.h"

#include <cmath>

namespace gameopt {

uint64_t SplitMix64(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

uint64_t SlotSeed(uint64_t seed, uint64_t slot) {
  return SplitMix64(SplitMix64(seed) ^ (slot * 0xd1b54a32d192ed03ULL));
}

double RandomStream::Uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double RandomStream::Gaussian() {
  if (has_cached_) {
    has_cached_ = false;
    return cached_;
  }
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  // 1 - Uniform() lies in (0, 1], so the logarithm is finite.
  const double radius = std::sqrt(-2.0 * std::log(1.0 - Uniform()));
  const double angle = kTwoPi * Uniform();
  cached_ = radius * std::sin(angle);
  has_cached_ = true;
  return radius * std::cos(angle);
}

}  // namespace gameopt
