#include "server/core/session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/liveness.h"  // kCancelledReason
#include "server/core/session_internal.h"

namespace gameopt {

using session_internal::StateName;

namespace {

// SplitMix64 finalizer: a cheap, well-mixed seed per (session, round,
// worker).
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Create(std::string id,
                                                         SessionConfig config,
                                                         const Clock* clock) {
  absl::StatusOr<std::unique_ptr<Algorithm>> algorithm =
      Algorithm::Create(config);
  if (!algorithm.ok()) return algorithm.status();
  auto rounds = std::make_unique<SpectrumRounds>(*std::move(algorithm), config);
  return std::unique_ptr<Session>(
      new Session(std::move(id), std::move(config), clock, std::move(rounds)));
}

Session::Session(std::string id, SessionConfig config, const Clock* clock,
                 std::unique_ptr<SpectrumRounds> algorithm)
    : id_(std::move(id)),
      config_(std::make_shared<const SessionConfig>(std::move(config))),
      clock_(clock),
      algorithm_(std::move(algorithm)),
      timer_(clock->Now()) {
  absl::MutexLock lock(&mu_);
  deadline_ = config_->phase_deadline == absl::InfiniteDuration()
                  ? absl::InfiniteFuture()
                  : clock_->Now() + config_->phase_deadline;
}

Session::~Session() = default;

void Session::Log(const std::string& event) const {
  if (log_) log_(absl::StrCat("session ", id_, ": ", event));
}

bool Session::Done() const {
  return config_->max_steps > 0 && algorithm_->step() >= config_->max_steps &&
         !algorithm_->active();
}

int Session::ActiveWorkers() const {
  int n = 0;
  for (const auto& [id, w] : workers_) {
    n += w->state == Worker::State::kActive;
  }
  return n;
}

std::string Session::Where() const {
  const PhaseSpec& phase = algorithm_->phase();
  return absl::StrCat("step ", algorithm_->step(), " phase ", phase.index, " (",
                      phase.label, ", round ", round_, ")");
}

bool Session::HasRole(const Worker& worker) const {
  if (worker.state == Worker::State::kLeft) return false;
  if (std::binary_search(submitted_.begin(), submitted_.end(), worker.id)) {
    return false;
  }
  if (algorithm_->phase().kind == PhaseSpec::Kind::kGradient) return true;
  return sample_holders_.count(worker.id) > 0 && worker.num_samples > 0;
}

Task Session::MakeTask(const Worker& worker) const {
  const PhaseSpec& phase = algorithm_->phase();
  Task task;
  task.worker_id = worker.id;
  task.step = algorithm_->step();
  task.round = round_;
  if (Done()) {
    task = MakeDoneTask();
    task.worker_id = worker.id;
    return task;
  }
  task.phase = phase.index;
  task.phase_label = phase.label;
  task.params = algorithm_->point();
  task.params_version = algorithm_->point_version();
  task.seed = Mix(Mix(config_->seed, static_cast<uint64_t>(round_)),
                  static_cast<uint64_t>(worker.id));
  if (phase.kind == PhaseSpec::Kind::kGradient) {
    task.kind = Task::Kind::kGradient;
    task.players = phase.players;
    task.num_samples = config_->samples_per_worker;
    if (FusedRound()) {
      task.fused_vjp = true;
      task.fused_jvp = config_->algorithm.kind == AlgorithmKind::kSga;
    }
  } else {
    task.kind = Task::Kind::kProducts;
    task.vjp = phase.vjp;
    task.jvp = phase.jvp;
    const int first = sample_holders_.at(worker.id);
    for (int k = 0; k < worker.num_samples; ++k) {
      task.probes.push_back(algorithm_->probes()[first + k]);
    }
  }
  return task;
}

Task Session::MakeDoneTask() const {
  Task task;
  task.kind = Task::Kind::kDone;
  task.step = algorithm_->step();
  task.round = round_;
  task.params = algorithm_->parameters();
  task.params_version = algorithm_->point_version();
  return task;
}

void Session::Wait(Worker& worker, TaskCallback done, CallId* call,
                   Outbox& out) {
  if (Done() || HasRole(worker)) {
    out.Add(std::move(done), MakeTask(worker));
    return;
  }
  const CallId id = next_call_++;
  pending_.emplace(id, Pending{worker.id, std::move(done)});
  if (call != nullptr) *call = id;
}

bool Session::FusedRound() const {
  return config_->algorithm.fuse_local_products && !algorithm_->active() &&
         algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
}

void Session::SubmitGradient(int64_t worker_id, const Submission& submission,
                             TaskCallback done, CallId* call,
                             const Caller& caller) {
  Submit(/*products=*/false, worker_id, submission, std::move(done), call,
         caller);
}

void Session::SubmitProducts(int64_t worker_id, const Submission& submission,
                             TaskCallback done, CallId* call,
                             const Caller& caller) {
  Submit(/*products=*/true, worker_id, submission, std::move(done), call,
         caller);
}

void Session::Submit(bool products, int64_t worker_id,
                     const Submission& submission, TaskCallback done,
                     CallId* call, const Caller& caller) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  if (call != nullptr) *call = 0;
  if (!closed_.ok()) return out.Add(std::move(done), closed_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return out.Add(std::move(done),
                   absl::NotFoundError(
                       absl::StrCat("worker ", worker_id, " is not in session ",
                                    id_, "; call JoinSession first")));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return out.Add(std::move(done), status);
  }
  worker.last_seen = clock_->Now();
  if (worker.state == Worker::State::kLeft) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(absl::StrCat(
                       "worker ", worker_id, " left session ", id_,
                       "; call JoinSession with its id to rejoin")));
  }
  if (worker.last_round >= 0 && submission.round == worker.last_round) {
    // A retry: answered again with the worker's current task, never
    // applied twice. A dropped worker comes back as Join would take it.
    if (absl::Status status = RoomFor(worker); !status.ok()) {
      return out.Add(std::move(done), status);
    }
    MarkActive(worker);
    return Wait(worker, std::move(done), call, out);
  }
  if (Done()) return out.Add(std::move(done), MakeTask(worker));
  if (submission.round != round_) {
    return out.Add(
        std::move(done),
        absl::FailedPreconditionError(absl::StrCat(
            "round ", submission.round, " (step ", submission.step, " phase ",
            submission.phase, ") is ",
            submission.round < round_ ? "closed" : "not open yet", "; session ",
            id_, " is at ", Where(), "; call JoinSession with worker_id ",
            worker_id, " to get the current task")));
  }
  const PhaseSpec& phase = algorithm_->phase();
  if (submission.step != algorithm_->step() ||
      submission.phase != phase.index) {
    return out.Add(
        std::move(done),
        absl::InvalidArgumentError(absl::StrCat(
            "step ", submission.step, " phase ", submission.phase,
            " do not match round ", round_, ", which is ", Where())));
  }
  if (products != (phase.kind == PhaseSpec::Kind::kProducts)) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(
                       absl::StrCat(Where(), " wants ",
                                    products ? "gradients: call SubmitGradient"
                                             : "Jacobian products: call "
                                               "SubmitJacobianProducts")));
  }
  if (absl::Status status = RoomFor(worker); !status.ok()) {
    return out.Add(std::move(done), status);
  }
  if (!HasRole(worker)) {
    return out.Add(
        std::move(done),
        absl::FailedPreconditionError(absl::StrCat(
            "worker ", worker_id, " holds no gradient sample of ", Where(),
            "; call JoinSession to wait for its next task")));
  }
  if (absl::Status status = Accept(products, worker, submission);
      !status.ok()) {
    if (config_->invalid_sample_policy == InvalidSamplePolicy::kReject) {
      return out.Add(std::move(done), status);
    }
    Log(absl::StrCat("dropped the sample of worker ", worker_id, " at ",
                     Where(), ": ", status.message()));
    (products ? worker.num_products : worker.num_samples) = 0;
    if (!products) worker.scalars.clear();
  }
  submitted_.insert(
      std::upper_bound(submitted_.begin(), submitted_.end(), worker_id),
      worker_id);
  worker.last_round = round_;
  MarkActive(worker);
  Wait(worker, std::move(done), call, out);
  const int64_t round = round_;
  const size_t submitters = submitted_.size();
  MaybeClose(out);
  if (round_ != round && submitters >= 2) ++worker.last_to_submit;
}

