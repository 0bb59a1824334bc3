#include "server/core/session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/liveness.h"
#include "server/core/quote.h"

namespace gameopt {
namespace {

// Names are logged and shown: printable ASCII only, so that no name forges
// a log line or a status table row.
absl::Status ValidateWorkerName(absl::string_view name) {
  constexpr size_t kMaxName = 256;
  if (name.size() > kMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_name has ", name.size(),
                     " bytes; at most ", kMaxName, " are allowed"));
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "worker_name must be printable ASCII (no control characters)");
    }
  }
  return absl::OkStatus();
}

// Counters read from a checkpoint stay far from int64's end, so that
// incrementing them never overflows.
constexpr int64_t kMaxCounter = int64_t{1} << 60;

bool AllFinite(const FlatVector& v) {
  return v.dtype() == DType::kFloat64 ? v.as<double>().allFinite()
                                      : v.as<float>().allFinite();
}

}  // namespace


struct Session::Worker {
  enum class State { kActive, kDropped, kLeft };
  int64_t id = 0;
  std::string name;
  std::string owner;  // Caller::owner it is bound to; empty: none
  State state = State::kActive;
  int64_t last_round = -1;  // round of the last accepted submission
  int64_t missed_deadlines = 0;
  int64_t last_to_submit = 0;
  // Liveness (liveness.h): when its last call arrived or its waiting call
  // was answered, and why it is dropped or left.
  absl::Time last_seen;
  std::string reason;
  // Buffers reused from round to round: no parameter-sized allocation in
  // steady state. A products phase opens once the gradient phase has
  // closed, when the samples have been consumed (mean, probes), so the
  // J^T w products are decoded into the samples' buffers: one buffer per
  // sample, not two.
  int num_samples = 0;  // valid gradient samples of its last gradient round
  std::vector<FlatVector> samples;  // then its J^T w products
  int num_products = 0;  // valid products of its last products round
  std::vector<FlatVector> jvp;  // also a fused round's J_k xi_k
  std::vector<FlatVector> fused_vjp;  // a fused round's J_k^T xi_k
  // The scalars of its submission to the open gradient round.
  std::vector<NamedValue> scalars;
};

class Session::Outbox {
 public:
  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  // Actions first: a checkpoint is written before any worker goes on.
  ~Outbox() {
    for (auto& action : actions_) action();
    for (auto& [done, result] : items_) done(std::move(result));
    for (auto& [done, result] : spectra_) done(std::move(result));
  }
  void AddAction(std::function<void()> action) {
    actions_.push_back(std::move(action));
  }
  void Add(TaskCallback done, absl::StatusOr<Task> result) {
    items_.emplace_back(std::move(done), std::move(result));
  }
  void Add(SpectrumCallback done, absl::StatusOr<SpectrumResult> result) {
    spectra_.emplace_back(std::move(done), std::move(result));
  }

 private:
  std::vector<std::function<void()>> actions_;
  std::vector<std::pair<TaskCallback, absl::StatusOr<Task>>> items_;
  std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
      spectra_;
};

namespace {

const char* const kStateNames[] = {"active", "dropped", "left"};

const char* StateName(int state) { return kStateNames[state]; }

// The index of `name` in kStateNames, or -1.
int StateIndex(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    if (name == kStateNames[i]) return i;
  }
  return -1;
}

