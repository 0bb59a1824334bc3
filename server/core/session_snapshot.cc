// Session: snapshots and restore (session.h, snapshot.h).
#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/core/session.h"
#include "server/core/session_internal.h"

namespace gameopt {

using session_internal::ValidateWorkerName;

namespace {

// Counters read from a checkpoint stay far from int64's end, so that
// incrementing them never overflows.
constexpr int64_t kMaxCounter = int64_t{1} << 60;

bool AllFinite(const FlatVector& v) {
  return v.dtype() == DType::kFloat64 ? v.as<double>().allFinite()
                                      : v.as<float>().allFinite();
}

}  // namespace

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
  snapshot.algorithm = algorithm_->ExportState();
  // A products phase some of whose probes are gone (let go of once sent,
  // Algorithm::HandOutPackedProbe) is exported as its step's start: the
  // restored session opens the step's gradient round again under its number, so
  // the workers draw the same minibatches and the run stays bit for bit the
  // uninterrupted one. No worker has submitted to that round then.
  const bool products =
      !diagnostic && algorithm_->phase().kind == PhaseSpec::Kind::kProducts;
  const bool step_start =
      products && snapshot.algorithm.phase != algorithm_->phase().index;
  if (step_start) snapshot.round = step_round_;
  snapshot.next_worker_id = next_worker_id_;
  snapshot.joined_ever = barrier_.joined_ever();
  for (const auto& [id, w] : workers_) {
    WorkerSnapshot& out = snapshot.workers.emplace_back();
    out.id = id;
    out.name = w->name;
    out.owner = w->owner;
    out.state = barrier_.state(id);
    // Its submission to the open round is left out: not a retry after a
    // restore, but the round's first submission again.
    out.last_round = w->last_round == round_ ? round_ - 1 : w->last_round;
    if (step_start) out.last_round = std::min(w->last_round, step_round_ - 1);
    out.missed_deadlines = w->missed_deadlines;
    out.num_samples = w->num_samples;
    // Sample holders matter in a products phase only (a gradient phase
    // closes by choosing them afresh).
    out.first_sample = products && !step_start && barrier_.Holds(id)
                           ? barrier_.holders().at(id)
                           : -1;
  }
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
      return absl::DataLossError(
          absl::StrCat("state vector '", absl::CHexEscape(v.name.substr(0, 64)),
                       "' is missing or holds a value that is not finite"));
    }
  }
  const AlgorithmState& a = snapshot.algorithm;
  if (a.step > kMaxCounter || a.point_version > kMaxCounter) {
    return absl::DataLossError(absl::StrCat("step ", a.step,
                                            " or parameter version ",
                                            a.point_version, " out of range"));
  }
  absl::Status status = algorithm_->ImportState(snapshot.algorithm);
  if (!status.ok()) return status;
  if (snapshot.round < 0 || snapshot.next_worker_id < 1 ||
      snapshot.joined_ever < 0 || snapshot.round > kMaxCounter ||
      snapshot.next_worker_id > kMaxCounter ||
      snapshot.joined_ever > kMaxCounter) {
    return absl::DataLossError(absl::StrCat(
        "round ", snapshot.round, ", next worker id ", snapshot.next_worker_id,
        ", joined ", snapshot.joined_ever, " are out of range"));
  }
  round_ = snapshot.round;
  next_worker_id_ = snapshot.next_worker_id;
  barrier_.set_joined_ever(snapshot.joined_ever);
  const int num_probes = static_cast<int>(algorithm_->probes().size());
  for (const WorkerSnapshot& in : snapshot.workers) {
    const bool state_known = in.state == WorkerState::kActive ||
                             in.state == WorkerState::kDropped ||
                             in.state == WorkerState::kLeft;
    const bool holder = in.first_sample >= 0;
    // In int64: first_sample + num_samples cannot overflow.
    const int64_t holder_end =
        static_cast<int64_t>(in.first_sample) + in.num_samples;
    if (in.id < 1 || in.id >= next_worker_id_ || workers_.count(in.id) > 0 ||
        !state_known || in.num_samples < 0 ||
        in.num_samples > config_->samples_per_worker || in.last_round < -1 ||
        in.last_round > round_ || in.missed_deadlines < 0 ||
        !ValidateWorkerName(in.name).ok() ||
        !ValidateWorkerName(in.owner).ok() ||
        (holder && holder_end > num_probes)) {
      return absl::DataLossError(absl::StrCat(
          "worker ", in.id, " (", absl::CHexEscape(in.name.substr(0, 64)), ", ",
          WorkerStateName(in.state),
          ") does not fit the session's workers and probes"));
    }
    auto worker = std::make_unique<Worker>();
    worker->id = in.id;
    worker->name = in.name;
    worker->owner = in.owner;
    worker->last_round = in.last_round;
    worker->missed_deadlines = in.missed_deadlines;
    worker->num_samples = in.num_samples;
    worker->last_seen = clock_->Now();  // a lease's time to come back
    barrier_.Restore(in.id, in.state);
    // A holder without samples holds none (as when its round closed).
    if (holder) barrier_.AddHolder(in.id, in.first_sample, in.num_samples);
    workers_.emplace(in.id, std::move(worker));
  }
  // The algorithm's phase is the restored one.
  barrier_.Open(PhaseKind());
  return absl::OkStatus();
}

}  // namespace gameopt