absl::Status Session::Accept(bool products, Worker& worker,
                             const Submission& submission) {
  const GameLayout& layout = algorithm_->layout();
  const DType dtype = config_->dtype;
  if (!products) return AcceptGradient(worker, submission);
  if (!submission.scalars.empty()) {
    return absl::InvalidArgumentError(
        "scalars: reported scalars go with gradient submissions only");
  }
  const PhaseSpec& phase = algorithm_->phase();
  const int n = worker.num_samples;
  std::vector<int> all(layout.num_players());
  for (int p = 0; p < layout.num_players(); ++p) all[p] = p;
  struct Kind {
    bool wanted;
    const std::vector<SampleView>& views;
    std::vector<FlatVector>& out;
    const char* field;
  };
  for (const Kind& kind :
       {Kind{phase.vjp, submission.vjp, worker.samples, "vjp"},
        Kind{phase.jvp, submission.jvp, worker.jvp, "jvp"}}) {
    const int expected = kind.wanted ? n : 0;
    if (static_cast<int>(kind.views.size()) != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind.field, ": the task asks for ", expected,
                       " product(s) (one per probe), got ", kind.views.size()));
    }
    if (static_cast<int>(kind.out.size()) < expected) {
      kind.out.resize(expected);
    }
    for (int k = 0; k < expected; ++k) {
      absl::Status status =
          DecodeSample(kind.views[k], layout, all, dtype,
                       absl::StrCat(kind.field, "[", k, "]"), kind.out[k]);
      if (!status.ok()) return status;
    }
  }
  worker.num_products = n;
  return absl::OkStatus();
}