// SplitMix64 finalizer: a cheap, well-mixed seed per (session, round,
// worker).
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Create(
    std::string id, SessionConfig config, const Clock* clock) {
  absl::StatusOr<std::unique_ptr<Algorithm>> algorithm =
      Algorithm::Create(config);
  if (!algorithm.ok()) return algorithm.status();
  auto rounds =
      std::make_unique<SpectrumRounds>(*std::move(algorithm), config);
  return std::unique_ptr<Session>(new Session(
      std::move(id), std::move(config), clock, std::move(rounds)));
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
  return absl::StrCat("step ", algorithm_->step(), " phase ", phase.index,
                      " (", phase.label, ", round ", round_, ")");
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

void Session::Join(int64_t worker_id, std::string name, TaskCallback done,
                   CallId* call, bool resume_by_name, const Caller& caller) {
  int64_t added = 0;
  {
    Outbox out;
    absl::MutexLock lock(&mu_);
    if (call != nullptr) *call = 0;
    if (!closed_.ok()) return out.Add(std::move(done), closed_);
    if (Done()) {
      Task task = MakeDoneTask();
      task.worker_id = worker_id;
      return out.Add(std::move(done), std::move(task));
    }
    if (absl::Status status = ValidateWorkerName(name); !status.ok()) {
      return out.Add(std::move(done), status);
    }
    const int k = config_->workers_per_round;
    Worker* worker = nullptr;
    if (worker_id == 0 && resume_by_name && !name.empty()) {
      for (const auto& [id, w] : workers_) {  // by id: the lowest first
        // Only the caller's own workers: another token's name is no way
        // to take its worker (nor to keep the caller out).
        const bool own = caller.acts_for_any || w->owner.empty() ||
                         w->owner == caller.owner;
        if (w->name == name && own) {
          worker_id = id;
          break;
        }
      }
    }
    if (worker_id == 0) {
      if (ActiveWorkers() >= k) {
        return out.Add(std::move(done),
                       absl::ResourceExhaustedError(absl::StrCat(
                           "session ", id_, " already has ", k,
                           " active workers (workers_per_round = ", k,
                           "); create the session with more workers per "
                           "round, or rejoin with the id of a dropped worker")));
      }
      PruneInactive();
      auto fresh = std::make_unique<Worker>();
      fresh->id = next_worker_id_++;
      fresh->name = name.empty() ? absl::StrCat("worker-", fresh->id) : name;
      fresh->owner = caller.owner;
      fresh->last_seen = clock_->Now();
      worker = fresh.get();
      workers_.emplace(worker->id, std::move(fresh));
      ++joined_ever_;
      Log(absl::StrCat("worker ", worker->id, " (", Quote(worker->name),
                       ") joined at ", Where()));
      if (listener_.worker_added) {
        // Recorded (a checkpoint) before it learns its id, outside the lock.
        added = worker->id;
      }
    } else {
      auto it = workers_.find(worker_id);
      if (it == workers_.end()) {
        return out.Add(std::move(done),
                       absl::NotFoundError(absl::StrCat(
                           "worker ", worker_id, " is not in session ", id_,
                           "; join with worker_id 0 to get a new id")));
      }
      worker = it->second.get();
      if (absl::Status status = ActFor(*worker, caller); !status.ok()) {
        return out.Add(std::move(done), status);
      }
      worker->last_seen = clock_->Now();
      if (absl::Status status = RoomFor(*worker); !status.ok()) {
        return out.Add(std::move(done), status);
      }
      MarkActive(*worker);
    }
    if (added == 0) return Wait(*worker, std::move(done), call, out);
  }
  FinishJoin(added, listener_.worker_added(*this), std::move(done), call);
}

void Session::FinishJoin(int64_t worker_id, absl::Status recorded,
                         TaskCallback done, CallId* call) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (!recorded.ok()) {
    if (it != workers_.end() && it->second->last_round < 0) {
      workers_.erase(it);
      --joined_ever_;
      Log(absl::StrCat("worker ", worker_id, " removed again: ",
                       recorded.message()));
      if (closed_.ok() && !Done()) MaybeClose(out);
    }
    return out.Add(std::move(done), recorded);
  }
  if (!closed_.ok()) return out.Add(std::move(done), closed_);
  if (it == workers_.end()) {
    return out.Add(std::move(done),
                   absl::InternalError("a new worker vanished while joining"));
  }
  Wait(*it->second, std::move(done), call, out);
}

absl::Status Session::RoomFor(const Worker& worker) const {
  const int k = config_->workers_per_round;
  if (worker.state == Worker::State::kActive || ActiveWorkers() < k) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("session ", id_, " already has ", k,
                   " active workers; worker ", worker.id,
                   " cannot rejoin until one leaves"));
}

void Session::MarkActive(Worker& worker) {
  if (worker.state == Worker::State::kActive) return;
  worker.state = Worker::State::kActive;
  worker.reason.clear();
  Log(absl::StrCat("worker ", worker.id, " (", Quote(worker.name), ") rejoined at ",
                   Where()));
}

