#include "server/service/checkpoint_format.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gameopt/v1/checkpoint.pb.h"
#include "server/core/worker_state.h"
#include "server/service/config_convert.h"

namespace gameopt {
namespace {

constexpr char kMagic[] = "GOCKPT02";  // 8 bytes, no terminator written
constexpr size_t kMagicBytes = 8;
enum RecordTag : uint32_t { kHeader = 1, kData = 2, kEnd = 3 };
constexpr int64_t kRecordOverhead = 4 + 8 + 8;  // tag, length, checksum

uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// FNV-1a over little-endian 64-bit words, then the tail bytes: 8 times
// fewer multiplications than the bytewise one, for checkpoints of GiBs.
uint64_t WordHash(uint64_t hash, const char* data, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    hash = (hash ^ word) * 0x100000001b3ULL;
  }
  for (; i < n; ++i) {
    hash = (hash ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ULL;
  }
  return hash;
}

// Shown in errors: a name read from a file, bounded and escaped.
std::string Shown(absl::string_view name) {
  std::string out = absl::CHexEscape(name.substr(0, 64));
  if (name.size() > 64) absl::StrAppend(&out, "...");
  return out;
}

v1::Checkpoint ToProto(const SessionSnapshot& snapshot, bool with_data) {
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
    out->set_state(WorkerStateName(w.state));
    out->set_last_round(w.last_round);
    out->set_missed_deadlines(w.missed_deadlines);
    out->set_num_samples(w.num_samples);
    out->set_first_sample(w.first_sample);
    out->set_owner(w.owner);
  }
  v1::CheckpointAlgorithm* a = checkpoint.mutable_algorithm();
  a->set_step(snapshot.algorithm.step);
  a->set_phase(snapshot.algorithm.phase);
  a->set_point_version(snapshot.algorithm.point_version);
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    v1::CheckpointVector* out = a->add_vectors();
    out->set_name(v.name);
    out->set_dtype(DTypeToProto(v.value->dtype()));
    // FlatVector holds host-order IEEE values; gameopt runs on
    // little-endian hosts only (as the wire format).
    if (with_data) {
      out->set_data(static_cast<const char*>(v.value->data()),
                    v.value->bytes());
    } else {
      out->set_size(v.value->size());
    }
  }
  for (const NamedScalar& s : snapshot.algorithm.scalars) {
    v1::CheckpointScalar* out = a->add_scalars();
    out->set_name(s.name);
    out->set_value(s.value);
  }
  return checkpoint;
}

// Everything but the vectors' values. Format 2 (`data_budget` >= 0): each
// vector gets `size` coordinates, zeroed, while their bytes fit in
// `data_budget`; format 1 (-1): each vector gets a copy of `data`.
// `values` (format 2) gets the vectors' buffers, for the data records.
absl::StatusOr<SessionSnapshot> FromProto(
    const v1::Checkpoint& checkpoint, int64_t data_budget,
    std::vector<std::shared_ptr<FlatVector>>* values = nullptr) {
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
    std::optional<WorkerState> state = ParseWorkerState(w.state());
    if (!state.has_value()) {
      return absl::DataLossError(
          absl::StrCat("worker ", w.id(), " has state '", Shown(w.state()),
                       "', not one of active, dropped, left"));
    }
    snapshot.workers.push_back(WorkerSnapshot{
        w.id(), w.name(), *state, w.last_round(), w.missed_deadlines(),
        w.num_samples(), w.first_sample(), w.owner()});
  }
  const v1::CheckpointAlgorithm& a = checkpoint.algorithm();
  snapshot.algorithm.step = a.step();
  snapshot.algorithm.phase = a.phase();
  snapshot.algorithm.point_version = a.point_version();
  for (const v1::CheckpointVector& v : a.vectors()) {
    absl::StatusOr<DType> dtype = DTypeFromProto(
        v.dtype(), absl::StrCat("vector '", Shown(v.name()), "'"));
    if (!dtype.ok()) return absl::DataLossError(dtype.status().message());
    const int64_t width = static_cast<int64_t>(DTypeSize(*dtype));
    int64_t size;
    if (data_budget < 0) {
      if (v.data().size() % width != 0) {
        return absl::DataLossError(
            absl::StrCat("vector '", Shown(v.name()), "' has ", v.data().size(),
                         " bytes, not a multiple of ", width));
      }
      size = static_cast<int64_t>(v.data().size()) / width;
    } else {
      // Overflow-safe: size * width <= data_budget.
      if (v.size() < 0 || v.size() > data_budget / width) {
        return absl::DataLossError(
            absl::StrCat("vector '", Shown(v.name()), "' claims ", v.size(),
                         " coordinates, more than the file holds"));
      }
      size = v.size();
      data_budget -= size * width;
    }
    auto value = std::make_shared<FlatVector>(*dtype, size);
    if (data_budget < 0 && size > 0) {
      std::memcpy(value->mutable_data(), v.data().data(), v.data().size());
    }
    if (values != nullptr) values->push_back(value);
    snapshot.algorithm.vectors.push_back(NamedVector{v.name(), value});
  }
  for (const v1::CheckpointScalar& s : a.scalars()) {
    snapshot.algorithm.scalars.push_back({s.name(), s.value()});
  }
  return snapshot;
}