absl::Status Session::AcceptGradient(Worker& worker,
                                     const Submission& submission) {
  const GameLayout& layout = algorithm_->layout();
  const DType dtype = config_->dtype;
  const int n = config_->samples_per_worker;
  worker.scalars.clear();
  if (static_cast<int>(submission.gradients.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("gradients: the task asks for ", n, " sample(s), got ",
                     submission.gradients.size()));
  }
  const bool fused = FusedRound();
  const bool fused_jvp =
      fused && config_->algorithm.kind == AlgorithmKind::kSga;
  struct Products {
    bool wanted;
    const std::vector<SampleView>& views;
    std::vector<FlatVector>& out;
    const char* field;
  };
  const Products fused_products[] = {
      {fused, submission.vjp, worker.fused_vjp, "vjp"},
      {fused_jvp, submission.jvp, worker.jvp, "jvp"}};
  for (const Products& p : fused_products) {
    const int expected = p.wanted ? n : 0;
    if (static_cast<int>(p.views.size()) != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          p.field, ": the task asks for ", expected, " fused product(s) (",
          p.wanted ? "one per gradient sample, Task.fused_"
                   : "none: Task.fused_",
          p.field, p.wanted ? " is set" : " is not set", "), got ",
          p.views.size()));
    }
  }
  if (absl::Status status = ValidateScalars(submission.scalars); !status.ok()) {
    return status;
  }
  worker.samples.resize(n);
  for (int k = 0; k < n; ++k) {
    absl::Status status = DecodeSample(
        submission.gradients[k], layout, algorithm_->phase().players, dtype,
        absl::StrCat("gradients[", k, "]"), worker.samples[k]);
    if (!status.ok()) return status;
  }
  std::vector<int> all;
  if (fused) {
    for (int p = 0; p < layout.num_players(); ++p) all.push_back(p);
  }
  for (const Products& p : fused_products) {
    if (!p.wanted) continue;
    if (static_cast<int>(p.out.size()) < n) p.out.resize(n);
    for (int k = 0; k < n; ++k) {
      absl::Status status =
          DecodeSample(p.views[k], layout, all, dtype,
                       absl::StrCat(p.field, "[", k, "]"), p.out[k]);
      if (!status.ok()) return status;
    }
  }
  worker.num_samples = n;
  worker.scalars.reserve(submission.scalars.size());
  for (const ScalarView& v : submission.scalars) {
    worker.scalars.push_back(NamedValue{std::string(v.name), v.value});
  }
  return absl::OkStatus();
}

