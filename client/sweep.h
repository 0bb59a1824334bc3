// `gameopt_client sweep`: many experiments at once. A grid of flag values
// (e.g. --gamma 0.1,1,10 x --algorithm simgd,conopt) is played as parallel
// sessions, on one server (or one experiment's shards) that hosts them all
// concurrently, and the final metrics are printed as one table.
#ifndef GAMEOPT_CLIENT_SWEEP_H_
#define GAMEOPT_CLIENT_SWEEP_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/play.h"

namespace gameopt {

// One swept flag and its values, in the order given.
struct SweepAxis {
  std::string flag;
  std::vector<std::string> values;
};

// (flag, value) pairs of one grid point, in axis order.
using SweepLabels = std::vector<std::pair<std::string, std::string>>;

// Takes "--flag=a,b" and "--flag a,b" out of `args` (argv) for every flag with
// a comma in its value that `sweepable(flag)` accepts, and returns them as axes
// in order; `args` keeps everything else.
std::vector<SweepAxis> ExtractSweepAxes(
    std::vector<char*>& args,
    const std::function<bool(const std::string&)>& sweepable);

// The Cartesian product, first axis slowest; one empty point for no axes.
std::vector<SweepLabels> ExpandGrid(const std::vector<SweepAxis>& axes);

// "gamma=0.1 algorithm=simgd" (for tables) and "gamma-0.1_algorithm-simgd"
// (for folder names).
std::string LabelText(const SweepLabels& labels);
std::string LabelSlug(const SweepLabels& labels);

struct SweepPoint {
  SweepLabels labels;
  PlayConfig config;
};

struct SweepRun {
  SweepLabels labels;
  absl::StatusOr<PlayResult> result;
};

// Plays every point, at most `parallel` at once (0 = all at once), each as
// its own session with its own worker threads, and returns the runs in the
// points' order. A failed point does not stop the others.
std::vector<SweepRun> RunSweep(const std::vector<SweepPoint>& points,
                               int parallel);

// The comparison table: a row per run with the swept values, the steps, the
// final metrics (columns in first-seen order) and steps/s; failed runs show
// their error instead.
std::string SweepTable(const std::vector<SweepRun>& runs);

// The same as CSV (failed runs: empty metrics, the error in "error").
absl::Status WriteSweepCsv(const std::vector<SweepRun>& runs,
                           const std::string& path);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_SWEEP_H_
