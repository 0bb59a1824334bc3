// A gameopt worker with a null game: it answers every task with preset
// float32 vectors, so a benchmark of it measures the service and the
// transport, not a model. Its requests are serialized once (only the
// round's small fields change) and it reads only the small fields of its
// tasks (RawMethod, baselines.h): the echo baseline's client does the same
// with its bytes, so the comparison is between the two servers.
#ifndef GAMEOPT_TESTS_BENCH_NULL_WORKER_H_
#define GAMEOPT_TESTS_BENCH_NULL_WORKER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gameopt/v1/gameopt.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/wire_codec.h"
#include "tests/bench/baselines.h"

namespace gameopt::bench {

// One benchmark case: a float32 session of two players ("gen", "disc"),
// each one tensor "w" of d / 2 coordinates, RMSProp (lr 1e-4), K workers
// per round. ConOpt uses gamma 10 and the unbiased estimator, so a single
// worker sends 2 samples per round (the unbiased estimator needs K >= 2);
// otherwise 1.
// Further parts name a compressed wire (WireConfig, both ways, nearest-
// even): "bf16", "fp16" or "int8" (block-scaled), e.g. conopt/16M/4/bf16;
// and "pooled": ConOpt with the pooled estimator instead (one shared
// probe), e.g. conopt/16M/4/pooled.
struct Case {
  std::string algorithm;  // "simgd" or "conopt"
  int64_t d = 0;          // even
  int workers = 1;        // K
  Compression wire = Compression::kNone;
  bool pooled = false;  // ConOpt's estimator: pooled, else unbiased

  int samples() const { return algorithm == "conopt" && workers == 1 ? 2 : 1; }
  bool conopt() const { return algorithm == "conopt"; }
  // Bytes of one vector on the wire: float32, or the compressed format's.
  int64_t vector_bytes() const {
    return wire == Compression::kNone
               ? 4 * d
               : 2 * static_cast<int64_t>(CompressedBytes(wire, d / 2));
  }
  // Tensor bytes of each request a worker sends in one step, in order:
  // gradients (and products), samples() vectors each.
  std::vector<int64_t> RequestBytes() const;
  // Tensor bytes moved in one step by all workers, up and down: gradients,
  // (probes, products,) parameters.
  int64_t PayloadBytesPerStep() const;
  std::string Name() const;  // e.g. "conopt/1M/4", "conopt/16M/4/bf16"
};

// "simgd/1M/4", "conopt/16M/4/pooled" -> Case. d accepts K and M suffixes
// (powers of two).
absl::StatusOr<Case> ParseCase(const std::string& text);

v1::SessionConfig SessionConfigOf(const Case& c, int64_t max_steps);

// CreateSession / DeleteSession at `target`.
absl::StatusOr<std::string> CreateSession(const std::string& target,
                                          const v1::SessionConfig& config);
absl::Status DeleteSession(const std::string& target,
                           const std::string& session_id);

// A submission (SubmitGradientRequest or SubmitJacobianProductsRequest):
// the round's small fields, then the prepared `tensors` (a serialized
// message of the same type holding only them: concatenated protobuf
// messages merge).
template <typename Request>
grpc::ByteBuffer SubmissionRequest(const std::string& session_id,
                                   int64_t worker_id, int64_t round,
                                   int64_t step, int64_t phase,
                                   int64_t known_version,
                                   const grpc::Slice& tensors) {
  Request header;
  header.set_session_id(session_id);
  header.set_worker_id(worker_id);
  header.set_round(round);
  header.set_step(step);
  header.set_phase(static_cast<int32_t>(phase));
  header.set_known_params_version(known_version);
  grpc::Slice slices[] = {grpc::Slice(header.SerializeAsString()), tensors};
  return grpc::ByteBuffer(slices, 2);
}

// Joins `session_id` and answers tasks until DONE. The window runs from
// the first task of step `timed_from_step` to DONE. `on_step` (optional)
// sees the step number of every step's first task as it arrives.
absl::StatusOr<Window> RunNullWorker(
    const std::string& target, const std::string& session_id, const Case& c,
    int64_t timed_from_step,
    const std::function<void(int64_t step)>& on_step = {});

}  // namespace gameopt::bench

#endif  // GAMEOPT_TESTS_BENCH_NULL_WORKER_H_