absl::Status Session::CompleteFusedProducts() {
  const PhaseSpec& phase = algorithm_->phase();
  std::vector<const FlatVector*> vjp, jvp;
  for (const auto& [id, first] : sample_holders_) {
    Worker& w = *workers_.at(id);
    for (int k = 0; k < w.num_samples; ++k) {
      if (phase.vjp) vjp.push_back(&w.fused_vjp[k]);
      if (phase.jvp) jvp.push_back(&w.jvp[k]);
    }
  }
  return algorithm_->CompleteProducts(vjp, jvp);
}

void Session::MaybeClose(Outbox& out) {
  const int count = static_cast<int>(submitted_.size());
  bool all_in = true;
  bool any_expected = false;
  const bool gradient = algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
  for (const auto& [id, w] : workers_) {
    if (w->state != Worker::State::kActive) continue;
    if (!gradient && sample_holders_.count(id) == 0) continue;
    any_expected = true;
    if (!std::binary_search(submitted_.begin(), submitted_.end(), id)) {
      all_in = false;
    }
  }
  bool close;
  if (gradient) {
    close = count >= config_->workers_per_round ||
            (joined_ever_ >= config_->workers_per_round && all_in &&
             count >= RoundQuorum());
  } else {
    close = count > 0 && all_in && any_expected;
  }
  if (close) CloseRound(out);
}

int Session::RoundQuorum() const {
  const int quorum =
      config_->quorum == 0 ? config_->workers_per_round : config_->quorum;
  if (algorithm_->phase().kind == PhaseSpec::Kind::kGradient) return quorum;
  return std::max(1,
                  std::min(quorum, static_cast<int>(sample_holders_.size())));
}

void Session::CloseRound(Outbox& out) {
  // The plan's entries stay put: `phase` names the closed round's phase
  // after the algorithm has moved on.
  const PhaseSpec& phase = algorithm_->phase();
  const int64_t step = algorithm_->step();
  const bool diagnostic = algorithm_->active();
  const bool fused = FusedRound();
  absl::Status status;
  if (phase.kind == PhaseSpec::Kind::kGradient) {
    std::vector<const FlatVector*> samples;
    sample_holders_.clear();
    for (int64_t id : submitted_) {
      Worker& w = *workers_.at(id);
      if (!diagnostic) step_scalars_.Add(w.scalars);
      w.scalars.clear();
      if (w.num_samples == 0) continue;
      sample_holders_[id] = static_cast<int>(samples.size());
      for (int k = 0; k < w.num_samples; ++k) samples.push_back(&w.samples[k]);
    }
    status = samples.empty()
                 ? absl::FailedPreconditionError("no valid gradient sample")
                 : algorithm_->CompleteGradient(samples);
    // A fused round: the products phase that follows on the same samples
    // (LOCAL probes: each sample's own gradient) closes at once.
    if (status.ok() && fused &&
        algorithm_->phase().kind == PhaseSpec::Kind::kProducts) {
      status = CompleteFusedProducts();
    }
  } else {
    std::vector<const FlatVector*> vjp, jvp;
    for (int64_t id : submitted_) {
      Worker& w = *workers_.at(id);
      for (int k = 0; k < w.num_products; ++k) {
        if (phase.vjp) vjp.push_back(&w.samples[k]);
        if (phase.jvp) jvp.push_back(&w.jvp[k]);
      }
    }
    status = vjp.empty() && jvp.empty()
                 ? absl::FailedPreconditionError("no valid product")
                 : algorithm_->CompleteProducts(vjp, jvp);
  }
  if (!status.ok()) {
    Log(absl::StrCat(Where(), " is repeated: ", status.message()));
  }
  if (algorithm_->step() != step) {
    last_scalars_ = step_scalars_.Means();
    step_scalars_.Clear();
  }
  timer_.RoundClosed(phase.label, clock_->Now(), algorithm_->step() != step);
  DeliverSpectra(out);
  OpenRound(out);
}

