#include "server/core/registry.h"

#include <algorithm>
#include <new>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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

// The core names a config's fields relative to it; the registry's callers
// see the request's field names.
absl::Status InConfig(const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("config.", status.message()));
}

}  // namespace

absl::Status ValidateSessionId(absl::string_view id) {
  const bool valid_size = !id.empty() && id.size() <= 128;
  const bool valid_chars = std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == '.' || c == '-';
  });
  if (valid_size && valid_chars) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("session_id '", absl::CHexEscape(id.substr(0, 160)),
                   "' must match ", kSessionIdPattern));
}

std::string SessionRegistry::FreshId() {
  std::string id;
  do {
    id = absl::StrCat("s", next_id_++);
  } while (sessions_.count(id) > 0);
  return id;
}

namespace {

// OK, or ResourceExhausted when a task of a session of `config` would not
// fit in `max_bytes` (0: no limit).
absl::Status TaskFits(const SessionConfig& config, const GameLayout& layout,
                      int64_t max_bytes, absl::string_view prefix) {
  if (max_bytes <= 0) return absl::OkStatus();
  const int64_t task = EstimateTaskBytes(config, layout);
  if (task <= max_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      prefix, "a task of this session would be about ", task >> 20,
      " MiB (parameters, and probes in a products phase), more than the "
      "server's message limit of ",
      max_bytes >> 20,
      " MiB; start the server with a larger --max_message_mb, or use "
      "fewer parameters or samples_per_worker"));
}

}  // namespace

absl::Status SessionRegistry::TasksFit(const Session& session) const {
  return TaskFits(session.config(), session.layout(), max_task_bytes_, "");
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Create(
    SessionConfig config, std::string id) {
  // The size limit first: validation allocates nothing, Create does.
  absl::StatusOr<GameLayout> layout =
      GameLayout::Create(config.players, max_coordinates_);
  if (!layout.ok()) return InConfig(layout.status());
  const bool chosen = !id.empty();
  if (chosen) {
    if (absl::Status status = ValidateSessionId(id); !status.ok()) {
      return status;
    }
  } else {
    absl::MutexLock lock(&mu_);
    id = FreshId();
  }
  // A session whose tasks could never be sent is refused now, not at the
  // first JoinSession.
  if (absl::Status status =
          TaskFits(config, *layout, max_task_bytes_, "config: ");
      !status.ok()) {
    return status;
  }
  // The memory budget before anything is allocated; given back on every
  // way out but success.
  int64_t reserved = 0;
  if (budget_ != nullptr) {
    reserved = EstimateSessionBytes(config, *layout);
    absl::Status status = budget_->Reserve(
        reserved,
        absl::StrCat("a session of d = ", layout->dimension(), " ",
                     DTypeName(config.dtype), " with ",
                     config.workers_per_round, " worker(s) per round"));
    if (!status.ok()) return status;
  }
  struct Reservation {
    MemoryBudget* budget;
    int64_t bytes;
    ~Reservation() {
      if (budget != nullptr) budget->Release(bytes);
    }
  } reservation{budget_, reserved};
  absl::StatusOr<std::unique_ptr<Session>> session;
  try {
    session = Session::Create(id, std::move(config), clock_);
  } catch (const std::bad_alloc&) {
    // The one exception the core lets through: a session under the limit
    // that this machine's memory cannot hold right now.
    return absl::ResourceExhaustedError(absl::StrCat(
        "config.players: not enough memory on the server for a session of ",
        layout->dimension(), " coordinates"));
  }
  if (!session.ok()) return InConfig(session.status());
  std::shared_ptr<Session> shared = *std::move(session);
  shared->set_event_log(log_);
  shared->set_listener(session_listener_);
  {
    absl::MutexLock lock(&mu_);
    // A fresh id is taken here only if a caller chose it meanwhile.
    if (!sessions_.emplace(id, shared).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("session_id '", id, "' exists already on this server"));
    }
    reserved_[id] = reserved;
  }
  if (create_listener_) {
    if (absl::Status status = create_listener_(*shared); !status.ok()) {
      {
        absl::MutexLock lock(&mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end() && it->second == shared) {
          sessions_.erase(it);
          reserved_.erase(id);
        }
      }
      shared->Close(status);
      return status;
    }
  }
  reservation.budget = nullptr;  // kept until Delete
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
  if (budget_ != nullptr) {
    // Accepted before: counted even past the budget.
    const int64_t bytes =
        EstimateSessionBytes(shared->config(), shared->layout());
    budget_->ForceReserve(bytes);
    reserved_[snapshot.id] = bytes;
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
    session = it->second;
  }
  if (delete_listener_) {
    if (absl::Status status = delete_listener_(id); !status.ok()) {
      return status;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second != session) {
      return NoSession(id);  // a concurrent Delete took it
    }
    sessions_.erase(it);
    auto reserved = reserved_.find(id);
    if (reserved != reserved_.end()) {
      if (budget_ != nullptr) budget_->Release(reserved->second);
      reserved_.erase(reserved);
    }
  }
  session->Close(
      absl::NotFoundError(absl::StrCat("session '", id, "' was deleted")));
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
