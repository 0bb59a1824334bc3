// Session: deadlines, worker leases and heartbeats (session.h, liveness.h).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/liveness.h"
#include "server/core/quote.h"
#include "server/core/session.h"
#include "server/core/session_internal.h"

namespace gameopt {

std::string Session::MissingWorkers() const {
  const RoundBarrier::Missing missing = barrier_.missing();
  std::vector<std::string> parts;
  for (int64_t id : missing.workers) {
    parts.push_back(absl::StrCat(id, " (", Quote(workers_.at(id)->name), ")"));
  }
  if (missing.never_joined > 0) {
    parts.push_back(
        absl::StrCat(missing.never_joined, " worker(s) that never joined"));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

void Session::DropMissing() {
  for (int64_t id : barrier_.DropMissing()) {
    Worker& w = *workers_.at(id);
    w.reason = absl::StrCat("missed the deadline of ", Where());
    ++w.missed_deadlines;
    Log(absl::StrCat("worker ", id, " (", Quote(w.name),
                     ") missed the deadline of ", Where(),
                     "; dropped from the round"));
  }
}

void Session::CheckDeadline() {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  if (!closed_.ok() || Done()) return;
  // The phase deadline first (a straggler past it counts a missed
  // deadline), then the leases of the round that is open after it.
  if (clock_->Now() >= deadline_) ApplyPhaseDeadline(out);
  if (!Done() && DropExpiredLeases()) MaybeClose(out);
}

void Session::ApplyPhaseDeadline(Outbox& out) {
  if (barrier_.QuorumReached()) {
    Log(absl::StrCat(Where(), ": deadline passed, proceeding with ",
                     barrier_.count(),
                     " worker(s); missing: ", MissingWorkers()));
    DropMissing();
    return CloseRound(out);
  }
  const std::string message = absl::StrCat(
      Where(), ": the quorum of ", barrier_.Quorum(),
      " worker(s) was not reached by the phase deadline (",
      absl::FormatDuration(config_->phase_deadline), "); submitted: [",
      absl::StrJoin(barrier_.submitted(), ", "),
      "]; missing: ", MissingWorkers(),
      ". Resubmit the same round (retries are idempotent) to wait again");
  Log(message);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (barrier_.Submitted(it->second.worker_id)) {
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
      if (barrier_.state(id) != WorkerState::kActive || InFlight(id)) {
        continue;
      }
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
    inactive += barrier_.state(id) != WorkerState::kActive;
  }
  // Oldest first; never one the open round still refers to.
  for (auto it = workers_.begin(); it != workers_.end() && inactive > cap;) {
    const int64_t id = it->first;
    if (barrier_.state(id) != WorkerState::kActive && !barrier_.Submitted(id) &&
        !barrier_.Holds(id) && !InFlight(id)) {
      barrier_.Forget(id);
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
  barrier_.SetState(worker.id, WorkerState::kDropped);
  worker.reason = std::move(reason);
  Log(absl::StrCat("worker ", worker.id, " (", Quote(worker.name),
                   ") dropped at ", Where(), ": ", worker.reason));
}

bool Session::DropExpiredLeases() {
  if (config_->worker_lease == absl::InfiniteDuration()) return false;
  const absl::Time now = clock_->Now();
  bool dropped = false;
  for (auto& [id, w] : workers_) {
    if (barrier_.state(id) != WorkerState::kActive || InFlight(id) ||
        now - w->last_seen < config_->worker_lease) {
      continue;
    }
    DropForLiveness(*w, LeaseExpiredReason(config_->worker_lease));
    dropped = true;
  }
  return dropped;
}

absl::StatusOr<WorkerState> Session::Heartbeat(int64_t worker_id,
                                               const Caller& caller) {
  absl::MutexLock lock(&mu_);
  if (!closed_.ok()) return closed_;
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker ", worker_id,
                                            " is not in session ", id_,
                                            "; call JoinSession first"));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return status;
  }
  if (barrier_.state(worker_id) == WorkerState::kLeft) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", worker_id, " left session ", id_,
                     "; call JoinSession with its id to rejoin"));
  }
  worker.last_seen = clock_->Now();
  if (barrier_.state(worker_id) == WorkerState::kDropped &&
      RoomFor(worker).ok()) {
    MarkActive(worker);
  }
  return barrier_.state(worker_id);
}

}  // namespace gameopt
