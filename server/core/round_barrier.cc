#include "server/core/round_barrier.h"

#include <algorithm>

namespace gameopt {

RoundBarrier::RoundBarrier(int workers_per_round, int quorum)
    : workers_per_round_(workers_per_round),
      quorum_(quorum == 0 ? workers_per_round : quorum) {}

void RoundBarrier::Join(int64_t id) {
  roster_[id] = WorkerState::kActive;
  ++joined_ever_;
}

void RoundBarrier::Unjoin(int64_t id) {
  Forget(id);
  --joined_ever_;
}

void RoundBarrier::Forget(int64_t id) {
  roster_.erase(id);
  holders_.erase(id);
}

void RoundBarrier::Restore(int64_t id, WorkerState state) {
  roster_[id] = state;
}

int RoundBarrier::active() const {
  int n = 0;
  for (const auto& [id, state] : roster_) n += state == WorkerState::kActive;
  return n;
}

void RoundBarrier::AddHolder(int64_t id, int first, int count) {
  if (count > 0) holders_[id] = first;
}

void RoundBarrier::Open(Kind kind) {
  kind_ = kind;
  submitted_.clear();
}

bool RoundBarrier::HasRole(int64_t id) const {
  return kind_ == Kind::kGradient || holders_.count(id) > 0;
}

bool RoundBarrier::Submitted(int64_t id) const {
  return std::binary_search(submitted_.begin(), submitted_.end(), id);
}

bool RoundBarrier::Owes(int64_t id, WorkerState state) const {
  return state != WorkerState::kLeft && HasRole(id) && !Submitted(id);
}

bool RoundBarrier::Owes(int64_t id) const {
  auto it = roster_.find(id);
  return it != roster_.end() && Owes(id, it->second);
}

void RoundBarrier::Submit(int64_t id) {
  submitted_.insert(std::upper_bound(submitted_.begin(), submitted_.end(), id),
                    id);
}

int RoundBarrier::Quorum() const {
  if (kind_ == Kind::kGradient) return quorum_;
  return std::max(1, std::min(quorum_, static_cast<int>(holders_.size())));
}

bool RoundBarrier::ShouldClose() const {
  bool all_in = true;       // no active worker owes an answer
  bool any_active = false;  // some active worker has a role
  for (const auto& [id, state] : roster_) {
    if (state != WorkerState::kActive || !HasRole(id)) continue;
    any_active = true;
    if (Owes(id, state)) all_in = false;
  }
  if (kind_ == Kind::kGradient) {
    return count() >= workers_per_round_ ||
           (joined_ever_ >= workers_per_round_ && all_in &&
            count() >= Quorum());
  }
  return count() > 0 && all_in && any_active;
}

RoundBarrier::Missing RoundBarrier::missing() const {
  Missing missing;
  int with_role = 0;  // workers that have not left and have a role
  for (const auto& [id, state] : roster_) {
    if (state == WorkerState::kLeft || !HasRole(id)) continue;
    ++with_role;
    if (Owes(id, state)) missing.workers.push_back(id);
  }
  if (kind_ == Kind::kGradient && with_role < workers_per_round_) {
    missing.never_joined = workers_per_round_ - with_role;
  }
  return missing;
}

std::vector<int64_t> RoundBarrier::DropMissing() {
  std::vector<int64_t> dropped;
  for (auto& [id, state] : roster_) {
    if (state != WorkerState::kActive || !Owes(id, state)) continue;
    state = WorkerState::kDropped;
    dropped.push_back(id);
  }
  return dropped;
}

}  // namespace gameopt