absl::Status Session::ActFor(Worker& worker, const Caller& caller) const {
  if (caller.owner.empty() || worker.owner == caller.owner) {
    return absl::OkStatus();
  }
  if (worker.owner.empty()) {
    if (!caller.acts_for_any) worker.owner = caller.owner;
    return absl::OkStatus();
  }
  if (caller.acts_for_any) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "worker ", worker.id, " of session ", id_,
      " joined with another token; only that token may act for it (join "
      "with worker_id 0 for a worker of your own)"));
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
                   absl::NotFoundError(absl::StrCat(
                       "worker ", worker_id, " is not in session ", id_,
                       "; call JoinSession first")));
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
            "round ", submission.round, " (step ", submission.step,
            " phase ", submission.phase, ") is ",
            submission.round < round_ ? "closed" : "not open yet",
            "; session ", id_, " is at ", Where(),
            "; call JoinSession with worker_id ", worker_id,
            " to get the current task")));
  }
  const PhaseSpec& phase = algorithm_->phase();
  if (submission.step != algorithm_->step() ||
      submission.phase != phase.index) {
    return out.Add(std::move(done),
                   absl::InvalidArgumentError(absl::StrCat(
                       "step ", submission.step, " phase ", submission.phase,
                       " do not match round ", round_, ", which is ",
                       Where())));
  }
  if (products != (phase.kind == PhaseSpec::Kind::kProducts)) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(absl::StrCat(
                       Where(), " wants ",
                       products ? "gradients: call SubmitGradient"
                                : "Jacobian products: call "
                                  "SubmitJacobianProducts")));
  }
  if (absl::Status status = RoomFor(worker); !status.ok()) {
    return out.Add(std::move(done), status);
  }
  if (!HasRole(worker)) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(absl::StrCat(
                       "worker ", worker_id, " holds no gradient sample of ",
                       Where(), "; call JoinSession to wait for its next task")));
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
  for (const Kind& kind : {Kind{phase.vjp, submission.vjp, worker.samples,
                                "vjp"},
                           Kind{phase.jvp, submission.jvp, worker.jvp, "jvp"}}) {
    const int expected = kind.wanted ? n : 0;
    if (static_cast<int>(kind.views.size()) != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          kind.field, ": the task asks for ", expected,
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
    return absl::InvalidArgumentError(absl::StrCat(
        "gradients: the task asks for ", n, " sample(s), got ",
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
          p.wanted ? "one per gradient sample, Task.fused_" : "none: Task.fused_",
          p.field, p.wanted ? " is set" : " is not set", "), got ",
          p.views.size()));
    }
  }
  if (absl::Status status = ValidateScalars(submission.scalars);
      !status.ok()) {
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
  const bool gradient =
      algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
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
  return std::max(1, std::min(quorum, static_cast<int>(sample_holders_.size())));
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
    out.AddAction([this, step = algorithm_->step(),
                   phase = algorithm_->phase().index] {
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

std::string Session::MissingWorkers() const {
  std::vector<std::string> missing;
  const bool gradient =
      algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
  int expected = 0;
  for (const auto& [id, w] : workers_) {
    if (w->state == Worker::State::kLeft) continue;
    if (!gradient && sample_holders_.count(id) == 0) continue;
    ++expected;
    if (!std::binary_search(submitted_.begin(), submitted_.end(), id)) {
      missing.push_back(absl::StrCat(id, " (", Quote(w->name), ")"));
    }
  }
  if (gradient && expected < config_->workers_per_round) {
    missing.push_back(absl::StrCat(config_->workers_per_round - expected,
                                   " worker(s) that never joined"));
  }
  return missing.empty() ? "none" : absl::StrJoin(missing, ", ");
}

void Session::DropMissing() {
  const bool gradient =
      algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
  for (auto& [id, w] : workers_) {
    if (w->state != Worker::State::kActive) continue;
    if (!gradient && sample_holders_.count(id) == 0) continue;
    if (std::binary_search(submitted_.begin(), submitted_.end(), id)) continue;
    w->state = Worker::State::kDropped;
    w->reason = absl::StrCat("missed the deadline of ", Where());
    ++w->missed_deadlines;
    Log(absl::StrCat("worker ", id, " (", Quote(w->name), ") missed the deadline of ",
                     Where(), "; dropped from the round"));
  }
}

void Session::CheckDeadline() {
  Outbox out;
  absl::MutexLock lock(&mu_);
  if (!closed_.ok() || Done()) return;
  // The phase deadline first (a straggler past it counts a missed
  // deadline), then the leases of the round that is open after it.
  if (clock_->Now() >= deadline_) ApplyPhaseDeadline(out);
  if (!Done() && DropExpiredLeases()) MaybeClose(out);
}

void Session::ApplyPhaseDeadline(Outbox& out) {
  const int count = static_cast<int>(submitted_.size());
  if (count > 0 && count >= RoundQuorum()) {
    Log(absl::StrCat(Where(), ": deadline passed, proceeding with ", count,
                     " worker(s); missing: ", MissingWorkers()));
    DropMissing();
    return CloseRound(out);
  }
  const std::string message = absl::StrCat(
      Where(), ": the quorum of ", RoundQuorum(),
      " worker(s) was not reached by the phase deadline (",
      absl::FormatDuration(config_->phase_deadline), "); submitted: [",
      absl::StrJoin(submitted_, ", "), "]; missing: ", MissingWorkers(),
      ". Resubmit the same round (retries are idempotent) to wait again");
  Log(message);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (std::binary_search(submitted_.begin(), submitted_.end(),
                           it->second.worker_id)) {
      workers_.at(it->second.worker_id)->last_seen = clock_->Now();
      out.Add(std::move(it->second.done), absl::AbortedError(message));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  deadline_ = clock_->Now() + config_->phase_deadline;
}

absl::Time Session::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  if (!closed_.ok() || Done()) return absl::InfiniteFuture();
  absl::Time next = deadline_;
  if (config_->worker_lease != absl::InfiniteDuration()) {
    for (const auto& [id, w] : workers_) {
      if (w->state != Worker::State::kActive || InFlight(id)) continue;
      next = std::min(next, w->last_seen + config_->worker_lease);
    }
  }
  return next;
}

void Session::PruneInactive() {
  const size_t cap =
      static_cast<size_t>(kMaxInactiveWorkers + config_->workers_per_round);
  size_t inactive = 0;
  for (const auto& [id, w] : workers_) {
    inactive += w->state != Worker::State::kActive;
  }
  // Oldest first; never one the open round still refers to.
  for (auto it = workers_.begin(); it != workers_.end() && inactive > cap;) {
    const int64_t id = it->first;
    if (it->second->state != Worker::State::kActive &&
        !std::binary_search(submitted_.begin(), submitted_.end(), id) &&
        sample_holders_.count(id) == 0 && !InFlight(id)) {
      it = workers_.erase(it);
      --inactive;
    } else {
      ++it;
    }
  }
}

bool Session::InFlight(int64_t worker_id) const {
  for (const auto& [call, pending] : pending_) {
    if (pending.worker_id == worker_id) return true;
  }
  return false;
}

void Session::DropForLiveness(Worker& worker, std::string reason) {
  worker.state = Worker::State::kDropped;
  worker.reason = std::move(reason);
  Log(absl::StrCat("worker ", worker.id, " (", Quote(worker.name), ") dropped at ",
                   Where(), ": ", worker.reason));
}

bool Session::DropExpiredLeases() {
  if (config_->worker_lease == absl::InfiniteDuration()) return false;
  const absl::Time now = clock_->Now();
  bool dropped = false;
  for (auto& [id, w] : workers_) {
    if (w->state != Worker::State::kActive || InFlight(id) ||
        now - w->last_seen < config_->worker_lease) {
      continue;
    }
    DropForLiveness(*w, LeaseExpiredReason(config_->worker_lease));
    dropped = true;
  }
  return dropped;
}

absl::StatusOr<std::string> Session::Heartbeat(int64_t worker_id,
                                               const Caller& caller) {
  absl::MutexLock lock(&mu_);
  if (!closed_.ok()) return closed_;
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "worker ", worker_id, " is not in session ", id_,
        "; call JoinSession first"));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return status;
  }
  if (worker.state == Worker::State::kLeft) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", worker_id, " left session ", id_,
        "; call JoinSession with its id to rejoin"));
  }
  worker.last_seen = clock_->Now();
  if (worker.state == Worker::State::kDropped && RoomFor(worker).ok()) {
    MarkActive(worker);
  }
  return std::string(StateName(static_cast<int>(worker.state)));
}

