// Session: joining, rejoining, leaving and acting for a worker (session.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/quote.h"
#include "server/core/session.h"
#include "server/core/session_internal.h"

namespace gameopt {

using session_internal::ValidateWorkerName;

void Session::Join(int64_t worker_id, std::string name, TaskCallback done,
                   CallId* call, bool resume_by_name, const Caller& caller) {
  int64_t added = 0;
  {
    OutboxLock lock(this);
    Outbox& out = lock.out();
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
        const bool own =
            caller.acts_for_any || w->owner.empty() || w->owner == caller.owner;
        if (w->name == name && own) {
          worker_id = id;
          break;
        }
      }
    }
    if (worker_id == 0) {
      if (barrier_.active() >= k) {
        return out.Add(
            std::move(done),
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
      barrier_.Join(worker->id);
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
  OutboxLock lock(this);
  Outbox& out = lock.out();
  auto it = workers_.find(worker_id);
  if (!recorded.ok()) {
    if (it != workers_.end() && it->second->last_round < 0) {
      workers_.erase(it);
      barrier_.Unjoin(worker_id);
      Log(absl::StrCat("worker ", worker_id,
                       " removed again: ", recorded.message()));
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
  if (barrier_.state(worker.id) == WorkerState::kActive ||
      barrier_.active() < k) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "session ", id_, " already has ", k, " active workers; worker ",
      worker.id, " cannot rejoin until one leaves"));
}

void Session::MarkActive(Worker& worker) {
  if (barrier_.state(worker.id) == WorkerState::kActive) return;
  barrier_.SetState(worker.id, WorkerState::kActive);
  worker.reason.clear();
  Log(absl::StrCat("worker ", worker.id, " (", Quote(worker.name),
                   ") rejoined at ", Where()));
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

absl::Status Session::Leave(int64_t worker_id, const Caller& caller) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " is not in session ", id_));
  }
  Worker& worker = *it->second;
  if (absl::Status status = ActFor(worker, caller); !status.ok()) {
    return status;
  }
  if (barrier_.state(worker_id) == WorkerState::kLeft) return absl::OkStatus();
  barrier_.SetState(worker_id, WorkerState::kLeft);
  worker.reason = "left (LeaveSession)";
  Log(absl::StrCat("worker ", worker_id, " (", Quote(worker.name), ") left at ",
                   Where()));
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->second.worker_id == worker_id) {
      out.Add(std::move(p->second.done),
              absl::CancelledError(
                  absl::StrCat("worker ", worker_id, " left the session")));
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  if (closed_.ok() && !Done()) MaybeClose(out);
  return absl::OkStatus();
}

}  // namespace gameopt
