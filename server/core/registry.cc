#include "server/core/registry.h"

#include <new>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

// NotFound for a client's id, quoted safely: at most 64 characters (a long
// id would push the status past gRPC's metadata limit), escaped.
absl::Status NoSession(absl::string_view id) {
  constexpr size_t kShown = 64;
  std::string shown = absl::CHexEscape(id.substr(0, kShown));
  if (id.size() > kShown) {
    absl::StrAppend(&shown, "... (", id.size(), " bytes)");
  }
  return absl::NotFoundError(
      absl::StrCat("no session '", shown, "' on this server"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Create(
    SessionConfig config) {
  // The size limit first: validation allocates nothing, Create does.
  absl::StatusOr<GameLayout> layout =
      GameLayout::Create(config.players, max_coordinates_);
  if (!layout.ok()) return layout.status();
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("s", next_id_++);
  }
  const int64_t dimension = layout->dimension();
  absl::StatusOr<std::unique_ptr<Session>> session;
  try {
    session = Session::Create(id, std::move(config), clock_);
  } catch (const std::bad_alloc&) {
    // The one exception the core lets through: a session under the limit
    // that this machine's memory cannot hold right now.
    return absl::ResourceExhaustedError(absl::StrCat(
        "players: not enough memory on the server for a session of ",
        dimension, " coordinates"));
  }
  if (!session.ok()) return session.status();
  std::shared_ptr<Session> shared = *std::move(session);
  shared->set_event_log(log_);
  absl::MutexLock lock(&mu_);
  sessions_[id] = shared;
  return shared;
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Get(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return NoSession(id);
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
      return NoSession(id);
    }
    session = std::move(it->second);
    sessions_.erase(it);
  }
  session->Close(absl::NotFoundError(
      absl::StrCat("session '", id, "' was deleted")));
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
