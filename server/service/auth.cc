#include "server/service/auth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/quote.h"
#include "server/core/registry.h"

namespace gameopt {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenLength = 512;

const Grant& Everyone() {
  static const Grant* const kEveryone = new Grant{Role::kAdmin, true, {}};
  return *kEveryone;
}

bool Permits(Role role, Access access) {
  switch (access) {
    case Access::kRead:
      return true;
    case Access::kWork:
      return role != Role::kReader;
    case Access::kManage:
      return role == Role::kAdmin;
  }
  return false;
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "worker") return Role::kWorker;
  if (name == "reader") return Role::kReader;
  return absl::InvalidArgumentError(absl::StrCat(
      "role '", Quote(name), "' is not one of admin, worker, reader"));
}

absl::Status CheckToken(absl::string_view token) {
  if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token has ", token.size(), " characters; use ",
                     kMinTokenLength, " to ", kMaxTokenLength));
  }
  const bool printable = std::all_of(
      token.begin(), token.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!printable) {
    return absl::InvalidArgumentError(
        "the token has a character that is not printable ASCII");
  }
  return absl::OkStatus();
}

// The grant of one line's fields after the token: ROLE [SESSION ...].
absl::StatusOr<Grant> ParseGrant(const std::vector<absl::string_view>& fields) {
  absl::StatusOr<Role> role = ParseRole(fields[1]);
  if (!role.ok()) return role.status();
  Grant grant;
  grant.role = *role;
  const std::vector<absl::string_view> sessions(fields.begin() + 2,
                                                fields.end());
  if (grant.role == Role::kAdmin) {
    if (!sessions.empty()) {
      return absl::InvalidArgumentError(
          "an admin token covers every session: list none");
    }
    grant.all_sessions = true;
    return grant;
  }
  if (sessions.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ", fields[1], " token names its sessions (ids, or * for all)"));
  }
  for (absl::string_view session : sessions) {
    if (session == "*") {
      grant.all_sessions = true;
      continue;
    }
    if (absl::Status s = ValidateSessionId(session); !s.ok()) return s;
    grant.sessions.emplace(session);
  }
  return grant;
}

}  // namespace

std::string TokenIdentity(absl::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &length, EVP_sha256(),
                 nullptr) != 1 ||
      length < 16) {
    // Never seen; a distinct identity per token all the same.
    return absl::StrCat("token#", std::hash<std::string>{}(std::string(token)));
  }
  return absl::StrCat("sha256:",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), 16)));
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Every byte of `b` is visited whatever `a` holds; a length mismatch is
  // folded into the result rather than returned early.
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    difference |= x ^ static_cast<unsigned char>(b[i]);
  }
  return difference == 0;
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kWorker:
      return "worker";
    case Role::kReader:
      return "reader";
  }
  return "?";
}

absl::string_view AccessName(Access access) {
  switch (access) {
    case Access::kRead:
      return "read";
    case Access::kWork:
      return "work on";
    case Access::kManage:
      return "create or delete";
  }
  return "?";
}

bool Grant::MaySee(absl::string_view session_id) const {
  return all_sessions || sessions.count(std::string(session_id)) > 0;
}

absl::Status Grant::Allows(Access access, absl::string_view session_id) const {
  if (!Permits(role, access)) {
    return absl::PermissionDeniedError(
        absl::StrCat("a ", RoleName(role), " token may not ",
                     AccessName(access), " sessions"));
  }
  if (!MaySee(session_id)) {
    return absl::PermissionDeniedError(
        absl::StrCat("this ", RoleName(role), " token does not cover session '",
                     Quote(session_id), "'"));
  }
  return absl::OkStatus();
}

absl::Status Grant::AllowsSome(Access access) const {
  if (Permits(role, access)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("a ", RoleName(role), " token may not ", AccessName(access),
                   " sessions"));
}

Authorizer Authorizer::Open() { return Authorizer(); }

absl::StatusOr<Authorizer> Authorizer::Parse(absl::string_view text,
                                             absl::string_view source) {
  Authorizer authorizer;
  authorizer.open_ = false;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const auto where = [&] {
      return absl::StrCat(source, " line ", line_number);
    };
    if (fields.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": expected TOKEN ROLE [SESSION ...]"));
    }
    absl::Status status = CheckToken(fields[0]);
    absl::StatusOr<Grant> grant =
        status.ok() ? ParseGrant(fields) : absl::StatusOr<Grant>(status);
    if (!grant.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": ", grant.status().message()));
    }
    for (const Entry& entry : authorizer.entries_) {
      if (entry.token == fields[0]) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), ": a token listed twice"));
      }
    }
    grant->identity = TokenIdentity(fields[0]);
    authorizer.entries_.push_back({std::string(fields[0]), *std::move(grant)});
  }
  if (authorizer.entries_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " has no token (every call would be refused)"));
  }
  return authorizer;
}

absl::StatusOr<Authorizer> Authorizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the tokens file '", path, "'"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), absl::StrCat("tokens file '", path, "'"));
}

absl::StatusOr<const Grant*> Authorizer::Authenticate(
    std::optional<absl::string_view> header) const {
  if (open_) return &Everyone();
  if (!header.has_value() || !absl::StartsWith(*header, kBearerPrefix)) {
    return absl::UnauthenticatedError(
        absl::StrCat("this server wants the metadata '", kMetadataKey, ": ",
                     kBearerPrefix, "<token>' (a token from its tokens file)"));
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(header->substr(sizeof(kBearerPrefix) - 1));
  // No early exit: the time does not tell which token came close.
  const Grant* found = nullptr;
  for (const Entry& entry : entries_) {
    if (ConstantTimeEquals(token, entry.token)) found = &entry.grant;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError("the bearer token is not valid here");
  }
  return found;
}

}  // namespace gameopt
