// Probes that are never stored as float vectors. With a compressed wire to
// the workers and packed samples (sample_set.h) that FormProbesInPlace
// cannot write over (the pooled estimator, stochastic rounding, float16,
// samples in another format: estimator.h), ConOpt's probes exist only
// to be encoded for the workers: FormProbes sums the packed samples block
// by block, writes the mean gradient, and encodes each probe's block right
// away (nearest-even rounding) instead of writing K model-sized probes
// that the encoder would read back. The probes keep the round's packed
// samples, so each can still be formed in full, with ComputeProbes'
// operations, where a reader needs the vector (a checkpoint, a stochastic
// rounding stream per task, a tensor that does not fit the format).
#ifndef GAMEOPT_SERVER_CORE_LAZY_PROBE_H_
#define GAMEOPT_SERVER_CORE_LAZY_PROBE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/sample_set.h"
#include "server/core/wire_vector.h"

namespace gameopt {

// The round that the probes come from: its packed samples, in order.
struct ProbeRound {
  EstimatorKind estimator = EstimatorKind::kPooled;
  DType dtype = DType::kFloat32;
  std::vector<PackedVector> samples;  // each references its bytes
  // FormProbes' nearest-even encodings of the probes in `encoded_in`
  // (pooled: one, shared by every probe), or none. Each is held until
  // every probe that uses it has been encoded once (LazyProbe::Encode: the
  // tasks of the round's workers), then only weakly: the transport keeps
  // it while it sends it, a later asker (a retry, a rejoin) gets it while
  // it is alive and else an encoding made again, with the same bytes. So
  // the products phase does not hold K encoded probes next to the
  // products.
  Compression encoded_in = Compression::kNone;
  mutable absl::Mutex mu;
  mutable std::vector<std::shared_ptr<const EncodedVector>> encoded
      ABSL_GUARDED_BY(mu);
  mutable std::vector<std::weak_ptr<const EncodedVector>> handed_out
      ABSL_GUARDED_BY(mu);
  // Per encoding: the Encode calls that still get it from `encoded`.
  mutable std::vector<int> unsent ABSL_GUARDED_BY(mu);
};

// Probe k of a ProbeRound: S / K (pooled) or (S - s_k) / (K - 1)
// (unbiased), S the samples' sum in order. Immutable; thread-safe.
class LazyProbe {
 public:
  LazyProbe(std::shared_ptr<const ProbeRound> round, size_t k)
      : round_(std::move(round)), k_(k) {}

  DType dtype() const { return round_->dtype; }
  int64_t dimension() const { return round_->samples[0].dimension(); }
  // Values [begin, begin + n) (T is dtype()'s type), as ComputeProbes
  // computes them.
  template <typename T>
  void Values(int64_t begin, int64_t n, T* out) const;
  // The whole probe.
  std::shared_ptr<FlatVector> Materialize() const;
  // Its encoding in `compression` with `rounding`: FormProbes' while the
  // round holds it (ProbeRound::encoded), else encoded now from Values
  // (EncodeVector's bytes for Materialize()).
  std::shared_ptr<const EncodedVector> Encode(const GameLayout& layout,
                                              Compression compression,
                                              const Rounding& rounding) const;

 private:
  std::shared_ptr<const ProbeRound> round_;
  size_t k_;
};

// For `samples`, all packed and referencing their bytes: `mean` (MeanOf's
// values), and one LazyProbe per sample in `probes` (the pooled one shared)
// with its nearest-even encoding in `compression` made in the same pass.
// ComputeProbes' checks and errors; nothing is changed on error.
template <typename T>
absl::Status FormProbes(EstimatorKind estimator, const SampleSet& samples,
                        const GameLayout& layout, Compression compression,
                        Vec<T>& mean,
                        std::vector<std::shared_ptr<const LazyProbe>>& probes);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_LAZY_PROBE_H_
