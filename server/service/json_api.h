// The live page's JSON (live_page.h), built from the same numbers that
// GetMetrics and /metrics report (SessionInfo, the session's config, its
// finished spectrum estimates) plus the sampled curves of a HistoryBook.
//
// GET /api/sessions:
//   {"sessions": [{"id", "name", "algorithm", "step", "max_steps", "done",
//     "players": [names], "workers_active", "workers_per_round",
//     "xi_norm": [per player], "loss", "correction_norm", "gamma",
//     "steps_per_second", "spectra" (finished estimates),
//     "diagnostics": null or {"xi_norm", "jt_xi_norm", "stationarity_ratio",
//                             "cancellation",
//                             "rotation_index" (null but for SGA)},
//     "history": {"step": [], "seconds": [],
//                 "xi_norm": [[player 0's], [player 1's], ...], "loss": [],
//                 "correction_norm": [], "gamma": [],
//                 "steps_per_second": [], "jt_xi_norm": [],
//                 "stationarity_ratio": [], "rotation_index": [],
//                 "cancellation": []}}]}
// (diagnostics.h; null entries where not available).
// GET /api/spectrum?session=ID: the session's latest finished estimate,
//   {"session", "available": false} when there is none, else
//   {"session", "available": true, "step", "operator", "description",
//    "applications", "restarts", "converged", "rounds", "samples",
//    "largest_real" / "largest_imag" / "largest_modulus" /
//    "smallest_real" (empty unless asked for):
//      [{"re", "im", "residual"}]}
//
// Non-finite numbers are written as null (JSON has no NaN or Infinity).
#ifndef GAMEOPT_SERVER_SERVICE_JSON_API_H_
#define GAMEOPT_SERVER_SERVICE_JSON_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/registry.h"
#include "server/core/session_history.h"

namespace gameopt {

// `s` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view s);
// `value` as a JSON number, or null when not finite.
std::string JsonNumber(double value);

std::string SessionsJson(const SessionRegistry& registry,
                         const HistoryBook& history);

// NotFound naming the id when no such session is hosted.
absl::StatusOr<std::string> SpectrumJson(const SessionRegistry& registry,
                                         const std::string& session_id);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_JSON_API_H_