absl::Status Session::Leave(int64_t worker_id, const Caller& caller) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker ", worker_id,
                                            " is not in session ", id_));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return status;
  }
  if (worker.state == Worker::State::kLeft) return absl::OkStatus();
  worker.state = Worker::State::kLeft;
  worker.reason = "left (LeaveSession)";
  Log(absl::StrCat("worker ", worker_id, " (", Quote(worker.name), ") left at ",
                   Where()));
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->second.worker_id == worker_id) {
      out.Add(std::move(p->second.done),
              absl::CancelledError(absl::StrCat("worker ", worker_id,
                                                " left the session")));
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  if (closed_.ok() && !Done()) MaybeClose(out);
  return absl::OkStatus();
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

// ---- Spectrum diagnostics (spectrum_rounds.h) ------------------------------

void Session::EstimateSpectrum(const SpectrumRequest& request,
                               SpectrumCallback done, CallId* call) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  if (call != nullptr) *call = 0;
  if (!closed_.ok()) return out.Add(std::move(done), closed_);
  if (absl::Status status = ValidateSpectrumRequest(request, "spectrum");
      !status.ok()) {
    return out.Add(std::move(done), status);
  }
  if (Done()) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(absl::StrCat(
                       "session ", id_, " is done (", algorithm_->step(),
                       " steps): its workers are gone. Request the spectrum "
                       "while it runs, or create the session with "
                       "spectrum.every_steps to get one at the last step")));
  }
  const CallId id = next_call_++;
  if (call != nullptr) *call = id;
  algorithm_->Enqueue(id, request, std::move(done));
  Log(absl::StrCat("spectrum (", SpectrumOperatorName(request.op),
                   ") requested at ", Where()));
  // At a step boundary that no worker has started on, begin now: the open
  // round is replaced (a worker that computed its task for it is told the
  // round closed and rejoins).
  if (submitted_.empty() && algorithm_->StartIfIdle()) OpenRound(out);
  DeliverSpectra(out);
}