absl::Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t done = write(fd, data, n);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      if (done == 0) errno = EIO;
      return absl::UnavailableError(std::strerror(errno));
    }
    data += done;
    n -= static_cast<size_t>(done);
  }
  return absl::OkStatus();
}

absl::Status WriteRecord(int fd, uint32_t tag, const char* payload,
                         uint64_t length) {
  char head[12];
  std::memcpy(head, &tag, 4);
  std::memcpy(head + 4, &length, 8);
  uint64_t hash = WordHash(0xcbf29ce484222325ULL, head, sizeof(head));
  hash = WordHash(hash, payload, length);
  if (absl::Status s = WriteAll(fd, head, sizeof(head)); !s.ok()) return s;
  if (absl::Status s = WriteAll(fd, payload, length); !s.ok()) return s;
  char tail[8];
  std::memcpy(tail, &hash, 8);
  return WriteAll(fd, tail, sizeof(tail));
}

// Reads the file front to back, never past its size.
class FileReader {
 public:
  FileReader(int fd, int64_t size) : fd_(fd), left_(size) {}
  int64_t left() const { return left_; }

  absl::Status Read(char* out, int64_t n) {
    if (n > left_) return absl::DataLossError("cut short");
    while (n > 0) {
      const ssize_t done =
          read(fd_, out, static_cast<size_t>(std::min<int64_t>(n, 1 << 30)));
      if (done < 0 && errno == EINTR) continue;
      if (done < 0) {
        return absl::UnavailableError(
            absl::StrCat("cannot read: ", std::strerror(errno)));
      }
      if (done == 0) return absl::DataLossError("cut short");
      out += done;
      n -= done;
      left_ -= done;
    }
    return absl::OkStatus();
  }

  // One record: its tag and length, then the payload into `payload` (which
  // `allocate(length)` provides once the length is known to fit the file),
  // checked against its checksum.
  template <typename Allocate>
  absl::Status ReadRecord(uint32_t* tag, uint64_t* length,
                          const Allocate& allocate) {
    char head[12];
    if (left_ < kRecordOverhead) {
      return absl::DataLossError("cut short (no end record)");
    }
    if (absl::Status s = Read(head, sizeof(head)); !s.ok()) return s;
    std::memcpy(tag, head, 4);
    std::memcpy(length, head + 4, 8);
    if (*length > static_cast<uint64_t>(left_ - 8)) {
      return absl::DataLossError(absl::StrCat("a record claims ", *length,
                                              " bytes, the file has ",
                                              left_ - 8, " left"));
    }
    absl::StatusOr<char*> payload = allocate(*length);
    if (!payload.ok()) return payload.status();
    if (absl::Status s = Read(*payload, static_cast<int64_t>(*length));
        !s.ok()) {
      return s;
    }
    uint64_t hash = WordHash(0xcbf29ce484222325ULL, head, sizeof(head));
    hash = WordHash(hash, *payload, *length);
    char tail[8];
    if (absl::Status s = Read(tail, sizeof(tail)); !s.ok()) return s;
    uint64_t stored;
    std::memcpy(&stored, tail, 8);
    if (stored != hash) {
      return absl::DataLossError("checksum mismatch (cut short or corrupt)");
    }
    return absl::OkStatus();
  }

 private:
  const int fd_;
  int64_t left_;
};

