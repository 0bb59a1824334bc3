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
#include "gameopt/v1/checkpoint.pb.h"
#include "server/service/config_convert.h"

namespace gameopt {
namespace {

constexpr char kSuffix[] = ".ckpt";
constexpr char kTmpSuffix[] = ".ckpt.tmp";

uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

absl::Status OsError(const std::string& what, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Session ids become file names: letters, digits, '-' and '_' only.
bool IsPlainName(const std::string& id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

void VectorToProto(const NamedVector& in, v1::CheckpointVector* out) {
  out->set_name(in.name);
  out->set_dtype(DTypeToProto(in.value->dtype()));
  // FlatVector holds host-order IEEE values; gameopt runs on little-endian
  // hosts only (as the wire format).
  out->set_data(static_cast<const char*>(in.value->data()),
                in.value->bytes());
}

absl::StatusOr<NamedVector> VectorFromProto(const v1::CheckpointVector& in) {
  absl::StatusOr<DType> dtype =
      DTypeFromProto(in.dtype(), absl::StrCat("vector '", in.name(), "'"));
  if (!dtype.ok()) return absl::DataLossError(dtype.status().message());
  const size_t width = DTypeSize(*dtype);
  if (in.data().size() % width != 0) {
    return absl::DataLossError(absl::StrCat(
        "vector '", in.name(), "' has ", in.data().size(),
        " bytes, not a multiple of ", width));
  }
  auto value = std::make_shared<FlatVector>(
      *dtype, static_cast<int64_t>(in.data().size() / width));
  std::memcpy(value->mutable_data(), in.data().data(), in.data().size());
  return NamedVector{in.name(), std::move(value)};
}

}  // namespace

std::string EncodeCheckpoint(const SessionSnapshot& snapshot) {
  v1::Checkpoint checkpoint;
  checkpoint.set_session_id(snapshot.id);
  SessionConfigToProto(*snapshot.config, checkpoint.mutable_config());
  checkpoint.set_round(snapshot.round);
  checkpoint.set_next_worker_id(snapshot.next_worker_id);
  checkpoint.set_joined_ever(snapshot.joined_ever);
  for (const WorkerSnapshot& w : snapshot.workers) {
    v1::CheckpointWorker* out = checkpoint.add_workers();
    out->set_id(w.id);
    out->set_name(w.name);
    out->set_state(w.state);
    out->set_last_round(w.last_round);
    out->set_missed_deadlines(w.missed_deadlines);
    out->set_num_samples(w.num_samples);
    out->set_first_sample(w.first_sample);
  }
  v1::CheckpointAlgorithm* a = checkpoint.mutable_algorithm();
  a->set_step(snapshot.algorithm.step);
  a->set_phase(snapshot.algorithm.phase);
  a->set_point_version(snapshot.algorithm.point_version);
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    VectorToProto(v, a->add_vectors());
  }
  for (const NamedScalar& s : snapshot.algorithm.scalars) {
    v1::CheckpointScalar* out = a->add_scalars();
    out->set_name(s.name);
    out->set_value(s.value);
  }
  v1::CheckpointFile file;
  file.set_format_version(kCheckpointFormatVersion);
  checkpoint.SerializeToString(file.mutable_checkpoint());
  file.set_checksum(Fnv1a64(file.checkpoint()));
  return file.SerializeAsString();
}

absl::StatusOr<SessionSnapshot> DecodeCheckpoint(absl::string_view bytes) {
  v1::CheckpointFile file;
  if (!file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("not a checkpoint file (cut short?)");
  }
  if (file.format_version() != kCheckpointFormatVersion) {
    return absl::DataLossError(absl::StrCat(
        "format version ", file.format_version(), ", this server reads ",
        kCheckpointFormatVersion));
  }
  if (Fnv1a64(file.checkpoint()) != file.checksum()) {
    return absl::DataLossError("checksum mismatch (cut short or corrupt)");
  }
  v1::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(file.checkpoint())) {
    return absl::DataLossError("the checkpoint does not parse");
  }
  absl::StatusOr<SessionConfig> config =
      SessionConfigFromProto(checkpoint.config());
  if (!config.ok()) return config.status();
  SessionSnapshot snapshot;
  snapshot.id = checkpoint.session_id();
  snapshot.config = std::make_shared<const SessionConfig>(*std::move(config));
  snapshot.round = checkpoint.round();
  snapshot.next_worker_id = checkpoint.next_worker_id();
  snapshot.joined_ever = checkpoint.joined_ever();
  for (const v1::CheckpointWorker& w : checkpoint.workers()) {
    snapshot.workers.push_back(WorkerSnapshot{
        w.id(), w.name(), w.state(), w.last_round(), w.missed_deadlines(),
        w.num_samples(), w.first_sample()});
  }
  const v1::CheckpointAlgorithm& a = checkpoint.algorithm();
  snapshot.algorithm.step = a.step();
  snapshot.algorithm.phase = a.phase();
  snapshot.algorithm.point_version = a.point_version();
  for (const v1::CheckpointVector& v : a.vectors()) {
    absl::StatusOr<NamedVector> vector = VectorFromProto(v);
    if (!vector.ok()) return vector.status();
    snapshot.algorithm.vectors.push_back(*std::move(vector));
  }
  for (const v1::CheckpointScalar& s : a.scalars()) {
    snapshot.algorithm.scalars.push_back({s.name(), s.value()});
  }
  return snapshot;
}

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
    std::string bytes;
    char buffer[1 << 16];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) bytes.append(buffer, n);
    close(fd);
    if (n < 0) return OsError("cannot read checkpoint", path);
    absl::StatusOr<SessionSnapshot> snapshot = DecodeCheckpoint(bytes);
    if (!snapshot.ok()) {
      return absl::DataLossError(absl::StrCat(
          "checkpoint ", path, ": ", snapshot.status().message(),
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

absl::Status CheckpointStore::Write(const SessionSnapshot& snapshot) {
  if (!IsPlainName(snapshot.id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session id '", snapshot.id, "' cannot be a file name"));
  }
  absl::MutexLock lock(&mu_);
  if (removed_.count(snapshot.id) > 0) return absl::OkStatus();
  // Newer: a later round, or the same round with more workers.
  const std::pair<int64_t, int64_t> version{snapshot.round,
                                            snapshot.next_worker_id};
  auto written = written_.find(snapshot.id);
  if (written != written_.end() && written->second > version) {
    return absl::OkStatus();  // a newer one is on disk
  }
  const std::string bytes = EncodeCheckpoint(snapshot);
  const std::string path = PathOf(snapshot.id);
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
  if (fd < 0) return OsError("cannot create", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = OsError("cannot write", tmp);
      close(fd);
      return status;
    }
    done += n;
  }
  if (fsync(fd) != 0) {
    absl::Status status = OsError("cannot fsync", tmp);
    close(fd);
    return status;
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return OsError("cannot rename over", path);
  }
  // The rename itself is durable once the folder is.
  const int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return OsError("cannot open", dir_);
  const int synced = fsync(dir);
  close(dir);
  if (synced != 0) return OsError("cannot fsync", dir_);
  written_[snapshot.id] = version;
  return absl::OkStatus();
}

absl::Status CheckpointStore::Remove(const std::string& session_id) {
  if (!IsPlainName(session_id)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  removed_.insert(session_id);
  written_.erase(session_id);
  const std::string path = PathOf(session_id);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return OsError("cannot delete checkpoint", path);
  }
  return absl::OkStatus();
}

}  // namespace gameopt