void Session::CancelSpectrum(CallId call) {
  Outbox out;
  absl::MutexLock lock(&mu_);
  bool stopped = false;
  SpectrumCallback done = algorithm_->Cancel(call, &stopped);
  if (done) {
    out.Add(std::move(done), absl::CancelledError("the call was cancelled"));
  }
  if (stopped && closed_.ok()) {
    Log(absl::StrCat("spectrum estimate stopped (its call was cancelled) "
                     "at round ", round_));
    OpenRound(out);
  }
}

std::vector<SpectrumResult> Session::Spectra() const {
  absl::MutexLock lock(&mu_);
  return algorithm_->history();
}

void Session::DeliverSpectra(Outbox& out) {
  for (auto& [done, result] : algorithm_->TakeFinished()) {
    if (result.ok()) {
      Log(absl::StrCat("spectrum of ", result->description, " at step ",
                       result->step, ": ", result->estimate.applications,
                       " products in ", result->rounds, " rounds",
                       result->estimate.converged ? "" : " (not converged)"));
    } else {
      Log(absl::StrCat("spectrum estimate failed: ", result.status().message()));
    }
    if (done) out.Add(std::move(done), std::move(result));
  }
}

SessionSnapshot Session::Snapshot() const {
  absl::MutexLock lock(&mu_);
  SessionSnapshot snapshot;
  snapshot.id = id_;
  snapshot.config = config_;
  // During a spectrum estimate the open round is a diagnostic one, and the
  // algorithm sits at a step boundary. A restored session resumes there
  // without the estimate, one round number later, so that a worker's
  // answer to a diagnostic task finds its round closed and rejoins.
  const bool diagnostic = algorithm_->active();
  snapshot.round = diagnostic ? round_ + 1 : round_;
  snapshot.next_worker_id = next_worker_id_;
  snapshot.joined_ever = joined_ever_;
  for (const auto& [id, w] : workers_) {
    WorkerSnapshot& out = snapshot.workers.emplace_back();
    out.id = id;
    out.name = w->name;
    out.owner = w->owner;
    out.state = StateName(static_cast<int>(w->state));
    // Its submission to the open round is left out: not a retry after a
    // restore, but the round's first submission again.
    out.last_round = w->last_round == round_ ? round_ - 1 : w->last_round;
    out.missed_deadlines = w->missed_deadlines;
    out.num_samples = w->num_samples;
    // Sample holders matter in a products phase only (a gradient phase
    // closes by choosing them afresh).
    auto holder = sample_holders_.find(id);
    const bool products =
        !diagnostic && algorithm_->phase().kind == PhaseSpec::Kind::kProducts;
    out.first_sample = !products || holder == sample_holders_.end()
                           ? -1
                           : holder->second;
  }
  snapshot.algorithm = algorithm_->ExportState();
  return snapshot;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Restore(
    const SessionSnapshot& snapshot, const Clock* clock) {
  if (snapshot.config == nullptr) {
    return absl::DataLossError("the snapshot has no config");
  }
  absl::StatusOr<std::unique_ptr<Session>> session =
      Create(snapshot.id, *snapshot.config, clock);
  if (!session.ok()) return session.status();
  absl::Status status = (*session)->RestoreState(snapshot);
  if (!status.ok()) return status;
  return session;
}

absl::Status Session::RestoreState(const SessionSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  // Restore validates everything it reads (a checkpoint file is input):
  // values finite, counters and indices in range, with arithmetic that
  // cannot overflow.
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    if (v.value == nullptr || !AllFinite(*v.value)) {
      return absl::DataLossError(absl::StrCat(
          "state vector '", absl::CHexEscape(v.name.substr(0, 64)),
          "' is missing or holds a value that is not finite"));
    }
  }
  const AlgorithmState& a = snapshot.algorithm;
  if (a.step > kMaxCounter || a.point_version > kMaxCounter) {
    return absl::DataLossError(absl::StrCat(
        "step ", a.step, " or parameter version ", a.point_version,
        " out of range"));
  }
  absl::Status status = algorithm_->ImportState(snapshot.algorithm);
  if (!status.ok()) return status;
  if (snapshot.round < 0 || snapshot.next_worker_id < 1 ||
      snapshot.joined_ever < 0 || snapshot.round > kMaxCounter ||
      snapshot.next_worker_id > kMaxCounter ||
      snapshot.joined_ever > kMaxCounter) {
    return absl::DataLossError(absl::StrCat(
        "round ", snapshot.round, ", next worker id ",
        snapshot.next_worker_id, ", joined ", snapshot.joined_ever,
        " are out of range"));
  }
  round_ = snapshot.round;
  next_worker_id_ = snapshot.next_worker_id;
  joined_ever_ = snapshot.joined_ever;
  const int num_probes = static_cast<int>(algorithm_->probes().size());
  for (const WorkerSnapshot& in : snapshot.workers) {
    const int state = StateIndex(in.state);
    const bool holder = in.first_sample >= 0;
    // In int64: first_sample + num_samples cannot overflow.
    const int64_t holder_end =
        static_cast<int64_t>(in.first_sample) + in.num_samples;
    if (in.id < 1 || in.id >= next_worker_id_ || workers_.count(in.id) > 0 ||
        state < 0 || in.num_samples < 0 ||
        in.num_samples > config_->samples_per_worker ||
        in.last_round < -1 || in.last_round > round_ ||
        in.missed_deadlines < 0 || !ValidateWorkerName(in.name).ok() ||
        !ValidateWorkerName(in.owner).ok() ||
        (holder && holder_end > num_probes)) {
      return absl::DataLossError(absl::StrCat(
          "worker ", in.id, " (", absl::CHexEscape(in.name.substr(0, 64)),
          ", state '", absl::CHexEscape(in.state.substr(0, 16)),
          "') does not fit the session's workers and probes"));
    }
    auto worker = std::make_unique<Worker>();
    worker->id = in.id;
    worker->name = in.name;
    worker->owner = in.owner;
    worker->state = static_cast<Worker::State>(state);
    worker->last_round = in.last_round;
    worker->missed_deadlines = in.missed_deadlines;
    worker->num_samples = in.num_samples;
    worker->last_seen = clock_->Now();  // a lease's time to come back
    if (holder) sample_holders_[in.id] = in.first_sample;
    workers_.emplace(in.id, std::move(worker));
  }
  return absl::OkStatus();
}

}  // namespace gameopt
