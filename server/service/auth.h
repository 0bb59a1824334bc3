// Authorizer: bearer-token authorization of gameopt.v1 calls.
//
// A tokens file maps tokens to roles, one token per line:
//
//   # TOKEN              ROLE    [SESSION ...]
//   3f9c...e1            admin
//   77ab...90            worker  mog-conopt mog-simgd
//   c0de...42            reader  *
//
// Fields are separated by spaces or tabs; `#` starts a comment (whole line
// or after the fields); blank lines are ignored. A token is 16 to 512
// printable ASCII characters other than space and `#` (e.g. `openssl rand
// -hex 32`). Roles:
//
//   admin   every call on every session (sessions may not be listed)
//   worker  Join, Submit*, Leave, GetSession, GetParameters on its sessions
//   reader  GetSession, GetParameters on its sessions
//
// worker and reader name at least one session id, or `*` for all; ids may
// name sessions that do not exist yet (CreateSessionRequest.session_id lets
// an admin create them with that id). ListSessions is open to every role and
// lists only the sessions the token may read.
//
// Clients send the metadata `authorization: Bearer <token>`. Without a
// tokens file (Authorizer::Open()) every call is allowed, as before.
//
// Errors never contain a token: parse errors name the file and line.
// Tokens are compared in time that does not depend on where they differ.
// Immutable after construction, so thread-safe.
#ifndef GAMEOPT_SERVER_SERVICE_AUTH_H_
#define GAMEOPT_SERVER_SERVICE_AUTH_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gameopt {

enum class Role { kReader, kWorker, kAdmin };

// What a call does, from the least to the most privileged.
enum class Access {
  kRead,    // GetSession, GetParameters, ListSessions
  kWork,    // JoinSession, SubmitGradient, SubmitJacobianProducts, Leave
  kManage,  // CreateSession, DeleteSession
};

// One token's rights.
//
// Worker identity: a worker id is bound to the token that joined it
// (`identity`). Join, Submit*, Heartbeat and LeaveSession for that worker
// with another worker token are PERMISSION_DENIED; admin tokens act for any
// worker (they may delete the session anyway), and a worker an admin
// creates is bound to the admin's token.
struct Grant {
  Role role = Role::kReader;
  bool all_sessions = false;
  std::set<std::string> sessions;  // when !all_sessions
  // Stable identity of the token, for binding workers to it (Caller in
  // server/core/session.h): "sha256:" and the first 16 bytes of the
  // token's SHA-256 in hex, so checkpoints never hold a token. Empty for
  // Open()'s grant (no binding).
  std::string identity;

  bool MaySee(absl::string_view session_id) const;
  // OK, or PERMISSION_DENIED naming the role, the access and the session.
  absl::Status Allows(Access access, absl::string_view session_id) const;
  // OK when the role may do `access` on some session, else
  // PERMISSION_DENIED naming the role: decided before a request's payload
  // (which names the session) is parsed.
  absl::Status AllowsSome(Access access) const;
};

// The identity of `token` (Grant::identity).
std::string TokenIdentity(absl::string_view token);

absl::string_view RoleName(Role role);
absl::string_view AccessName(Access access);

class Authorizer {
 public:
  // The metadata key clients send their token in, and its value's prefix.
  static constexpr char kMetadataKey[] = "authorization";
  static constexpr char kBearerPrefix[] = "Bearer ";

  // Every call allowed: no tokens file.
  static Authorizer Open();
  // The tokens of `text` (the format above); InvalidArgument naming
  // `source` and the line otherwise.
  static absl::StatusOr<Authorizer> Parse(absl::string_view text,
                                          absl::string_view source);
  // Reads and parses `path`; InvalidArgument naming it when unreadable.
  static absl::StatusOr<Authorizer> FromFile(const std::string& path);

  bool open() const { return open_; }
  size_t num_tokens() const { return entries_.size(); }

  // The grant of the caller whose `authorization` metadata is `header`
  // (nullopt when absent). UNAUTHENTICATED without a "Bearer " token or for
  // an unknown token. Open(): an admin grant for everyone. The pointer
  // lives as long as the Authorizer.
  absl::StatusOr<const Grant*> Authenticate(
      std::optional<absl::string_view> header) const;

 private:
  struct Entry {
    std::string token;
    Grant grant;
  };

  bool open_ = true;
  std::vector<Entry> entries_;
};

// True when `a` equals `b`, in time that depends on the lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_AUTH_H_
