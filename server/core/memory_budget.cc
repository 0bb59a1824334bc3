#include "server/core/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace gameopt {
namespace {

int SlotsOf(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return 0;
    case OptimizerKind::kAdam:
      return 2;
    default:
      return 1;
  }
}

// Vectors beyond kAlgorithmVectors that an algorithm keeps: optimistic
// Adam its last update and a scratch block, extrapolation from the past x
// before the step and the step, LEAD the correction, the mean products,
// x before the step, the last change and the probe.
int ExtraAlgorithmVectors(const AlgorithmConfig& a) {
  // ConOpt's variance-reduced correction: L-SVRHG's 4 and the step's xi.
  if (a.kind == AlgorithmKind::kConOpt && a.svrhg_correction) return 5;
  switch (a.kind) {
    case AlgorithmKind::kOptimisticAdam:
    case AlgorithmKind::kExtrapolationFromThePast:
      return 2;
    case AlgorithmKind::kLead:
      return 5;
    // LOLA and SOS: chi, O xi, xi, the direction and the probe (and n
    // loss gradients: EstimateSessionBytes adds them).
    case AlgorithmKind::kLola:
    case AlgorithmKind::kSos:
      return 5;
    case AlgorithmKind::kLSvrhg:  // w, grad H(w), the estimate at x, g
      return 4;
    default:
      return 0;
  }
}

// The first line of `path` as bytes; 0 when absent, unreadable or "max".
int64_t ReadLimit(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &value)) return 0;
  // cgroup v1 spells "no limit" as a huge page-aligned number.
  if (value <= 0 || value >= (int64_t{1} << 60)) return 0;
  return value;
}

std::string MiB(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

int64_t EstimateSessionBytes(const SessionConfig& config,
                             const GameLayout& layout) {
  // In double: exact enough, and no overflow; saturated below.
  const double width = static_cast<double>(DTypeSize(config.dtype));
  const double d = static_cast<double>(layout.dimension());
  double coordinates =
      (kAlgorithmVectors + ExtraAlgorithmVectors(config.algorithm)) * d;
  if (config.algorithm.kind == AlgorithmKind::kLola ||
      config.algorithm.kind == AlgorithmKind::kSos) {
    coordinates += static_cast<double>(layout.num_players()) * d;
  }
  for (size_t p = 0; p < config.players.size() &&
                     p < static_cast<size_t>(layout.num_players());
       ++p) {
    coordinates += SlotsOf(config.players[p].optimizer.kind) *
                   static_cast<double>(layout.players()[p].size);
  }
  const bool fused =
      config.algorithm.fuse_local_products || config.algorithm.bias_meter;
  coordinates +=
      static_cast<double>(kBuffersPerWorkerSample + (fused ? 1 : 0)) *
      std::max(1, config.workers_per_round) *
      std::max(1, config.samples_per_worker) * d;
  double bytes = coordinates * width;
  const AlgorithmConfig& a = config.algorithm;
  if ((a.kind == AlgorithmKind::kCgd || a.kind == AlgorithmKind::kAcgd) &&
      layout.num_players() == 2) {
    const double solved = static_cast<double>(
        std::min(layout.players()[0].size, layout.players()[1].size));
    const double krylov =
        a.cgd_zero_sum ? 3.0 : static_cast<double>(a.cgd_max_iterations) + 1;
    const double full = a.kind == AlgorithmKind::kAcgd ? 4.0 : 2.0;
    bytes += 8.0 * (full * d + (2.0 + krylov) * solved);
  }
  constexpr double kMax = 9.0e18;  // below INT64_MAX
  return bytes >= kMax ? std::numeric_limits<int64_t>::max()
                       : static_cast<int64_t>(bytes);
}

int64_t EstimateTaskBytes(const SessionConfig& config,
                          const GameLayout& layout) {
  const bool products = config.algorithm.kind == AlgorithmKind::kConOpt ||
                        config.algorithm.kind == AlgorithmKind::kSga ||
                        config.algorithm.kind == AlgorithmKind::kShgd ||
                        config.algorithm.kind == AlgorithmKind::kLSvrhg ||
                        config.algorithm.kind == AlgorithmKind::kLead ||
                        config.algorithm.kind == AlgorithmKind::kLola ||
                        config.algorithm.kind == AlgorithmKind::kSos ||
                        config.algorithm.kind == AlgorithmKind::kCgd ||
                        config.algorithm.kind == AlgorithmKind::kAcgd;
  const double vectors =
      1.0 + (products ? std::max(1, config.samples_per_worker) : 0);
  // Per vector: the values, and per tensor its name, shape and framing.
  double per_vector = static_cast<double>(DTypeSize(config.dtype)) *
                      static_cast<double>(layout.dimension());
  for (const PlayerLayout& player : layout.players()) {
    per_vector += static_cast<double>(player.name.size()) + 16.0;
    for (const TensorLayout& tensor : player.tensors) {
      per_vector += static_cast<double>(tensor.name.size()) + 32.0 +
                    10.0 * static_cast<double>(tensor.shape.size());
    }
  }
  const double bytes = vectors * per_vector + 1024.0;
  constexpr double kMax = 9.0e18;
  return bytes >= kMax ? std::numeric_limits<int64_t>::max()
                       : static_cast<int64_t>(bytes);
}

int64_t MemoryLimitBytes() {
  int64_t limit = ReadLimit("/sys/fs/cgroup/memory.max");
  if (limit == 0)
    limit = ReadLimit("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  const int64_t physical =
      pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
  if (limit == 0) return physical;
  return physical > 0 ? std::min(limit, physical) : limit;
}

int64_t DefaultMemoryBudgetBytes() {
  return static_cast<int64_t>(static_cast<double>(MemoryLimitBytes()) *
                              kDefaultBudgetFraction);
}

absl::Status MemoryBudget::Reserve(int64_t bytes, const std::string& what) {
  absl::MutexLock lock(&mu_);
  if (limit_ <= 0) return absl::OkStatus();  // nothing to account
  const int64_t left = std::max<int64_t>(0, limit_ - used_);
  if (bytes > left) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " needs about ", MiB(bytes),
        " (parameters, optimizer slots and per-worker buffers); ", MiB(left),
        " of the server's memory budget of ", MiB(limit_),
        " are left. Use fewer parameters, workers_per_round or "
        "samples_per_worker, delete finished sessions, or start the server "
        "with a larger --max_memory_mb"));
  }
  used_ += bytes;
  return absl::OkStatus();
}

void MemoryBudget::ForceReserve(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (limit_ <= 0) return;
  used_ = bytes > std::numeric_limits<int64_t>::max() - used_
              ? std::numeric_limits<int64_t>::max()
              : used_ + bytes;
}

void MemoryBudget::Release(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (limit_ <= 0) return;
  used_ = std::max<int64_t>(0, used_ - bytes);
}

int64_t MemoryBudget::used() const {
  absl::MutexLock lock(&mu_);
  return used_;
}

}  // namespace gameopt
