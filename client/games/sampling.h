// Deterministic random streams for the sample games.
//
// Every draw is a function of a 64-bit seed only: std::mt19937_64 is
// specified bit for bit by the standard, and the uniform and Gaussian
// transforms below are written out here (std::normal_distribution is not
// portable across standard libraries), so a seed gives the same minibatch on
// every platform.
#ifndef GAMEOPT_CLIENT_GAMES_SAMPLING_H_
#define GAMEOPT_CLIENT_GAMES_SAMPLING_H_

#include <cstdint>
#include <random>

namespace gameopt {

// The SplitMix64 finalizer: a bijective 64-bit mixer.
uint64_t SplitMix64(uint64_t value);

// The seed of minibatch slot `slot` of a DrawMinibatches(count, seed) call:
// distinct slots (and nearby seeds) get unrelated streams.
uint64_t SlotSeed(uint64_t seed, uint64_t slot);

class RandomStream {
 public:
  explicit RandomStream(uint64_t seed) : engine_(seed) {}

  // Uniform on [0, 1), 53 random bits.
  double Uniform();
  // Uniform on [low, high).
  double Uniform(double low, double high) {
    return low + (high - low) * Uniform();
  }
  // Standard normal (Box-Muller; the second value of a pair is cached).
  double Gaussian();

 private:
  std::mt19937_64 engine_;
  bool has_cached_ = false;
  double cached_ = 0.0;
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_SAMPLING_H_
