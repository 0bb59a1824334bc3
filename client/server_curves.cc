#include "client/server_curves.h"

#include <chrono>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace gameopt {
namespace {

constexpr char kXiPrefix[] = "xi_norm_";
constexpr char kLatencyPrefix[] = "latency_ms_";
constexpr char kScalarPrefix[] = "scalar_";
constexpr char kLearningRatePrefix[] = "lr_";
// A GetMetrics call is a local read; this only bounds a stuck server.
constexpr auto kRpcDeadline = std::chrono::seconds(10);

}  // namespace

std::vector<std::string> CurveColumns(const v1::SessionMetrics& metrics) {
  std::vector<std::string> columns = {"step"};
  for (const std::string& player : metrics.players()) {
    columns.push_back(absl::StrCat(kXiPrefix, player));
  }
  columns.push_back("loss");
  columns.push_back("correction_norm");
  for (const v1::PhaseLatency& phase : metrics.phase_latency()) {
    columns.push_back(absl::StrCat(kLatencyPrefix, phase.phase_label()));
  }
  columns.push_back("steps_per_second");
  if (metrics.diagnostics().has_bias_meter()) {
    columns.push_back("relative_bias");
  }
  for (const v1::Scalar& scalar : metrics.scalars()) {
    columns.push_back(absl::StrCat(kScalarPrefix, scalar.name()));
  }
  for (int p = 0;
       p < metrics.players_size() && p < metrics.learning_rate_size(); ++p) {
    columns.push_back(absl::StrCat(kLearningRatePrefix, metrics.players(p)));
  }
  return columns;
}

std::vector<double> CurveRow(const v1::SessionMetrics& metrics,
                             const std::vector<std::string>& columns) {
  std::vector<double> row;
  for (const std::string& column : columns) {
    double value = std::numeric_limits<double>::quiet_NaN();
    absl::string_view name = column;
    if (column == "step") {
      value = static_cast<double>(metrics.step() - 1);
    } else if (column == "loss") {
      value = metrics.loss();
    } else if (column == "correction_norm") {
      value = metrics.correction_norm();
    } else if (column == "steps_per_second") {
      value = metrics.steps_per_second();
    } else if (column == "relative_bias") {
      if (metrics.diagnostics().has_bias_meter()) {
        value = metrics.diagnostics().relative_bias();
      }
    } else if (absl::ConsumePrefix(&name, kXiPrefix)) {
      for (int p = 0; p < metrics.players_size() && p < metrics.xi_norm_size();
           ++p) {
        if (metrics.players(p) == name) value = metrics.xi_norm(p);
      }
    } else if (absl::ConsumePrefix(&name, kScalarPrefix)) {
      for (const v1::Scalar& scalar : metrics.scalars()) {
        if (scalar.name() == name) value = scalar.value();
      }
    } else if (absl::ConsumePrefix(&name, kLearningRatePrefix)) {
      for (int p = 0;
           p < metrics.players_size() && p < metrics.learning_rate_size();
           ++p) {
        if (metrics.players(p) == name) value = metrics.learning_rate(p);
      }
    } else if (absl::ConsumePrefix(&name, kLatencyPrefix)) {
      for (const v1::PhaseLatency& phase : metrics.phase_latency()) {
        if (phase.phase_label() == name) value = 1e3 * phase.last_seconds();
      }
    }
    row.push_back(value);
  }
  return row;
}

ServerCurves::ServerCurves(std::shared_ptr<grpc::Channel> channel,
                           std::string session_id, int every)
    : stub_(v1::GameOptimizer::NewStub(std::move(channel))),
      session_id_(std::move(session_id)),
      every_(every < 1 ? 1 : every) {}

void ServerCurves::StepStarted(int64_t step) {
  if (step < 1 || (step - 1) % every_ != 0) return;
  absl::Status status = Record();
  absl::MutexLock lock(&mu_);
  if (error_.ok()) error_ = std::move(status);
}

absl::Status ServerCurves::Finish() {
  absl::Status status = Record();
  absl::MutexLock lock(&mu_);
  return error_.ok() ? status : error_;
}

absl::Status ServerCurves::Record() {
  v1::GetMetricsRequest request;
  request.set_session_id(session_id_);
  v1::GetMetricsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
  const grpc::Status status = stub_->GetMetrics(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("GetMetrics: ", status.error_message()));
  }
  if (response.sessions_size() != 1) {
    return absl::InternalError("GetMetrics answered no session");
  }
  const v1::SessionMetrics& metrics = response.sessions(0);
  if (metrics.step() < 1) return absl::OkStatus();  // nothing completed
  absl::MutexLock lock(&mu_);
  if (columns_.empty()) columns_ = CurveColumns(metrics);
  std::vector<double> row = CurveRow(metrics, columns_);
  if (!rows_.empty() && rows_.back()[0] >= row[0]) return absl::OkStatus();
  rows_.push_back(std::move(row));
  return absl::OkStatus();
}

std::vector<std::string> ServerCurves::columns() const {
  absl::MutexLock lock(&mu_);
  return columns_;
}

std::vector<std::vector<double>> ServerCurves::rows() const {
  absl::MutexLock lock(&mu_);
  return rows_;
}

}  // namespace gameopt
