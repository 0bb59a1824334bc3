// Checkpointer: the persistence of a GameOptServer with a state_dir. It
// restores the sessions checkpointed there into the registry, decides when
// a session is checkpointed, and writes the checkpoints behind the sessions
// on its own thread, so that no worker waits for the disk.
//
// When: at a step boundary every EverySteps() steps and when the session is
// done, the session's snapshot is taken at once (Session::Snapshot, on the
// thread that closed the round, before the workers get their next task) and
// queued; the writer thread writes the newest queued snapshot of each
// session (CheckpointStore::Write: atomic and durable). A crash loses at
// most the steps since the last completed write: the restored session
// reopens that round and the workers, which retry and rejoin on their own,
// redo those steps with the same seeds, hence the same values.
//
// What a restored session must never miss is written at once, before the
// call that caused it returns: a new session (before CreateSession answers)
// and a new worker (before it learns its id), so that after a crash every
// session and every worker id handed out is known. Durable or refused: when
// that write fails, the call fails with the cause (no space, read-only,
// no file descriptors) and the session or worker is not added. Deleting a
// session deletes its checkpoint first; if that fails the session stays.
//
// Stop() (at shutdown, after the
// sessions were closed) drains the queue, writes every session's current
// state and releases the folder for a successor.
//
// Thread-safe.
#ifndef GAMEOPT_SERVER_SERVICE_CHECKPOINTER_H_
#define GAMEOPT_SERVER_SERVICE_CHECKPOINTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/registry.h"
#include "server/service/checkpoint_store.h"
#include "server/service/game_optimizer_service.h"

namespace gameopt {

class Checkpointer {
 public:
  // The automatic interval: a session of d coordinates is checkpointed every
  // ceil(d / kAutoCoordinates) steps, i.e. every step up to 1 Mi coordinates
  // (4 MiB of float32 parameters), and about that many coordinates per step
  // on average beyond.
  static constexpr int64_t kAutoCoordinates = int64_t{1} << 20;
  // `every_steps` if positive, else the automatic interval.
  static int64_t EverySteps(int64_t every_steps, int64_t dimension);

  // Locks and loads `state_dir` (CheckpointStore), restores its sessions
  // into `registry` and hooks into it (round and delete listeners: call it
  // before the registry is shared with other threads). Errors name the
  // file; no session is dropped silently. `registry` must outlive the
  // Checkpointer.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(
      const std::string& state_dir, int64_t every_steps,
      SessionRegistry* registry, LogSink log);

  // Stops if still running.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Writes what is queued, then every session's current state, and
  // releases the folder. Idempotent; later step boundaries write nothing.
  void Stop();

 private:
  Checkpointer(std::unique_ptr<CheckpointStore> store, int64_t every_steps,
               SessionRegistry* registry, LogSink log);

  struct Queued {
    uint64_t generation = 0;
    SessionSnapshot snapshot;
  };
  // Each session object gets its own generation (ids can be deleted and
  // created again), under which the store takes its writes.
  void Track(const Session& session);
  void Untrack(const Session& session);
  // 0 when `session` is not (or no longer) the live one of its id.
  uint64_t GenerationOf(const Session& session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnRoundOpened(Session& session, int64_t step, int phase);
  absl::Status OnDeleted(const std::string& id);
  void WriterLoop();
  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(const SessionSnapshot& snapshot, uint64_t generation);
  // Creation and new workers: written at once, on the caller's thread; the
  // error (which the caller answers) says why the state is not on disk.
  absl::Status WriteNow(const Session& session);
  void Log(absl::string_view line) const;

  const std::unique_ptr<CheckpointStore> store_;
  const int64_t every_steps_;
  SessionRegistry* const registry_;
  const LogSink log_;
  std::thread writer_;

  mutable absl::Mutex mu_;
  // The newest snapshot of each session waiting for the writer.
  std::map<std::string, Queued> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<const Session*, uint64_t>> live_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CHECKPOINTER_H_
