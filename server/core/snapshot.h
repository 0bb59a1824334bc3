// Snapshots of a session's state, for checkpoints (--state_dir; the file
// format is proto/gameopt/v1/checkpoint.proto): everything a
// session needs to resume at the start of its open round, as plain C++
// values. The core takes and restores them (Session::Snapshot,
// Session::Restore); the service layer turns them into files
// (server/service/checkpoint_store.h).
//
// What is left out on purpose: the submissions accepted in the open round.
// After a restore that round reopens and its workers resubmit; their
// minibatch seeds are a function of (session seed, round, worker id), so the
// resubmissions are the same values and the run continues bit for bit.
#ifndef GAMEOPT_SERVER_CORE_SNAPSHOT_H_
#define GAMEOPT_SERVER_CORE_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/worker_state.h"

namespace gameopt {

// One vector of an algorithm's state. Shared and immutable: the parameters
// are shared with the live session (copy on its next write), other slots
// are copies.
struct NamedVector {
  std::string name;
  std::shared_ptr<const FlatVector> value;
};

struct NamedScalar {
  std::string name;
  int64_t value = 0;
};

// An Algorithm's state at the start of its current phase. The names are the
// algorithm's own (typed_algorithm.cc lists them); several vectors may share
// a name (the probes), and their order matters.
struct AlgorithmState {
  int64_t step = 0;           // completed steps
  int phase = 0;              // index of the current phase in the plan
  int64_t point_version = 1;  // Algorithm::point_version()
  std::vector<NamedVector> vectors;
  std::vector<NamedScalar> scalars;
};

// One row of the session's worker table.
struct WorkerSnapshot {
  int64_t id = 0;
  std::string name;
  WorkerState state = WorkerState::kActive;
  int64_t last_round = -1;
  int64_t missed_deadlines = 0;
  // Gradient samples the worker gave in the step's gradient phase, and the
  // index of its first one among that phase's samples (-1: holds none), for
  // the products phase's probes.
  int num_samples = 0;
  int first_sample = -1;
  // The opaque identity of the caller it is bound to (session.h, Caller);
  // empty: none.
  std::string owner;
};

struct SessionSnapshot {
  std::string id;
  std::shared_ptr<const SessionConfig> config;
  int64_t round = 0;  // the open round, which reopens on restore
  int64_t next_worker_id = 1;
  int64_t joined_ever = 0;
  std::vector<WorkerSnapshot> workers;  // by id
  AlgorithmState algorithm;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SNAPSHOT_H_
