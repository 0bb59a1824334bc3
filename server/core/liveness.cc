#include "server/core/liveness.h"

#include "absl/strings/str_cat.h"

namespace gameopt {

std::string LeaseExpiredReason(absl::Duration lease) {
  return absl::StrCat("no call for ", absl::FormatDuration(lease),
                      " (worker lease; the process died, hangs, or computes "
                      "without sending Heartbeat)");
}

}  // namespace gameopt
