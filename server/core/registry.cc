#include "server/core/registry.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gameopt {

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Create(
    SessionConfig config) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("s", next_id_++);
  }
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(id, std::move(config), clock_);
  if (!session.ok()) return session.status();
  std::shared_ptr<Session> shared = *std::move(session);
  shared->set_event_log(log_);
  shared->set_listener(session_listener_);
  {
    absl::MutexLock lock(&mu_);
    sessions_[id] = shared;
  }
  if (create_listener_) create_listener_(*shared);
  return shared;
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Restore(
    const SessionSnapshot& snapshot) {
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Restore(snapshot, clock_);
  if (!session.ok()) return session.status();
  std::shared_ptr<Session> shared = *std::move(session);
  shared->set_event_log(log_);
  shared->set_listener(session_listener_);
  absl::MutexLock lock(&mu_);
  if (!sessions_.emplace(snapshot.id, shared).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("session '", snapshot.id, "' exists already"));
  }
  // Ids are "s<n>": new sessions get numbers past every restored one.
  int64_t n = 0;
  if (absl::StartsWith(snapshot.id, "s") &&
      absl::SimpleAtoi(snapshot.id.substr(1), &n) && n >= next_id_) {
    next_id_ = n + 1;
  }
  return shared;
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Get(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no session '", id, "' on this server"));
  }
  return it->second;
}

std::vector<std::shared_ptr<Session>> SessionRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Session>> out;
  for (const auto& [id, session] : sessions_) out.push_back(session);
  return out;
}

absl::Status SessionRegistry::Delete(const std::string& id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      return absl::NotFoundError(
          absl::StrCat("no session '", id, "' on this server"));
    }
    session = std::move(it->second);
    sessions_.erase(it);
  }
  session->Close(absl::NotFoundError(
      absl::StrCat("session '", id, "' was deleted")));
  if (delete_listener_) delete_listener_(id);
  return absl::OkStatus();
}

absl::Time SessionRegistry::CheckDeadlines() {
  absl::Time next = absl::InfiniteFuture();
  for (const std::shared_ptr<Session>& session : List()) {
    session->CheckDeadline();
    next = std::min(next, session->NextDeadline());
  }
  return next;
}

void SessionRegistry::CloseAll(absl::Status why) {
  for (const std::shared_ptr<Session>& session : List()) session->Close(why);
}

}  // namespace gameopt
