// The results folder of one `gameopt_client play` run: CSV files of what
// was recorded, then PNG plots of them (gnuplot; skipped when missing).
//
//   metrics.csv         the recorder's per-step metrics (always)
//   server_metrics.csv  the server's curves (when recorded: one server)
//   spectrum.csv        the estimated spectra (when any)
//   metrics.png, server_metrics.png, trajectory.png (2-coordinate games),
//   spectrum.png, samples.png (games with Game::Samples)
#ifndef GAMEOPT_CLIENT_PLAY_FILES_H_
#define GAMEOPT_CLIENT_PLAY_FILES_H_

#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "client/recorder.h"
#include "client/server_curves.h"
#include "client/worker/game.h"
#include "gameopt/v1/gameopt.pb.h"

namespace gameopt {

// What a finished run recorded. The pointers must outlive the call;
// `curves` may be null.
struct PlayRecord {
  const Recorder* recorder = nullptr;
  const ServerCurves* curves = nullptr;
  std::vector<v1::Spectrum> spectra;  // oldest first
  Eigen::VectorXd final_params;
};

// Writes the CSV files into `dir` (created if missing; UNAVAILABLE when it
// cannot be). The paths written.
absl::StatusOr<std::vector<std::string>> WriteRunCsvs(const PlayRecord& record,
                                                      const std::string& dir);

// Draws the plots into `dir` with `title`; `game` is the run's (its vector
// field, its Samples()). Nothing when gnuplot is missing. The paths written.
absl::StatusOr<std::vector<std::string>> PlotRun(const PlayRecord& record,
                                                 Game& game,
                                                 const std::string& dir,
                                                 const std::string& title);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_PLAY_FILES_H_
