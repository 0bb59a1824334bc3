// ServerCurves: the server's view of a run, step by step, for the plots of
// `gameopt_client play` (server_metrics.csv / server_metrics.png): the
// norm of each player's block of the aggregated gradient xi (the mean over
// the round's samples, not the recorder's fixed minibatch), L = 1/2 |xi|^2,
// the correction's norm (ConOpt, SGA), each phase's round latency in ms,
// the steps per second and the bias meter's relative bias, read with the
// GetMetrics RPC.
//
// Row `t` holds step t's figures: when a worker receives the first task of
// step t + 1, step t is complete and, since that worker's submission is
// needed to close the next round, nothing newer is in yet.
#ifndef GAMEOPT_CLIENT_SERVER_CURVES_H_
#define GAMEOPT_CLIENT_SERVER_CURVES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/channel.h"

namespace gameopt {

// Column names for a session's metrics: step, xi_norm_<player>..., loss,
// correction_norm, latency_ms_<phase>..., steps_per_second,
// relative_bias (when the session has the bias meter on), then
// scalar_<name>... for the workers' reported scalars (those the first
// recorded step has) and lr_<player>... (each player's learning rate of the
// next step).
std::vector<std::string> CurveColumns(const v1::SessionMetrics& metrics);

// The values of `columns` (from CurveColumns) for `metrics`: step is
// metrics.step() - 1, the last completed step; NaN for a phase without
// rounds.
std::vector<double> CurveRow(const v1::SessionMetrics& metrics,
                             const std::vector<std::string>& columns);

// Thread-safe.
class ServerCurves {
 public:
  // Every `every` (>= 1) steps, from the session on `channel`.
  ServerCurves(std::shared_ptr<grpc::Channel> channel, std::string session_id,
               int every);

  // A worker starts step `step` (steps completed so far): records step
  // `step - 1` when it is due. Errors are kept for Finish.
  void StepStarted(int64_t step);
  // Records the last step unless already recorded; the first error of the
  // run, if any.
  absl::Status Finish();

  std::vector<std::string> columns() const;
  std::vector<std::vector<double>> rows() const;

 private:
  absl::Status Record();

  const std::unique_ptr<v1::GameOptimizer::Stub> stub_;
  const std::string session_id_;
  const int every_;
  mutable absl::Mutex mu_;
  std::vector<std::string> columns_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<double>> rows_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_SERVER_CURVES_H_
