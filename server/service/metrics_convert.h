// A session's monitoring numbers (the core's SessionInfo: StepStats,
// RoundTiming, traffic and workers) as a gameopt.v1.SessionMetrics, the
// answer of the GetMetrics RPC. Thread-compatible.
#ifndef GAMEOPT_SERVER_SERVICE_METRICS_CONVERT_H_
#define GAMEOPT_SERVER_SERVICE_METRICS_CONVERT_H_

#include "gameopt/v1/gameopt.pb.h"
#include "server/core/config.h"
#include "server/core/session.h"

namespace gameopt {

// Workers whose state is WorkerState::kActive.
int ActiveWorkers(const SessionInfo& info);

void SessionMetricsToProto(const SessionInfo& info, const SessionConfig& config,
                           v1::SessionMetrics* out);

// Sets out->diagnostics from `d` when d.available (ConOpt and SGA, after a
// step), else leaves it unset. Message: v1::SessionMetrics or
// v1::SessionStatus.
template <typename Message>
void StepDiagnosticsToProto(const StepDiagnostics& d, Message* out);
// Every field of `d` into `out` (also Spectrum.diagnostics).
void StepDiagnosticsFieldsToProto(const StepDiagnostics& d,
                                  v1::StepDiagnostics* out);

// Sets out->gamma and out->gamma_trajectory from stats.gamma and
// stats.gamma_trajectory (ConOpt; zero and empty otherwise). Message as
// above.
template <typename Message>
void GammaToProto(const StepStats& stats, Message* out);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_METRICS_CONVERT_H_
