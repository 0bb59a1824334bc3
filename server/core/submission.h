// What a worker submits, as views into the transport's buffers, and the
// validation that turns one sample into a FlatVector of the session.
#ifndef GAMEOPT_SERVER_CORE_SUBMISSION_H_
#define GAMEOPT_SERVER_CORE_SUBMISSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/core/dtype.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/sample_set.h"
#include "server/core/scalars.h"
#include "server/core/wire_codec.h"

namespace gameopt {

// One tensor's values: raw little-endian `dtype` values, row-major, or,
// when `compression` is not kNone, values in that format (wire_codec.h;
// `dtype` is then ignored). The views must stay valid for the duration of
// the call that receives them.
struct TensorView {
  absl::string_view name;
  DType dtype = DType::kFloat32;
  absl::Span<const int64_t> shape;
  absl::string_view bytes;
  // Alternatively, when not empty, the values in consecutive pieces (a
  // transport's receive buffers, so they are not copied to be joined
  // first); `bytes` is then ignored. A piece may end inside a value.
  absl::Span<const absl::string_view> pieces = {};
  Compression compression = Compression::kNone;

  // Bytes of values, in `bytes` or in `pieces`.
  size_t size_bytes() const;
};

struct PlayerValues {
  absl::string_view player;
  // Inline for the usual player (a submission builds these per sample).
  absl::InlinedVector<TensorView, 4> tensors;
};

// One sample: a vector over some players (gradient) or all (products).
using SampleView = std::vector<PlayerValues>;

// A worker's answer to one task. `round` identifies the task (a retry sends
// the same round again); step and phase must match it.
struct Submission {
  int64_t round = 0;
  int64_t step = 0;
  int phase = 0;
  std::vector<SampleView> gradients;  // SubmitGradient: one per sample
  // SubmitGradient: the name of Task::loss's player echoed (empty: xi;
  // player i's name: the gradients of l_i).
  std::string loss_player;
  // SubmitProducts: one per probe. SubmitGradient of a fused round
  // (Task::fused_vjp / fused_jvp): one per sample, on its own gradient.
  std::vector<SampleView> vjp;
  std::vector<SampleView> jvp;
  // SubmitGradient: reported scalars (scalars.h); optional.
  std::vector<ScalarView> scalars;
  // Optional: holding it keeps the tensor views valid (the transport's
  // receive buffers), so that a session may keep a sample without copying
  // it (PackSample).
  std::shared_ptr<const void> keep_alive;
};

// Decodes `sample` into `out` (resized to the layout's dimension, of dtype
// `dtype`). Exactly the players in `players` (sorted) must be present, each
// with all of its tensors of the right shape and finite values; the other
// blocks of `out` are set to zero. The error (InvalidArgument) names
// `field` (e.g. "gradients[1]"), the player, the tensor and the first bad
// index. `out` is scratch: its contents are unspecified after an error.
// One pass over the values (copy, conversion and check together); no
// allocation when `out` already has the dtype and size. float32 and
// float64 tensors are always accepted; a compressed tensor only in the
// format `accepted` (the session's wire.from_workers), else
// InvalidArgument naming the tensor and the accepted formats.
absl::Status DecodeSample(const SampleView& sample, const GameLayout& layout,
                          const std::vector<int>& players, DType dtype,
                          absl::string_view field, FlatVector& out,
                          Compression accepted = Compression::kNone);

// The format a session can keep `sample` in without decoding it
// (PackSample): `accepted` (the session's wire.from_workers) when every
// tensor is in that compressed format, kNone when every tensor holds raw
// values of the session's `dtype`; nullopt for a mix of the two, or raw
// values of the other dtype (those are decoded, DecodeSample).
std::optional<Compression> PackFormat(const SampleView& sample,
                                      Compression accepted, DType dtype);

// DecodeSample's checks, with the same errors, keeping the values as they
// arrived in `out` (sample_set.h) instead of decoding them; the checks of
// the values read the bytes (FindNonFinite). The sample must have a
// PackFormat. With `keep_alive` (Submission::keep_alive), `out` references
// the views' bytes and holds it; else it copies them. `out` is cleared on
// error.
absl::Status PackSample(const SampleView& sample, const GameLayout& layout,
                        const std::vector<int>& players,
                        absl::string_view field, PackedVector& out,
                        Compression accepted, DType dtype,
                        std::shared_ptr<const void> keep_alive = nullptr);

// Samples PackSample has kept packed in this process, and of those the ones
// kept where they arrived (with a keep_alive handle), for tests: that a
// session, and the service in front of it, took those paths.
int64_t PackedSamples();
int64_t ReferencedSamples();

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SUBMISSION_H_
