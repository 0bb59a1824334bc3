// CheckpointStore: session checkpoints as files in one folder (the server's
// --state_dir), one <session id>.ckpt per session, in the format of
// proto/gameopt/v1/checkpoint.proto.
//
// Writes are atomic: the bytes go to <id>.ckpt.tmp, which is fsync'ed and
// renamed over <id>.ckpt, and then the folder is fsync'ed. A crash at any
// point leaves either the previous checkpoint or the new one, plus perhaps
// a leftover .tmp file, which LoadAll removes. A file that does not parse
// or fails its checksum is an error naming the file: a session is never
// dropped silently.
//
// One server per folder: Open takes an exclusive lock on <dir>/LOCK
// (flock, released by the kernel if the process dies) until Release or
// destruction, so a second server on the same state_dir fails to start
// instead of overwriting the first one's checkpoints.
//
// Thread-safe. Writes are serialized; a snapshot older (by round, then by
// workers that joined) than the one last written for its session is skipped, so concurrent writers
// cannot roll a checkpoint back, and nothing is written for a session after
// Remove.
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

namespace gameopt {

// The CheckpointFile.format_version this server writes and reads.
inline constexpr uint32_t kCheckpointFormatVersion = 1;

// Snapshot <-> the bytes of a CheckpointFile. DecodeCheckpoint's errors are
// DataLoss (cut short, checksum, unknown version, a vector whose byte count
// does not fit its dtype) or the config's InvalidArgument.
std::string EncodeCheckpoint(const SessionSnapshot& snapshot);
absl::StatusOr<SessionSnapshot> DecodeCheckpoint(absl::string_view bytes);

class CheckpointStore {
 public:
  // Creates `dir` (one level) if it does not exist and locks it.
  // InvalidArgument for an empty path, FailedPrecondition when another
  // store holds the lock, the OS error otherwise.
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(
      std::string dir);
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

  // Writes the snapshot atomically (see above). InvalidArgument for an id
  // that is not a plain file name; the OS error naming the path otherwise.
  absl::Status Write(const SessionSnapshot& snapshot);

  // Deletes the session's checkpoint (OK if there is none) and skips later
  // writes for it.
  absl::Status Remove(const std::string& session_id);

 private:
  CheckpointStore(std::string dir, int lock_fd)
      : dir_(std::move(dir)), lock_fd_(lock_fd) {}

  const std::string dir_;
  int lock_fd_;  // -1 once released
  absl::Mutex mu_;
  // (round, next worker id) of the last snapshot written per session.
  std::map<std::string, std::pair<int64_t, int64_t>> written_
      ABSL_GUARDED_BY(mu_);
  std::set<std::string> removed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CHECKPOINT_STORE_H_
