#include "server/core/wire_vector.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/parallel.h"

namespace gameopt {
namespace {

// The byte buffers of encoded vectors that nobody holds any more, kept for
// the next EncodeVector of the same size. A fresh buffer of a 16M-value
// vector is a fresh mmap of 32 MiB: zero-filled by resize and faulted in
// page by page, which cost about a fifth of a bfloat16 ConOpt step at 16M
// (gameopt_bench conopt/16M/4/bf16). The kMaxPooled most recently
// returned buffers are kept, across all sessions (a step of K unbiased
// probes holds K + 1 at once).
class BufferPool {
 public:
  static constexpr size_t kMaxPooled = 8;

  // A buffer of `size` bytes: a pooled one of that size (its old bytes
  // are left: the encoder writes every byte it sends), else a new one.
  std::string Take(size_t size) {
    absl::MutexLock lock(&mu_);
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
      if (it->size() == size) {
        std::string bytes = std::move(*it);
        free_.erase(std::next(it).base());
        return bytes;
      }
    }
    return std::string(size, '\0');
  }

  void Give(std::string bytes) {
    absl::MutexLock lock(&mu_);
    free_.push_back(std::move(bytes));
    if (free_.size() > kMaxPooled) free_.erase(free_.begin());
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> free_ ABSL_GUARDED_BY(mu_);
};

BufferPool& Pool() {
  static BufferPool* pool = new BufferPool();
  return *pool;
}

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

// Output buffers of EncodeVector: from the pool, back to it when the last
// holder (a response being sent, the parameters' cache) lets go; the
// tensors' entries and the total of their encoded bytes.
std::shared_ptr<EncodedVector> NewEncodedVector(const GameLayout& layout,
                                                Compression compression) {
  std::shared_ptr<EncodedVector> out(new EncodedVector, [](EncodedVector* v) {
    Pool().Give(std::move(v->bytes));
    delete v;
  });
  size_t total = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      total += CompressedBytes(compression, tensor.size);
    }
  }
  out->bytes = Pool().Take(total);
  return out;
}

std::shared_ptr<EncodedVector> EncodeTensors(
    const GameLayout& layout, Compression compression,
    absl::FunctionRef<bool(const TensorLayout&, char*)> encode) {
  std::shared_ptr<EncodedVector> out = NewEncodedVector(layout, compression);
  size_t offset = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      EncodedTensor& e = out->tensors.emplace_back();
      e.compression = compression;
      e.offset = offset;
      e.size = CompressedBytes(compression, tensor.size);
      if (encode(tensor, out->bytes.data() + offset)) {
        offset += e.size;
      } else {
        e = EncodedTensor{Compression::kNone, 0, 0};
      }
    }
  }
  return out;
}

std::shared_ptr<const EncodedVector> EncodeVector(const FlatVector& values,
                                                  const GameLayout& layout,
                                                  Compression compression,
                                                  const Rounding& rounding) {
  std::shared_ptr<EncodedVector> out = EncodeTensors(
      layout, compression, [&](const TensorLayout& tensor, char* at) {
        return values.dtype() == DType::kFloat32
                   ? EncodeTensor(values.as<float>().data(), tensor,
                                  compression, rounding, at)
                   : EncodeTensor(values.as<double>().data(), tensor,
                                  compression, rounding, at);
      });
  // A tensor that does not fit is sent as it is, after the others' bytes.
  size_t index = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      EncodedTensor& e = out->tensors[index++];
      if (e.compression != Compression::kNone) continue;
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
