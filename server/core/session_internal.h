// Session's private parts shared by its implementation files (session.cc,
// session_submit.cc, session_workers.cc, session_liveness.cc,
// session_spectrum.cc, session_snapshot.cc): the worker table's entry, the
// Outbox of callbacks and the lock (OutboxLock) that delivers it after
// releasing the session's lock, the worker name check. Not for use outside
// Session.
#ifndef GAMEOPT_SERVER_CORE_SESSION_INTERNAL_H_
#define GAMEOPT_SERVER_CORE_SESSION_INTERNAL_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/session.h"

namespace gameopt {

struct Session::Worker {
  int64_t id = 0;
  std::string name;
  std::string owner;  // Caller::owner it is bound to; empty: none
  // Its WorkerState is the barrier's (Session::barrier_).
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
  // Each sample (then product) k is in samples[k], or in packed[k] when
  // that is in use (Session::KeepsPacked: kept in the compressed wire
  // format it came in).
  int num_samples = 0;  // valid gradient samples of its last gradient round
  std::vector<FlatVector> samples;  // then its J^T w products
  std::vector<PackedVector> packed;
  int num_products = 0;         // valid products of its last products round
  std::vector<FlatVector> jvp;  // also a fused round's J_k xi_k
  std::vector<FlatVector> fused_vjp;  // a fused round's J_k^T xi_k
  // The scalars of its submission to the open gradient round.
  std::vector<NamedValue> scalars;
};

// Collects the callbacks of one locked section. Made and delivered only by
// OutboxLock; the session's code adds to it under the lock.
class Session::Outbox {
 public:
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

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
  friend class Session::OutboxLock;
  Outbox() = default;

  // Actions first: a checkpoint is written before any worker goes on.
  void Deliver() {
    for (auto& action : actions_) action();
    for (auto& [done, result] : items_) done(std::move(result));
    for (auto& [done, result] : spectra_) done(std::move(result));
  }

  std::vector<std::function<void()>> actions_;
  std::vector<std::pair<TaskCallback, absl::StatusOr<Task>>> items_;
  std::vector<std::pair<SpectrumCallback, absl::StatusOr<SpectrumResult>>>
      spectra_;
};

// Holds the session's lock for its scope, like absl::MutexLock, with an
// Outbox that its destructor delivers after releasing the lock:
//
//   OutboxLock lock(this);
//   Outbox& out = lock.out();
//   ...  // under the lock; out.Add(done, result)
//   // ~OutboxLock: mu_.Unlock(), then the callbacks.
//
// The only way to make or deliver an Outbox, so no callback runs under the
// lock whatever the order of declarations.
class ABSL_SCOPED_LOCKABLE Session::OutboxLock {
 public:
  explicit OutboxLock(Session* session)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(session->mu_)
      : session_(session) {
    session_->mu_.Lock();
  }
  OutboxLock(const OutboxLock&) = delete;
  OutboxLock& operator=(const OutboxLock&) = delete;
  ~OutboxLock() ABSL_UNLOCK_FUNCTION() {
    session_->mu_.Unlock();
    out_.Deliver();
  }

  Outbox& out() { return out_; }

 private:
  Session* const session_;
  Outbox out_;
};

namespace session_internal {

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
