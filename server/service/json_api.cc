#include "server/service/json_api.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/metrics.h"
#include "server/core/quote.h"
#include "server/service/metrics_convert.h"

namespace gameopt {
namespace {

std::string Numbers(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonNumber(values[i]);
  }
  return out + "]";
}

template <typename Get>
std::string Column(const std::vector<HistoryPoint>& points, Get get) {
  std::vector<double> values;
  values.reserve(points.size());
  for (const HistoryPoint& point : points) values.push_back(get(point));
  return Numbers(values);
}

std::string RitzList(const std::vector<RitzValue>& values) {
  std::vector<std::string> items;
  for (const RitzValue& v : values) {
    items.push_back(absl::StrCat("{\"re\":", JsonNumber(v.value.real()),
                                 ",\"im\":", JsonNumber(v.value.imag()),
                                 ",\"residual\":", JsonNumber(v.residual),
                                 "}"));
  }
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

std::string DiagnosticsJson(const StepDiagnostics& d) {
  if (!d.available) return "null";
  return absl::StrCat(
      "{\"xi_norm\":", JsonNumber(d.xi_norm),
      ",\"jt_xi_norm\":", JsonNumber(d.jt_xi_norm),
      ",\"stationarity_ratio\":", JsonNumber(d.stationarity_ratio),
      ",\"cancellation\":", JsonNumber(d.cancellation), ",\"rotation_index\":",
      d.has_rotation_index ? JsonNumber(d.rotation_index) : "null",
      ",\"relative_bias\":",
      d.has_bias_meter ? JsonNumber(d.relative_bias) : "null", "}");
}

std::string SpectrumFields(const SpectrumResult& result) {
  const SpectrumEstimate& e = result.estimate;
  return absl::StrCat(
      "\"step\":", result.step, ",\"operator\":",
      JsonString(result.op == SpectrumOperatorKind::kGameJacobian ? "jacobian"
                                                                  : "field"),
      ",\"description\":", JsonString(result.description),
      ",\"applications\":", e.applications, ",\"restarts\":", e.restarts,
      ",\"converged\":", e.converged ? "true" : "false",
      ",\"rounds\":", result.rounds, ",\"samples\":", result.samples,
      ",\"largest_real\":", RitzList(e.largest_real),
      ",\"largest_imag\":", RitzList(e.largest_imag),
      ",\"largest_modulus\":", RitzList(e.largest_modulus),
      ",\"smallest_real\":", RitzList(e.smallest_real),
      ",\"diagnostics\":", DiagnosticsJson(result.diagnostics));
}

std::string History(const std::vector<HistoryPoint>& points, size_t players) {
  std::vector<std::string> xi;
  for (size_t p = 0; p < players; ++p) {
    xi.push_back(Column(points, [p](const HistoryPoint& point) {
      return p < point.xi_norm.size() ? point.xi_norm[p] : NAN;
    }));
  }
  return absl::StrCat(
      "{\"step\":",
      Column(points, [](const HistoryPoint& p) { return double(p.step); }),
      ",\"seconds\":",
      Column(points, [](const HistoryPoint& p) { return p.seconds; }),
      ",\"xi_norm\":[", absl::StrJoin(xi, ","), "],\"loss\":",
      Column(points, [](const HistoryPoint& p) { return p.loss; }),
      ",\"correction_norm\":",
      Column(points, [](const HistoryPoint& p) { return p.correction_norm; }),
      ",\"gamma\":",
      Column(points, [](const HistoryPoint& p) { return p.gamma; }),
      ",\"steps_per_second\":",
      Column(points, [](const HistoryPoint& p) { return p.steps_per_second; }),
      ",\"jt_xi_norm\":",
      Column(points, [](const HistoryPoint& p) { return p.jt_xi_norm; }),
      ",\"stationarity_ratio\":",
      Column(points,
             [](const HistoryPoint& p) { return p.stationarity_ratio; }),
      ",\"rotation_index\":",
      Column(points, [](const HistoryPoint& p) { return p.rotation_index; }),
      ",\"cancellation\":",
      Column(points, [](const HistoryPoint& p) { return p.cancellation; }),
      ",\"relative_bias\":",
      Column(points, [](const HistoryPoint& p) { return p.relative_bias; }),
      "}");
}

std::string SessionJson(const Session& session, const HistoryBook& history) {
  const SessionInfo info = session.Info();
  const SessionConfig& config = session.config();
  std::vector<std::string> players;
  for (const PlayerConfig& player : config.players) {
    players.push_back(JsonString(player.name));
  }
  const std::vector<HistoryPoint> points = history.Points(info.id);
  return absl::StrCat(
      "{\"id\":", JsonString(info.id), ",\"name\":", JsonString(config.name),
      ",\"algorithm\":", JsonString(AlgorithmName(config.algorithm.kind)),
      ",\"step\":", info.step, ",\"max_steps\":", config.max_steps,
      ",\"done\":", info.done ? "true" : "false", ",\"players\":[",
      absl::StrJoin(players, ","), "],\"workers_active\":", ActiveWorkers(info),
      ",\"workers_per_round\":", config.workers_per_round,
      ",\"xi_norm\":", Numbers(info.stats.xi_norm),
      ",\"loss\":", JsonNumber(HalfSquaredNorm(info.stats.xi_norm)),
      ",\"correction_norm\":", JsonNumber(info.stats.correction_norm),
      ",\"gamma\":", JsonNumber(CurrentGamma(config, info.stats)),
      ",\"steps_per_second\":", JsonNumber(info.timing.steps_per_second),
      ",\"diagnostics\":", DiagnosticsJson(info.stats.diagnostics),
      ",\"spectra\":", session.Spectra().size(),
      ",\"history\":", History(points, config.players.size()), "}");
}

}  // namespace

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

std::string SessionsJson(const SessionRegistry& registry,
                         const HistoryBook& history) {
  std::vector<std::string> sessions;
  for (const std::shared_ptr<Session>& session : registry.List()) {
    sessions.push_back(SessionJson(*session, history));
  }
  return absl::StrCat("{\"sessions\":[", absl::StrJoin(sessions, ","), "]}");
}

absl::StatusOr<std::string> SpectrumJson(const SessionRegistry& registry,
                                         const std::string& session_id) {
  absl::StatusOr<std::shared_ptr<Session>> session = registry.Get(session_id);
  if (!session.ok()) {
    return absl::NotFoundError(
        absl::StrCat("no session '", Quote(session_id), "' is hosted"));
  }
  const std::vector<SpectrumResult> spectra = (*session)->Spectra();
  if (spectra.empty()) {
    return absl::StrCat("{\"session\":", JsonString(session_id),
                        ",\"available\":false}");
  }
  return absl::StrCat("{\"session\":", JsonString(session_id),
                      ",\"available\":true,", SpectrumFields(spectra.back()),
                      "}");
}

}  // namespace gameopt
