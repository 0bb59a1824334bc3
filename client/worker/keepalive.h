// Keepalive: a worker's Heartbeat calls while it computes a task, so that a
// computation longer than the session's worker lease does not get the
// worker dropped (server/core/liveness.h).
//
// Armed from the moment a task arrives until the worker's next call goes
// out; while armed, a background thread sends Heartbeat(session, worker)
// every third of the session's lease (kFirstInterval until the first reply
// has said what the lease is). A task computed faster than that costs no
// call at all. A server without the Heartbeat method (UNIMPLEMENTED) or a
// session without a lease stops the heartbeats; other errors are ignored
// (the worker's own calls report them).
//
// Thread-safe.
#ifndef GAMEOPT_CLIENT_WORKER_KEEPALIVE_H_
#define GAMEOPT_CLIENT_WORKER_KEEPALIVE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace gameopt {

class Keepalive {
 public:
  // Safe below the default lease (10 s) and any lease of 6 s or more.
  static constexpr absl::Duration kFirstInterval = absl::Seconds(2);

  Keepalive(std::shared_ptr<grpc::Channel> channel, std::string session_id);
  // Stops the thread (a heartbeat in flight ends within its 5 s deadline).
  ~Keepalive();
  Keepalive(const Keepalive&) = delete;
  Keepalive& operator=(const Keepalive&) = delete;

  // The worker got a task and computes it as `worker_id`.
  void Arm(int64_t worker_id);
  // The worker's next call goes out (it renews the lease itself).
  void Disarm();
  // Heartbeats sent so far (tests).
  int64_t sent() const;

 private:
  void Loop();
  bool Due() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
  const std::string session_id_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool disabled_ ABSL_GUARDED_BY(mu_) = false;
  int64_t worker_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0 = disarmed
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = kFirstInterval;
  absl::Time next_ ABSL_GUARDED_BY(mu_);
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // started by the first Arm
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_KEEPALIVE_H_
