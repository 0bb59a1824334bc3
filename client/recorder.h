// Recorder: per-step metrics of a running session, from the parameters the
// first worker receives at the start of every step.
#ifndef GAMEOPT_CLIENT_RECORDER_H_
#define GAMEOPT_CLIENT_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/worker/game.h"

namespace gameopt {

// Thread-safe: Record() runs on a worker thread, the accessors on others.
class Recorder {
 public:
  // Keeps its own clone of `game`. Metrics every `every` steps (>= 1); the
  // full parameter vector only for games of at most kMaxTrajectoryDim
  // coordinates.
  Recorder(const Game& game, int every);

  static constexpr int kMaxTrajectoryDim = 4;

  // x_t, the parameters at the start of step t. Each step is recorded once.
  void Record(int64_t step, const Eigen::VectorXd& params);
  // The final parameters after `step` steps (always recorded).
  void Finish(int64_t step, const Eigen::VectorXd& params);

  // Column names: step, grad_norm_<player>..., then the game's metrics.
  std::vector<std::string> columns() const;
  std::vector<std::vector<double>> rows() const;
  std::vector<Eigen::VectorXd> trajectory() const;
  int64_t latest_step() const { return latest_step_; }
  // The last row's value of `column`, or NaN.
  double Latest(const std::string& column) const;

  absl::Status WriteCsv(const std::string& path) const;

 private:
  void AddRow(int64_t step, const Eigen::VectorXd& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int every_;
  std::atomic<int64_t> latest_step_{-1};
  mutable absl::Mutex mu_;
  std::unique_ptr<Game> game_ ABSL_GUARDED_BY(mu_);
  std::vector<PlayerSpec> players_;
  std::vector<std::string> metric_names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<double>> rows_ ABSL_GUARDED_BY(mu_);
  std::vector<Eigen::VectorXd> trajectory_ ABSL_GUARDED_BY(mu_);
};

// A CSV file: a header of `columns`, then one line per row.
absl::Status WriteCsv(const std::string& path,
                      const std::vector<std::string>& columns,
                      const std::vector<std::vector<double>>& rows);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_RECORDER_H_
