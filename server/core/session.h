// Session: one experiment's optimizer state, its workers and the round
// barrier that turns their submissions into algorithm phases (the worker
// loop at the top of proto/gameopt/v1/gameopt.proto). The
// transport-independent heart of the service.
//
// The server drives, workers answer. Every phase of the algorithm is one
// round: it opens, hands each worker that has a role in it a Task, collects
// one submission per worker, and closes when
//   - K = workers_per_round workers have submitted, or
//   - every active worker has submitted, at least `quorum` have, and K
//     workers have joined at some point (departures do not stall rounds), or
//   - the phase deadline passed and at least `quorum` have submitted; the
//     missing workers are dropped from the round (and logged).
// Past the deadline without a quorum, the waiting calls fail with ABORTED
// naming the missing workers; the round stays open with a fresh deadline and
// its submissions kept, so a resubmission (an idempotent retry) waits again.
//
// Aggregation is deterministic: samples enter the algorithm ordered by worker
// id, then sample index, whatever order they arrived in. A submission is
// identified by (worker, round): sending it again is answered again, never
// applied twice. A submission for a closed round is FAILED_PRECONDITION with
// the current step; the worker calls Join with its id to get the current
// task.
//
// Checkpoints: Snapshot() captures what the session needs to resume at the
// start of its open round (snapshot.h), Restore() rebuilds a session from
// it. The submissions of the open round are not part of it: after a restore
// the round reopens, and the workers' retries resubmit the same values.
//
// Who owes the open round an answer, and so when it closes, is the
// RoundBarrier's to say (round_barrier.h); the session keeps it under its
// lock.
//
// Thread-safe. Callbacks run on the calling thread after the session's lock
// is released, exactly once per call: the lock's scope (OutboxLock) delivers
// them once it has released the lock, so a callback may call the session
// again.
#ifndef GAMEOPT_SERVER_CORE_SESSION_H_
#define GAMEOPT_SERVER_CORE_SESSION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/algorithm.h"
#include "server/core/clock.h"
#include "server/core/config.h"
#include "server/core/metrics.h"
#include "server/core/round_barrier.h"
#include "server/core/scalars.h"
#include "server/core/snapshot.h"
#include "server/core/spectrum_rounds.h"
#include "server/core/submission.h"
#include "server/core/worker_state.h"

