// Competitive<T>'s checkpoint state (cgd_internal.h). Float64 vectors:
//   "cgd.warm"        z of the last solve (the warm start), after a step
//   "acgd.v"          ACGD's mean squared gradients, all coordinates
// and inside a step (a products phase):
//   "cgd.step"        {stage, products rounds so far}
//   "cgd.h"           the step's step sizes, all coordinates
//   "cgd.b"           the right-hand side (after the "cgd: rhs" round)
//   "acgd.v_pending"  ACGD's v including this step's gradient
//   "cgd.krylov"      the solver (KrylovSolver::Export), while it runs
// The step's mean gradient and probes are TypedAlgorithm's "xi", "probe".
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/cgd_internal.h"

namespace gameopt {
namespace {

std::shared_ptr<const FlatVector> Float64(const Eigen::VectorXd& v) {
  auto out = std::make_shared<FlatVector>(DType::kFloat64, v.size());
  out->as<double>() = v;
  return out;
}

// The float64 vector `name` (null when absent), DataLoss when it is not
// float64 or (size >= 0) has another size.
absl::StatusOr<const FlatVector*> Find(const AlgorithmState& state,
                                       const std::string& name, int64_t size) {
  for (const NamedVector& v : state.vectors) {
    if (v.name != name) continue;
    if (v.value == nullptr || v.value->dtype() != DType::kFloat64 ||
        (size >= 0 && v.value->size() != size)) {
      return absl::DataLossError(absl::StrCat(
          "state vector '", name, "' is not float64",
          size >= 0 ? absl::StrCat(" with ", size, " coordinates") : ""));
    }
    return v.value.get();
  }
  return nullptr;
}

}  // namespace

template <typename T>
void Competitive<T>::ExportExtra(AlgorithmState& state) const {
  if (warm_.size() > 0) state.vectors.push_back({"cgd.warm", Float64(warm_)});
  if (adaptive_) state.vectors.push_back({"acgd.v", Float64(sq_avg_)});
  if (this->phase().kind != PhaseSpec::Kind::kProducts) return;
  state.vectors.push_back(
      {"cgd.step", Float64(Eigen::Vector2d(static_cast<double>(stage_),
                                           static_cast<double>(rounds_)))});
  state.vectors.push_back({"cgd.h", Float64(h_)});
  if (stage_ != Stage::kRhs) state.vectors.push_back({"cgd.b", Float64(b_)});
  if (adaptive_) {
    state.vectors.push_back({"acgd.v_pending", Float64(sq_pending_)});
  }
  if (solver_) {
    const std::vector<double> values = solver_->Export();
    state.vectors.push_back(
        {"cgd.krylov", Float64(Eigen::Map<const Eigen::VectorXd>(
                           values.data(), values.size()))});
  }
}

template <typename T>
absl::Status Competitive<T>::ImportExtra(const AlgorithmState& state) {
  const int64_t d = this->layout().dimension();
  const int64_t ns = this->layout().players()[s_].size;
  solver_.reset();
  warm_.resize(0);
  absl::StatusOr<const FlatVector*> found = Find(state, "cgd.warm", ns);
  if (!found.ok()) return found.status();
  if (*found != nullptr) warm_ = (*found)->as<double>();
  if (adaptive_) {
    found = Find(state, "acgd.v", d);
    if (!found.ok()) return found.status();
    if (*found == nullptr)
      return absl::DataLossError("no state vector 'acgd.v'");
    sq_avg_ = (*found)->as<double>();
  }
  if (this->phase().kind != PhaseSpec::Kind::kProducts) return absl::OkStatus();
  // Inside a step.
  found = Find(state, "cgd.step", 2);
  if (!found.ok()) return found.status();
  if (*found == nullptr) {
    return absl::DataLossError("no state vector 'cgd.step' inside a step");
  }
  const Eigen::VectorXd step = (*found)->as<double>();
  if (!(step(0) >= static_cast<double>(Stage::kRhs) &&
        step(0) <= static_cast<double>(Stage::kResponse) &&
        step(1) == this->phase().index)) {
    return absl::DataLossError(
        absl::StrCat("state vector 'cgd.step' {", step(0), ", ", step(1),
                     "} names no stage of phase ", this->phase().index));
  }
  stage_ = static_cast<Stage>(static_cast<int>(step(0)));
  rounds_ = static_cast<int>(step(1));
  num_samples_ = static_cast<int>(this->mutable_probes().size());
  xi_ = this->mean_gradient().template cast<double>();
  found = Find(state, "cgd.h", d);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return absl::DataLossError("no state vector 'cgd.h'");
  h_ = (*found)->as<double>();
  if (stage_ != Stage::kRhs) {
    found = Find(state, "cgd.b", ns);
    if (!found.ok()) return found.status();
    if (*found == nullptr)
      return absl::DataLossError("no state vector 'cgd.b'");
    b_ = (*found)->as<double>();
  }
  if (adaptive_) {
    found = Find(state, "acgd.v_pending", d);
    if (!found.ok()) return found.status();
    if (*found == nullptr) {
      return absl::DataLossError("no state vector 'acgd.v_pending'");
    }
    sq_pending_ = (*found)->as<double>();
  }
  const bool solving = stage_ == Stage::kInner || stage_ == Stage::kOuter ||
                       stage_ == Stage::kResponse;
  found = Find(state, "cgd.krylov", -1);
  if (!found.ok()) return found.status();
  if (solving != (*found != nullptr)) {
    return absl::DataLossError(
        "state vector 'cgd.krylov' does not match the step's stage");
  }
  if (solving) {
    const auto values = (*found)->as<double>();
    KrylovSolver solver(krylov_, 0.0, Eigen::VectorXd(), Eigen::VectorXd());
    absl::Status status =
        KrylovSolver::Import(absl::MakeConstSpan(values.data(), values.size()),
                             krylov_, static_cast<int>(ns), &solver);
    if (!status.ok()) return absl::DataLossError(status.message());
    solver_.emplace(std::move(solver));
  }
  if (stage_ == Stage::kWarmInner || stage_ == Stage::kWarmOuter) {
    if (warm_.size() != ns) {
      return absl::DataLossError("a warm-start stage without 'cgd.warm'");
    }
  }
  this->plan()[this->phase().index].label = StageLabel(stage_);
  return absl::OkStatus();
}

template void Competitive<float>::ExportExtra(AlgorithmState&) const;
template void Competitive<double>::ExportExtra(AlgorithmState&) const;
template absl::Status Competitive<float>::ImportExtra(const AlgorithmState&);
template absl::Status Competitive<double>::ImportExtra(const AlgorithmState&);

}  // namespace gameopt
