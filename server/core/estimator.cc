#include "server/core/estimator.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "server/core/kernels.h"

namespace gameopt {

absl::Status CheckSampleCount(EstimatorKind estimator, size_t num) {
  if (num == 0) return absl::FailedPreconditionError("no gradient samples");
  if (estimator == EstimatorKind::kUnbiased && num < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the unbiased estimator needs at least 2 gradient samples in a "
        "round, got ",
        num,
        ": run 2 or more workers per round or set samples_per_worker >= 2"));
  }
  return absl::OkStatus();
}

template <typename T>
void MeanOf(const SampleSet& samples, Vec<T>& mean) {
  const int64_t d = samples.dimension();
  if (mean.size() != d) mean.resize(d);
  const size_t num = samples.size();
  // Per coordinate: s_0 + s_1 + ... in order, then / K (kernels.h).
  ForEachBlock(d, [&](int64_t begin, int64_t end) {
    const int64_t n = end - begin;
    T* scratch = KernelScratch<T>(1);
    auto m = mean.segment(begin, n);
    m = ConstVecMap<T>(samples.Block<T>(0, begin, n, scratch), n);
    for (size_t k = 1; k < num; ++k) {
      m += ConstVecMap<T>(samples.Block<T>(k, begin, n, scratch), n);
    }
    if (num > 1) m /= static_cast<T>(num);
  });
}

namespace {
std::atomic<int64_t> copy_on_write_copies{0};
}  // namespace

int64_t CopyOnWriteCopies() {
  return copy_on_write_copies.load(std::memory_order_relaxed);
}

void CountCopyOnWriteCopy() {
  copy_on_write_copies.fetch_add(1, std::memory_order_relaxed);
}

void MakeExclusive(std::shared_ptr<FlatVector>& buffer, DType dtype,
                   int64_t size) {
  if (buffer == nullptr || buffer.use_count() > 1 || buffer->dtype() != dtype) {
    if (buffer != nullptr && buffer.use_count() > 1) CountCopyOnWriteCopy();
    buffer = std::make_shared<FlatVector>(dtype, size);
  } else if (buffer->size() != size) {
    buffer->Resize(size);
  }
  // The last other holder (a transport that sent the values) released it on
  // another thread: see its reads before overwriting.
  std::atomic_thread_fence(std::memory_order_acquire);
}

template <typename T>
absl::Status ComputeProbes(EstimatorKind estimator, const SampleSet& samples,
                           std::vector<std::shared_ptr<FlatVector>>& probes) {
  return ComputeProbes<T>(estimator, samples, probes, nullptr);
}

template <typename T>
absl::Status ComputeProbes(EstimatorKind estimator, const SampleSet& samples,
                           std::vector<std::shared_ptr<FlatVector>>& probes,
                           Vec<T>* mean) {
  const size_t num = samples.size();
  if (absl::Status status = CheckSampleCount(estimator, num); !status.ok()) {
    return status;
  }
  const DType dtype = DTypeOf<T>();
  const int64_t d = samples.dimension();
  // The pooled probe S/K is the same for every sample: one buffer, shared
  // by all of them (the others are dropped first so that the first one's
  // buffer is reused when no transport holds it any more).
  const bool shared = estimator == EstimatorKind::kPooled;
  probes.resize(num);
  if (shared) {
    for (size_t k = 1; k < num; ++k) probes[k].reset();
    MakeExclusive(probes[0], dtype, d);
    for (size_t k = 1; k < num; ++k) probes[k] = probes[0];
  } else {
    for (size_t k = 0; k < num; ++k) MakeExclusive(probes[k], dtype, d);
  }
  if (mean != nullptr && mean->size() != d) mean->resize(d);
  const bool packed = samples.has_packed();
  // Per coordinate: S = s_0 + s_1 + ... in order (as MeanOf sums), then
  // S / K (pooled) or (S - s_k) / (K - 1) (unbiased), block by block
  // (kernels.h); the local estimator copies the samples.
  ForEachBlock(d, [&](int64_t begin, int64_t end) {
    const int64_t n = end - begin;
    // Each sample's block: in its dense vector, or decoded once into
    // scratch (read again below for the unbiased probes).
    T* scratch = packed ? KernelScratch<T>(num) : nullptr;
    static thread_local std::vector<const T*> blocks;
    if (blocks.size() < num) blocks.resize(num);
    const T** s = blocks.data();
    for (size_t k = 0; k < num; ++k) {
      s[k] = samples.Block<T>(
          k, begin, n,
          scratch == nullptr ? nullptr : scratch + k * kKernelBlock);
    }
    if (estimator == EstimatorKind::kLocal) {
      for (size_t k = 0; k < num; ++k) {
        probes[k]->as<T>().segment(begin, n) = ConstVecMap<T>(s[k], n);
      }
      if (mean == nullptr) return;
    }
    T buffer[kKernelBlock];
    Eigen::Map<Vec<T>> sum(buffer, n);
    sum = ConstVecMap<T>(s[0], n);
    for (size_t k = 1; k < num; ++k) sum += ConstVecMap<T>(s[k], n);
    if (mean != nullptr) {
      // (num = 1: x / 1 is x, bit for bit, for the finite sums here.)
      DifferenceOver<T>(buffer, nullptr, static_cast<T>(num), n,
                        mean->data() + begin);
    }
    if (estimator == EstimatorKind::kLocal) return;
    for (size_t k = 0; k < (shared ? 1 : num); ++k) {
      ProbeBlock(estimator, num, buffer, s[k], n,
                 probes[k]->as<T>().data() + begin);
    }
  });
  return absl::OkStatus();
}

