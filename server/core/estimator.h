// Estimators of J^T xi from K gradient samples (the probe of each estimator
// is listed at EstimatorKind in config.h).
//
// The products phase asks the worker that computed gradient sample k for
// J_k^T w_k (and/or J_k w_k) on the same minibatch; these functions form the
// probes w_k and average the answers.
#ifndef GAMEOPT_SERVER_CORE_ESTIMATOR_H_
#define GAMEOPT_SERVER_CORE_ESTIMATOR_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/kernels.h"
#include "server/core/sample_set.h"

namespace gameopt {

// The samples may be packed (sample_set.h): each block is decoded into
// L1 where it is read, with the values DecodeSample gives, so the results
// are the same bit for bit.
//
// Sets `mean` to (1/K) sum_k samples[k], summing in the given order so the
// result is bit-for-bit reproducible, for any thread count (kernels.h).
// K >= 1. Allocates only when `mean` has another size.
template <typename T>
void MeanOf(const SampleSet& samples, Vec<T>& mean);

// Fills probes[k] = w_k for every sample (resizing `probes`; the pooled
// probe is one buffer that every probes[k] points to). Reuses a
// probe's buffer in place unless someone else still holds it (a transport
// still sending it), in which case a new one is made.
// kUnbiased with fewer than 2 samples is FailedPrecondition.
template <typename T>
absl::Status ComputeProbes(EstimatorKind estimator, const SampleSet& samples,
                           std::vector<std::shared_ptr<FlatVector>>& probes);

// The same, and `mean` = MeanOf(samples) (bit-identical) in the same pass
// over the samples; `mean` is left alone on error.
template <typename T>
absl::Status ComputeProbes(EstimatorKind estimator, const SampleSet& samples,
                           std::vector<std::shared_ptr<FlatVector>>& probes,
                           Vec<T>* mean);

// Whether FormProbesInPlace can form `estimator`'s probes for `samples`
// in `format`: unbiased, every sample packed in `format` (kNone: raw
// values of `dtype`) with every tensor present, referencing the bytes it
// arrived in (PackedVector::WritableIn). Never float16: a probe past its
// range (65504) would have to go in the session's dtype instead.
bool CanFormProbesInPlace(EstimatorKind estimator, const SampleSet& samples,
                          DType dtype, Compression format = Compression::kNone);

// The unbiased probes written over the samples' own bytes: per block (of a
// tensor), S (in order) into `mean` / K and (S - s_k) / (K - 1) over
// sample k's values once every sample's block has been read. probes[k] is
// a copy of sample k's PackedVector (sharing its bytes), which then holds
// probe k in the samples' format: the values ComputeProbes computes, bit
// for bit (raw), or their nearest-even encoding (bfloat16, int8 blocks:
// the bytes a lazy probe's encoding has), which a transport sends as they
// are (TaskToWire), without a buffer per probe. Memory the samples held is
// what the probes hold, and once the probes are sent and let go
// (Algorithm::HandOutPackedProbe) it goes to the products (server/
// README.md, "Probes in the samples' bytes"). CanFormProbesInPlace must
// hold; the samples must not be read again.
template <typename T>
void FormProbesInPlace(
    const SampleSet& samples, const GameLayout& layout, Vec<T>& mean,
    std::vector<std::shared_ptr<const PackedVector>>& probes);

// The probe of one block from the samples' sum S (in order) and sample
// k's values: S / K (pooled) or (S - s_k) / (K - 1) (unbiased). The one
// definition ComputeProbes and the lazy probes (lazy_probe.h) share, so
// they agree bit for bit. `out` may be any array of n values.
template <typename T>
void ProbeBlock(EstimatorKind estimator, size_t num, const T* sum,
                const T* sample, int64_t n, T* out) {
  if (estimator == EstimatorKind::kPooled) {
    DifferenceOver<T>(sum, nullptr, static_cast<T>(num), n, out);
  } else {
    DifferenceOver<T>(sum, sample, static_cast<T>(num - 1), n, out);
  }
}

// FailedPrecondition when `num` samples are too few for `estimator` (none,
// or fewer than 2 for kUnbiased), naming what to change.
absl::Status CheckSampleCount(EstimatorKind estimator, size_t num);

// Makes `buffer` exclusively owned (copy-on-write) with the given dtype and
// size, allocating only when it is shared or missing.
void MakeExclusive(std::shared_ptr<FlatVector>& buffer, DType dtype,
                   int64_t size);

// Copy-on-write copies made in this process: a vector the core was about to
// overwrite (a probe in MakeExclusive, the parameters in
// TypedAlgorithm::MutableX) was still held by someone else, a transport
// still sending it, so a new one was allocated. In steady state a response
// has released its vectors by then; gRPC destroys a finished call on its
// executor thread, which on a loaded machine can run after the worker's
// next submission (tests/bench/hot_path_test.cc counts these).
int64_t CopyOnWriteCopies();
void CountCopyOnWriteCopy();

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ESTIMATOR_H_
