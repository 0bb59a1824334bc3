#include "server/core/estimator.h"

#include "absl/strings/str_cat.h"

namespace gameopt {

template <typename T>
void MeanOf(absl::Span<const FlatVector* const> samples, Vec<T>& mean) {
  mean = samples[0]->as<T>();
  for (size_t k = 1; k < samples.size(); ++k) mean += samples[k]->as<T>();
  if (samples.size() > 1) mean /= static_cast<T>(samples.size());
}

void MakeExclusive(std::shared_ptr<FlatVector>& buffer, DType dtype,
                   int64_t size) {
  if (buffer == nullptr || buffer.use_count() > 1 ||
      buffer->dtype() != dtype) {
    buffer = std::make_shared<FlatVector>(dtype, size);
  } else if (buffer->size() != size) {
    buffer->Resize(size);
  }
}

template <typename T>
absl::Status ComputeProbes(EstimatorKind estimator,
                           absl::Span<const FlatVector* const> samples,
                           std::vector<std::shared_ptr<FlatVector>>& probes) {
  const size_t num = samples.size();
  if (num == 0) return absl::FailedPreconditionError("no gradient samples");
  if (estimator == EstimatorKind::kUnbiased && num < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the unbiased estimator needs at least 2 gradient samples in a "
        "round, got ", num,
        ": run 2 or more workers per round or set samples_per_worker >= 2"));
  }
  const DType dtype = samples[0]->dtype();
  const int64_t d = samples[0]->size();
  probes.resize(num);
  if (estimator == EstimatorKind::kLocal) {
    for (size_t k = 0; k < num; ++k) {
      MakeExclusive(probes[k], dtype, d);
      probes[k]->as<T>() = samples[k]->as<T>();
    }
    return absl::OkStatus();
  }
  Vec<T> sum = samples[0]->as<T>();
  for (size_t k = 1; k < num; ++k) sum += samples[k]->as<T>();
  for (size_t k = 0; k < num; ++k) {
    MakeExclusive(probes[k], dtype, d);
    if (estimator == EstimatorKind::kPooled) {
      probes[k]->as<T>() = sum / static_cast<T>(num);
    } else {
      probes[k]->as<T>() =
          (sum - samples[k]->as<T>()) / static_cast<T>(num - 1);
    }
  }
  return absl::OkStatus();
}

template void MeanOf<float>(absl::Span<const FlatVector* const>, Vec<float>&);
template void MeanOf<double>(absl::Span<const FlatVector* const>,
                             Vec<double>&);
template absl::Status ComputeProbes<float>(
    EstimatorKind, absl::Span<const FlatVector* const>,
    std::vector<std::shared_ptr<FlatVector>>&);
template absl::Status ComputeProbes<double>(
    EstimatorKind, absl::Span<const FlatVector* const>,
    std::vector<std::shared_ptr<FlatVector>>&);

}  // namespace gameopt
