#include "client/games/games.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/games/bilinear.h"
#include "client/games/bilinear_sum.h"
#include "client/games/quadratic.h"
#include "client/games/tandem.h"

namespace gameopt {
namespace {

absl::Status Invalid(absl::string_view game, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(game, ": ", message));
}

absl::Status Validate(const DiracGanOptions& options) {
  if (!(options.penalty_weight >= 0)) {
    return Invalid("dirac", "penalty_weight must be >= 0");
  }
  if (!(options.noise_std >= 0)) {
    return Invalid("dirac", "noise_std must be >= 0");
  }
  if (options.batch < 1) return Invalid("dirac", "batch must be >= 1");
  if (!(options.clip > 0)) return Invalid("dirac", "clip must be > 0");
  return absl::OkStatus();
}

absl::Status Validate(const MogGanOptions& options) {
  if (options.batch < 1 || options.z_dim < 1 || options.width < 1 ||
      options.depth < 1 || options.num_modes < 1) {
    return Invalid("mog",
                   "batch, z_dim, width, depth and num_modes must be >= 1");
  }
  if (!(options.data_std > 0)) return Invalid("mog", "data_std must be > 0");
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> GameNames() {
  return {"bilinear", "bilinear_sum", "dirac", "quadratic", "mog", "tandem"};
}

absl::StatusOr<std::unique_ptr<Game>> MakeGame(const std::string& name,
                                               const GameOptions& options) {
  if (name == "bilinear") {
    if (options.bilinear_dim < 1) return Invalid(name, "dim must be >= 1");
    return std::make_unique<BilinearGame>(options.bilinear_dim, options.seed);
  }
  if (name == "bilinear_sum") {
    if (options.bilinear_dim < 1 || options.bilinear_terms < 1) {
      return Invalid(name, "dim and terms must be >= 1");
    }
    return std::make_unique<BilinearSumGame>(
        options.bilinear_dim, options.bilinear_terms, options.seed);
  }
  if (name == "dirac") {
    if (absl::Status status = Validate(options.dirac); !status.ok()) {
      return status;
    }
    return std::make_unique<DiracGan>(options.dirac);
  }
  if (name == "quadratic") {
    if (options.quadratic_dims.empty()) {
      return Invalid(name, "needs at least one player");
    }
    for (int d : options.quadratic_dims) {
      if (d < 1) return Invalid(name, "every player dimension must be >= 1");
    }
    if (!(options.quadratic_noise_std >= 0)) {
      return Invalid(name, "noise_std must be >= 0");
    }
    return std::make_unique<QuadraticGame>(options.quadratic_dims, options.seed,
                                           options.quadratic_noise_std);
  }
  if (name == "tandem") return std::make_unique<TandemGame>();
  if (name == "mog") {
    if (absl::Status status = Validate(options.mog); !status.ok()) {
      return status;
    }
    return std::make_unique<MogGan>(options.mog, options.seed);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown game '", name,
      "' (expected one of: ", absl::StrJoin(GameNames(), ", "), ")"));
}

}  // namespace gameopt
