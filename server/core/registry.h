// SessionRegistry: the sessions one server hosts, by id.
#ifndef GAMEOPT_SERVER_CORE_REGISTRY_H_
#define GAMEOPT_SERVER_CORE_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/clock.h"
#include "server/core/layout.h"
#include "server/core/memory_budget.h"
#include "server/core/session.h"

namespace gameopt {

// What a caller-chosen session id may look like (1 to 128 characters).
inline constexpr char kSessionIdPattern[] = "[A-Za-z0-9_.-]{1,128}";

// InvalidArgument naming `id` unless it matches kSessionIdPattern.
absl::Status ValidateSessionId(absl::string_view id);

// Thread-safe. Sessions are shared_ptrs so a call in flight keeps its
// session alive after a concurrent Delete.
class SessionRegistry {
 public:
  // `clock` must outlive the registry. Sessions may have at most
  // `max_coordinates` parameters (the joint vector's length).
  explicit SessionRegistry(const Clock* clock = RealClock(),
                           int64_t max_coordinates = kMaxGameCoordinates)
      : clock_(clock), max_coordinates_(max_coordinates) {}

  // Every session created or restored later logs its events here and gets
  // `listener` (session.h). Set these before sharing the registry with
  // other threads.
  void set_event_log(EventLog log) { log_ = std::move(log); }
  // Sessions are accounted against `budget` (memory_budget.h): Create
  // answers ResourceExhausted past it; Delete gives the bytes back. Null =
  // no budget. Must outlive the registry.
  void set_memory_budget(MemoryBudget* budget) { budget_ = budget; }
  // Sessions whose tasks (EstimateTaskBytes) would exceed this many bytes
  // (the transport's message limit) are refused: ResourceExhausted.
  // 0 = no limit.
  void set_max_task_bytes(int64_t bytes) { max_task_bytes_ = bytes; }
  // OK when a task of `session` fits the limit above (always without one);
  // else the ResourceExhausted Create answers. JoinSession asks it before
  // adding a worker: a session restored by a server with a smaller limit
  // takes no worker it could not send a task to.
  absl::Status TasksFit(const Session& session) const;
  void set_session_listener(SessionListener listener) {
    session_listener_ = std::move(listener);
  }
  // Told of every created session before Create returns it (an error
  // undoes the creation, and Create returns it), and of every session about
  // to be deleted (an error keeps the session, and Delete returns it): the
  // checkpoint is written or deleted first, so that what the caller is
  // told is what a restart finds.
  void set_create_listener(std::function<absl::Status(Session& session)> f) {
    create_listener_ = std::move(f);
  }
  void set_delete_listener(
      std::function<absl::Status(const std::string& id)> f) {
    delete_listener_ = std::move(f);
  }

  // Validates and creates a session. `id` empty: a fresh id ("s1", "s2",
  // ..., skipping ids taken); otherwise that id, chosen by the caller so that
  // it can be named in advance (e.g. in a tokens file): InvalidArgument
  // unless it matches kSessionIdPattern, AlreadyExists if taken. Errors name
  // the request's fields (config.*, session_id). ResourceExhausted past the
  // registry's size limit or when the memory cannot be allocated.
  absl::StatusOr<std::shared_ptr<Session>> Create(SessionConfig config,
                                                  std::string id = "");
  // Adds a session resumed from a checkpoint, under its own id; later ids
  // come after it. AlreadyExists when the id is taken; Session::Restore's
  // errors otherwise.
  absl::StatusOr<std::shared_ptr<Session>> Restore(
      const SessionSnapshot& snapshot);
  // NotFound names the id.
  absl::StatusOr<std::shared_ptr<Session>> Get(const std::string& id) const;
  std::vector<std::shared_ptr<Session>> List() const;
  // Removes it and answers its waiting calls with NotFound (after the
  // delete listener agreed).
  absl::Status Delete(const std::string& id);

  // Applies every session's phase deadline; returns the earliest next one.
  absl::Time CheckDeadlines();
  // Answers every waiting call of every session with `why` (shutdown).
  void CloseAll(absl::Status why);

 private:
  const Clock* const clock_;
  const int64_t max_coordinates_;
  EventLog log_;
  SessionListener session_listener_;
  std::function<absl::Status(Session& session)> create_listener_;
  std::function<absl::Status(const std::string& id)> delete_listener_;
  MemoryBudget* budget_ = nullptr;
  int64_t max_task_bytes_ = 0;
  mutable absl::Mutex mu_;
  // The next "s<n>" not taken.
  std::string FreshId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Bytes reserved in budget_ per session.
  std::map<std::string, int64_t> reserved_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_REGISTRY_H_