namespace gameopt {

// What a worker must compute next.
struct Task {
  enum class Kind { kGradient, kProducts, kDone };
  Kind kind = Kind::kGradient;
  int64_t worker_id = 0;
  int64_t step = 0;   // completed steps so far
  int phase = 0;      // index within the step's plan
  int64_t round = 0;  // identifies this task; echo it in the submission
  std::string phase_label;
  // kGradient: the players whose gradient blocks to send, and how many
  // samples (fresh minibatches) to send.
  std::vector<int> players;
  int num_samples = 0;
  // kGradient: -1 for xi; a player index i asks for a cross gradient
  // instead: the gradient of player i's loss l_i with respect to the
  // parameters of every player in `players` (all of them), echoed in the
  // submission's `loss` (LOLA and SOS).
  int loss = -1;
  // kProducts: which products, one per probe; probe k refers to the
  // worker's gradient sample k of the step's gradient phase (same
  // minibatch).
  bool vjp = false;
  bool jvp = false;
  std::vector<std::shared_ptr<const FlatVector>> probes;
  // When not empty, one per probe: probes[k] is null and the probe is
  // formed where the task is encoded (Algorithm::lazy_probes).
  std::vector<std::shared_ptr<const LazyProbe>> lazy_probes;
  // When not empty, one per probe: probes[k] is null and the probe is in
  // the bytes of gradient sample k (Algorithm::packed_probes), raw values
  // of the session's dtype.
  std::vector<std::shared_ptr<const PackedVector>> packed_probes;
  // Whether probe k is there: false only for a packed probe let go of
  // once sent and gone (Algorithm::HandOutPackedProbe).
  bool HasProbe(size_t k) const {
    return probes[k] != nullptr || !lazy_probes.empty() ||
           (!packed_probes.empty() && packed_probes[k] != nullptr);
  }
  // Probe k as a vector, whatever holds it (formed or decoded for a
  // lazy or packed probe); HasProbe(k) must hold.
  std::shared_ptr<const FlatVector> Probe(size_t k) const;
  // kGradient of a session with fuse_local_products or bias_meter (vjp
  // only): also send, for each
  // sample k on its minibatch, J_k^T xi_k (fused_vjp) and J_k xi_k
  // (fused_jvp), xi_k being sample k's full gradient as submitted (the
  // values in the session's dtype).
  bool fused_vjp = false;
  bool fused_jvp = false;
  // Every sample (kGradient) and product (kProducts) over the worker's
  // whole shard instead of a minibatch (PhaseSpec::full_shard).
  bool full_shard = false;
  // The point to compute at and its version (a transport may skip sending
  // values the worker already has).
  int64_t params_version = 0;
  std::shared_ptr<const FlatVector> params;
  // For the worker's random minibatch draws: a function of the session seed,
  // the round and the worker id, so runs are reproducible.
  uint64_t seed = 0;
};

using TaskCallback = std::function<void(absl::StatusOr<Task>)>;

// Who makes a worker call, as the transport authenticated it; opaque to the
// core. A worker is bound to the owner that created it: a call for it by
// another owner is PERMISSION_DENIED and changes nothing, unless the caller
// acts for any worker. A worker without an owner (joined by a caller
// without one, or restored from a checkpoint that has none) is bound by the
// first caller with an owner that does not act for any worker. The default
// Caller (no owner, acts for any) is what a server without tokens passes.
struct Caller {
  std::string owner;
  bool acts_for_any = true;
};

// Dropped or left workers a session remembers beyond workers_per_round
// (they can rejoin by id); older ones are forgotten.
inline constexpr int kMaxInactiveWorkers = 64;
using CallId = uint64_t;
using EventLog = std::function<void(const std::string& event)>;
class Session;
// Told of the events a checkpoint follows. Each runs after the session's
// lock is released and before the calls it concerns are answered, so what
// it does (a checkpoint) is done before any worker goes on.
struct SessionListener {
  // A round opened at (step, phase); phase 0 is a step boundary.
  std::function<void(Session& session, int64_t step, int phase)> round_opened;
  // A new worker joined (before it learns its id). An error undoes the
  // join: the worker is removed again and Join answers the error.
  std::function<absl::Status(Session& session)> worker_added;
};

struct WorkerInfo {
  int64_t id = 0;
  std::string name;
  WorkerState state = WorkerState::kActive;
  int64_t last_round = -1;
  int64_t missed_deadlines = 0;
  // Rounds of at least two submitters closed by this worker's submission:
  // it was the one the others waited for.
  int64_t last_to_submit = 0;
  // Why it is dropped or left (empty while active), and the time since its
  // last call arrived or was answered (zero while one is in flight).
  std::string reason;
  absl::Duration idle;
};

struct SessionInfo {
  std::string id;
  int64_t step = 0;
  int phase = 0;
  std::string phase_label;
  int64_t round = 0;
  bool done = false;
  int submitted = 0;  // workers that answered the open round
  int64_t params_version = 0;
  std::vector<WorkerInfo> workers;
  StepStats stats;
  RoundTiming timing;          // phase latencies, steps per second
  int64_t bytes_received = 0;  // see Session::traffic()
  int64_t bytes_sent = 0;
  // Mean per name of the scalars reported with the last completed step's
  // gradient submissions (scalars.h), by name.
  std::vector<NamedValue> scalars;
  // Per player: the learning rate of the next step (its schedule).
  std::vector<double> learning_rates;
};

struct ParametersSnapshot {
  int64_t step = 0;
  int64_t version = 0;
  std::shared_ptr<const FlatVector> values;  // x, in the layout's order
};

class Session {
 public:
  // Validates `config`; InvalidArgument names the first bad field. `clock`
  // must outlive the session.
  static absl::StatusOr<std::unique_ptr<Session>> Create(std::string id,
                                                         SessionConfig config,
                                                         const Clock* clock);
  // A session resumed from Snapshot(): its open round reopens with a fresh
  // deadline and no submissions. InvalidArgument for a bad config, DataLoss
  // naming what does not fit (a worker, a state vector).
  static absl::StatusOr<std::unique_ptr<Session>> Restore(
      const SessionSnapshot& snapshot, const Clock* clock);

  ~Session();

  const std::string& id() const { return id_; }
  const SessionConfig& config() const { return *config_; }
  const GameLayout& layout() const { return algorithm_->layout(); }
  // Both before the session is shared with other threads.
  void set_event_log(EventLog log) { log_ = std::move(log); }
  void set_listener(SessionListener listener) {
    listener_ = std::move(listener);
  }

  // Joins as a new worker (worker_id 0) or rejoins as `worker_id`. `done`
  // gets the worker's current task: now if the open phase needs it, else
  // when one opens that does. RESOURCE_EXHAUSTED when K workers are active;
  // the listener's error (worker_added) when the new worker could not be
  // recorded, and then no worker was added.
  // With worker_id 0, `resume_by_name` and a non-empty `name` that a worker
  // of the session has (the lowest id if several), rejoins as that worker,
  // whatever its state, exactly as a rejoin by its id; only workers
  // `caller` may act for are matched (no match: a new worker).
  // PERMISSION_DENIED for a rejoin of a worker bound to another owner.
  void Join(int64_t worker_id, std::string name, TaskCallback done,
            CallId* call = nullptr, bool resume_by_name = false,
            const Caller& caller = {});

