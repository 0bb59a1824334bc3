// Quote: how a client-supplied string (a player, tensor, AltGD stage or
// session name; a tokens-file field) appears in an error or a log line:
// at most kQuotedBytes of it, C-escaped (no control
// character, quote or newline can forge a line), with the full length when
// cut. A status message stays far below gRPC's metadata limit whatever the
// input.
#ifndef GAMEOPT_SERVER_CORE_QUOTE_H_
#define GAMEOPT_SERVER_CORE_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace gameopt {

inline constexpr size_t kQuotedBytes = 64;

inline std::string Quote(absl::string_view text) {
  std::string out = absl::CHexEscape(text.substr(0, kQuotedBytes));
  if (text.size() > kQuotedBytes) {
    absl::StrAppend(&out, "... (", text.size(), " bytes)");
  }
  return out;
}

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_QUOTE_H_
