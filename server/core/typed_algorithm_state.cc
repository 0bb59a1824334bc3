// TypedAlgorithm's checkpoint state (Algorithm::ExportState/ImportState).
//
// Vector names: "x" (the parameters), "point" (the extrapolated point, while
// an extragradient step evaluates there), "xi" and "probe" (repeated, in
// order; products phases only: the mean gradient and the probes its products
// answer), "slow" (lookahead), "opt.<player>.slot" (repeated, in the order
// of BaseOptimizer::slots()), and whatever ExportExtra adds ("previous":
// optimistic; "adaptive_gamma", float64: ConOpt's adaptive gamma). Scalars:
// "opt.<player>.steps".
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {
namespace {

template <typename T>
std::shared_ptr<const FlatVector> ToFlat(const Eigen::Ref<const Vec<T>>& v,
                                         DType dtype) {
  auto out = std::make_shared<FlatVector>(dtype, v.size());
  out->template as<T>() = v;
  return out;
}

std::vector<const FlatVector*> FindAll(const AlgorithmState& state,
                                       const std::string& name) {
  std::vector<const FlatVector*> out;
  for (const NamedVector& v : state.vectors) {
    if (v.name == name) out.push_back(v.value.get());
  }
  return out;
}

// The vector `name` when present once with `size` coordinates of `dtype`;
// null when absent; DataLoss otherwise.
absl::StatusOr<const FlatVector*> FindOne(const AlgorithmState& state,
                                          const std::string& name, DType dtype,
                                          int64_t size) {
  const std::vector<const FlatVector*> found = FindAll(state, name);
  if (found.empty()) return nullptr;
  if (found.size() > 1) {
    return absl::DataLossError(absl::StrCat(
        "state vector '", name, "' appears ", found.size(), " times"));
  }
  if (found[0] == nullptr || found[0]->dtype() != dtype ||
      found[0]->size() != size) {
    return absl::DataLossError(absl::StrCat(
        "state vector '", name, "' does not have the session's dtype and ",
        size, " coordinates"));
  }
  return found[0];
}

}  // namespace

template <typename T>
AlgorithmState TypedAlgorithm<T>::ExportState() const {
  const DType dtype = config_.dtype;
  AlgorithmState state;
  state.step = step_;
  state.phase = phase_index_;
  state.point_version = version_;
  state.vectors.push_back({"x", x_});
  // Shared, as x: an extragradient step writes a fresh buffer when the
  // extrapolated point is still held (MakeExclusive).
  if (extrapolating_) state.vectors.push_back({"point", point_});
  if (phase().kind == PhaseSpec::Kind::kProducts) {
    // The probes, each where it is held: a buffer (shared: the next
    // gradient phase writes fresh buffers when a probe is still held,
    // MakeExclusive), a lazy probe (formed now; the pooled one once for
    // all its entries, as stored), or a packed sample's bytes, only
    // weakly once handed out (HandOutPackedProbe) and maybe gone.
    std::vector<std::shared_ptr<const FlatVector>> probes;
    bool gone = false;
    for (size_t k = 0; k < probes_.size(); ++k) {
      std::shared_ptr<const FlatVector> probe = probes_[k];
      if (!lazy_probes_.empty()) {
        probe = k > 0 && lazy_probes_[k] == lazy_probes_[k - 1]
                    ? probes.back()
                    : lazy_probes_[k]->Materialize();
      } else if (!packed_probes_.empty()) {
        std::shared_ptr<const PackedVector> packed = packed_probes_[k];
        if (packed == nullptr && k < sent_packed_probes_.size()) {
          packed = sent_packed_probes_[k].lock();
        }
        // Encoded in a compressed format, a probe's values are its
        // rounded ones: not stored (int8 blocks would not encode to the
        // same bytes again), as if gone.
        if (packed != nullptr && packed->compression() == Compression::kNone) {
          auto values =
              std::make_shared<FlatVector>(dtype, layout_.dimension());
          packed->Decode(0, values->size(), values->template as<T>().data());
          probe = std::move(values);
        }
      }
      gone = gone || probe == nullptr;
      probes.push_back(std::move(probe));
    }
    if (gone) {
      // Some probe is gone or not stored: the step's start (algorithms that
      // form packed probes reach the products phase from phase 0 with nothing
      // else changed).
      state.phase = 0;
    } else {
      // Shared when a probe holds the mean (ShareMeanWithProbe).
      if (shared_mean_ != nullptr) {
        state.vectors.push_back({"xi", shared_mean_});
      } else {
        state.vectors.push_back({"xi", ToFlat<T>(xi_, dtype)});
      }
      for (auto& probe : probes) state.vectors.push_back({"probe", probe});
    }
  }
  if (config_.algorithm.lookahead_k > 0) {
    state.vectors.push_back({"slow", ToFlat<T>(slow_, dtype)});
  }
  for (size_t p = 0; p < optimizers_.size(); ++p) {
    const std::string prefix = absl::StrCat("opt.", p);
    state.scalars.push_back({prefix + ".steps", optimizers_[p].steps()});
    for (const Vec<T>* slot : optimizers_[p].slots()) {
      state.vectors.push_back({prefix + ".slot", ToFlat<T>(*slot, dtype)});
    }
  }
  ExportExtra(state);
  return state;
}

template <typename T>
absl::Status TypedAlgorithm<T>::ImportState(const AlgorithmState& state) {
  const DType dtype = config_.dtype;
  const int64_t d = layout_.dimension();
  if (state.step < 0 || state.phase < 0 ||
      state.phase >= static_cast<int>(plan_.size()) ||
      state.point_version < 1) {
    return absl::DataLossError(
        absl::StrCat("step ", state.step, " phase ", state.phase, " version ",
                     state.point_version, " do not fit a plan of ",
                     plan_.size(), " phase(s)"));
  }
  absl::StatusOr<const FlatVector*> x = FindOne(state, "x", dtype, d);
  if (!x.ok()) return x.status();
  if (*x == nullptr) return absl::DataLossError("no state vector 'x'");
  x_ = std::make_shared<FlatVector>(**x);
  point_ = x_;
  std::fill(x_max_abs_.begin(), x_max_abs_.end(), -1.0);
  extrapolating_ = false;
  absl::StatusOr<const FlatVector*> point = FindOne(state, "point", dtype, d);
  if (!point.ok()) return point.status();
  if (*point != nullptr) {
    point_ = std::make_shared<FlatVector>(**point);
    extrapolating_ = true;
  }
  step_ = state.step;
  phase_index_ = state.phase;
  probes_.clear();
  packed_probes_.clear();
  sent_packed_probes_.clear();
  lazy_probes_.clear();
  shared_mean_.reset();
  if (phase().kind == PhaseSpec::Kind::kProducts) {
    absl::StatusOr<const FlatVector*> xi = FindOne(state, "xi", dtype, d);
    if (!xi.ok()) return xi.status();
    if (*xi == nullptr) return absl::DataLossError("no state vector 'xi'");
    xi_ = (*xi)->template as<T>();
    for (const FlatVector* probe : FindAll(state, "probe")) {
      if (probe->dtype() != dtype || probe->size() != d) {
        return absl::DataLossError("a state vector 'probe' has a wrong size");
      }
      probes_.push_back(std::make_shared<FlatVector>(*probe));
    }
  }
  if (config_.algorithm.lookahead_k > 0) {
    absl::StatusOr<const FlatVector*> slow = FindOne(state, "slow", dtype, d);
    if (!slow.ok()) return slow.status();
    if (*slow == nullptr) return absl::DataLossError("no state vector 'slow'");
    slow_ = (*slow)->template as<T>();
  }
  for (size_t p = 0; p < optimizers_.size(); ++p) {
    const std::string prefix = absl::StrCat("opt.", p);
    int64_t steps = -1;
    for (const NamedScalar& s : state.scalars) {
      if (s.name == prefix + ".steps") steps = s.value;
    }
    std::vector<Vec<T>> slots;
    for (const FlatVector* slot : FindAll(state, prefix + ".slot")) {
      if (slot->dtype() != dtype) {
        return absl::DataLossError(absl::StrCat(prefix, ".slot: wrong dtype"));
      }
      slots.push_back(slot->template as<T>());
    }
    absl::Status status = optimizers_[p].RestoreState(steps, slots);
    if (!status.ok()) {
      return absl::DataLossError(absl::StrCat(prefix, ": ", status.message()));
    }
  }
  absl::Status status = ImportExtra(state);
  if (!status.ok()) return status;
  version_ = state.point_version;
  x_dirty_ = false;
  return absl::OkStatus();
}

template <typename T>
void TypedAlgorithm<T>::ExportVector(const Vec<T>& v, const std::string& name,
                                     AlgorithmState& state) const {
  if (v.size() == 0) return;
  state.vectors.push_back({name, ToFlat<T>(v, config_.dtype)});
}

template <typename T>
absl::Status TypedAlgorithm<T>::ImportVector(const AlgorithmState& state,
                                             const std::string& name,
                                             Vec<T>& out, bool required) const {
  out.resize(0);
  const int64_t d = layout_.dimension();
  for (const NamedVector& v : state.vectors) {
    if (v.name != name) continue;
    if (v.value == nullptr || v.value->dtype() != config_.dtype ||
        v.value->size() != d) {
      return absl::DataLossError(absl::StrCat(
          "state vector '", name, "' does not have the session's dtype and ", d,
          " coordinates"));
    }
    out = v.value->template as<T>();
    return absl::OkStatus();
  }
  if (!required) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "no state vector '", name, "' in ", AlgorithmName(config_.algorithm.kind),
      "'s phase ", phase().index, " (", phase().label, ")"));
}

template void TypedAlgorithm<float>::ExportVector(const Vec<float>&,
                                                  const std::string&,
                                                  AlgorithmState&) const;
template void TypedAlgorithm<double>::ExportVector(const Vec<double>&,
                                                   const std::string&,
                                                   AlgorithmState&) const;
template absl::Status TypedAlgorithm<float>::ImportVector(const AlgorithmState&,
                                                          const std::string&,
                                                          Vec<float>&,
                                                          bool) const;
template absl::Status TypedAlgorithm<double>::ImportVector(
    const AlgorithmState&, const std::string&, Vec<double>&, bool) const;
template AlgorithmState TypedAlgorithm<float>::ExportState() const;
template AlgorithmState TypedAlgorithm<double>::ExportState() const;
template absl::Status TypedAlgorithm<float>::ImportState(
    const AlgorithmState& state);
template absl::Status TypedAlgorithm<double>::ImportState(
    const AlgorithmState& state);

}  // namespace gameopt
