#include "server/core/spectrum_rounds.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gameopt {

SpectrumRounds::SpectrumRounds(std::unique_ptr<Algorithm> inner,
                               const SessionConfig& config)
    : inner_(std::move(inner)),
      dtype_(config.dtype),
      schedule_(config.spectrum),
      max_steps_(config.max_steps),
      seed_(config.seed),
      algorithm_(config.algorithm.kind) {
  if (algorithm_ == AlgorithmKind::kConOpt) {
    c1_ = config.algorithm.gamma;
  } else if (algorithm_ == AlgorithmKind::kSga) {
    c1_ = config.algorithm.lambda0 / 2;
    c2_ = -config.algorithm.lambda0 / 2;
  }
  if (schedule_.every_steps > 0) {
    if (schedule_.requests.empty()) schedule_.requests.emplace_back();
    EnqueueScheduled();
    StartIfIdle();
  }
}

absl::Status SpectrumRounds::ImportState(const AlgorithmState& state) {
  absl::Status status = inner_->ImportState(state);
  if (status.ok() && active_ && inner_->phase().index != 0) {
    queue_.push_front(*std::move(active_));
    active_.reset();
    driver_.reset();
  }
  return status;
}

const PhaseSpec& SpectrumRounds::phase() const {
  return active_ ? phase_ : inner_->phase();
}

const std::vector<std::shared_ptr<FlatVector>>& SpectrumRounds::probes() const {
  return active_ ? probes_ : inner_->probes();
}

std::string SpectrumRounds::Describe(SpectrumOperatorKind op) const {
  if (op == SpectrumOperatorKind::kGameJacobian) return "J";
  if (c1_ == 0 && c2_ == 0) {
    return absl::StrCat("J (", AlgorithmName(algorithm_), " follows xi)");
  }
  if (c2_ == 0) return absl::StrCat("J + ", c1_, " J^T J");
  return absl::StrCat("J + ", c1_, " J^T J + ", c2_, " J J");
}

void SpectrumRounds::Enqueue(uint64_t id, const SpectrumRequest& request,
                             SpectrumCallback done) {
  queue_.push_back(Job{id, request, std::move(done)});
}

bool SpectrumRounds::StartIfIdle() {
  if (active_ || queue_.empty() || inner_->phase().index != 0) return false;
  active_ = std::move(queue_.front());
  queue_.pop_front();
  // ConOpt's gamma may adapt (adaptive_gamma.h): the field of this step's.
  if (algorithm_ == AlgorithmKind::kConOpt) c1_ = inner_->stats().gamma;
  const SpectrumRequest& request = active_->request;
  SpectrumOptions options;
  options.k = request.k;
  options.max_applications = request.max_applications;
  options.tol = request.tol;
  options.smallest_real = request.smallest_real;
  options.seed = seed_ + static_cast<uint64_t>(inner_->step()) + 1;
  absl::StatusOr<ArnoldiDriver> driver =
      ArnoldiDriver::Create(inner_->layout().dimension(), options);
  if (!driver.ok()) {
    Finish(driver.status());
    return StartIfIdle();
  }
  driver_.emplace(*std::move(driver));
  rounds_ = 0;
  if (samples_step_ == inner_->step()) {
    // This step's minibatches are still held; their rotation round may
    // have been cut short by a cancelled estimate.
    SetStage(rotation_step_ == samples_step_ ? Stage::kJv : Stage::kRotation);
  } else {
    SetStage(Stage::kGradient);
  }
  return true;
}

