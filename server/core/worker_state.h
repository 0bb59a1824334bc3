// WorkerState: where a worker stands in its session (session.h). The core
// keeps it as this enum; its names ("active", "dropped", "left") are what
// checkpoints store and what older clients read (WorkerStatus.state).
#ifndef GAMEOPT_SERVER_CORE_WORKER_STATE_H_
#define GAMEOPT_SERVER_CORE_WORKER_STATE_H_

#include <optional>
#include <ostream>

#include "absl/strings/string_view.h"

namespace gameopt {

enum class WorkerState {
  kActive,   // takes part in the rounds
  kDropped,  // missed a deadline or its lease; comes back by its next call
  kLeft,     // LeaveSession; comes back only by Join
};

// "active", "dropped", "left".
inline const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kActive:
      return "active";
    case WorkerState::kDropped:
      return "dropped";
    case WorkerState::kLeft:
      return "left";
  }
  return "unknown";
}

// The state named `name` (WorkerStateName), or nullopt.
inline std::optional<WorkerState> ParseWorkerState(absl::string_view name) {
  for (WorkerState state :
       {WorkerState::kActive, WorkerState::kDropped, WorkerState::kLeft}) {
    if (name == WorkerStateName(state)) return state;
  }
  return std::nullopt;
}

// Its name, for logs and test failure messages.
inline std::ostream& operator<<(std::ostream& os, WorkerState state) {
  return os << WorkerStateName(state);
}

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_WORKER_STATE_H_
