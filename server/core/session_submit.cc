// Session: submissions (session.h): the checks every submission passes,
// decoding its values into the worker's buffers, and entering the answer
// in the round barrier.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/quote.h"
#include "server/core/session.h"
#include "server/core/session_internal.h"

namespace gameopt {

void Session::SubmitGradient(int64_t worker_id, const Submission& submission,
                             TaskCallback done, CallId* call,
                             const Caller& caller) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  Worker* worker = Admit(PhaseSpec::Kind::kGradient, worker_id, submission,
                         done, call, caller, out);
  if (worker == nullptr) return;
  // Before the sample policy: a worker that does not answer cross
  // gradients must hear so, not have its samples dropped round after round.
  const int loss = algorithm_->phase().loss;
  const std::string wanted =
      loss < 0 ? std::string() : algorithm_->layout().players()[loss].name;
  if (submission.loss_player != wanted) {
    if (submission.loss_player.empty()) {
      return out.Add(
          std::move(done),
          absl::FailedPreconditionError(absl::StrCat(
              "this ", AlgorithmName(config_->algorithm.kind),
              " session asks for a cross gradient (task kind CROSS_GRADIENT): "
              "the gradient of player '",
              wanted,
              "''s loss with respect to every player's parameters, submitted "
              "with loss_player = '",
              wanted,
              "'; the worker sent its own gradient xi instead: use a worker "
              "that answers CROSS_GRADIENT tasks")));
    }
    return out.Add(
        std::move(done),
        absl::InvalidArgumentError(absl::StrCat(
            "loss_player: the task asks for ",
            loss < 0
                ? std::string("the simultaneous gradient xi (no loss_player)")
                : absl::StrCat("the gradients of player '", wanted, "''s loss"),
            ", got loss_player '", Quote(submission.loss_player), "'")));
  }
  if (absl::Status status = AcceptGradient(*worker, submission); !status.ok()) {
    if (!DropsInvalid(*worker, status)) return out.Add(std::move(done), status);
    worker->num_samples = 0;
    worker->scalars.clear();
  }
  Enter(*worker, std::move(done), call, out);
}

void Session::SubmitProducts(int64_t worker_id, const Submission& submission,
                             TaskCallback done, CallId* call,
                             const Caller& caller) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  Worker* worker = Admit(PhaseSpec::Kind::kProducts, worker_id, submission,
                         done, call, caller, out);
  if (worker == nullptr) return;
  if (absl::Status status = AcceptProducts(*worker, submission); !status.ok()) {
    if (!DropsInvalid(*worker, status)) return out.Add(std::move(done), status);
    worker->num_products = 0;
  }
  Enter(*worker, std::move(done), call, out);
}

Session::Worker* Session::Admit(PhaseSpec::Kind kind, int64_t worker_id,
                                const Submission& submission,
                                TaskCallback& done, CallId* call,
                                const Caller& caller, Outbox& out) {
  // Answers `done` with `result`; nullptr: nothing to accept.
  auto answer = [&](absl::StatusOr<Task> result) -> Worker* {
    out.Add(std::move(done), std::move(result));
    return nullptr;
  };
  if (call != nullptr) *call = 0;
  if (!closed_.ok()) return answer(closed_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return answer(absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " is not in session ", id_,
                     "; call JoinSession first")));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return answer(status);
  }
  worker.last_seen = clock_->Now();
  if (barrier_.state(worker_id) == WorkerState::kLeft) {
    return answer(absl::FailedPreconditionError(
        absl::StrCat("worker ", worker_id, " left session ", id_,
                     "; call JoinSession with its id to rejoin")));
  }
  if (worker.last_round >= 0 && submission.round == worker.last_round) {
    // A retry: answered again with the worker's current task, never
    // applied twice. A dropped worker comes back as Join would take it.
    if (absl::Status status = RoomFor(worker); !status.ok()) {
      return answer(status);
    }
    MarkActive(worker);
    Wait(worker, std::move(done), call, out);
    return nullptr;
  }
  if (Done()) return answer(MakeTask(worker));
  if (submission.round != round_) {
    return answer(absl::FailedPreconditionError(absl::StrCat(
        "round ", submission.round, " (step ", submission.step, " phase ",
        submission.phase, ") is ",
        submission.round < round_ ? "closed" : "not open yet", "; session ",
        id_, " is at ", Where(), "; call JoinSession with worker_id ",
        worker_id, " to get the current task")));
  }
  const PhaseSpec& phase = algorithm_->phase();
  if (submission.step != algorithm_->step() ||
      submission.phase != phase.index) {
    return answer(absl::InvalidArgumentError(
        absl::StrCat("step ", submission.step, " phase ", submission.phase,
                     " do not match round ", round_, ", which is ", Where())));
  }
  if (kind != phase.kind) {
    return answer(absl::FailedPreconditionError(absl::StrCat(
        Where(), " wants ",
        kind != PhaseSpec::Kind::kProducts
            ? "Jacobian products: call SubmitJacobianProducts"
        : phase.loss >= 0
            ? "cross gradients (task kind CROSS_GRADIENT, which this " +
                  std::string(AlgorithmName(config_->algorithm.kind)) +
                  " session needs): call SubmitGradient with the gradients "
                  "of the task's loss_player's loss; a worker that does not "
                  "know CROSS_GRADIENT cannot take part"
            : "gradients: call SubmitGradient")));
  }
  if (absl::Status status = RoomFor(worker); !status.ok()) {
    return answer(status);
  }
  if (!barrier_.Owes(worker_id)) {
    return answer(absl::FailedPreconditionError(
        absl::StrCat("worker ", worker_id, " holds no gradient sample of ",
                     Where(), "; call JoinSession to wait for its next task")));
  }
  return &worker;
}

