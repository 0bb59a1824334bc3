// PNG plots of a run, drawn by gnuplot (Debian's gnuplot-nox): the metric
// curves, the trajectory over the game's vector field (2-D games) and the
// generator's samples over the modes (mixture of Gaussians). Each function
// writes its data and script next to the PNG, so a plot can be redrawn or
// restyled by hand.
#ifndef GAMEOPT_CLIENT_PLOTS_H_
#define GAMEOPT_CLIENT_PLOTS_H_

#include <complex>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "client/recorder.h"
#include "client/worker/game.h"

namespace gameopt {

// True when a gnuplot binary answers.
bool GnuplotAvailable();

// <dir>/metrics.png: one panel per recorded column against the step.
absl::Status PlotMetrics(const Recorder& recorder, const std::string& dir,
                         const std::string& title);

// <dir>/<stem>.png (with <stem>.dat and <stem>.gp): one panel per column
// after the first, against the first (the step). Log scale where a
// column's values are all positive.
absl::Status PlotColumns(const std::vector<std::string>& columns,
                         const std::vector<std::vector<double>>& rows,
                         const std::string& dir, const std::string& stem,
                         const std::string& title);

// <dir>/trajectory.png for games of 2 coordinates: the update field -xi(x)
// (unit arrows) with the path of the parameters over it.
absl::Status PlotTrajectory(Game& game,
                            const std::vector<Eigen::VectorXd>& trajectory,
                            const std::string& dir, const std::string& title);

// <dir>/samples.png: generated samples (2 x n) over the mode centres
// (2 x m), with 3-std circles.
absl::Status PlotSamples(const Eigen::MatrixXd& samples,
                         const Eigen::MatrixXd& centers, double data_std,
                         const std::string& dir, const std::string& title);

// One set of eigenvalues in the complex plane, e.g. "J at step 0".
struct SpectrumSeries {
  std::string label;
  std::vector<std::complex<double>> values;
};

// <dir>/spectrum.png: each series' eigenvalues in the complex plane (the
// ConOpt paper's eigenvalue figure), with the imaginary axis marked: players
// minimize, so simultaneous descent is locally stable where every
// eigenvalue of the followed field's Jacobian lies right of it.
absl::Status PlotSpectrum(const std::vector<SpectrumSeries>& series,
                          const std::string& dir, const std::string& title);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_PLOTS_H_