void SpectrumRounds::SetStage(Stage stage) {
  stage_ = stage;
  phase_ = PhaseSpec{};
  // Numbered in the order the rounds run, below the step's own phases
  // (kFirstDiagnosticPhase in the header).
  if (inner_->step() != boundary_step_) {
    boundary_step_ = inner_->step();
    boundary_rounds_ = 0;
  }
  phase_.index =
      boundary_rounds_ < -int64_t{kFirstDiagnosticPhase} - 1
          ? kFirstDiagnosticPhase + static_cast<int>(boundary_rounds_)
          : -1;
  ++boundary_rounds_;
  switch (stage) {
    case Stage::kGradient:
      phase_.kind = PhaseSpec::Kind::kGradient;
      phase_.label = "spectrum: gradient";
      for (int p = 0; p < inner_->layout().num_players(); ++p) {
        phase_.players.push_back(p);
      }
      break;
    case Stage::kRotation:
      phase_.kind = PhaseSpec::Kind::kProducts;
      phase_.label = "spectrum: rotation";
      phase_.vjp = true;
      phase_.jvp = true;
      SetProbes(xi_);
      break;
    case Stage::kJv:
      phase_.kind = PhaseSpec::Kind::kProducts;
      phase_.label = "spectrum: J v";
      phase_.jvp = true;
      SetProbes(driver_->request());
      break;
    case Stage::kField:
      phase_.kind = PhaseSpec::Kind::kProducts;
      phase_.label = "spectrum: field";
      phase_.vjp = c1_ != 0;
      phase_.jvp = c2_ != 0;
      SetProbes(jv_);
      break;
  }
}

void SpectrumRounds::SetProbes(const Eigen::VectorXd& v) {
  auto probe = std::make_shared<FlatVector>(dtype_, v.size());
  if (dtype_ == DType::kFloat32) {
    probe->as<float>() = v.cast<float>();
  } else {
    probe->as<double>() = v;
  }
  probes_.assign(samples_, probe);
}

absl::Status SpectrumRounds::CompleteGradient(const SampleSet& samples) {
  if (!active_) {
    const int64_t before = inner_->step();
    samples_step_ = -1;  // the session's sample holders change
    absl::Status status = inner_->CompleteGradient(samples);
    if (status.ok()) AfterInnerPhase(before);
    return status;
  }
  ++rounds_;
  samples_ = static_cast<int>(samples.size());
  samples_step_ = inner_->step();
  xi_ = Eigen::VectorXd::Zero(inner_->layout().dimension());
  for (const FlatVector* sample : samples.dense()) {
    if (dtype_ == DType::kFloat32) {
      xi_ += sample->as<float>().cast<double>();
    } else {
      xi_ += sample->as<double>();
    }
  }
  xi_ /= samples_;
  SetStage(Stage::kRotation);
  return absl::OkStatus();
}

absl::Status SpectrumRounds::CompleteProducts(const SampleSet& vjp,
                                              const SampleSet& jvp) {
  if (!active_) {
    const int64_t before = inner_->step();
    absl::Status status = inner_->CompleteProducts(vjp, jvp);
    if (status.ok()) AfterInnerPhase(before);
    return status;
  }
  ++rounds_;
  if (stage_ == Stage::kRotation) {
    absl::StatusOr<Eigen::VectorXd> jt_xi = Mean(vjp.dense());
    if (!jt_xi.ok()) return Abort(jt_xi.status());
    absl::StatusOr<Eigen::VectorXd> j_xi = Mean(jvp.dense());
    if (!j_xi.ok()) return Abort(j_xi.status());
    rotation_ = StationarityDiagnostics(xi_.norm(), jt_xi->norm());
    AddRotationIndex((*j_xi + *jt_xi).norm(), (*jt_xi - *j_xi).norm(),
                     rotation_);
    rotation_step_ = samples_step_;
    SetStage(Stage::kJv);
    return absl::OkStatus();
  }
  if (stage_ == Stage::kJv) {
    absl::StatusOr<Eigen::VectorXd> jv = Mean(jvp.dense());
    if (!jv.ok()) return Abort(jv.status());
    if (active_->request.op == SpectrumOperatorKind::kGameJacobian ||
        (c1_ == 0 && c2_ == 0)) {
      Apply(*jv);
    } else {
      jv_ = *std::move(jv);
      SetStage(Stage::kField);
    }
    return absl::OkStatus();
  }
  Eigen::VectorXd product = jv_;
  if (c1_ != 0) {
    absl::StatusOr<Eigen::VectorXd> jtu = Mean(vjp.dense());
    if (!jtu.ok()) return Abort(jtu.status());
    product += c1_ * *jtu;
  }
  if (c2_ != 0) {
    absl::StatusOr<Eigen::VectorXd> ju = Mean(jvp.dense());
    if (!ju.ok()) return Abort(ju.status());
    product += c2_ * *ju;
  }
  Apply(product);
  return absl::OkStatus();
}

