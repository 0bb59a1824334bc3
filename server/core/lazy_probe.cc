#include "server/core/lazy_probe.h"

#include <algorithm>
#include <atomic>

#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/parallel.h"

namespace gameopt {
namespace {

// Values per block: the kernels' block, whole int8 blocks.
constexpr int64_t kBlock = kKernelBlock;
static_assert(kBlock % kInt8BlockSize == 0 && kParallelAlign % kBlock == 0);

// The samples' sum S over [begin, begin + n) into `sum`, in order, the
// samples' blocks decoded into `scratch` (K blocks) and left there.
template <typename T>
void SumBlock(const std::vector<PackedVector>& samples, int64_t begin,
              int64_t n, T* scratch, T* sum) {
  Eigen::Map<Vec<T>> s(sum, n);
  for (size_t k = 0; k < samples.size(); ++k) {
    T* block = scratch + k * kBlock;
    samples[k].Decode(begin, n, block);
    if (k == 0) {
      s = ConstVecMap<T>(block, n);
    } else {
      s += ConstVecMap<T>(block, n);
    }
  }
}

// Encodes [0, tensor.size) of a tensor block by block from `values(at, n,
// out)` (tensor-relative at) into `out`: the bytes of one Encode of the
// whole tensor (blocks start at multiples of kInt8BlockSize). False when
// a value does not fit the format.
template <typename T, typename Values>
bool EncodeBlocks(const TensorLayout& tensor, Compression compression,
                  const Rounding& rounding, char* out, Values values) {
  std::atomic<bool> fits{true};
  ParallelFor(tensor.size, [&](int64_t begin, int64_t end) {
    T block[kBlock];
    for (int64_t at = begin; at < end; at += kBlock) {
      const int64_t n = std::min(kBlock, end - at);
      values(at, n, block);
      Rounding r = rounding;
      r.counter += static_cast<uint64_t>(tensor.offset + at);
      if (!gameopt::Encode(compression, block, n, r,
                           out + CompressedOffset(compression, at))) {
        fits.store(false, std::memory_order_relaxed);
      }
    }
  });
  return fits.load();
}

}  // namespace

template <typename T>
void LazyProbe::Values(int64_t begin, int64_t n, T* out) const {
  const ProbeRound& r = *round_;
  T* scratch = KernelScratch<T>(r.samples.size());
  T sum[kBlock];
  for (int64_t at = begin; at < begin + n; at += kBlock) {
    const int64_t m = std::min(kBlock, begin + n - at);
    SumBlock(r.samples, at, m, scratch, sum);
    ProbeBlock(r.estimator, r.samples.size(), sum, scratch + k_ * kBlock, m,
               out + (at - begin));
  }
}

std::shared_ptr<FlatVector> LazyProbe::Materialize() const {
  auto out = std::make_shared<FlatVector>(dtype(), dimension());
  ForEachBlock(dimension(), [&](int64_t begin, int64_t end) {
    if (dtype() == DType::kFloat32) {
      Values(begin, end - begin, out->as<float>().data() + begin);
    } else {
      Values(begin, end - begin, out->as<double>().data() + begin);
    }
  });
  return out;
}

std::shared_ptr<const EncodedVector> LazyProbe::Encode(
    const GameLayout& layout, Compression compression,
    const Rounding& rounding) const {
  const ProbeRound& r = *round_;
  if (!rounding.stochastic && compression == r.encoded_in) {
    absl::MutexLock lock(&r.mu);
    if (k_ < r.encoded.size()) {  // k_ is 0 for every pooled probe
      if (std::shared_ptr<const EncodedVector> e = r.encoded[k_]) {
        if (--r.unsent[k_] == 0) {
          r.handed_out[k_] = e;
          r.encoded[k_].reset();
        }
        return e;
      }
      if (std::shared_ptr<const EncodedVector> e = r.handed_out[k_].lock()) {
        return e;
      }
    }
  }
  // A tensor that does not fit stays kNone: the task sends it from
  // Materialize() (TaskToWire).
  return EncodeTensors(
      layout, compression, [&](const TensorLayout& tensor, char* at) {
        auto encode = [&](auto zero) {
          using V = decltype(zero);
          return EncodeBlocks<V>(tensor, compression, rounding, at,
                                 [&](int64_t i, int64_t n, V* values) {
                                   Values(tensor.offset + i, n, values);
                                 });
        };
        return dtype() == DType::kFloat32 ? encode(0.0f) : encode(0.0);
      });
}

template <typename T>
absl::Status FormProbes(EstimatorKind estimator, const SampleSet& samples,
                        const GameLayout& layout, Compression compression,
                        Vec<T>& mean,
                        std::vector<std::shared_ptr<const LazyProbe>>& probes) {
  const size_t num = samples.size();
  if (absl::Status status = CheckSampleCount(estimator, num); !status.ok()) {
    return status;
  }
  auto round = std::make_shared<ProbeRound>();
  round->estimator = estimator;
  round->dtype = DTypeOf<T>();
  for (size_t k = 0; k < num; ++k) round->samples.push_back(*samples.packed(k));
  const bool pooled = estimator == EstimatorKind::kPooled;
  const size_t num_encoded = pooled ? 1 : num;
  std::vector<std::shared_ptr<EncodedVector>> encoded;
  for (size_t k = 0; k < num_encoded; ++k) {
    encoded.push_back(NewEncodedVector(layout, compression));
  }
  const int64_t d = samples.dimension();
  if (mean.size() != d) mean.resize(d);
  // Tensor by tensor, so that every block starts an int8 block of its
  // tensor: the sum, the mean, and each probe's block encoded at once.
  size_t offset = 0;
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      const size_t bytes = CompressedBytes(compression, tensor.size);
      std::vector<std::atomic<bool>> fits(num_encoded);
      for (auto& f : fits) f.store(true);
      ParallelFor(tensor.size, [&](int64_t begin, int64_t end) {
        T* scratch = KernelScratch<T>(num);
        T sum[kBlock], probe[kBlock];
        for (int64_t at = begin; at < end; at += kBlock) {
          const int64_t n = std::min(kBlock, end - at);
          const int64_t i = tensor.offset + at;
          SumBlock(round->samples, i, n, scratch, sum);
          // (num = 1: x / 1 is x, bit for bit, for the finite sums here.)
          DifferenceOver<T>(sum, nullptr, static_cast<T>(num), n,
                            mean.data() + i);
          Rounding nearest;
          nearest.counter = static_cast<uint64_t>(i);
          for (size_t k = 0; k < num_encoded; ++k) {
            ProbeBlock(estimator, num, sum, scratch + k * kBlock, n, probe);
            if (!gameopt::Encode(compression, probe, n, nearest,
                                 encoded[k]->bytes.data() + offset +
                                     CompressedOffset(compression, at))) {
              fits[k].store(false, std::memory_order_relaxed);
            }
          }
        }
      });
      for (size_t k = 0; k < num_encoded; ++k) {
        const bool ok = fits[k].load();
        encoded[k]->tensors.push_back(
            ok ? EncodedTensor{compression, offset, bytes}
               : EncodedTensor{Compression::kNone, 0, 0});
      }
      offset += bytes;
    }
  }
  round->encoded_in = compression;
  {
    absl::MutexLock lock(&round->mu);
    for (auto& e : encoded) round->encoded.push_back(std::move(e));
    round->handed_out.resize(num_encoded);
    round->unsent.assign(num_encoded, pooled ? static_cast<int>(num) : 1);
  }
  probes.clear();
  std::shared_ptr<const ProbeRound> shared = round;
  for (size_t k = 0; k < num; ++k) {
    probes.push_back(std::make_shared<LazyProbe>(shared, pooled ? 0 : k));
  }
  return absl::OkStatus();
}

template void LazyProbe::Values<float>(int64_t, int64_t, float*) const;
template void LazyProbe::Values<double>(int64_t, int64_t, double*) const;
template absl::Status FormProbes<float>(
    EstimatorKind, const SampleSet&, const GameLayout&, Compression,
    Vec<float>&, std::vector<std::shared_ptr<const LazyProbe>>&);
template absl::Status FormProbes<double>(
    EstimatorKind, const SampleSet&, const GameLayout&, Compression,
    Vec<double>&, std::vector<std::shared_ptr<const LazyProbe>>&);

}  // namespace gameopt
