// WaitingReactor: the base of the unary calls that wait for a session's
// callback without holding a thread: Join / Submit* at the round's barrier
// (TaskReactor, game_optimizer_service.cc) and EstimateSpectrum
// (spectrum_methods.cc).
//
// Lifetime: two references, one released by OnDone (gRPC is done with the
// call) and one by Started(), once the session call has returned, because
// the session may run the callback, and gRPC may then run OnDone, on
// another thread before the session call returns.
//
// Cancellation: OnCancel withdraws the call from the session (CancelCall),
// which answers it CANCELLED through the callback. If OnCancel runs before
// the session has returned the CallId, it only records the wish and
// Started() cancels as soon as the id is known. CallId 0 means the callback
// already ran or is about to: nothing to cancel, Finish comes from it.
#ifndef GAMEOPT_SERVER_SERVICE_WAITING_REACTOR_H_
#define GAMEOPT_SERVER_SERVICE_WAITING_REACTOR_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"
#include "server/core/session.h"
#include "server/service/game_optimizer_service.h"

namespace gameopt::internal {

class WaitingReactor : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() final;
  void OnDone() final { Unref(); }
  // Lets gRPC run OnDone and OnCancel on the thread that completes the
  // call instead of handing them to its executor thread, which costs a
  // wake-up of that thread per call. Safe because neither reaction blocks
  // or calls into gRPC while holding a lock that gRPC may wait for: OnDone
  // drops a reference; OnCancel takes mu_ and then the session's lock, and
  // the session never holds that lock while it answers a call (its Outbox
  // runs the callbacks, and so Finish, after releasing it). gRPC marks the
  // hook "not API"; it is how its own DefaultReactor skips the hop.
  bool InternalInlineable() final { return true; }

 protected:
  // Counted in `count` (live_reactors()) until deleted.
  WaitingReactor(std::shared_ptr<Session> session, ReactorCount* count);
  ~WaitingReactor() override;

  // Call once the session has taken the callback and returned `id`.
  void Started(CallId id);
  Session& session() const { return *session_; }

 private:
  // Withdraws call `id` from the session (Session::Cancel, CancelSpectrum).
  virtual void CancelCall(CallId id) = 0;
  void Unref();

  const std::shared_ptr<Session> session_;
  ReactorCount* const count_;
  std::atomic<int> refs_{2};
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  CallId call_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gameopt::internal

#endif  // GAMEOPT_SERVER_SERVICE_WAITING_REACTOR_H_