  // A worker's answer to a GRADIENT / PRODUCTS task. `done` gets the
  // worker's next task once the barrier opens, or an error at once
  // (PERMISSION_DENIED when `caller` may not act for the worker).
  void SubmitGradient(int64_t worker_id, const Submission& submission,
                      TaskCallback done, CallId* call = nullptr,
                      const Caller& caller = {});
  void SubmitProducts(int64_t worker_id, const Submission& submission,
                      TaskCallback done, CallId* call = nullptr,
                      const Caller& caller = {});

  // The worker goes; its accepted submissions stay in the round.
  absl::Status Leave(int64_t worker_id, const Caller& caller = {});

  // Answers the call with CANCELLED if it is still waiting. Its submission,
  // if accepted, stays. The transport calls it when the client went away
  // (or gave up): a worker left with no call in flight is dropped at once,
  // under the quorum rules (liveness.h).
  void Cancel(CallId call);
  // A worker's keepalive while it computes: renews its lease and makes it
  // active again if it was dropped and there is room. Its state after the
  // call (active or dropped); NotFound, FailedPrecondition (it left) or the
  // close status.
  absl::StatusOr<WorkerState> Heartbeat(int64_t worker_id,
                                        const Caller& caller = {});

  // Applies the workers' leases and the phase deadline at clock->Now().
  // Call it periodically (the service does) or after advancing a FakeClock.
  void CheckDeadline();
  // When CheckDeadline has something to do next (InfiniteFuture if never).
  absl::Time NextDeadline() const;

  // Answers every waiting call with `why` (UNAVAILABLE at shutdown,
  // NOT_FOUND on deletion); later calls get it too.
  void Close(absl::Status why);

  SessionInfo Info() const;
  // Where the transport counts the payload bytes it moves for this session.
  TrafficCounters& traffic() const { return traffic_; }
  ParametersSnapshot Parameters() const;
  // The state at the start of the open round. Shares the parameters (the
  // session copies them on its next write) and copies the optimizer slots.
  SessionSnapshot Snapshot() const;

  // Spectrum diagnostics (spectrum_rounds.h). Estimates the spectrum at the
  // parameters of the next step boundary (now, if no worker has submitted
  // to the step's first round yet) with diagnostic rounds, and calls `done`
  // with the result once finished. InvalidArgument for a bad request,
  // FailedPrecondition once the session is done.
  void EstimateSpectrum(const SpectrumRequest& request, SpectrumCallback done,
                        CallId* call = nullptr);
  // Answers a waiting EstimateSpectrum call with CANCELLED and withdraws
  // its estimate: a running one stops, and the open diagnostic round is
  // replaced by the next round (the training's, or the next estimate's);
  // workers holding a task of the old round are told it closed and rejoin.
  void CancelSpectrum(CallId call);
  // Every finished estimate, oldest first.
  std::vector<SpectrumResult> Spectra() const;
  // The rotation diagnostics of the newest finished estimate
  // (SpectrumResult::diagnostics); not available before the first.
  StepDiagnostics LastSpectrumDiagnostics() const;

 private:
  struct Worker;
  struct Pending {
    int64_t worker_id;
    TaskCallback done;
  };
  // Callbacks collected under the lock, run after it is released. Only an
  // OutboxLock makes one and delivers it, after releasing the lock: no
  // callback can run under it.
  class Outbox;
  class OutboxLock;

  Session(std::string id, SessionConfig config, const Clock* clock,
          std::unique_ptr<SpectrumRounds> algorithm);
  absl::Status RestoreState(const SessionSnapshot& snapshot);

