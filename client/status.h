// `gameopt_client status`: a table of a server's sessions from the
// GetMetrics RPC (step, phase, workers, |xi|, L, correction, steps/s, bytes,
// stragglers), printed once or redrawn in place every --watch seconds.
#ifndef GAMEOPT_CLIENT_STATUS_H_
#define GAMEOPT_CLIENT_STATUS_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gameopt/v1/gameopt.grpc.pb.h"

namespace gameopt {

// One row per session under a header, columns aligned:
//   session  name  algorithm  step  phase  workers  |xi|  L  correction
//   gamma  steps/s  in  out  lr  scalars  stragglers
// |xi| lists the players' norms as "gen=1.2e-01 disc=3.4e-01"; step is
// "120/500" with a step limit and "done" appended once finished; in/out are
// bytes received and sent by the server (B, KiB, MiB, GiB); gamma is
// ConOpt's of the next step, with adaptive gamma's number of recorded
// changes and the last one ("0.8 (3 changes, last at step 40: spectrum)"),
// "-" for other algorithms; lr is the
// learning rate of the next step (one number when the players share it,
// else "gen=0.001 disc=0.002"); scalars are the workers' reported scalars
// of the last step ("loss/gen=0.693"), "-" if none; stragglers
// names the worker that closed the most rounds last ("w1:12") and the
// rounds missed at deadlines by all workers ("missed 3"), "-" if neither.
// "no sessions" when there are none.
std::string StatusTable(const v1::GetMetricsResponse& metrics);

// "512 B", "1.5 KiB", "3.2 MiB", "1.0 GiB".
std::string HumanBytes(int64_t bytes);

struct StatusOptions {
  absl::Duration watch = absl::ZeroDuration();  // 0: print once
  int64_t count = 0;  // with watch: stop after this many tables (0: never)
  absl::Duration rpc_deadline = absl::Seconds(10);
};

// Prints the table of `stub`'s server to `out`; with a watch interval,
// clears the terminal (ANSI) and redraws it every interval. The GetMetrics
// error, if any, as a Status.
absl::Status RunStatus(v1::GameOptimizer::StubInterface& stub,
                       const StatusOptions& options, std::FILE* out);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_STATUS_H_
