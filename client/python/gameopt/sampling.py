"""Deterministic random streams, bit for bit those of client/games/sampling.h.

std::mt19937_64 is specified exactly by the C++ standard; the uniform and
Box-Muller transforms are the ones written out in sampling.cc, and Python's
math functions call the same C library, so a seed gives the same draws as the
C++ sample games (tested against them).
"""

import math

_MASK = (1 << 64) - 1
_NN, _MM = 312, 156
_MATRIX_A = 0xB5026F5AA96619E9
_LOWER = 0x7FFFFFFF  # the low 31 bits
_UPPER = ~_LOWER & _MASK
_TWO_PI = 6.283185307179586476925286766559


def split_mix64(value: int) -> int:
    """The SplitMix64 finalizer (SplitMix64 in sampling.h)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def slot_seed(seed: int, slot: int) -> int:
    """Seed of minibatch slot `slot` of draw_minibatches(count, seed)."""
    return split_mix64(split_mix64(seed & _MASK)
                       ^ ((slot * 0xD1B54A32D192ED03) & _MASK))


class MersenneTwister64:
    """std::mt19937_64."""

    def __init__(self, seed: int):
        state = [seed & _MASK]
        for i in range(1, _NN):
            prev = state[-1]
            state.append((6364136223846793005 * (prev ^ (prev >> 62)) + i)
                         & _MASK)
        self._state = state
        self._index = _NN

    def _twist(self):
        mt = self._state
        for i in range(_NN):
            x = (mt[i] & _UPPER) | (mt[(i + 1) % _NN] & _LOWER)
            xa = x >> 1
            if x & 1:
                xa ^= _MATRIX_A
            mt[i] = mt[(i + _MM) % _NN] ^ xa
        self._index = 0

    def __call__(self) -> int:
        if self._index >= _NN:
            self._twist()
        x = self._state[self._index]
        self._index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x


class RandomStream:
    """gameopt::RandomStream: uniform on [0, 1) and Box-Muller Gaussians."""

    def __init__(self, seed: int):
        self._engine = MersenneTwister64(seed)
        self._cached = None

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        u = (self._engine() >> 11) * 2.0 ** -53
        return low + (high - low) * u

    def gaussian(self) -> float:
        if self._cached is not None:
            value, self._cached = self._cached, None
            return value
        radius = math.sqrt(-2.0 * math.log(1.0 - self.uniform()))
        angle = _TWO_PI * self.uniform()
        self._cached = radius * math.sin(angle)
        return radius * math.cos(angle)

    def gaussian_matrix(self, rows: int, cols: int):
        """rows x cols standard normal, filled column by column as the C++
        games do (returns a numpy array)."""
        import numpy as np
        values = [self.gaussian() for _ in range(rows * cols)]
        return np.array(values, dtype=np.float64).reshape(cols, rows).T.copy()