  // The checks every submission passes before its values are read: the
  // session open, the worker known, acted for and not left, the round its
  // own and open, of `kind`, and the worker owing it an answer. Returns the
  // worker to accept from; otherwise answers `done` (an error, or a retry's
  // task) and returns nullptr.
  Worker* Admit(PhaseSpec::Kind kind, int64_t worker_id,
                const Submission& submission, TaskCallback& done, CallId* call,
                const Caller& caller, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After an accepted (or dropped, InvalidSamplePolicy) submission: records
  // the answer in the barrier, makes the worker active, waits for its next
  // task and closes the round if that was the answer it waited for.
  void Enter(Worker& worker, TaskCallback done, CallId* call, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A submission that failed to decode: false under kReject (answer the
  // error), true under kDrop, having logged that its values are left out.
  bool DropsInvalid(const Worker& worker, const absl::Status& status) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `caller` may act for `worker` (Caller); binds an unowned worker
  // to it. PERMISSION_DENIED naming the worker otherwise.
  absl::Status ActFor(Worker& worker, const Caller& caller) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wait(Worker& worker, TaskCallback done, CallId* call, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when `worker` is active or may become so; ResourceExhausted when K
  // other workers are active (Join, or a submission of a dropped worker).
  absl::Status RoomFor(const Worker& worker) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes a dropped worker active again (after RoomFor), logging it.
  void MarkActive(Worker& worker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Join's second half for a new worker, once worker_added answered.
  void FinishJoin(int64_t worker_id, absl::Status recorded, TaskCallback done,
                  CallId* call);
  // The kind of the algorithm's phase, for the barrier: the session opens
  // the barrier with it whenever the phase changes (OpenRound, Restore).
  RoundBarrier::Kind PhaseKind() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the open round is a fused gradient round (Task::fused_vjp).
  bool FusedRound() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a fused round also asks for J_k xi_k (Task::fused_jvp: SGA
  // with fuse_local_products; the bias meter needs only J_k^T xi_k).
  bool FusedJvp() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the open round keeps submissions packed (sample_set.h: as they
  // arrived, compressed or raw, when PackFormat allows) instead of decoding
  // them: an algorithm that TakesPackedSamples, outside fused rounds.
  bool KeepsPacked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decode (or pack) one sample of a submission into slot k of `dense` /
  // `packed`, the one not used being cleared.
  absl::Status AcceptSample(const SampleView& view,
                            const std::vector<int>& players,
                            const std::string& field, bool keep_packed,
                            const Submission& submission, FlatVector& dense,
                            PackedVector* packed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decode a submission's values into the worker's buffers.
  absl::Status AcceptGradient(Worker& worker, const Submission& submission)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AcceptProducts(Worker& worker, const Submission& submission)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a fused round's gradient phase closed: closes the products phase
  // with the submitted products.
  absl::Status CompleteFusedProducts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker's task in the open round (handing out its probes:
  // Algorithm::HandOutPackedProbe).
  Task MakeTask(const Worker& worker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers `done` with MakeTask(worker) and returns true; or, when the
  // products task's probes are gone (let go of once sent, and the worker
  // asks again), drops it from the round's sample holders, logs it and
  // returns false (`done` kept: the caller parks it for the next round).
  bool Deliver(Worker& worker, TaskCallback& done, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After Deliver dropped holders: closes the round if the others have
  // answered, or restarts the step when no holder is left.
  void AfterLostHolders(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Task MakeDoneTask() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeClose(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverSpectra(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseRound(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OpenRound(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The barrier's missing workers dropped at the deadline, with a reason.
  void DropMissing() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyPhaseDeadline(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Liveness: whether the worker has a call waiting; drops a worker for
  // `reason`; drops the active workers whose lease ran out (true if any).
  bool InFlight(int64_t worker_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropForLiveness(Worker& worker, std::string reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DropExpiredLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps the worker table bounded under join/leave churn: beyond
  // kMaxInactiveWorkers + K dropped or left workers, the oldest ones the
  // open round does not refer to are forgotten (their ids are not reused;
  // a later call with one is NOT_FOUND: join anew).
  void PruneInactive() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The barrier's missing workers, for a message: ids and names.
  std::string MissingWorkers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Where() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Done() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(const std::string& event) const;

  const std::string id_;
  // Shared with snapshots: a config holds the initial values.
  const std::shared_ptr<const SessionConfig> config_;
  const Clock* const clock_;
  EventLog log_;
  SessionListener listener_;

  mutable absl::Mutex mu_;
  std::unique_ptr<SpectrumRounds> algorithm_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  int64_t next_worker_id_ ABSL_GUARDED_BY(mu_) = 1;
  // The workers' states, the open round's answers, the sample holders.
  RoundBarrier barrier_ ABSL_GUARDED_BY(mu_);
  std::map<CallId, Pending> pending_ ABSL_GUARDED_BY(mu_);
  CallId next_call_ ABSL_GUARDED_BY(mu_) = 1;
  // The open round.
  int64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  // The gradient round whose close formed the open step's probes: a
  // snapshot taken once a sent probe is gone resumes there (Snapshot).
  // Packed probes are only formed by a close in this process, so it is
  // set whenever one can be gone.
  int64_t step_round_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);
  // Reported scalars: summed over the open step's gradient rounds, and the
  // means of the last completed step.
  ScalarAccumulator step_scalars_ ABSL_GUARDED_BY(mu_);
  std::vector<NamedValue> last_scalars_ ABSL_GUARDED_BY(mu_);
  RoundTimer timer_ ABSL_GUARDED_BY(mu_);
  mutable TrafficCounters traffic_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SESSION_H_
