#include "client/sweep.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/worker/sharded_session.h"  // SplitList

namespace gameopt {
namespace {

// Metric columns in first-seen order over the successful runs.
std::vector<std::string> MetricColumns(const std::vector<SweepRun>& runs) {
  std::vector<std::string> columns;
  for (const SweepRun& run : runs) {
    if (!run.result.ok()) continue;
    for (const auto& [name, value] : run.result->final_metrics) {
      if (std::find(columns.begin(), columns.end(), name) == columns.end()) {
        columns.push_back(name);
      }
    }
  }
  return columns;
}

std::string Metric(const PlayResult& result, const std::string& name) {
  for (const auto& [key, value] : result.final_metrics) {
    if (key == name) return absl::StrFormat("%.6g", value);
  }
  return "";
}

double StepsPerSecond(const PlayResult& result) {
  return result.seconds > 0 ? result.steps / result.seconds : 0.0;
}

}  // namespace

std::vector<SweepLabels> ExpandGrid(const std::vector<SweepAxis>& axes) {
  std::vector<SweepLabels> points = {{}};
  for (const SweepAxis& axis : axes) {
    std::vector<SweepLabels> next;
    for (const SweepLabels& point : points) {
      for (const std::string& value : axis.values) {
        SweepLabels labels = point;
        labels.emplace_back(axis.flag, value);
        next.push_back(std::move(labels));
      }
    }
    points = std::move(next);
  }
  return points;
}

std::string LabelText(const SweepLabels& labels) {
  return absl::StrJoin(labels, " ", absl::PairFormatter("="));
}

std::string LabelSlug(const SweepLabels& labels) {
  return labels.empty() ? "point"
                        : absl::StrJoin(labels, "_", absl::PairFormatter("-"));
}

std::vector<SweepRun> RunSweep(const std::vector<SweepPoint>& points,
                               int parallel) {
  const int n = static_cast<int>(points.size());
  std::vector<SweepRun> runs(n);
  for (int i = 0; i < n; ++i) {
    runs[i].labels = points[i].labels;
    runs[i].result = absl::UnknownError("not run");
  }
  const int threads_wanted = parallel <= 0 ? n : std::min(parallel, n);
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_wanted; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        runs[i].result = Play(points[i].config);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return runs;
}

std::string SweepTable(const std::vector<SweepRun>& runs) {
  std::vector<std::string> header;
  if (!runs.empty()) {
    for (const auto& [flag, value] : runs[0].labels) header.push_back(flag);
  }
  const size_t num_labels = header.size();
  header.push_back("steps");
  const std::vector<std::string> metrics = MetricColumns(runs);
  header.insert(header.end(), metrics.begin(), metrics.end());
  header.push_back("steps/s");
  // Rows of cells; a failed run's row is its labels and one message.
  std::vector<std::vector<std::string>> rows = {header};
  std::vector<bool> failed = {false};
  for (const SweepRun& run : runs) {
    std::vector<std::string> row;
    for (const auto& [flag, value] : run.labels) row.push_back(value);
    failed.push_back(!run.result.ok());
    if (!run.result.ok()) {
      row.push_back(absl::StrCat("FAILED: ", run.result.status().ToString()));
    } else {
      row.push_back(absl::StrCat(run.result->steps));
      for (const std::string& name : metrics) {
        row.push_back(Metric(*run.result, name));
      }
      row.push_back(absl::StrFormat("%.1f", StepsPerSecond(*run.result)));
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t cells = failed[r] ? num_labels : rows[r].size();
    for (size_t c = 0; c < cells && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], rows[r][c].size());
    }
  }
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<std::string> cells;
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const std::string& cell = rows[r][c];
      const size_t pad = (failed[r] && c >= num_labels) || c >= widths.size() ||
                                 cell.size() >= widths[c]
                             ? 0
                             : widths[c] - cell.size();
      cells.push_back(c < num_labels ? cell + std::string(pad, ' ')
                                     : std::string(pad, ' ') + cell);
    }
    absl::StrAppend(&out, absl::StrJoin(cells, "  "), "\n");
  }
  return out;
}

absl::Status WriteSweepCsv(const std::vector<SweepRun>& runs,
                           const std::string& path) {
  std::ofstream file(path);
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  const std::vector<std::string> metrics = MetricColumns(runs);
  std::vector<std::string> header;
  if (!runs.empty()) {
    for (const auto& [flag, value] : runs[0].labels) header.push_back(flag);
  }
  header.push_back("session");
  header.push_back("steps");
  header.insert(header.end(), metrics.begin(), metrics.end());
  header.push_back("seconds");
  header.push_back("error");
  file << absl::StrJoin(header, ",") << "\n";
  for (const SweepRun& run : runs) {
    std::vector<std::string> row;
    for (const auto& [flag, value] : run.labels) row.push_back(value);
    if (run.result.ok()) {
      row.push_back(absl::StrCat("\"", run.result->session_id, "\""));
      row.push_back(absl::StrCat(run.result->steps));
      for (const std::string& name : metrics) {
        row.push_back(Metric(*run.result, name));
      }
      row.push_back(absl::StrFormat("%.3f", run.result->seconds));
      row.push_back("");
    } else {
      row.insert(row.end(), metrics.size() + 3, "");
      std::string error(run.result.status().ToString());
      std::replace(error.begin(), error.end(), '"', '\'');
      row.push_back(absl::StrCat("\"", error, "\""));
    }
    file << absl::StrJoin(row, ",") << "\n";
  }
  return file.good()
             ? absl::OkStatus()
             : absl::UnavailableError(absl::StrCat("cannot write ", path));
}

std::vector<SweepAxis> ExtractSweepAxes(
    std::vector<char*>& args,
    const std::function<bool(const std::string&)>& sweepable) {
  std::vector<SweepAxis> axes;
  std::vector<char*> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string arg = args[i];
    std::string flag, value;
    bool pair = false;
    if (absl::StartsWith(arg, "--") && arg.size() > 2) {
      const size_t eq = arg.find('=');
      flag =
          arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[i + 1];
        pair = true;
      }
    }
    if (!flag.empty() && absl::StrContains(value, ',') && sweepable(flag)) {
      axes.push_back({flag, SplitList(value)});
      if (pair) ++i;
      continue;
    }
    kept.push_back(args[i]);
  }
  args = kept;
  return axes;
}

}  // namespace gameopt
