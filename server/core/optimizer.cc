#include "server/core/optimizer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/core/kernels.h"
#include "server/core/parallel.h"
#include "server/core/target_clones.h"

// The updates run as plain loops that GCC vectorizes once per instruction
// set of GAMEOPT_TARGET_CLONES (SSE2, AVX2, AVX-512), the widest the CPU
// has chosen at run time: a default build still runs on any x86-64 and
// uses the machine's vector width. The arithmetic is that of config.h's
// formulas in the same order whatever the width (this file is compiled
// with -ffp-contract=off, so no FMA, and -fno-math-errno, so that sqrt
// vectorizes), hence bit-identical to the whole-vector Eigen expressions
// of the code before (tests/bench/hot_path_test.cc checks it).

namespace gameopt {
namespace {

// x (and the slots) of one block of n coordinates.
template <typename T>
GAMEOPT_TARGET_CLONES void UpdateBlock(OptimizerKind kind, bool eps_inside_sqrt,
                                       T lr, T mu, T decay, T eps, T b1, T b2,
                                       T step_size, T bc2_sqrt, bool clip,
                                       T clip_value, const T* __restrict g,
                                       T* __restrict x, T* __restrict s1,
                                       T* __restrict s2, int64_t n) {
  switch (kind) {
    case OptimizerKind::kSgd:
      for (int64_t i = 0; i < n; ++i) x[i] -= lr * g[i];
      break;
    case OptimizerKind::kMomentum:
      for (int64_t i = 0; i < n; ++i) {
        s1[i] = mu * s1[i] + g[i];
        x[i] -= lr * s1[i];
      }
      break;
    case OptimizerKind::kNesterov:
      for (int64_t i = 0; i < n; ++i) {
        s1[i] = mu * s1[i] + g[i];
        x[i] -= lr * (g[i] + mu * s1[i]);
      }
      break;
    case OptimizerKind::kRmsProp: {
      const T rest = T(1) - decay;
      if (eps_inside_sqrt) {
        for (int64_t i = 0; i < n; ++i) {
          s1[i] = decay * s1[i] + rest * (g[i] * g[i]);
          x[i] -= lr * g[i] / std::sqrt(s1[i] + eps);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          s1[i] = decay * s1[i] + rest * (g[i] * g[i]);
          x[i] -= lr * g[i] / (std::sqrt(s1[i]) + eps);
        }
      }
      break;
    }
    case OptimizerKind::kAdam: {
      const T rest1 = T(1) - b1, rest2 = T(1) - b2;
      for (int64_t i = 0; i < n; ++i) {
        s1[i] = b1 * s1[i] + rest1 * g[i];
        s2[i] = b2 * s2[i] + rest2 * (g[i] * g[i]);
        x[i] -= step_size * s1[i] / (std::sqrt(s2[i]) / bc2_sqrt + eps);
      }
      break;
    }
  }
  if (clip) {
    for (int64_t i = 0; i < n; ++i) {
      x[i] = std::min(std::max(x[i], -clip_value), clip_value);
    }
  }
}

// Whether p[0..n) holds no inf or NaN (MaxAbs ranks them above every
// finite value).
template <typename T>
bool BlockFinite(const T* p, int64_t n) {
  return MaxAbsOnThisThread(p, n) <=
         static_cast<double>(std::numeric_limits<T>::max());
}

}  // namespace

template <typename T>
struct BaseOptimizer<T>::Constants {
  T lr, mu, decay, eps, b1, b2;
  T step_size, bc2_sqrt;  // Adam's bias corrections
  bool clip;
  T clip_value;
};

template <typename T>
BaseOptimizer<T>::BaseOptimizer(const OptimizerConfig& config, int64_t size)
    : config_(config), learning_rate_(config.learning_rate), size_(size) {
  switch (config.kind) {
    case OptimizerKind::kSgd:
      break;
    case OptimizerKind::kMomentum:
    case OptimizerKind::kNesterov:
      slot1_ = Vec<T>::Zero(size);
      break;
    case OptimizerKind::kRmsProp:
      slot1_ =
          Vec<T>::Constant(size, static_cast<T>(config.initial_accumulator));
      break;
    case OptimizerKind::kAdam:
      slot1_ = Vec<T>::Zero(size);
      slot2_ = Vec<T>::Zero(size);
      break;
  }
}

template <typename T>
typename BaseOptimizer<T>::Constants BaseOptimizer<T>::MakeConstants(
    int64_t step) const {
  Constants c;
  c.lr = static_cast<T>(learning_rate_);
  c.mu = static_cast<T>(config_.momentum);
  c.decay = static_cast<T>(config_.rmsprop_decay);
  c.eps = static_cast<T>(config_.epsilon);
  c.b1 = static_cast<T>(config_.beta1);
  c.b2 = static_cast<T>(config_.beta2);
  // PyTorch's arrangement of Adam's bias corrections, for matching runs.
  const T bc1 = T(1) - static_cast<T>(std::pow(config_.beta1, step));
  const T bc2 = T(1) - static_cast<T>(std::pow(config_.beta2, step));
  c.step_size = c.lr / bc1;
  c.bc2_sqrt = std::sqrt(bc2);
  c.clip = config_.clip_value > 0.0;
  c.clip_value = static_cast<T>(config_.clip_value);
  return c;
}

template <typename T>
bool BaseOptimizer<T>::StepStaysFinite(const Eigen::Ref<const Vec<T>>& g,
                                       const Eigen::Ref<const Vec<T>>& x,
                                       double max_abs_g,
                                       double max_abs_x) const {
  return StepProvablyFinite(g, x, max_abs_g, max_abs_x) ||
         DryRunStaysFinite(g, x);
}

// Bounds every intermediate and result of UpdateBlock from the maxima of
// |g|, |x| and the slots (a read pass, no arithmetic per coordinate):
//   momentum, Nesterov  |v'| <= |mu| S1 + G
//   RMSProp             s' <= S1 + G^2, |step| <= lr G / eps (or sqrt(eps)
//                       when eps is inside the sqrt)
//   Adam                |m'| <= S1 + G, v' <= S2 + G^2,
//                       |step| <= step_size |m'| / eps
// (decay, beta in [0, 1), |mu| < 1, eps > 0), and asks each to stay below
// max(T) / 16, a margin far beyond T's rounding. Computed in double; any
// bound that is not finite (NaN inputs, G^2 past double) proves nothing.
template <typename T>
bool BaseOptimizer<T>::StepProvablyFinite(const Eigen::Ref<const Vec<T>>& g,
                                          const Eigen::Ref<const Vec<T>>& x,
                                          double max_abs_g,
                                          double max_abs_x) const {
  const Constants c = MakeConstants(steps_ + 1);
  const double limit =
      static_cast<double>(std::numeric_limits<T>::max()) / 16.0;
  const double lr = static_cast<double>(c.lr);
  const double eps = static_cast<double>(c.eps);
  // A bound from the caller may exceed max |g| (a larger vector's): the
  // proof only gets weaker; the dry run then decides exactly.
  const double big_g = max_abs_g >= 0.0 ? max_abs_g : MaxAbs(g.data(), size_);
  const double big_x = max_abs_x >= 0.0 ? max_abs_x : MaxAbs(x.data(), size_);
  auto slot_max = [&](const Vec<T>& slot, double known) {
    if (slot.size() == 0) return 0.0;
    return known >= 0.0 ? known : MaxAbs(slot.data(), size_);
  };
  const double s1 = slot_max(slot1_, slot_max_abs_[0]);
  const double s2 = slot_max(slot2_, slot_max_abs_[1]);
  absl::InlinedVector<double, 8> bounds;  // each must stay below the limit
  double step = 0.0;                      // bounds |x' - x|
  switch (config_.kind) {
    case OptimizerKind::kSgd:
      step = lr * big_g;
      break;
    case OptimizerKind::kMomentum:
    case OptimizerKind::kNesterov: {
      const double v = std::abs(static_cast<double>(c.mu)) * s1 + big_g;
      bounds = {v, big_g + v};
      step = lr * (big_g + v);
      break;
    }
    case OptimizerKind::kRmsProp: {
      const double floor = config_.eps_inside_sqrt ? std::sqrt(eps) : eps;
      bounds = {big_g * big_g, s1 + big_g * big_g, lr * big_g};
      step = lr * big_g / floor;
      break;
    }
    case OptimizerKind::kAdam: {
      const double m = s1 + big_g;
      const double step_size = static_cast<double>(c.step_size);
      bounds = {m, big_g * big_g, s2 + big_g * big_g, step_size * m};
      step = step_size * m / eps;
      break;
    }
  }
  bounds.push_back(step);
  bounds.push_back(big_x + step);
  for (double bound : bounds) {
    if (!(bound < limit)) return false;  // NaN too
  }
  return true;
}

template <typename T>
bool BaseOptimizer<T>::DryRunStaysFinite(
    const Eigen::Ref<const Vec<T>>& g,
    const Eigen::Ref<const Vec<T>>& x) const {
  const Constants c = MakeConstants(steps_ + 1);
  const bool has1 = slot1_.size() > 0;
  const bool has2 = slot2_.size() > 0;
  std::atomic<bool> finite{true};
  // Each thread's range in chunks that stay in L1: the update on copies,
  // then the exponent test.
  constexpr int64_t kChunk = 2048;
  ParallelFor(size_, [&](int64_t range_begin, int64_t range_end) {
    T xs[kChunk], copy1[kChunk], copy2[kChunk];
    for (int64_t begin = range_begin; begin < range_end; begin += kChunk) {
      if (!finite.load(std::memory_order_relaxed)) return;
      const int64_t n = std::min(kChunk, range_end - begin);
      std::memcpy(xs, x.data() + begin, n * sizeof(T));
      T* s1 = nullptr;
      T* s2 = nullptr;
      if (has1)
        s1 = static_cast<T*>(
            std::memcpy(copy1, slot1_.data() + begin, n * sizeof(T)));
      if (has2)
        s2 = static_cast<T*>(
            std::memcpy(copy2, slot2_.data() + begin, n * sizeof(T)));
      Update(c, g.data() + begin, xs, s1, s2, n);
      if (!BlockFinite(xs, n) || (has1 && !BlockFinite(s1, n)) ||
          (has2 && !BlockFinite(s2, n))) {
        finite.store(false, std::memory_order_relaxed);
      }
    }
  });
  return finite.load();
}

template <typename T>
void BaseOptimizer<T>::Step(const Eigen::Ref<const Vec<T>>& g,
                            Eigen::Ref<Vec<T>> x, bool advance_state,
                            double* max_abs_x) {
  const int64_t step = steps_ + 1;
  if (advance_state) steps_ = step;
  const Constants c = MakeConstants(step);
  const bool has1 = slot1_.size() > 0;
  const bool has2 = slot2_.size() > 0;
  const T* gp = g.data();
  T* xp = x.data();
  // The maxima of what a block wrote, read back while it is still in L1
  // (kKernelBlock coordinates); a range's maxima are combined under a lock
  // once per range (at most 64K coordinates: parallel.h).
  absl::Mutex mu;
  double maxima[3] = {0.0, 0.0, 0.0};  // x, slot1, slot2
  auto measure = [&](const T* x_range, const T* s1, const T* s2, int64_t n,
                     double found[3]) {
    found[0] = MaxOfMaxAbs(
        found[0], max_abs_x != nullptr ? MaxAbsOnThisThread(x_range, n) : 0.0);
    found[1] =
        MaxOfMaxAbs(found[1], s1 != nullptr ? MaxAbsOnThisThread(s1, n) : 0.0);
    found[2] =
        MaxOfMaxAbs(found[2], s2 != nullptr ? MaxAbsOnThisThread(s2, n) : 0.0);
  };
  auto combine = [&](const double found[3]) {
    absl::MutexLock lock(&mu);
    for (int i = 0; i < 3; ++i) maxima[i] = MaxOfMaxAbs(maxima[i], found[i]);
  };
  if (advance_state) {
    // Per thread's range, block by block: the update, then its maxima.
    ParallelFor(size_, [&](int64_t begin, int64_t end) {
      double found[3] = {0.0, 0.0, 0.0};
      for (int64_t b = begin; b < end; b += kKernelBlock) {
        const int64_t n = std::min(kKernelBlock, end - b);
        T* s1 = has1 ? slot1_.data() + b : nullptr;
        T* s2 = has2 ? slot2_.data() + b : nullptr;
        Update(c, gp + b, xp + b, s1, s2, n);
        measure(xp + b, s1, s2, n, found);
      }
      combine(found);
    });
    slot_max_abs_[0] = maxima[1];
    slot_max_abs_[1] = maxima[2];
    if (max_abs_x != nullptr) *max_abs_x = maxima[0];
    return;
  }
  // An extrapolation leaves the moments alone: it updates block-sized
  // copies of them.
  ForEachBlock(size_, [&](int64_t begin, int64_t end) {
    const int64_t n = end - begin;
    T* s1 = has1 ? slot1_.data() + begin : nullptr;
    T* s2 = has2 ? slot2_.data() + begin : nullptr;
    T copy1[kKernelBlock], copy2[kKernelBlock];
    if (s1 != nullptr) s1 = std::copy(s1, s1 + n, copy1) - n;
    if (s2 != nullptr) s2 = std::copy(s2, s2 + n, copy2) - n;
    Update(c, gp + begin, xp + begin, s1, s2, n);
    if (max_abs_x != nullptr) {
      double found[3] = {0.0, 0.0, 0.0};
      measure(xp + begin, nullptr, nullptr, n, found);
      combine(found);
    }
  });
  if (max_abs_x != nullptr) *max_abs_x = maxima[0];
}

template <typename T>
void BaseOptimizer<T>::NormalizedUpdate(const Eigen::Ref<const Vec<T>>& g,
                                        Eigen::Ref<Vec<T>> out) {
  steps_ += 1;
  slot_max_abs_[0] = slot_max_abs_[1] = -1.0;  // not measured here
  Constants c = MakeConstants(steps_);
  // Step with a learning rate of 1 from 0: out = -u exactly.
  c.lr = T(1);
  c.step_size = T(1) / (T(1) - static_cast<T>(std::pow(config_.beta1, steps_)));
  c.clip = false;
  const bool has1 = slot1_.size() > 0;
  const bool has2 = slot2_.size() > 0;
  out.setZero();
  const T* gp = g.data();
  T* op = out.data();
  ParallelFor(size_, [&](int64_t begin, int64_t end) {
    T* s1 = has1 ? slot1_.data() + begin : nullptr;
    T* s2 = has2 ? slot2_.data() + begin : nullptr;
    Update(c, gp + begin, op + begin, s1, s2, end - begin);
  });
  out = -out;
}

template <typename T>
void BaseOptimizer<T>::Update(const Constants& c, const T* g, T* x, T* slot1,
                              T* slot2, int64_t n) const {
  UpdateBlock<T>(config_.kind, config_.eps_inside_sqrt, c.lr, c.mu, c.decay,
                 c.eps, c.b1, c.b2, c.step_size, c.bc2_sqrt, c.clip,
                 c.clip_value, g, x, slot1, slot2, n);
}

template <typename T>
std::vector<const Vec<T>*> BaseOptimizer<T>::slots() const {
  std::vector<const Vec<T>*> out;
  if (slot1_.size() > 0) out.push_back(&slot1_);
  if (slot2_.size() > 0) out.push_back(&slot2_);
  return out;
}

template <typename T>
absl::Status BaseOptimizer<T>::RestoreState(int64_t steps,
                                            const std::vector<Vec<T>>& slots) {
  std::vector<Vec<T>*> mine;
  if (slot1_.size() > 0) mine.push_back(&slot1_);
  if (slot2_.size() > 0) mine.push_back(&slot2_);
  if (steps < 0 || slots.size() != mine.size()) {
    return absl::DataLossError(absl::StrCat(
        "optimizer state: ", slots.size(), " slot(s) and step count ", steps,
        " do not fit an optimizer with ", mine.size(), " slot(s)"));
  }
  for (size_t k = 0; k < slots.size(); ++k) {
    if (slots[k].size() != size_) {
      return absl::DataLossError(
          absl::StrCat("optimizer slot ", k, " has ", slots[k].size(),
                       " coordinates, the player has ", size_));
    }
  }
  for (size_t k = 0; k < slots.size(); ++k) *mine[k] = slots[k];
  slot_max_abs_[0] = slot_max_abs_[1] = -1.0;
  steps_ = steps;
  return absl::OkStatus();
}

template class BaseOptimizer<float>;
template class BaseOptimizer<double>;

}  // namespace gameopt
