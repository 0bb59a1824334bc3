// SessionRegistry: the sessions one server hosts, by id.
#ifndef GAMEOPT_SERVER_CORE_REGISTRY_H_
#define GAMEOPT_SERVER_CORE_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/clock.h"
#include "server/core/session.h"

namespace gameopt {

// Thread-safe. Sessions are shared_ptrs so a call in flight keeps its
// session alive after a concurrent Delete.
class SessionRegistry {
 public:
  // `clock` must outlive the registry.
  explicit SessionRegistry(const Clock* clock = RealClock()) : clock_(clock) {}

  // Every session created or restored later logs its events here and gets
  // `listener` (session.h). Set these before sharing the registry with
  // other threads.
  void set_event_log(EventLog log) { log_ = std::move(log); }
  void set_session_listener(SessionListener listener) {
    session_listener_ = std::move(listener);
  }
  // Told of every created session before Create returns it, and of the id
  // of every deleted session after it is removed.
  void set_create_listener(std::function<void(Session& session)> f) {
    create_listener_ = std::move(f);
  }
  void set_delete_listener(std::function<void(const std::string& id)> f) {
    delete_listener_ = std::move(f);
  }

  // Validates and creates a session with a fresh id ("s1", "s2", ...).
  absl::StatusOr<std::shared_ptr<Session>> Create(SessionConfig config);
  // Adds a session resumed from a checkpoint, under its own id; later ids
  // come after it. AlreadyExists when the id is taken; Session::Restore's
  // errors otherwise.
  absl::StatusOr<std::shared_ptr<Session>> Restore(
      const SessionSnapshot& snapshot);
  // NotFound names the id.
  absl::StatusOr<std::shared_ptr<Session>> Get(const std::string& id) const;
  std::vector<std::shared_ptr<Session>> List() const;
  // Removes it and answers its waiting calls with NotFound.
  absl::Status Delete(const std::string& id);

  // Applies every session's phase deadline; returns the earliest next one.
  absl::Time CheckDeadlines();
  // Answers every waiting call of every session with `why` (shutdown).
  void CloseAll(absl::Status why);

 private:
  const Clock* const clock_;
  EventLog log_;
  SessionListener session_listener_;
  std::function<void(Session& session)> create_listener_;
  std::function<void(const std::string& id)> delete_listener_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_REGISTRY_H_
