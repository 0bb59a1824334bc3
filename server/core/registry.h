// SessionRegistry: the sessions one server hosts, by id.
#ifndef GAMEOPT_SERVER_CORE_REGISTRY_H_
#define GAMEOPT_SERVER_CORE_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/clock.h"
#include "server/core/layout.h"
#include "server/core/session.h"

namespace gameopt {

// Thread-safe. Sessions are shared_ptrs so a call in flight keeps its
// session alive after a concurrent Delete.
class SessionRegistry {
 public:
  // `clock` must outlive the registry. Sessions may have at most
  // `max_coordinates` parameters (the joint vector's length).
  explicit SessionRegistry(const Clock* clock = RealClock(),
                           int64_t max_coordinates = kMaxGameCoordinates)
      : clock_(clock), max_coordinates_(max_coordinates) {}

  // Every session created later logs its events here.
  void set_event_log(EventLog log) { log_ = std::move(log); }

  // Validates and creates a session with a fresh id ("s1", "s2", ...).
  // Errors name fields relative to the config. ResourceExhausted past the
  // registry's size limit or when the memory cannot be allocated.
  absl::StatusOr<std::shared_ptr<Session>> Create(SessionConfig config);
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
  const int64_t max_coordinates_;
  EventLog log_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_REGISTRY_H_
