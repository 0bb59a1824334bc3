// BaseOptimizer: one player's first-order optimizer over its block of the
// joint vector. Minimizes: x <- x - update(g), where g is the (corrected)
// direction the game algorithm hands it. Formulas in config.h.
#ifndef GAMEOPT_SERVER_CORE_OPTIMIZER_H_
#define GAMEOPT_SERVER_CORE_OPTIMIZER_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"

namespace gameopt {

// T is float or double, the session's dtype; all arithmetic happens in T.
// Not thread-safe: the owning session serializes calls.
template <typename T>
class BaseOptimizer {
 public:
  // `config` must have passed ValidateConfig. `size` is the block's length.
  BaseOptimizer(const OptimizerConfig& config, int64_t size);

  // One update of the block x along g (both of length size()). With
  // advance_state = false the update is computed from the moments as they
  // would become, but the moments and the step count are left as they were
  // (an extrapolation step that must not count).
  //
  // One pass over memory, split across threads for long blocks (kernels.h):
  // bit-identical to the formulas of config.h applied as whole-vector Eigen
  // expressions, for any thread count; allocates nothing.
  //
  // With `max_abs_x`, also sets *max_abs_x = max |x_i| after the step
  // (MaxAbs, kernels.h), measured in the same pass: the next step's
  // StepStaysFinite can take it instead of reading x again.
  void Step(const Eigen::Ref<const Vec<T>>& g, Eigen::Ref<Vec<T>> x,
            bool advance_state = true, double* max_abs_x = nullptr);

  // The update per unit of learning rate, advancing the moments and the
  // step count as Step does: out = (x - x') / lr for the x' of Step(g, x)
  // without clip_value. Adam: m_hat / (sqrt(v_hat) + eps) (optimistic Adam
  // combines two of them). StepStaysFinite(g, x) bounds it.
  void NormalizedUpdate(const Eigen::Ref<const Vec<T>>& g,
                        Eigen::Ref<Vec<T>> out);

  // The learning rate of the following Step calls (initially
  // config().learning_rate): the algorithm sets the step's scheduled rate.
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  double learning_rate() const { return learning_rate_; }
  // Whether Step(g, x) (advancing the moments) would leave x and the
  // moments finite, nothing written. x - lr * g can overflow with a finite
  // g, and g * g in the moments of RMSProp and Adam; such a step is
  // refused. Usually a read pass proves it from the maxima of |g|, |x| and
  // the slots (StepProvablyFinite); only when that bound comes near the
  // type's range does it run the update on copies (DryRunStaysFinite),
  // which is exact and costs about a Step. `max_abs_g` and `max_abs_x`,
  // when not negative, are known upper bounds of max |g_i| and max |x_i|
  // (the caller measured them): the read passes over g and x are then
  // skipped; the slots' maxima are those measured by the last Step, when
  // nothing changed the slots since. The answer is the same either way.
  bool StepStaysFinite(const Eigen::Ref<const Vec<T>>& g,
                       const Eigen::Ref<const Vec<T>>& x,
                       double max_abs_g = -1.0, double max_abs_x = -1.0) const;

  int64_t size() const { return size_; }
  int64_t steps() const { return steps_; }
  const OptimizerConfig& config() const { return config_; }
  // The optimizer's slots (momentum / accumulator / Adam m and v), for
  // checkpoints and tests. Empty for SGD.
  std::vector<const Vec<T>*> slots() const;
  // Restores the step count and the slots, in the order of slots().
  // DataLoss when their number or sizes do not match this optimizer's.
  absl::Status RestoreState(int64_t steps, const std::vector<Vec<T>>& slots);

 private:
  // Per-step constants of Update.
  struct Constants;
  Constants MakeConstants(int64_t step) const;
  // The update of coordinates [0, n) of one block; slot1 / slot2 are null
  // when the optimizer has no such slot.
  bool StepProvablyFinite(const Eigen::Ref<const Vec<T>>& g,
                          const Eigen::Ref<const Vec<T>>& x, double max_abs_g,
                          double max_abs_x) const;
  bool DryRunStaysFinite(const Eigen::Ref<const Vec<T>>& g,
                         const Eigen::Ref<const Vec<T>>& x) const;
  void Update(const Constants& c, const T* g, T* x, T* slot1, T* slot2,
              int64_t n) const;

  OptimizerConfig config_;
  double learning_rate_;
  int64_t size_;
  int64_t steps_ = 0;
  Vec<T> slot1_;  // momentum buffer, RMSProp accumulator or Adam's m
  Vec<T> slot2_;  // Adam's v
  // max |slot1_|, max |slot2_| as the last advancing Step left them;
  // negative when unknown (before the first, after NormalizedUpdate or
  // RestoreState).
  double slot_max_abs_[2] = {-1.0, -1.0};
};

extern template class BaseOptimizer<float>;
extern template class BaseOptimizer<double>;

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_OPTIMIZER_H_
