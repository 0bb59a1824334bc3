#include "server/core/wire_vector.h"

#include <atomic>
#include <cstring>

#include "server/core/parallel.h"

namespace gameopt {
namespace {

static_assert(kParallelAlign % kInt8BlockSize == 0,
              "parallel ranges must hold whole int8 blocks");

template <typename T>
bool EncodeTensor(const T* values, const TensorLayout& tensor,
                  Compression compression, const Rounding& rounding,
                  char* out) {
  std::atomic<bool> fits{true};
  ParallelFor(tensor.size, [&](int64_t begin, int64_t end) {
    Rounding r = rounding;
    r.counter += static_cast<uint64_t>(tensor.offset + begin);
    if (!Encode(compression, values + tensor.offset + begin, end - begin, r,
                out + CompressedOffset(compression, begin))) {
      fits.store(false, std::memory_order_relaxed);
    }
  });
  return fits.load();
}

}  // namespace

std::shared_ptr<const EncodedVector> EncodeVector(const FlatVector& values,
                                                  const GameLayout& layout,
                                                  Compression compression,
                                                  const Rounding& rounding) {
  auto out = std::make_shared<EncodedVector>();
  size_t total = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      total += CompressedBytes(compression, tensor.size);
    }
  }
  out->bytes.resize(total);
  size_t offset = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      EncodedTensor& e = out->tensors.emplace_back();
      e.compression = compression;
      e.offset = offset;
      e.size = CompressedBytes(compression, tensor.size);
      char* at = out->bytes.data() + offset;
      const bool fits = values.dtype() == DType::kFloat32
                            ? EncodeTensor(values.as<float>().data(), tensor,
                                           compression, rounding, at)
                            : EncodeTensor(values.as<double>().data(), tensor,
                                           compression, rounding, at);
      if (fits) {
        offset += e.size;
        continue;
      }
      // Sent as it is; the buffer grows past the other tensors' bytes.
      e.compression = Compression::kNone;
      e.size = tensor.size * DTypeSize(values.dtype());
      e.offset = out->bytes.size();
      out->bytes.append(static_cast<const char*>(values.data()) +
                            tensor.offset * DTypeSize(values.dtype()),
                        e.size);
    }
  }
  return out;
}

Rounding TaskRounding(const WireConfig& wire, uint64_t task_seed, int probe) {
  Rounding rounding;
  if (probe < 0 || !wire.stochastic_rounding) return rounding;
  rounding.stochastic = true;
  // splitmix64's increment and finalizer: a distinct stream per probe.
  uint64_t z =
      task_seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(probe + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  rounding.seed = z ^ (z >> 31);
  return rounding;
}

}  // namespace gameopt