bool CanFormProbesInPlace(EstimatorKind estimator, const SampleSet& samples,
                          DType dtype, Compression format) {
  if (estimator != EstimatorKind::kUnbiased || samples.size() < 2 ||
      format == Compression::kFloat16) {
    return false;
  }
  for (size_t k = 0; k < samples.size(); ++k) {
    const PackedVector* packed = samples.packed(k);
    if (packed == nullptr || !packed->WritableIn(format, dtype)) return false;
  }
  return true;
}

template <typename T>
void FormProbesInPlace(
    const SampleSet& samples, const GameLayout& layout, Vec<T>& mean,
    std::vector<std::shared_ptr<const PackedVector>>& probes) {
  const size_t num = samples.size();
  const int64_t d = samples.dimension();
  absl::InlinedVector<std::shared_ptr<PackedVector>, 8> out;
  for (size_t k = 0; k < num; ++k) {
    out.push_back(std::make_shared<PackedVector>(*samples.packed(k)));
  }
  if (mean.size() != d) mean.resize(d);
  // Tensor by tensor, so that every block starts an int8 block of its
  // tensor (OverwriteValues encodes whole blocks).
  for (const PlayerLayout& player : layout.players()) {
    for (const TensorLayout& tensor : player.tensors) {
      ForEachBlock(tensor.size, [&](int64_t from, int64_t to) {
        const int64_t begin = tensor.offset + from;
        const int64_t n = to - from;
        // Every sample's block is read (decoded into scratch) before any
        // is written over.
        T* scratch = KernelScratch<T>(num);
        for (size_t k = 0; k < num; ++k) {
          samples.packed(k)->Decode(begin, n, scratch + k * kKernelBlock);
        }
        UnbiasedProbesOverSamples<T>(scratch, num, n, mean.data() + begin);
        for (size_t k = 0; k < num; ++k) {
          out[k]->OverwriteValues<T>(begin, n, scratch + k * kKernelBlock);
        }
      });
    }
  }
  probes.assign(out.begin(), out.end());
}

template void MeanOf<float>(const SampleSet&, Vec<float>&);
template void MeanOf<double>(const SampleSet&, Vec<double>&);
template absl::Status ComputeProbes<float>(
    EstimatorKind, const SampleSet&, std::vector<std::shared_ptr<FlatVector>>&);
template absl::Status ComputeProbes<double>(
    EstimatorKind, const SampleSet&, std::vector<std::shared_ptr<FlatVector>>&);
template absl::Status ComputeProbes<float>(
    EstimatorKind, const SampleSet&, std::vector<std::shared_ptr<FlatVector>>&,
    Vec<float>*);
template absl::Status ComputeProbes<double>(
    EstimatorKind, const SampleSet&, std::vector<std::shared_ptr<FlatVector>>&,
    Vec<double>*);
template void FormProbesInPlace<float>(
    const SampleSet&, const GameLayout&, Vec<float>&,
    std::vector<std::shared_ptr<const PackedVector>>&);
template void FormProbesInPlace<double>(
    const SampleSet&, const GameLayout&, Vec<double>&,
    std::vector<std::shared_ptr<const PackedVector>>&);

}  // namespace gameopt
