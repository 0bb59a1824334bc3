// Learning-rate schedules (config.h LrSchedule): the learning rate of a
// player's base optimizer as a function of the session's completed steps.
//
// The closed forms of torch.optim.lr_scheduler's StepLR, MultiStepLR,
// ExponentialLR, CosineAnnealingLR and LinearLR, for a loop that calls
// scheduler.step() once after each optimizer step: step t (0-based, t =
// completed steps) uses LearningRateAt(lr0, schedule, t). Being a function
// of t alone, a session restored from a checkpoint continues its schedule
// where it stopped. torch computes most of them recursively (lr *= ...),
// which can differ from the closed form in the last bits.
#ifndef GAMEOPT_SERVER_CORE_LR_SCHEDULE_H_
#define GAMEOPT_SERVER_CORE_LR_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/config.h"

namespace gameopt {

// InvalidArgument naming `where`.<field> for the first field out of range
// (only the fields of schedule.kind are checked).
absl::Status ValidateLrSchedule(const LrSchedule& schedule,
                                absl::string_view where);

// The learning rate of step t >= 0; `schedule` must have passed
// ValidateLrSchedule.
double LearningRateAt(double lr0, const LrSchedule& schedule, int64_t t);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_LR_SCHEDULE_H_
