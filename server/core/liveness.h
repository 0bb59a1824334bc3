// Liveness of a session's workers: a worker that dies
// or hangs is noticed within seconds, not at the phase deadline.
//
// Two signals, both applied by Session:
//   - Transport cancellation: when a worker's waiting call (Join or a
//     submit at the barrier) is cancelled by the transport (its process
//     died, its channel closed, its own deadline passed), and it has no
//     other call in flight, it is dropped at once (Session::Cancel).
//   - A lease (SessionConfig::worker_lease, default kDefaultWorkerLease): a
//     worker with no call in flight whose last call arrived, or whose last
//     waiting call was answered, longer ago than the lease is dropped
//     (Session::CheckDeadline, which the server runs at NextDeadline(),
//     hence within milliseconds of the lease running out). Workers whose
//     computation of one task takes longer send Heartbeat.
//
// Dropped means what a missed deadline means: the worker no longer holds
// up the round, which proceeds under the session's quorum rules (all
// active workers in and at least `quorum` submissions, or K submissions);
// its accepted submissions stay; any later call of it (a submit, Join with
// its id, Heartbeat) makes it active again when there is room. Status shows
// the state and the reason (WorkerInfo::reason).
#ifndef GAMEOPT_SERVER_CORE_LIVENESS_H_
#define GAMEOPT_SERVER_CORE_LIVENESS_H_

#include <string>

#include "absl/time/time.h"

namespace gameopt {

// The reasons Session gives (SessionStatus.workers[].state_reason).
inline constexpr char kCancelledReason[] =
    "its waiting call was cancelled (the client went away or gave up)";
std::string LeaseExpiredReason(absl::Duration lease);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_LIVENESS_H_
