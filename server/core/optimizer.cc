#include "server/core/optimizer.h"

#include <cmath>

namespace gameopt {

template <typename T>
BaseOptimizer<T>::BaseOptimizer(const OptimizerConfig& config, int64_t size)
    : config_(config), size_(size) {
  switch (config.kind) {
    case OptimizerKind::kSgd:
      break;
    case OptimizerKind::kMomentum:
    case OptimizerKind::kNesterov:
      slot1_ = Vec<T>::Zero(size);
      break;
    case OptimizerKind::kRmsProp:
      slot1_ = Vec<T>::Constant(size, static_cast<T>(config.initial_accumulator));
      break;
    case OptimizerKind::kAdam:
      slot1_ = Vec<T>::Zero(size);
      slot2_ = Vec<T>::Zero(size);
      break;
  }
}

template <typename T>
void BaseOptimizer<T>::Step(const Eigen::Ref<const Vec<T>>& g,
                            Eigen::Ref<Vec<T>> x, bool advance_state) {
  if (advance_state) {
    ++steps_;
    Update(g, x, slot1_, slot2_, steps_);
  } else {
    Vec<T> slot1 = slot1_;
    Vec<T> slot2 = slot2_;
    Update(g, x, slot1, slot2, steps_ + 1);
  }
  if (config_.clip_value > 0.0) {
    const T c = static_cast<T>(config_.clip_value);
    x = x.cwiseMax(-c).cwiseMin(c);
  }
}

template <typename T>
void BaseOptimizer<T>::Update(const Eigen::Ref<const Vec<T>>& g,
                              Eigen::Ref<Vec<T>> x, Vec<T>& slot1,
                              Vec<T>& slot2, int64_t step) {
  const T lr = static_cast<T>(config_.learning_rate);
  switch (config_.kind) {
    case OptimizerKind::kSgd:
      x.noalias() -= lr * g;
      return;
    case OptimizerKind::kMomentum: {
      const T mu = static_cast<T>(config_.momentum);
      slot1 = mu * slot1 + g;
      x.noalias() -= lr * slot1;
      return;
    }
    case OptimizerKind::kNesterov: {
      const T mu = static_cast<T>(config_.momentum);
      slot1 = mu * slot1 + g;
      x.array() -= lr * (g.array() + mu * slot1.array());
      return;
    }
    case OptimizerKind::kRmsProp: {
      const T decay = static_cast<T>(config_.rmsprop_decay);
      const T eps = static_cast<T>(config_.epsilon);
      slot1.array() =
          decay * slot1.array() + (T(1) - decay) * g.array().square();
      if (config_.eps_inside_sqrt) {
        x.array() -= lr * g.array() / (slot1.array() + eps).sqrt();
      } else {
        x.array() -= lr * g.array() / (slot1.array().sqrt() + eps);
      }
      return;
    }
    case OptimizerKind::kAdam: {
      const T b1 = static_cast<T>(config_.beta1);
      const T b2 = static_cast<T>(config_.beta2);
      const T eps = static_cast<T>(config_.epsilon);
      slot1.array() = b1 * slot1.array() + (T(1) - b1) * g.array();
      slot2.array() =
          b2 * slot2.array() + (T(1) - b2) * g.array().square();
      // PyTorch's arrangement of the bias corrections, for matching runs.
      const T bc1 = T(1) - static_cast<T>(std::pow(config_.beta1, step));
      const T bc2 = T(1) - static_cast<T>(std::pow(config_.beta2, step));
      const T step_size = lr / bc1;
      const T bc2_sqrt = std::sqrt(bc2);
      x.array() -=
          step_size * slot1.array() / (slot2.array().sqrt() / bc2_sqrt + eps);
      return;
    }
  }
}

template <typename T>
std::vector<const Vec<T>*> BaseOptimizer<T>::slots() const {
  std::vector<const Vec<T>*> out;
  if (slot1_.size() > 0) out.push_back(&slot1_);
  if (slot2_.size() > 0) out.push_back(&slot2_);
  return out;
}

template class BaseOptimizer<float>;
template class BaseOptimizer<double>;

}  // namespace gameopt
