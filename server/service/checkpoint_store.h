// CheckpointStore: session checkpoints as files in one folder (the server's
// --state_dir), one <session id>.ckpt per session, in the format of
// proto/gameopt/v1/checkpoint.proto (format 2 written, formats 1 and 2
// read: checkpoint_format.h).
//
// Writes are atomic: the bytes go to <id>.ckpt.tmp, which is fsync'ed and
// renamed over <id>.ckpt, and then the folder is fsync'ed. A crash at any
// point leaves either the previous checkpoint or the new one, plus perhaps
// a leftover .tmp file, which LoadAll removes. A write that fails (full
// disk, no file descriptors, a state too large to serialize) removes its
// .tmp file at once and leaves the previous checkpoint as it was. A file that
// does not parse or fails its checksum is an error naming the file: a session
// is never dropped silently.
//
// One server per folder: Open takes an exclusive lock on <dir>/LOCK
// (flock, released by the kernel if the process dies) until Release or
// destruction, so a second server on the same state_dir fails to start
// instead of overwriting the first one's checkpoints.
//
// Thread-safe. Writes are serialized; a snapshot older (by round, then by
// workers that joined) than the one last written for its session is
// skipped, so concurrent writers cannot roll a checkpoint back. Each
// session is tracked under a generation (Track): writes of another
// generation are skipped, so nothing of a deleted session is written after
// Remove, and a session created again under the same id is written again.
//
// OS errors map to codes by their cause: no space or file descriptors left
// RESOURCE_EXHAUSTED, a read-only or forbidden folder FAILED_PRECONDITION,
// others UNAVAILABLE; the message names the file and the cause.
#ifndef GAMEOPT_SERVER_SERVICE_CHECKPOINT_STORE_H_
#define GAMEOPT_SERVER_SERVICE_CHECKPOINT_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/snapshot.h"
#include "server/service/checkpoint_format.h"

namespace gameopt {

class CheckpointStore {
 public:
  // Creates `dir` (one level) if it does not exist, locks it and checks
  // that a file can be written and synced there. InvalidArgument for an
  // empty path, FailedPrecondition when another store holds the lock, the
  // OS error otherwise (a read-only folder fails here).
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(std::string dir);
  ~CheckpointStore();
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  // Releases the folder's lock (after the last Write, at shutdown).
  void Release();

  const std::string& dir() const { return dir_; }
  std::string PathOf(const std::string& session_id) const;

  // Every session checkpointed in the folder, by file name. Removes
  // leftover .tmp files first. An unreadable file fails the whole load,
  // the message naming it.
  absl::StatusOr<std::vector<SessionSnapshot>> LoadAll();

  // Writes of `session_id` under `generation` are taken from now on (those
  // of earlier generations skipped); forgets what was written for the id.
  void Track(const std::string& session_id, uint64_t generation);

  // Writes the snapshot atomically (see above) if its session is tracked
  // under `generation`, else does nothing (OK). InvalidArgument for an id
  // that is not a plain file name or a state that cannot be serialized; the
  // OS error naming the path otherwise.
  absl::Status Write(const SessionSnapshot& snapshot, uint64_t generation);

  // Deletes the session's checkpoint (OK if there is none) and stops
  // tracking it. On error (the file could not be deleted) nothing changes.
  absl::Status Remove(const std::string& session_id);

  // The largest data record of later writes (tests use small ones).
  void set_chunk_bytes(int64_t bytes) {
    absl::MutexLock lock(&mu_);
    chunk_bytes_ = bytes;
  }

 private:
  CheckpointStore(std::string dir, int lock_fd)
      : dir_(std::move(dir)), lock_fd_(lock_fd) {}

  const std::string dir_;
  int lock_fd_;  // -1 once released
  absl::Mutex mu_;
  // (round, next worker id) of the last snapshot written per session.
  std::map<std::string, std::pair<int64_t, int64_t>> written_
      ABSL_GUARDED_BY(mu_);
  // The tracked generation of each session.
  std::map<std::string, uint64_t> live_ ABSL_GUARDED_BY(mu_);
  int64_t chunk_bytes_ ABSL_GUARDED_BY(mu_) = kCheckpointChunkBytes;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CHECKPOINT_STORE_H_
