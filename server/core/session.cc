#include "server/core/session.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "server/core/liveness.h"  // kCancelledReason
#include "server/core/session_internal.h"

namespace gameopt {

namespace {

// SplitMix64 finalizer: a cheap, well-mixed seed per (session, round,
// worker).
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A round's samples as SampleSet's spans, on the stack for up to 8.
using DenseList = absl::InlinedVector<const FlatVector*, 8>;
using PackedList = absl::InlinedVector<const PackedVector*, 8>;

// A worker's sample (or product) k, held in `samples` or `packs`
// (Worker::samples, Worker::packed), into `dense` and `packed` (SampleSet's
// two spans: one of the two entries is null).
void AddSample(const std::vector<FlatVector>& samples,
               const std::vector<PackedVector>& packs, int k, DenseList& dense,
               PackedList& packed) {
  const bool is_packed =
      k < static_cast<int>(packs.size()) && packs[k].in_use();
  dense.push_back(is_packed ? nullptr : &samples[k]);
  packed.push_back(is_packed ? &packs[k] : nullptr);
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
      barrier_(config_->workers_per_round, config_->quorum),
      timer_(clock->Now()) {
  absl::MutexLock lock(&mu_);
  barrier_.Open(PhaseKind());
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

std::string Session::Where() const {
  const PhaseSpec& phase = algorithm_->phase();
  return absl::StrCat("step ", algorithm_->step(), " phase ", phase.index, " (",
                      phase.label, ", round ", round_, ")");
}

Task Session::MakeTask(const Worker& worker) {
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
  // step_seed: the same minibatches for every such phase of the step
  // (the complement keeps these seeds apart from the rounds').
  task.seed = phase.step_seed
                  ? Mix(Mix(~config_->seed, static_cast<uint64_t>(task.step)),
                        static_cast<uint64_t>(worker.id))
                  : Mix(Mix(config_->seed, static_cast<uint64_t>(round_)),
                        static_cast<uint64_t>(worker.id));
  task.full_shard = phase.full_shard;
  if (phase.kind == PhaseSpec::Kind::kGradient) {
    task.kind = Task::Kind::kGradient;
    task.players = phase.players;
    task.loss = phase.loss;
    task.num_samples = config_->samples_per_worker;
    if (FusedRound()) {
      task.fused_vjp = true;
      task.fused_jvp = FusedJvp();
    }
  } else {
    task.kind = Task::Kind::kProducts;
    task.vjp = phase.vjp;
    task.jvp = phase.jvp;
    const int first = barrier_.holders().at(worker.id);
    const auto& lazy = algorithm_->lazy_probes();
    const bool packed = !algorithm_->packed_probes().empty();
    for (int k = 0; k < worker.num_samples; ++k) {
      if (!lazy.empty()) {
        task.probes.push_back(nullptr);
        task.lazy_probes.push_back(lazy[first + k]);
      } else if (packed) {
        task.probes.push_back(nullptr);
        task.packed_probes.push_back(algorithm_->HandOutPackedProbe(first + k));
      } else {
        task.probes.push_back(algorithm_->probes()[first + k]);
      }
    }
  }
  return task;
}

bool Session::Deliver(Worker& worker, TaskCallback& done, Outbox& out) {
  Task task = MakeTask(worker);
  bool lost = false;
  for (size_t k = 0; k < task.probes.size(); ++k) {
    lost = lost || !task.HasProbe(k);
  }
  if (!lost) {
    out.Add(std::move(done), std::move(task));
    return true;
  }
  // Its probe was handed out once and let go (HandOutPackedProbe):
  // the worker lost that task (a reply that never arrived, a restart). Its
  // products are left out of this step, as at a missed deadline; the
  // others' products still average to an unbiased estimate.
  barrier_.RemoveHolder(worker.id);
  Log(absl::StrCat("worker ", worker.id, " (", worker.name,
                   ") asked again for its task at ", Where(),
                   ", whose probe was sent and is no longer kept; its "
                   "products are left out of this step"));
  return false;
}

void Session::AfterLostHolders(Outbox& out) {
  if (!barrier_.holders().empty()) return MaybeClose(out);
  Log(absl::StrCat("no worker of ", Where(),
                   " can answer it any more; the step starts again"));
  algorithm_->RestartStep();
  OpenRound(out);
}

std::shared_ptr<const FlatVector> Task::Probe(size_t k) const {
  if (probes[k] != nullptr) return probes[k];
  if (!lazy_probes.empty()) return lazy_probes[k]->Materialize();
  const PackedVector& packed = *packed_probes[k];
  auto values =
      std::make_shared<FlatVector>(packed.raw_dtype(), packed.dimension());
  if (values->dtype() == DType::kFloat64) {
    packed.Decode(0, values->size(), values->as<double>().data());
  } else {
    packed.Decode(0, values->size(), values->as<float>().data());
  }
  return values;
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
  bool lost = false;
  if (Done() || barrier_.Owes(worker.id)) {
    if (Deliver(worker, done, out)) return;
    lost = true;  // dropped from the products round: waits for the next
  }
  const CallId id = next_call_++;
  pending_.emplace(id, Pending{worker.id, std::move(done)});
  if (call != nullptr) *call = id;
  if (lost) AfterLostHolders(out);
}

RoundBarrier::Kind Session::PhaseKind() const {
  return algorithm_->phase().kind == PhaseSpec::Kind::kGradient
             ? RoundBarrier::Kind::kGradient
             : RoundBarrier::Kind::kProducts;
}

bool Session::FusedRound() const {
  const AlgorithmConfig& a = config_->algorithm;
  return (a.fuse_local_products || a.bias_meter) && !algorithm_->active() &&
         algorithm_->phase().kind == PhaseSpec::Kind::kGradient;
}

bool Session::FusedJvp() const {
  return config_->algorithm.fuse_local_products &&
         config_->algorithm.kind == AlgorithmKind::kSga;
}

absl::Status Session::CompleteFusedProducts() {
  const PhaseSpec& phase = algorithm_->phase();
  DenseList vjp, jvp;
  for (const auto& [id, first] : barrier_.holders()) {
    Worker& w = *workers_.at(id);
    for (int k = 0; k < w.num_samples; ++k) {
      if (phase.vjp) vjp.push_back(&w.fused_vjp[k]);
      if (phase.jvp) jvp.push_back(&w.jvp[k]);
    }
  }
  return algorithm_->CompleteProducts(vjp, jvp);
}

void Session::MaybeClose(Outbox& out) {
  if (barrier_.ShouldClose()) CloseRound(out);
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
    DenseList samples;
    PackedList packed;
    barrier_.ClearHolders();
    for (int64_t id : barrier_.submitted()) {
      Worker& w = *workers_.at(id);
      if (!diagnostic) step_scalars_.Add(w.scalars);
      w.scalars.clear();
      barrier_.AddHolder(id, static_cast<int>(samples.size()), w.num_samples);
      for (int k = 0; k < w.num_samples; ++k)
        AddSample(w.samples, w.packed, k, samples, packed);
    }
    if (!diagnostic) step_round_ = round_;
    status = samples.empty()
                 ? absl::FailedPreconditionError("no valid gradient sample")
                 : algorithm_->CompleteGradient(SampleSet(samples, packed));
    // A fused round: the products phase that follows on the same samples
    // (LOCAL probes: each sample's own gradient) closes at once.
    if (status.ok() && fused && config_->algorithm.fuse_local_products &&
        algorithm_->phase().kind == PhaseSpec::Kind::kProducts) {
      status = CompleteFusedProducts();
    }
  } else {
    DenseList vjp, jvp, own;
    PackedList packed_vjp;
    bool own_complete = true;
    for (int64_t id : barrier_.submitted()) {
      Worker& w = *workers_.at(id);
      for (int k = 0; k < w.num_products; ++k) {
        if (phase.vjp) AddSample(w.samples, w.packed, k, vjp, packed_vjp);
        if (phase.jvp) jvp.push_back(&w.jvp[k]);
        if (k < static_cast<int>(w.fused_vjp.size())) {
          own.push_back(&w.fused_vjp[k]);
        } else {
          own_complete = false;
        }
      }
    }
    // The bias meter: each sample's J_k^T xi_k from the step's fused
    // gradient round (a restored session's workers have none yet).
    if (config_->algorithm.bias_meter && !diagnostic) {
      if (!own_complete) own.clear();
      algorithm_->SetOwnProducts(own);
    }
    status =
        vjp.empty() && jvp.empty()
            ? absl::FailedPreconditionError("no valid product")
            : algorithm_->CompleteProducts(SampleSet(vjp, packed_vjp), jvp);
  }
  // Packed samples are read by the call above only (lazy probes keep
  // copies of their own): let go of what they hold (a transport's receive
  // buffers) now, not at the next submission.
  for (int64_t id : barrier_.submitted()) {
    for (PackedVector& packed : workers_.at(id)->packed) packed.Clear();
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
  barrier_.Open(PhaseKind());
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
  bool lost = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Worker& worker = *workers_.at(it->second.worker_id);
    if (Done() || barrier_.Owes(worker.id)) {
      worker.last_seen = clock_->Now();
      if (Deliver(worker, it->second.done, out)) {
        it = pending_.erase(it);
        continue;
      }
      lost = true;  // a repeated products round: it waits for the next one
    }
    ++it;
  }
  if (lost) AfterLostHolders(out);
}

void Session::Cancel(CallId call) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
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
  if (w == workers_.end() ||
      barrier_.state(worker_id) != WorkerState::kActive ||
      InFlight(worker_id) || !closed_.ok() || Done()) {
    return;
  }
  w->second->last_seen = clock_->Now();
  DropForLiveness(*w->second, kCancelledReason);
  MaybeClose(out);
}

void Session::Close(absl::Status why) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
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
  info.submitted = barrier_.count();
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
        id, w->name, barrier_.state(id), w->last_round, w->missed_deadlines,
        w->last_to_submit, w->reason,
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