void Session::OpenRound(Outbox& out) {
  ++round_;
  submitted_.clear();
  deadline_ = config_->phase_deadline == absl::InfiniteDuration()
                  ? absl::InfiniteFuture()
                  : clock_->Now() + config_->phase_deadline;
  if (Done()) {
    Log(absl::StrCat("done after ", algorithm_->step(), " steps"));
  }
  if (listener_.round_opened) {
    out.AddAction(
        [this, step = algorithm_->step(), phase = algorithm_->phase().index] {
          listener_.round_opened(*this, step, phase);
        });
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    Worker& worker = *workers_.at(it->second.worker_id);
    if (Done() || HasRole(worker)) {
      worker.last_seen = clock_->Now();
      out.Add(std::move(it->second.done), MakeTask(worker));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void Session::Cancel(CallId call) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(call);
  if (it == pending_.end()) return;
  const int64_t worker_id = it->second.worker_id;
  out.Add(std::move(it->second.done),
          absl::CancelledError("the call was cancelled"));
  pending_.erase(it);
  // The transport gave up on the call: the client died, closed its channel
  // or let its deadline pass. Dropped at once under the quorum rules, not
  // at the phase deadline; its next call makes it active again.
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || w->second->state != Worker::State::kActive ||
      InFlight(worker_id) || !closed_.ok() || Done()) {
    return;
  }
  w->second->last_seen = clock_->Now();
  DropForLiveness(*w->second, kCancelledReason);
  MaybeClose(out);
}

void Session::Close(absl::Status why) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  closed_ = why;
  for (auto& [id, pending] : pending_) out.Add(std::move(pending.done), why);
  pending_.clear();
  for (SpectrumCallback& done : algorithm_->TakeAllCallbacks()) {
    out.Add(std::move(done), why);
  }
}

SessionInfo Session::Info() const {
  absl::MutexLock lock(&mu_);
  SessionInfo info;
  info.id = id_;
  info.step = algorithm_->step();
  info.phase = algorithm_->phase().index;
  info.phase_label = algorithm_->phase().label;
  info.round = round_;
  info.done = Done();
  info.submitted = static_cast<int>(submitted_.size());
  info.params_version = algorithm_->point_version();
  info.stats = algorithm_->stats();
  info.timing = timer_.Snapshot(clock_->Now(), info.done);
  info.bytes_received = traffic_.received();
  info.bytes_sent = traffic_.sent();
  info.scalars = last_scalars_;
  for (int p = 0; p < algorithm_->layout().num_players(); ++p) {
    info.learning_rates.push_back(algorithm_->LearningRate(p));
  }
  for (const auto& [id, w] : workers_) {
    info.workers.push_back(WorkerInfo{
        id, w->name, StateName(static_cast<int>(w->state)), w->last_round,
        w->missed_deadlines, w->last_to_submit, w->reason,
        InFlight(id) ? absl::ZeroDuration() : clock_->Now() - w->last_seen});
  }
  return info;
}

ParametersSnapshot Session::Parameters() const {
  absl::MutexLock lock(&mu_);
  return ParametersSnapshot{algorithm_->step(), algorithm_->point_version(),
                            algorithm_->parameters()};
}

}  // namespace gameopt
