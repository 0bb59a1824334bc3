// The bytes of a session checkpoint file (proto/gameopt/v1/checkpoint.proto
// describes both formats).
//
// Format 2, written by WriteCheckpoint, never builds one protobuf message
// holding the state (protobuf cannot serialize 2 GiB or more): after the
// magic "GOCKPT02" come records
//   tag (uint32 LE) | length (uint64 LE) | payload | checksum (uint64 LE)
// where the checksum is a word-wise FNV-1a 64 of the tag, the length and
// the payload: one header record (a Checkpoint whose vectors carry their
// `size` and no `data`), data records with the vectors' raw bytes in order
// (each at most `chunk_bytes`, never spanning two vectors), and one end
// record holding the number of data records. A file cut short anywhere, a
// flipped byte, a record longer than the file or bytes after the end record
// read as DataLoss, before anything is allocated beyond what the file holds.
//
// Format 1 (one serialized CheckpointFile, written by earlier servers) is
// still read: ReadCheckpoint tells the two apart by the magic.
#ifndef GAMEOPT_SERVER_SERVICE_CHECKPOINT_FORMAT_H_
#define GAMEOPT_SERVER_SERVICE_CHECKPOINT_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/snapshot.h"

namespace gameopt {

// The CheckpointFile.format_version of format 1.
inline constexpr uint32_t kCheckpointFormatVersion = 1;
// The largest data record WriteCheckpoint writes by default.
inline constexpr int64_t kCheckpointChunkBytes = int64_t{64} << 20;

// Format 1: snapshot <-> the bytes of a CheckpointFile (kept to read the
// files of earlier servers, and for tests). DecodeCheckpoint's errors are
// DataLoss (cut short, checksum, unknown version, a vector whose byte count
// does not fit its dtype) or the config's InvalidArgument.
std::string EncodeCheckpoint(const SessionSnapshot& snapshot);
absl::StatusOr<SessionSnapshot> DecodeCheckpoint(absl::string_view bytes);

// Writes `snapshot` in format 2 to `fd` from its current offset. Nothing is
// written when the header cannot be serialized (InvalidArgument); the OS
// error of a failed write otherwise (errno is left as the failed call set
// it). The caller decides what to do with a partial file.
absl::Status WriteCheckpoint(int fd, const SessionSnapshot& snapshot,
                             int64_t chunk_bytes = kCheckpointChunkBytes);

// Reads a checkpoint of either format from `fd` (at offset 0, `size`
// bytes). DataLoss says what does not fit; the config's InvalidArgument.
absl::StatusOr<SessionSnapshot> ReadCheckpoint(int fd, int64_t size);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CHECKPOINT_FORMAT_H_
