// RoundBarrier: who a session's open round waits for (session.h, DESIGN
// section 5). The one place that answers "who still owes this round an
// answer", and from it: whether the round closes, its quorum, who is
// missing at the deadline and whom the deadline drops.
//
// It keeps the session's roster (every worker it knows, by id, with its
// WorkerState), the kind of the open round, the workers that submitted to
// it, and the sample holders: the workers whose gradient samples the
// step's products phase asks products for.
//
// A worker owes the open round an answer when it has not left, has a role
// in the round (every worker in a gradient round; in a products round only
// a sample holder, for its own samples) and has not submitted. The round
// closes, with K = workers_per_round and count = its submitters,
//   - gradient: count >= K, or every active worker submitted, count >=
//     quorum and K workers have joined at some point (departures do not
//     stall rounds);
//   - products: count > 0, some active worker has a role, and every active
//     worker with a role submitted.
// A dropped worker that owes an answer may still give it (and becomes
// active); it is missing but not waited for.
//
// A plain value type: not thread-safe, no lock of its own (the session's
// lock guards it). Ids are the session's worker ids (>= 1).
#ifndef GAMEOPT_SERVER_CORE_ROUND_BARRIER_H_
#define GAMEOPT_SERVER_CORE_ROUND_BARRIER_H_

#include <cstdint>
#include <map>
#include <vector>

#include "server/core/worker_state.h"

namespace gameopt {

class RoundBarrier {
 public:
  enum class Kind { kGradient, kProducts };

  // K = workers_per_round >= 1; quorum 0 means K. Opens a gradient round.
  RoundBarrier(int workers_per_round, int quorum);

  // ---- The roster.
  // A new worker, active; it counts toward joined_ever().
  void Join(int64_t id);
  // Takes back Join() of a worker that never submitted (its join could not
  // be recorded): forgotten, and joined_ever() is one less.
  void Unjoin(int64_t id);
  // Forgets a worker the session no longer keeps (joined_ever() stays).
  void Forget(int64_t id);
  // A worker read from a checkpoint, not counted (set_joined_ever).
  void Restore(int64_t id, WorkerState state);
  void set_joined_ever(int64_t n) { joined_ever_ = n; }

  bool Knows(int64_t id) const { return roster_.count(id) > 0; }
  // The state of a known worker (Knows(id)).
  WorkerState state(int64_t id) const { return roster_.at(id); }
  void SetState(int64_t id, WorkerState state) { roster_.at(id) = state; }
  int active() const;
  int64_t joined_ever() const { return joined_ever_; }

  // ---- Sample holders: chosen when a gradient round closes, asked for
  // products by the products rounds that follow.
  void ClearHolders() { holders_.clear(); }
  // `id` gave `count` samples, the first of them at index `first` among
  // the round's samples. A worker without samples (count 0) holds none.
  void AddHolder(int64_t id, int first, int count);
  // Sample holders by id, each with the index of its first sample.
  const std::map<int64_t, int>& holders() const { return holders_; }
  bool Holds(int64_t id) const { return holders_.count(id) > 0; }
  // `id` no longer holds samples: the products rounds of the step do not
  // ask it (its probes are gone, Session::Deliver).
  void RemoveHolder(int64_t id) { holders_.erase(id); }

  // ---- The open round.
  // Opens a round of `kind`: nobody has submitted (the holders stay).
  void Open(Kind kind);
  Kind kind() const { return kind_; }

  // Whether `id` has a role in the open round (whatever its state).
  bool HasRole(int64_t id) const;
  bool Submitted(int64_t id) const;
  // Not left, a role, not submitted: the open round waits for its answer.
  bool Owes(int64_t id) const;
  // Records `id`'s answer (Owes(id) held).
  void Submit(int64_t id);
  // The submitters, sorted by id.
  const std::vector<int64_t>& submitted() const { return submitted_; }
  int count() const { return static_cast<int>(submitted_.size()); }

  // The quorum: gradient rounds the configured one; products rounds that,
  // at most the number of holders, at least 1.
  int Quorum() const;
  // Whether the round closes now (the rules above).
  bool ShouldClose() const;
  // Whether the deadline may close it: someone submitted, a quorum did.
  bool QuorumReached() const { return count() > 0 && count() >= Quorum(); }

  struct Missing {
    std::vector<int64_t> workers;  // known workers that owe an answer, by id
    int never_joined = 0;  // a gradient round's seats no worker ever took
  };
  Missing missing() const;
  // At the deadline: the active workers that owe an answer become dropped;
  // returns their ids, sorted.
  std::vector<int64_t> DropMissing();

 private:
  // The one definition of owing an answer, for a worker in `state`.
  bool Owes(int64_t id, WorkerState state) const;

  int workers_per_round_;
  int quorum_;  // resolved: >= 1
  int64_t joined_ever_ = 0;
  std::map<int64_t, WorkerState> roster_;
  std::map<int64_t, int> holders_;
  Kind kind_ = Kind::kGradient;
  std::vector<int64_t> submitted_;  // sorted
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ROUND_BARRIER_H_
