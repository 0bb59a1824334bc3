// A FlatVector encoded for the wire (wire_codec.h), tensor by tensor, as a
// transport sends it to a worker.
#ifndef GAMEOPT_SERVER_CORE_WIRE_VECTOR_H_
#define GAMEOPT_SERVER_CORE_WIRE_VECTOR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/wire_codec.h"

namespace gameopt {

struct EncodedTensor {
  // The tensor's format: the one asked for, or kNone when a finite value
  // did not fit it (float16 past 65504): then its values in the vector's
  // dtype, as they are.
  Compression compression = Compression::kNone;
  size_t offset = 0;  // into EncodedVector::bytes
  size_t size = 0;
};

struct EncodedVector {
  std::string bytes;
  std::vector<EncodedTensor> tensors;  // the layout's, player by player
};

// Encodes every tensor of `values` (of `layout`'s dimension) as
// `compression` (not kNone). Value i of the joint vector draws its random
// bits at counter rounding.counter + i, so a tensor's bytes do not depend
// on the others. Long tensors are encoded on several threads (ParallelFor).
std::shared_ptr<const EncodedVector> EncodeVector(const FlatVector& values,
                                                  const GameLayout& layout,
                                                  Compression compression,
                                                  const Rounding& rounding);

// How a task's vectors round under `wire`: the parameters (probe < 0) to
// nearest-even; probe k stochastically when wire.stochastic_rounding, on a
// stream seeded by the task's seed and k (independent across tasks).
// An EncodedVector of `layout`'s total encoded size in `compression`,
// its bytes from the pool EncodeVector uses (returned there when the last
// holder lets go) and no tensors yet, for an encoder of its own.
std::shared_ptr<EncodedVector> NewEncodedVector(const GameLayout& layout,
                                                Compression compression);

// An EncodedVector of `layout` (NewEncodedVector) with each tensor's bytes
// written by `encode(tensor, out)`, which returns whether its values fit
// the format; a tensor that does not is marked kNone (offset and size 0)
// for the caller to send otherwise.
std::shared_ptr<EncodedVector> EncodeTensors(
    const GameLayout& layout, Compression compression,
    absl::FunctionRef<bool(const TensorLayout&, char*)> encode);

Rounding TaskRounding(const WireConfig& wire, uint64_t task_seed, int probe);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_WIRE_VECTOR_H_
