#include "server/service/checkpointer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gameopt {

int64_t Checkpointer::EverySteps(int64_t every_steps, int64_t dimension) {
  if (every_steps > 0) return every_steps;
  return std::max<int64_t>(
      1, (dimension + kAutoCoordinates - 1) / kAutoCoordinates);
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(
    const std::string& state_dir, int64_t every_steps,
    SessionRegistry* registry, LogSink log) {
  absl::StatusOr<std::unique_ptr<CheckpointStore>> store =
      CheckpointStore::Open(state_dir);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::vector<SessionSnapshot>> snapshots = (*store)->LoadAll();
  if (!snapshots.ok()) return snapshots.status();
  // Every checkpoint must restore before any session joins the registry:
  // a failed Start leaves the registry as it was.
  for (const SessionSnapshot& snapshot : *snapshots) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Restore(snapshot, RealClock());
    if (!session.ok()) {
      return absl::Status(
          session.status().code(),
          absl::StrCat("checkpoint ", (*store)->PathOf(snapshot.id), ": ",
                       session.status().message()));
    }
  }
  std::unique_ptr<Checkpointer> checkpointer(new Checkpointer(
      *std::move(store), every_steps, registry, std::move(log)));
  for (const SessionSnapshot& snapshot : *snapshots) {
    const std::string path = checkpointer->store_->PathOf(snapshot.id);
    absl::StatusOr<std::shared_ptr<Session>> session =
        registry->Restore(snapshot);
    if (!session.ok()) {  // a session of that id exists already
      checkpointer->Log(absl::StrCat("not restored from ", path, ": ",
                                     session.status().message()));
      continue;
    }
    checkpointer->Track(**session);
    checkpointer->Log(absl::StrCat(
        "restored session ", snapshot.id, " at step ", snapshot.algorithm.step,
        " phase ", snapshot.algorithm.phase, " (round ", snapshot.round,
        ") from ", path));
  }
  return checkpointer;
}

Checkpointer::Checkpointer(std::unique_ptr<CheckpointStore> store,
                           int64_t every_steps, SessionRegistry* registry,
                           LogSink log)
    : store_(std::move(store)),
      every_steps_(every_steps),
      registry_(registry),
      log_(std::move(log)) {
  SessionListener listener;
  listener.round_opened = [this](Session& session, int64_t step, int phase) {
    OnRoundOpened(session, step, phase);
  };
  listener.worker_added = [this](Session& session) {
    return WriteNow(session);
  };
  registry_->set_session_listener(std::move(listener));
  registry_->set_create_listener([this](Session& session) {
    Track(session);
    absl::Status status = WriteNow(session);
    if (!status.ok()) Untrack(session);
    return status;
  });
  registry_->set_delete_listener(
      [this](const std::string& id) { return OnDeleted(id); });
  writer_ = std::thread([this] { WriterLoop(); });
}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Log(absl::string_view line) const {
  if (log_) log_(line);
}

void Checkpointer::Track(const Session& session) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = next_generation_++;
    live_[session.id()] = {&session, generation};
  }
  store_->Track(session.id(), generation);
}

void Checkpointer::Untrack(const Session& session) {
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(session.id());
    if (it == live_.end() || it->second.first != &session) return;
    live_.erase(it);
    queue_.erase(session.id());
  }
  // The failed write left no file; a stale one is gone with it.
  if (absl::Status status = store_->Remove(session.id()); !status.ok()) {
    Log(status.message());
  }
}

uint64_t Checkpointer::GenerationOf(const Session& session) const {
  auto it = live_.find(session.id());
  if (it == live_.end() || it->second.first != &session) return 0;
  return it->second.second;
}

void Checkpointer::OnRoundOpened(Session& session, int64_t step, int phase) {
  if (phase != 0) return;
  const int64_t every = EverySteps(every_steps_, session.layout().dimension());
  const int64_t max_steps = session.config().max_steps;
  if (step % every != 0 && !(max_steps > 0 && step >= max_steps)) return;
  SessionSnapshot snapshot = session.Snapshot();
  absl::MutexLock lock(&mu_);
  if (stopping_) return;  // Stop writes the final state
  const uint64_t generation = GenerationOf(session);
  if (generation == 0) return;  // deleted
  auto it = queue_.find(snapshot.id);
  if (it == queue_.end() || it->second.generation != generation) {
    queue_[snapshot.id] = Queued{generation, std::move(snapshot)};
  } else if (it->second.snapshot.round <= snapshot.round &&
             it->second.snapshot.next_worker_id <= snapshot.next_worker_id) {
    it->second.snapshot = std::move(snapshot);
  }
}

absl::Status Checkpointer::OnDeleted(const std::string& id) {
  // After this, the store skips writes for the id (one the writer holds).
  if (absl::Status status = store_->Remove(id); !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("session ", id,
                                     " was not deleted: its checkpoint "
                                     "could not be removed (",
                                     status.message(), ")"));
  }
  absl::MutexLock lock(&mu_);
  queue_.erase(id);
  live_.erase(id);
  return absl::OkStatus();
}

absl::Status Checkpointer::Write(const SessionSnapshot& snapshot,
                                 uint64_t generation) {
  // A failed background write is logged and the session goes on: the
  // previous checkpoint stays valid, and the next step boundary tries
  // again. The callers of WriteNow answer it.
  absl::Status status = store_->Write(snapshot, generation);
  if (!status.ok()) {
    Log(absl::StrCat("checkpoint of session ", snapshot.id,
                     " failed: ", status.message()));
  }
  return status;
}

bool Checkpointer::WriterHasWork() const {
  return !queue_.empty() || stopping_;
}

absl::Status Checkpointer::WriteNow(const Session& session) {
  SessionSnapshot snapshot = session.Snapshot();
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::UnavailableError(
          "the server is shutting down; retry on its successor");
    }
    generation = GenerationOf(session);
  }
  if (generation == 0) return absl::OkStatus();  // being deleted
  absl::Status status = Write(snapshot, generation);
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("the server could not checkpoint session ",
                                   snapshot.id, ": ", status.message()));
}

void Checkpointer::WriterLoop() {
  while (true) {
    std::map<std::string, Queued> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Checkpointer::WriterHasWork));
      if (queue_.empty()) return;  // stopping, nothing left
      batch.swap(queue_);
    }
    for (const auto& [id, queued] : batch) {
      Write(queued.snapshot, queued.generation).IgnoreError();  // logged
    }
  }
}

void Checkpointer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  writer_.join();  // after the queued writes
  const std::vector<std::shared_ptr<Session>> sessions = registry_->List();
  size_t failed = 0;
  for (const std::shared_ptr<Session>& session : sessions) {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = GenerationOf(*session);
    }
    if (generation == 0) continue;
    failed += !Write(session->Snapshot(), generation).ok();
  }
  Log(absl::StrCat("checkpointed ", sessions.size() - failed, " session(s) in ",
                   store_->dir(),
                   failed > 0 ? absl::StrCat("; ", failed,
                                             " failed (see above), their "
                                             "previous checkpoints stay")
                              : ""));
  // A successor may start while this process is still exiting.
  store_->Release();
}

}  // namespace gameopt
