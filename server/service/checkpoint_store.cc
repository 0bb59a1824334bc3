#include "server/service/checkpoint_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/registry.h"
#include "server/service/checkpoint_format.h"

namespace gameopt {
namespace {

constexpr char kSuffix[] = ".ckpt";
constexpr char kTmpSuffix[] = ".ckpt.tmp";

// The code of an OS error (errno) at the wire: a full disk or no file
// descriptors left is RESOURCE_EXHAUSTED, a read-only or forbidden folder
// FAILED_PRECONDITION, anything else UNAVAILABLE.
absl::StatusCode CodeOf(int error) {
  switch (error) {
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::StatusCode::kResourceExhausted;
    case EROFS:
    case EACCES:
    case EPERM:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

absl::Status OsError(const std::string& what, const std::string& path,
                     int error = errno) {
  return absl::Status(
      CodeOf(error), absl::StrCat(what, " ", path, ": ", std::strerror(error)));
}

// Session ids become file names: ValidateSessionId's characters (letters,
// digits, '_', '.', '-'; never '/'), so "<id>.ckpt" is a plain name in the
// folder for every id a session can have.
bool IsPlainName(const std::string& id) { return ValidateSessionId(id).ok(); }

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(
    std::string dir) {
  if (dir.empty()) return absl::InvalidArgumentError("state_dir is empty");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return OsError("cannot create state_dir", dir);
  }
  struct stat info;
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("state_dir ", dir, " is not a folder"));
  }
  const std::string lock = dir + "/LOCK";
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return OsError("cannot open", lock);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "state_dir ", dir, " is in use by another gameopt_server (", lock,
        " is locked)"));
  }
  // Durable or refused: a folder the server cannot write to (read-only,
  // full, not ours) fails the start, not the first CreateSession.
  const std::string probe = dir + "/LOCK.probe";
  const int probe_fd =
      open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool writable = probe_fd >= 0;
  int error = errno;
  if (writable) {
    writable = write(probe_fd, "ok", 2) == 2 && fsync(probe_fd) == 0;
    error = errno;
    close(probe_fd);
    unlink(probe.c_str());
  }
  if (!writable) {
    close(fd);
    return OsError("cannot write to state_dir", dir, error);
  }
  return std::unique_ptr<CheckpointStore>(
      new CheckpointStore(std::move(dir), fd));
}

CheckpointStore::~CheckpointStore() { Release(); }

void CheckpointStore::Release() {
  absl::MutexLock lock(&mu_);
  if (lock_fd_ >= 0) close(lock_fd_);  // closing drops the flock
  lock_fd_ = -1;
}

std::string CheckpointStore::PathOf(const std::string& session_id) const {
  return absl::StrCat(dir_, "/", session_id, kSuffix);
}

absl::StatusOr<std::vector<SessionSnapshot>> CheckpointStore::LoadAll() {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
    const std::string path = entry.path().string();
    if (absl::EndsWith(path, kTmpSuffix)) {
      // A write that did not finish: the .ckpt beside it is the checkpoint.
      std::filesystem::remove(entry.path(), error);
    } else if (absl::EndsWith(path, kSuffix)) {
      files.push_back(path);
    }
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot list state_dir ", dir_, ": ", error.message()));
  }
  std::sort(files.begin(), files.end());
  std::vector<SessionSnapshot> out;
  for (const std::string& path : files) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open checkpoint", path);
    struct stat info;
    if (fstat(fd, &info) != 0) {
      absl::Status status = OsError("cannot stat checkpoint", path);
      close(fd);
      return status;
    }
    absl::StatusOr<SessionSnapshot> snapshot =
        ReadCheckpoint(fd, static_cast<int64_t>(info.st_size));
    close(fd);
    if (!snapshot.ok()) {
      return absl::DataLossError(
          absl::StrCat("checkpoint ", path, ": ", snapshot.status().message(),
                       "; move the file away to start without that session"));
    }
    if (PathOf(snapshot->id) != path) {
      return absl::DataLossError(absl::StrCat(
          "checkpoint ", path, " holds session '", snapshot->id, "'"));
    }
    out.push_back(*std::move(snapshot));
  }
  return out;
}

void CheckpointStore::Track(const std::string& session_id,
                            uint64_t generation) {
  absl::MutexLock lock(&mu_);
  live_[session_id] = generation;
  written_.erase(session_id);
}

absl::Status CheckpointStore::Write(const SessionSnapshot& snapshot,
                                    uint64_t generation) {
  if (!IsPlainName(snapshot.id)) {
    return absl::InvalidArgumentError(
        "a session id that cannot be a file name");
  }
  absl::MutexLock lock(&mu_);
  auto live = live_.find(snapshot.id);
  if (live == live_.end() || live->second != generation) {
    return absl::OkStatus();  // deleted (and perhaps created anew)
  }
  // Newer: a later round, or the same round with more workers.
  const std::pair<int64_t, int64_t> version{snapshot.round,
                                            snapshot.next_worker_id};
  auto written = written_.find(snapshot.id);
  if (written != written_.end() && written->second > version) {
    return absl::OkStatus();  // a newer one is on disk
  }
  const std::string path = PathOf(snapshot.id);
  const std::string tmp = path + ".tmp";
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return OsError("cannot create", tmp);
  // Whatever fails, the partial file goes (it would hold disk space other
  // sessions' writes need) and the previous checkpoint stays.
  auto fail = [&](absl::Status status) {
    close(fd);
    unlink(tmp.c_str());
    return status;
  };
  if (absl::Status status = WriteCheckpoint(fd, snapshot, chunk_bytes_);
      !status.ok()) {
    if (status.code() == absl::StatusCode::kInvalidArgument) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("cannot write ", tmp, ": ", status.message())));
    }
    return fail(OsError("cannot write", tmp));
  }
  if (fsync(fd) != 0) return fail(OsError("cannot fsync", tmp));
  if (close(fd) != 0) {
    const int error = errno;
    unlink(tmp.c_str());
    return OsError("cannot close", tmp, error);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(tmp.c_str());
    return OsError("cannot rename over", path, error);
  }
  // The rename itself is durable once the folder is.
  const int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return OsError("cannot open", dir_);
  const int synced = fsync(dir);
  const int error = errno;
  close(dir);
  if (synced != 0) return OsError("cannot fsync", dir_, error);
  written_[snapshot.id] = version;
  return absl::OkStatus();
}

absl::Status CheckpointStore::Remove(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  if (IsPlainName(session_id)) {
    const std::string path = PathOf(session_id);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return OsError("cannot delete checkpoint", path);
    }
  }
  live_.erase(session_id);
  written_.erase(session_id);
  return absl::OkStatus();
}

}  // namespace gameopt