bool Session::DropsInvalid(const Worker& worker,
                           const absl::Status& status) const {
  if (config_->invalid_sample_policy == InvalidSamplePolicy::kReject) {
    return false;
  }
  Log(absl::StrCat("dropped the sample of worker ", worker.id, " at ", Where(),
                   ": ", status.message()));
  return true;
}

void Session::Enter(Worker& worker, TaskCallback done, CallId* call,
                    Outbox& out) {
  barrier_.Submit(worker.id);
  worker.last_round = round_;
  MarkActive(worker);
  Wait(worker, std::move(done), call, out);
  const int64_t round = round_;
  const int submitters = barrier_.count();
  MaybeClose(out);
  if (round_ != round && submitters >= 2) ++worker.last_to_submit;
}

bool Session::KeepsPacked() const {
  return algorithm_->TakesPackedSamples() && !FusedRound();
}

absl::Status Session::AcceptSample(const SampleView& view,
                                   const std::vector<int>& players,
                                   const std::string& field, bool keep_packed,
                                   const Submission& submission,
                                   FlatVector& dense, PackedVector* packed) {
  const Compression wire = config_->wire.from_workers;
  if (packed != nullptr && keep_packed &&
      PackFormat(view, wire, config_->dtype).has_value()) {
    return PackSample(view, algorithm_->layout(), players, field, *packed, wire,
                      config_->dtype, submission.keep_alive);
  }
  if (packed != nullptr) packed->Clear();
  return DecodeSample(view, algorithm_->layout(), players, config_->dtype,
                      field, dense, wire);
}

absl::Status Session::AcceptProducts(Worker& worker,
                                     const Submission& submission) {
  const GameLayout& layout = algorithm_->layout();
  if (!submission.scalars.empty()) {
    return absl::InvalidArgumentError(
        "scalars: reported scalars go with gradient submissions only");
  }
  const PhaseSpec& phase = algorithm_->phase();
  const int n = worker.num_samples;
  std::vector<int> all(layout.num_players());
  for (int p = 0; p < layout.num_players(); ++p) all[p] = p;
  const bool keep_packed = KeepsPacked();
  struct Kind {
    bool wanted;
    const std::vector<SampleView>& views;
    std::vector<FlatVector>& out;
    std::vector<PackedVector>* packed;  // vjp only
    const char* field;
  };
  for (const Kind& kind :
       {Kind{phase.vjp, submission.vjp, worker.samples, &worker.packed, "vjp"},
        Kind{phase.jvp, submission.jvp, worker.jvp, nullptr, "jvp"}}) {
    const int expected = kind.wanted ? n : 0;
    if (static_cast<int>(kind.views.size()) != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind.field, ": the task asks for ", expected,
                       " product(s) (one per probe), got ", kind.views.size()));
    }
    if (static_cast<int>(kind.out.size()) < expected) {
      kind.out.resize(expected);
    }
    if (kind.packed != nullptr && static_cast<int>(kind.packed->size()) <
                                      static_cast<int>(kind.out.size())) {
      kind.packed->resize(kind.out.size());
    }
    for (int k = 0; k < expected; ++k) {
      absl::Status status = AcceptSample(
          kind.views[k], all, absl::StrCat(kind.field, "[", k, "]"),
          keep_packed, submission, kind.out[k],
          kind.packed != nullptr ? &(*kind.packed)[k] : nullptr);
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
  const bool fused_jvp = fused && FusedJvp();
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
  worker.packed.resize(n);
  const bool keep_packed = KeepsPacked();
  for (int k = 0; k < n; ++k) {
    absl::Status status =
        AcceptSample(submission.gradients[k], algorithm_->phase().players,
                     absl::StrCat("gradients[", k, "]"), keep_packed,
                     submission, worker.samples[k], &worker.packed[k]);
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
      absl::Status status = DecodeSample(p.views[k], layout, all, dtype,
                                         absl::StrCat(p.field, "[", k, "]"),
                                         p.out[k], config_->wire.from_workers);
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

}  // namespace gameopt
