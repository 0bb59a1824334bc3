#include "server/core/optimizer.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/core/kernels.h"
#include "server/core/parallel.h"

// The updates run as plain loops that GCC vectorizes once per instruction
// set of GAMEOPT_TARGET_CLONES (SSE2, AVX2, AVX-512), the widest the CPU
// has chosen at run time: a default build still runs on any x86-64 and
// uses the machine's vector width. The arithmetic is that of config.h's
// formulas in the same order whatever the width (this file is compiled
// with -ffp-contract=off, so no FMA, and -fno-math-errno, so that sqrt
// vectorizes), hence bit-identical to the whole-vector Eigen expressions
// of the code before (tests/bench/hot_path_test.cc checks it).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__)
#define GAMEOPT_TARGET_CLONES \
  __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define GAMEOPT_TARGET_CLONES
#endif

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
bool BaseOptimizer<T>::StepStaysFinite(
    const Eigen::Ref<const Vec<T>>& g,
    const Eigen::Ref<const Vec<T>>& x) const {
  const Constants c = MakeConstants(steps_ + 1);
  const bool has1 = slot1_.size() > 0;
  const bool has2 = slot2_.size() > 0;
  std::atomic<bool> finite{true};
  ForEachBlock(size_, [&](int64_t begin, int64_t end) {
    if (!finite.load(std::memory_order_relaxed)) return;
    const int64_t n = end - begin;
    T xs[kKernelBlock], copy1[kKernelBlock], copy2[kKernelBlock];
    std::copy(x.data() + begin, x.data() + end, xs);
    T* s1 =
        has1 ? std::copy(slot1_.data() + begin, slot1_.data() + end, copy1) - n
             : nullptr;
    T* s2 =
        has2 ? std::copy(slot2_.data() + begin, slot2_.data() + end, copy2) - n
             : nullptr;
    Update(c, g.data() + begin, xs, s1, s2, n);
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(xs[i]);
    for (int64_t i = 0; has1 && i < n; ++i) ok &= std::isfinite(s1[i]);
    for (int64_t i = 0; has2 && i < n; ++i) ok &= std::isfinite(s2[i]);
    if (!ok) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

template <typename T>
void BaseOptimizer<T>::Step(const Eigen::Ref<const Vec<T>>& g,
                            Eigen::Ref<Vec<T>> x, bool advance_state) {
  const int64_t step = steps_ + 1;
  if (advance_state) steps_ = step;
  const Constants c = MakeConstants(step);
  const bool has1 = slot1_.size() > 0;
  const bool has2 = slot2_.size() > 0;
  const T* gp = g.data();
  T* xp = x.data();
  auto update = [&](int64_t begin, int64_t end) {
    const int64_t n = end - begin;
    T* s1 = has1 ? slot1_.data() + begin : nullptr;
    T* s2 = has2 ? slot2_.data() + begin : nullptr;
    Update(c, gp + begin, xp + begin, s1, s2, n);
  };
  if (advance_state) {
    // One fused loop per thread's range: long sequential runs.
    ParallelFor(size_, update);
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
  });
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
  steps_ = steps;
  return absl::OkStatus();
}

template class BaseOptimizer<float>;
template class BaseOptimizer<double>;

}  // namespace gameopt