absl::StatusOr<SessionSnapshot> ReadFormat2(FileReader& reader) {
  uint32_t tag;
  uint64_t length;
  std::string header;
  absl::Status status = reader.ReadRecord(
      &tag, &length, [&](uint64_t n) -> absl::StatusOr<char*> {
        if (n > static_cast<uint64_t>(INT_MAX)) {
          return absl::DataLossError("the header record is too long");
        }
        header.resize(n);
        return header.data();
      });
  if (!status.ok()) return status;
  if (tag != kHeader) return absl::DataLossError("no header record");
  v1::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(header)) {
    return absl::DataLossError("the header does not parse");
  }
  std::string().swap(header);
  std::vector<std::shared_ptr<FlatVector>> values;
  absl::StatusOr<SessionSnapshot> snapshot =
      FromProto(checkpoint, reader.left(), &values);
  if (!snapshot.ok()) return snapshot.status();
  uint64_t records = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const NamedVector& v = snapshot->algorithm.vectors[i];
    char* data = static_cast<char*>(values[i]->mutable_data());
    uint64_t filled = 0;
    const uint64_t bytes = values[i]->bytes();
    while (filled < bytes) {
      status = reader.ReadRecord(
          &tag, &length, [&](uint64_t n) -> absl::StatusOr<char*> {
            if (n == 0 || n > bytes - filled) {
              return absl::DataLossError(absl::StrCat(
                  "a data record of ", n, " bytes does not fit vector '",
                  Shown(v.name), "'"));
            }
            return data + filled;
          });
      if (!status.ok()) return status;
      if (tag != kData) {
        return absl::DataLossError(
            absl::StrCat("vector '", Shown(v.name), "' is cut short"));
      }
      filled += length;
      ++records;
    }
  }
  char end[8];
  status = reader.ReadRecord(&tag, &length,
                             [&](uint64_t n) -> absl::StatusOr<char*> {
                               if (n != sizeof(end)) {
                                 return absl::DataLossError("no end record");
                               }
                               return end;
                             });
  if (!status.ok()) return status;
  uint64_t written_records;
  std::memcpy(&written_records, end, 8);
  if (tag != kEnd || written_records != records) {
    return absl::DataLossError("the end record does not match the data");
  }
  if (reader.left() != 0) {
    return absl::DataLossError(
        absl::StrCat(reader.left(), " bytes after the end record"));
  }
  return snapshot;
}

}  // namespace

std::string EncodeCheckpoint(const SessionSnapshot& snapshot) {
  v1::CheckpointFile file;
  file.set_format_version(kCheckpointFormatVersion);
  ToProto(snapshot, /*with_data=*/true)
      .SerializeToString(file.mutable_checkpoint());
  file.set_checksum(Fnv1a64(file.checkpoint()));
  return file.SerializeAsString();
}

absl::StatusOr<SessionSnapshot> DecodeCheckpoint(absl::string_view bytes) {
  v1::CheckpointFile file;
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("not a checkpoint file (cut short?)");
  }
  if (file.format_version() != kCheckpointFormatVersion) {
    return absl::DataLossError(absl::StrCat(
        "format version ", file.format_version(), ", this server reads ",
        kCheckpointFormatVersion, " and 2"));
  }
  if (Fnv1a64(file.checkpoint()) != file.checksum()) {
    return absl::DataLossError("checksum mismatch (cut short or corrupt)");
  }
  v1::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(file.checkpoint())) {
    return absl::DataLossError("the checkpoint does not parse");
  }
  return FromProto(checkpoint, /*data_budget=*/-1);
}

absl::Status WriteCheckpoint(int fd, const SessionSnapshot& snapshot,
                             int64_t chunk_bytes) {
  const v1::Checkpoint header = ToProto(snapshot, /*with_data=*/false);
  std::string bytes;
  if (header.ByteSizeLong() > static_cast<size_t>(INT_MAX) ||
      !header.SerializeToString(&bytes)) {
    return absl::InvalidArgumentError(
        "the checkpoint header (config and worker table) cannot be "
        "serialized");
  }
  if (chunk_bytes <= 0) chunk_bytes = kCheckpointChunkBytes;
  if (absl::Status s = WriteAll(fd, kMagic, kMagicBytes); !s.ok()) return s;
  if (absl::Status s = WriteRecord(fd, kHeader, bytes.data(), bytes.size());
      !s.ok()) {
    return s;
  }
  uint64_t records = 0;
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    const char* data = static_cast<const char*>(v.value->data());
    const uint64_t total = v.value->bytes();
    for (uint64_t done = 0; done < total;) {
      const uint64_t n =
          std::min<uint64_t>(total - done, static_cast<uint64_t>(chunk_bytes));
      if (absl::Status s = WriteRecord(fd, kData, data + done, n); !s.ok()) {
        return s;
      }
      done += n;
      ++records;
    }
  }
  char end[8];
  std::memcpy(end, &records, 8);
  return WriteRecord(fd, kEnd, end, sizeof(end));
}

absl::StatusOr<SessionSnapshot> ReadCheckpoint(int fd, int64_t size) {
  FileReader reader(fd, size);
  char magic[kMagicBytes];
  if (size >= static_cast<int64_t>(kMagicBytes)) {
    if (absl::Status s = reader.Read(magic, kMagicBytes); !s.ok()) return s;
    if (std::memcmp(magic, kMagic, kMagicBytes) == 0) {
      return ReadFormat2(reader);
    }
  }
  // Format 1: one protobuf message, hence under 2 GiB.
  if (size > static_cast<int64_t>(INT_MAX)) {
    return absl::DataLossError("not a checkpoint file");
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  const int64_t head = size - reader.left();
  std::memcpy(bytes.data(), magic, static_cast<size_t>(head));
  if (absl::Status s = reader.Read(bytes.data() + head, reader.left());
      !s.ok()) {
    return s;
  }
  return DecodeCheckpoint(bytes);
}

}  // namespace gameopt
