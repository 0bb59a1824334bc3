#include "server/core/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

constexpr double kPi = 3.14159265358979323846;

absl::Status Bad(absl::string_view where, absl::string_view field,
                 absl::string_view rule, double value) {
  return absl::InvalidArgumentError(absl::StrCat(
      where, ".", field, " = ", value, " is out of range: ", rule));
}

}  // namespace

absl::Status ValidateLrSchedule(const LrSchedule& s, absl::string_view where) {
  const bool uses_gamma = s.kind == LrScheduleKind::kStep ||
                          s.kind == LrScheduleKind::kMultiStep ||
                          s.kind == LrScheduleKind::kExponential;
  if (uses_gamma && !(std::isfinite(s.gamma) && s.gamma > 0.0)) {
    return Bad(where, "gamma", "must be > 0 and finite", s.gamma);
  }
  switch (s.kind) {
    case LrScheduleKind::kConstant:
    case LrScheduleKind::kExponential:
      break;
    case LrScheduleKind::kStep:
      if (s.step_size < 1) {
        return Bad(where, "step_size", "must be >= 1",
                   static_cast<double>(s.step_size));
      }
      break;
    case LrScheduleKind::kMultiStep:
      if (s.milestones.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".milestones must list at least one step for MULTI_STEP"));
      }
      for (size_t i = 0; i < s.milestones.size(); ++i) {
        if (s.milestones[i] < 1 ||
            (i > 0 && s.milestones[i] <= s.milestones[i - 1])) {
          return Bad(where, absl::StrCat("milestones[", i, "]"),
                     "must be >= 1 and greater than the previous milestone",
                     static_cast<double>(s.milestones[i]));
        }
      }
      break;
    case LrScheduleKind::kCosine:
      if (s.t_max < 1) {
        return Bad(where, "t_max", "must be >= 1",
                   static_cast<double>(s.t_max));
      }
      if (!(std::isfinite(s.eta_min) && s.eta_min >= 0.0)) {
        return Bad(where, "eta_min", "must be >= 0 and finite", s.eta_min);
      }
      break;
    case LrScheduleKind::kLinear:
      if (!(std::isfinite(s.start_factor) && s.start_factor > 0.0 &&
            s.start_factor <= 1.0)) {
        return Bad(where, "start_factor", "must be in (0, 1]", s.start_factor);
      }
      if (!(std::isfinite(s.end_factor) && s.end_factor >= 0.0 &&
            s.end_factor <= 1.0)) {
        return Bad(where, "end_factor", "must be in [0, 1]", s.end_factor);
      }
      if (s.total_steps < 1) {
        return Bad(where, "total_steps", "must be >= 1",
                   static_cast<double>(s.total_steps));
      }
      break;
  }
  return absl::OkStatus();
}

double LearningRateAt(double lr0, const LrSchedule& s, int64_t t) {
  switch (s.kind) {
    case LrScheduleKind::kConstant:
      return lr0;
    case LrScheduleKind::kStep:
      return lr0 * std::pow(s.gamma, static_cast<double>(t / s.step_size));
    case LrScheduleKind::kMultiStep: {
      const auto passed =
          std::upper_bound(s.milestones.begin(), s.milestones.end(), t) -
          s.milestones.begin();
      return lr0 * std::pow(s.gamma, static_cast<double>(passed));
    }
    case LrScheduleKind::kExponential:
      return lr0 * std::pow(s.gamma, static_cast<double>(t));
    case LrScheduleKind::kCosine:
      return s.eta_min + (lr0 - s.eta_min) *
                             (1.0 + std::cos(kPi * static_cast<double>(t) /
                                             static_cast<double>(s.t_max))) /
                             2.0;
    case LrScheduleKind::kLinear:
      return lr0 * (s.start_factor +
                    (s.end_factor - s.start_factor) *
                        static_cast<double>(std::min(t, s.total_steps)) /
                        static_cast<double>(s.total_steps));
  }
  return lr0;
}

}  // namespace gameopt
