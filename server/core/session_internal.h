// Session's private parts shared by its implementation files (session.cc,
// session_workers.cc, session_liveness.cc, session_spectrum.cc,
// session_snapshot.cc): the worker table's entry, the Outbox that delivers
// callbacks after the lock is released, and the state names. Not for use
// outside Session.
#ifndef GAMEOPT_SERVER_CORE_SESSION_INTERNAL_H_
#define GAMEOPT_SERVER_CORE_SESSION_INTERNAL_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/session.h"

namespace gameopt {

struct Session::Worker {
  enum class State { kActive, kDropped, kLeft };
  int64_t id = 0;
  std::string name;
  std::string owner;  // Caller::owner it is bound to; empty: none
  State state = State::kActive;
  int64_t last_round = -1;  // round of the last accepted submission
  int64_t missed_deadlines = 0;
  int64_t last_to_submit = 0;
  // Liveness (liveness.h): when its last call arrived or its waiting call
  // was answered, and why it is dropped or left.
  absl::Time last_seen;
  std::string reason;
  // Buffers reused from round to round: no parameter-sized allocation in
  // steady state. A products phase opens once the gradient phase has
  // closed, when the samples have been consumed (mean, probes), so the
  // J^T w products are decoded into the samples' buffers: one buffer per
  // sample, not two.
  int num_samples = 0;  // valid gradient samples of its last gradient round
  std::vector<FlatVector> samples;  // then its J^T w products
  int num_products = 0;             // valid products of its last products round
  std::vector<FlatVector> jvp;      // also a fused round's J_k xi_k
  std::vector<FlatVector> fused_vjp;  // a fused round's J_k^T xi_k
  // The scalars of its submission to the open gradient round.
  std::vector<NamedValue> scalars;
};

class Session::Outbox {
 public:
  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  // Actions first: a checkpoint is written before any worker goes on.
  ~Outbox() {
    for (auto& action : actions_) action();
    for (auto& [done, result] : items_) done(std::move(result));
    for (auto& [done, result] : spectra_) done(std::move(result));
  }
  void AddAction(std::function<void()> action) {
    actions_.push_back(std::move(action));
  }
  void Add(TaskCallback done, absl::StatusOr<Task> result) {
    items_.emplace_back(std::move(done), std::move(result));
  }
  void Add(SpectrumCallback done, absl::StatusOr<SpectrumResult> result) {
    spectra_.emplace_back(std::move(done), std::move(result));
  }

 private:
  std::vector<std::function<void()>> actions_;
  std::vector<std::pair<TaskCallback, absl::StatusOr<Task>>> items_;
  std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
      spectra_;
};

namespace session_internal {

inline constexpr const char* kStateNames[] = {"active", "dropped", "left"};

inline const char* StateName(int state) { return kStateNames[state]; }

// The index of `name` in kStateNames, or -1.
inline int StateIndex(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    if (name == kStateNames[i]) return i;
  }
  return -1;
}

// Names are logged and shown: printable ASCII only, so that no name forges
// a log line or a status table row.
inline absl::Status ValidateWorkerName(absl::string_view name) {
  constexpr size_t kMaxName = 256;
  if (name.size() > kMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_name has ", name.size(), " bytes; at most ",
                     kMaxName, " are allowed"));
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "worker_name must be printable ASCII (no control characters)");
    }
  }
  return absl::OkStatus();
}

}  // namespace session_internal
}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SESSION_INTERNAL_H_
