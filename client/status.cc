#include "client/status.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace gameopt {
namespace {

using Row = std::vector<std::string>;

// Left-aligned columns two spaces apart, no trailing blanks.
std::string Align(const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      absl::StrAppend(&line, row[c],
                      c + 1 < row.size()
                          ? std::string(widths[c] - row[c].size() + 2, ' ')
                          : "");
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string Number(double value) { return absl::StrFormat("%.3g", value); }

std::string Step(const v1::SessionMetrics& m) {
  std::string step = absl::StrCat(m.step());
  if (m.max_steps() > 0) absl::StrAppend(&step, "/", m.max_steps());
  if (m.done()) absl::StrAppend(&step, " done");
  return step;
}

std::string XiNorms(const v1::SessionMetrics& m) {
  std::vector<std::string> parts;
  for (int p = 0; p < m.xi_norm_size(); ++p) {
    const std::string player =
        p < m.players_size() ? m.players(p) : absl::StrCat(p);
    parts.push_back(absl::StrFormat("%s=%.2e", player, m.xi_norm(p)));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

// Each player's learning rate, "-" when all players share one ("0.01").
std::string LearningRates(const v1::SessionMetrics& m) {
  if (m.learning_rate_size() == 0) return "-";
  bool same = true;
  for (double lr : m.learning_rate()) same = same && lr == m.learning_rate(0);
  if (same) return Number(m.learning_rate(0));
  std::vector<std::string> parts;
  for (int p = 0; p < m.learning_rate_size(); ++p) {
    const std::string player =
        p < m.players_size() ? m.players(p) : absl::StrCat(p);
    parts.push_back(absl::StrCat(player, "=", Number(m.learning_rate(p))));
  }
  return absl::StrJoin(parts, " ");
}

// The workers' reported scalars of the last step: "loss/gen=0.693 acc=0.5".
std::string Scalars(const v1::SessionMetrics& m) {
  std::vector<std::string> parts;
  for (const v1::Scalar& s : m.scalars()) {
    parts.push_back(absl::StrCat(s.name(), "=", Number(s.value())));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string Stragglers(const v1::SessionMetrics& m) {
  const v1::WorkerMetrics* slowest = nullptr;
  int64_t missed = 0;
  for (const v1::WorkerMetrics& w : m.workers()) {
    missed += w.missed_rounds();
    if (w.last_to_submit_rounds() > 0 &&
        (slowest == nullptr ||
         w.last_to_submit_rounds() > slowest->last_to_submit_rounds())) {
      slowest = &w;
    }
  }
  std::vector<std::string> parts;
  if (slowest != nullptr) {
    parts.push_back(
        absl::StrCat(slowest->name(), ":", slowest->last_to_submit_rounds()));
  }
  if (missed > 0) parts.push_back(absl::StrCat("missed ", missed));
  // Dead or hung workers (liveness): dropped ones, by name. A server older
  // than WorkerMetrics.worker_state sends only the string.
  std::vector<std::string> dropped;
  for (const v1::WorkerMetrics& w : m.workers()) {
    const bool is_dropped = w.worker_state() == v1::WORKER_STATE_UNSPECIFIED
                                ? w.state() == "dropped"
                                : w.worker_state() == v1::WORKER_STATE_DROPPED;
    if (is_dropped) dropped.push_back(w.name());
  }
  if (!dropped.empty()) {
    parts.push_back(absl::StrCat("dropped ", absl::StrJoin(dropped, ",")));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

// ConOpt's gamma of the next step, with adaptive gamma's last change:
// "0.8 (3 changes, last at step 40: spectrum)"; "-" for other algorithms.
std::string Gamma(const v1::SessionMetrics& m) {
  if (m.algorithm() != "conopt") return "-";
  std::string out = Number(m.gamma());
  if (m.gamma_trajectory_size() > 0) {
    const v1::GammaChange& last = *m.gamma_trajectory().rbegin();
    absl::StrAppend(&out, " (", m.gamma_trajectory_size(),
                    m.gamma_trajectory_size() == 1 ? " change" : " changes",
                    ", last at step ", last.step(), ": ", last.reason(), ")");
  }
  return out;
}

Row SessionRow(const v1::SessionMetrics& m) {
  return {m.session_id(),
          m.name().empty() ? "-" : m.name(),
          m.algorithm(),
          Step(m),
          m.done() ? "-" : m.phase_label(),
          absl::StrCat(m.workers_active(), "/", m.workers_per_round()),
          XiNorms(m),
          Number(m.loss()),
          Number(m.correction_norm()),
          Gamma(m),
          absl::StrFormat("%.1f", m.steps_per_second()),
          HumanBytes(m.bytes_received()),
          HumanBytes(m.bytes_sent()),
          LearningRates(m),
          Scalars(m),
          Stragglers(m)};
}

}  // namespace

std::string HumanBytes(int64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit + 1 < 4) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string StatusTable(const v1::GetMetricsResponse& metrics) {
  if (metrics.sessions().empty()) return "no sessions\n";
  std::vector<Row> rows = {{"session", "name", "algorithm", "step", "phase",
                            "workers", "|xi|", "L", "correction", "gamma",
                            "steps/s", "in", "out", "lr", "scalars",
                            "stragglers"}};
  for (const v1::SessionMetrics& m : metrics.sessions()) {
    rows.push_back(SessionRow(m));
  }
  return Align(rows);
}

absl::Status RunStatus(v1::GameOptimizer::StubInterface& stub,
                       const StatusOptions& options, std::FILE* out) {
  const bool watch = options.watch > absl::ZeroDuration();
  for (int64_t shown = 1;; ++shown) {
    v1::GetMetricsResponse metrics;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options.rpc_deadline));
    const grpc::Status status =
        stub.GetMetrics(&context, v1::GetMetricsRequest(), &metrics);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    const std::string table = StatusTable(metrics);
    if (watch) {
      // Home the cursor and clear the screen: the table redraws in place.
      std::fprintf(
          out, "\033[H\033[2J%s (every %s)\n%s",
          absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone())
              .c_str(),
          absl::FormatDuration(options.watch).c_str(), table.c_str());
    } else {
      std::fputs(table.c_str(), out);
    }
    std::fflush(out);
    if (!watch || (options.count > 0 && shown >= options.count)) break;
    absl::SleepFor(options.watch);
  }
  return absl::OkStatus();
}

}  // namespace gameopt