absl::StatusOr<Eigen::VectorXd> SpectrumRounds::Mean(
    absl::Span<const FlatVector* const> answers) const {
  if (static_cast<int>(answers.size()) != samples_) {
    return absl::AbortedError(absl::StrCat(
        "the spectrum estimate at step ", inner_->step(), " got ",
        answers.size(), " product(s) for ", samples_,
        " sample(s): a worker left or missed a deadline, so the averaged "
        "Jacobian changed; request the estimate again"));
  }
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(inner_->layout().dimension());
  for (const FlatVector* answer : answers) {
    if (dtype_ == DType::kFloat32) {
      sum += answer->as<float>().cast<double>();
    } else {
      sum += answer->as<double>();
    }
  }
  return Eigen::VectorXd(sum / samples_);
}

absl::Status SpectrumRounds::Abort(absl::Status why) {
  samples_step_ = -1;  // the held samples no longer match
  Finish(std::move(why));
  return absl::OkStatus();
}

void SpectrumRounds::Apply(const Eigen::VectorXd& product) {
  absl::Status status = driver_->Provide(product);
  if (!status.ok()) return Finish(status);
  if (!driver_->done()) return SetStage(Stage::kJv);
  SpectrumResult result;
  result.step = inner_->step();
  result.op = active_->request.op;
  result.description = Describe(result.op);
  result.estimate = driver_->Result();
  result.rounds = rounds_;
  result.samples = samples_;
  result.diagnostics = rotation_;
  Finish(std::move(result));
}

void SpectrumRounds::Finish(absl::StatusOr<SpectrumResult> result) {
  if (result.ok()) {
    history_.push_back(*result);
    if (result->op == SpectrumOperatorKind::kAlgorithmField) {
      inner_->ObserveFieldSpectrum(result->step, result->estimate);
    }
  }
  if (active_) {
    finished_.emplace_back(std::move(active_->done), std::move(result));
  }
  active_.reset();
  driver_.reset();
  StartIfIdle();
}

void SpectrumRounds::AfterInnerPhase(int64_t step_before) {
  const int64_t step = inner_->step();
  if (step == step_before) return;  // mid-step
  const int64_t every = schedule_.every_steps;
  if (every > 0 && (step % every == 0 || step == max_steps_)) {
    EnqueueScheduled();
  }
  StartIfIdle();
}

void SpectrumRounds::EnqueueScheduled() {
  for (const SpectrumRequest& request : schedule_.requests) {
    Enqueue(0, request, {});
  }
}

SpectrumCallback SpectrumRounds::Cancel(uint64_t id, bool* stopped) {
  if (stopped != nullptr) *stopped = false;
  if (active_ && active_->id == id && active_->done) {
    // Nobody waits for it any more: its remaining rounds would only delay
    // the training.
    SpectrumCallback done = std::move(active_->done);
    active_.reset();
    driver_.reset();
    StartIfIdle();
    if (stopped != nullptr) *stopped = true;
    return done;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->id == id && it->done) {
      SpectrumCallback done = std::move(it->done);
      queue_.erase(it);
      return done;
    }
  }
  return nullptr;
}

std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
SpectrumRounds::TakeFinished() {
  return std::exchange(finished_, {});
}

std::vector<SpectrumCallback> SpectrumRounds::TakeAllCallbacks() {
  std::vector<SpectrumCallback> out;
  if (active_ && active_->done) out.push_back(std::move(active_->done));
  for (Job& job : queue_) {
    if (job.done) out.push_back(std::move(job.done));
  }
  return out;
}

}  // namespace gameopt
