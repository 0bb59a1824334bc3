#include "server/core/typed_algorithm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/lr_schedule.h"

namespace gameopt {
namespace {

// Copies a tensor's initial values (any dtype) into the session's dtype.
template <typename T>
void LoadInitial(const TensorConfig& tensor, T* out, int64_t size) {
  if (tensor.initial_values.empty()) {
    std::fill(out, out + size, T(0));
    return;
  }
  const char* raw = tensor.initial_values.data();
  for (int64_t i = 0; i < size; ++i) {
    if (tensor.initial_dtype == DType::kFloat32) {
      float v;
      std::memcpy(&v, raw + i * 4, 4);
      out[i] = static_cast<T>(v);
    } else {
      double v;
      std::memcpy(&v, raw + i * 8, 8);
      out[i] = static_cast<T>(v);
    }
  }
}

}  // namespace

template <typename T>
TypedAlgorithm<T>::TypedAlgorithm(const SessionConfig& config,
                                  GameLayout layout)
    : config_(config), layout_(std::move(layout)) {
  x_ = std::make_shared<FlatVector>(config.dtype, layout_.dimension());
  VecMap<T> x = x_->as<T>();
  for (int p = 0; p < layout_.num_players(); ++p) {
    const PlayerLayout& player = layout_.players()[p];
    for (size_t t = 0; t < player.tensors.size(); ++t) {
      const TensorLayout& tensor = player.tensors[t];
      LoadInitial(config.players[p].tensors[t], x.data() + tensor.offset,
                  tensor.size);
    }
    optimizers_.emplace_back(config.players[p].optimizer, player.size);
  }
  point_ = x_;
  x_max_abs_.assign(layout_.num_players(), -1.0);
  if (config.algorithm.lookahead_k > 0) slow_ = x;
  stats_.xi_norm.assign(layout_.num_players(), 0.0);
}

template <typename T>
std::vector<int> TypedAlgorithm<T>::AllPlayers() const {
  std::vector<int> all(layout_.num_players());
  for (int p = 0; p < layout_.num_players(); ++p) all[p] = p;
  return all;
}

template <typename T>
FlatVector& TypedAlgorithm<T>::MutableX() {
  const long internal = extrapolating_ ? 1 : 2;
  if (x_.use_count() > internal) {
    CountCopyOnWriteCopy();
    x_ = std::make_shared<FlatVector>(*x_);
    if (!extrapolating_) point_ = x_;
  }
  // A transport that sent x may have released it just now on another
  // thread: see its reads before writing.
  std::atomic_thread_fence(std::memory_order_acquire);
  x_dirty_ = true;
  std::fill(x_max_abs_.begin(), x_max_abs_.end(), -1.0);  // written next
  return *x_;
}

template <typename T>
void TypedAlgorithm<T>::SetPoint(std::shared_ptr<FlatVector> point) {
  point_ = std::move(point);
  extrapolating_ = true;
  ++version_;
}

template <typename T>
absl::Status TypedAlgorithm<T>::CheckDirection(Eigen::Ref<Vec<T>> g,
                                               const std::vector<int>& all,
                                               const FlatVector& base,
                                               double max_abs_g) {
  // max |g| per player: the finiteness test (NaN and inf rank above every
  // finite value) and the bound StepStaysFinite needs, in one parallel
  // pass, or none when the caller measured all of g (an upper bound of
  // each player's).
  constexpr double kLargest =
      static_cast<double>(std::numeric_limits<T>::max());
  // Measured and finite (false for NaN); else measured per player, which
  // names the player whose direction is not finite.
  const bool known = max_abs_g >= 0.0 && max_abs_g <= kLargest;
  std::vector<double> max_abs(layout_.num_players(), max_abs_g);
  for (int p : all) {
    if (!known) max_abs[p] = MaxAbs(Block(g, p).data(), Block(g, p).size());
    if (!(max_abs[p] <= kLargest)) {
      const std::string why =
          absl::StrCat("the update direction of player '",
                       layout_.players()[p].name, "' at step ", step_,
                       " is not finite (the mean of the samples "
                       "overflows ",
                       DTypeName(config_.dtype), "); the step starts over");
      RestartStep();
      return absl::OutOfRangeError(why);
    }
  }
  if (config_.algorithm.clip_global_norm > 0.0) {
    double squared = 0.0;
    for (int p : all) squared += static_cast<double>(Block(g, p).squaredNorm());
    const double norm = std::sqrt(squared);
    if (norm > config_.algorithm.clip_global_norm) {
      const T scale = static_cast<T>(config_.algorithm.clip_global_norm / norm);
      for (int p : all) {
        Block(g, p) *= scale;
        max_abs[p] = -1.0;  // measured again by StepStaysFinite
      }
    }
  }
  // Refused like a non-finite direction: a step whose result would not be
  // finite (x - lr * g overflowing, or the moments) keeps x and the moments.
  ConstVecMap<T> x = base.template as<T>();
  const bool base_is_x = &base == x_.get();
  for (int p : all) {
    const PlayerLayout& player = layout_.players()[p];
    if (!optimizers_[p].StepStaysFinite(g.segment(player.offset, player.size),
                                        x.segment(player.offset, player.size),
                                        max_abs[p],
                                        base_is_x ? x_max_abs_[p] : -1.0)) {
      const std::string why = absl::StrCat(
          "the step of player '", player.name, "' at step ", step_,
          " would make its parameters or optimizer moments overflow ",
          DTypeName(config_.dtype),
          " (finite direction, too large a step "
          "for the values); the step starts over");
      RestartStep();
      return absl::OutOfRangeError(why);
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status TypedAlgorithm<T>::ApplyDirection(Eigen::Ref<Vec<T>> g,
                                               const std::vector<int>& players,
                                               FlatVector* target,
                                               bool advance_state,
                                               double max_abs_g) {
  const std::vector<int> all = players.empty() ? AllPlayers() : players;
  if (absl::Status s =
          CheckDirection(g, all, target != nullptr ? *target : *x_, max_abs_g);
      !s.ok()) {
    return s;
  }
  VecMap<T> x = (target != nullptr ? *target : MutableX()).template as<T>();
  for (int p : all) {
    const PlayerLayout& player = layout_.players()[p];
    // Every update of step t (extragradient's two half steps, AltGD's
    // stages) uses step t's scheduled learning rate.
    optimizers_[p].set_learning_rate(LearningRate(p));
    // The new max |x_p| for the next step's check, when x is written.
    optimizers_[p].Step(g.segment(player.offset, player.size),
                        x.segment(player.offset, player.size), advance_state,
                        target == nullptr ? &x_max_abs_[p] : nullptr);
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status TypedAlgorithm<T>::ApplyOptimisticUpdate(Vec<T>& g,
                                                      Vec<T>& previous) {
  const std::vector<int> all = AllPlayers();
  if (absl::Status s = CheckDirection(g, all, *x_); !s.ok()) return s;
  if (previous.size() != g.size()) previous = Vec<T>::Zero(g.size());
  VecMap<T> x = MutableX().template as<T>();
  for (int p : all) {
    const PlayerLayout& player = layout_.players()[p];
    optimizers_[p].set_learning_rate(LearningRate(p));
    update_.resize(player.size);
    optimizers_[p].NormalizedUpdate(g.segment(player.offset, player.size),
                                    update_);
    auto block = x.segment(player.offset, player.size);
    auto last = previous.segment(player.offset, player.size);
    const T lr = static_cast<T>(LearningRate(p));
    block -= T(2) * lr * update_ - lr * last;
    const double c = config_.players[p].optimizer.clip_value;
    if (c > 0.0) {
      block = block.cwiseMax(static_cast<T>(-c)).cwiseMin(static_cast<T>(c));
    }
    last = update_;
  }
  return absl::OkStatus();
}

template <typename T>
double TypedAlgorithm<T>::LearningRate(int player) const {
  const OptimizerConfig& o = config_.players[player].optimizer;
  return LearningRateAt(o.learning_rate, o.schedule, step_);
}

template <typename T>
std::shared_ptr<const PackedVector> TypedAlgorithm<T>::HandOutPackedProbe(
    size_t k) {
  if (packed_probes_[k] == nullptr) {
    return k < sent_packed_probes_.size() ? sent_packed_probes_[k].lock()
                                          : nullptr;
  }
  sent_packed_probes_.resize(packed_probes_.size());
  sent_packed_probes_[k] = packed_probes_[k];
  return std::move(packed_probes_[k]);  // null here from now on
}

template <typename T>
void TypedAlgorithm<T>::RestartStep() {
  phase_index_ = 0;
  if (extrapolating_) {  // evaluate at x again
    point_ = x_;
    extrapolating_ = false;
    ++version_;
  }
}

template <typename T>
void TypedAlgorithm<T>::NextPhase() {
  ++phase_index_;
  if (phase_index_ == static_cast<int>(plan_.size())) {
    phase_index_ = 0;
    ++step_;
    const AlgorithmConfig& a = config_.algorithm;
    if (a.lookahead_k > 0 && step_ % a.lookahead_k == 0) {
      VecMap<T> x = MutableX().template as<T>();
      slow_ += static_cast<T>(a.lookahead_alpha) * (x - slow_);
      x = slow_;
    }
  }
  if (extrapolating_ && phase_index_ == 0) {
    point_ = x_;  // extrapolation over: evaluate at x again
    extrapolating_ = false;
    ++version_;
  } else if (!extrapolating_ && x_dirty_) {
    ++version_;
  }
  x_dirty_ = false;
}

template <typename T>
void TypedAlgorithm<T>::CompleteStep() {
  phase_index_ = static_cast<int>(plan_.size()) - 1;
  NextPhase();
}

template <typename T>
void TypedAlgorithm<T>::RecordGradientNorms(const std::vector<int>& players) {
  const T* xi = shared_mean_ != nullptr ? shared_mean_->template as<T>().data()
                                        : xi_.data();
  for (int p : players) {
    const PlayerLayout& player = layout_.players()[p];
    stats_.xi_norm[p] = std::sqrt(SquaredNorm(xi + player.offset, player.size));
  }
}

template <typename T>
void TypedAlgorithm<T>::AggregateGradient(const SampleSet& samples,
                                          Vec<T>& mean) {
  MeanOf<T>(samples, mean);
}

template <typename T>
absl::Status TypedAlgorithm<T>::CompleteGradient(const SampleSet& samples) {
  if (phase().kind != PhaseSpec::Kind::kGradient) {
    return absl::FailedPreconditionError("not in a gradient phase");
  }
  if (samples.empty()) {
    return absl::FailedPreconditionError("a gradient phase needs a sample");
  }
  shared_mean_.reset();  // AggregateGradient may share it again
  packed_probes_.clear();
  sent_packed_probes_.clear();
  AggregateGradient(samples, xi_);
  stats_.gradient_samples = static_cast<int>(samples.size());
  stats_.product_samples = 0;
  RecordGradientNorms(phase().players);
  // Packed samples reach only algorithms that read them in
  // AggregateGradient alone (TakesPackedSamples): OnGradient gets none.
  return OnGradient(samples.has_packed() ? absl::Span<const FlatVector* const>()
                                         : samples.dense());
}

template <typename T>
absl::Status TypedAlgorithm<T>::CompleteProducts(const SampleSet& vjp,
                                                 const SampleSet& jvp) {
  if (phase().kind != PhaseSpec::Kind::kProducts) {
    return absl::FailedPreconditionError("not in a products phase");
  }
  if ((phase().vjp && vjp.empty()) || (phase().jvp && jvp.empty()) ||
      (phase().vjp && phase().jvp && vjp.size() != jvp.size())) {
    return absl::FailedPreconditionError(
        "a products phase needs at least one answered sample of each "
        "requested product");
  }
  stats_.product_samples =
      static_cast<int>(phase().vjp ? vjp.size() : jvp.size());
  return OnProducts(vjp, jvp);
}

template class TypedAlgorithm<float>;
template class TypedAlgorithm<double>;

}  // namespace gameopt
