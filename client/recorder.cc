#include "client/recorder.h"

#include <cmath>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gameopt {
namespace {

// The gradient norms of a recorded step come from one fixed minibatch, so
// stochastic games show a comparable estimate from step to step.
constexpr uint64_t kRecorderSeed = 20170605;

}  // namespace

Recorder::Recorder(const Game& game, int every)
    : every_(every < 1 ? 1 : every),
      game_(game.Clone()),
      players_(game.players()) {
  game_->DrawMinibatches(1, kRecorderSeed);
}

void Recorder::Record(int64_t step, const Eigen::VectorXd& params) {
  if (step <= latest_step_) return;
  latest_step_ = step;
  absl::MutexLock lock(&mu_);
  if (params.size() <= kMaxTrajectoryDim) trajectory_.push_back(params);
  if (step % every_ == 0) AddRow(step, params);
}

void Recorder::Finish(int64_t step, const Eigen::VectorXd& params) {
  latest_step_ = step;
  absl::MutexLock lock(&mu_);
  if (params.size() <= kMaxTrajectoryDim &&
      (trajectory_.empty() || trajectory_.back() != params)) {
    trajectory_.push_back(params);
  }
  if (rows_.empty() || rows_.back()[0] != static_cast<double>(step)) {
    AddRow(step, params);
  }
}

void Recorder::AddRow(int64_t step, const Eigen::VectorXd& params) {
  std::vector<double> row{static_cast<double>(step)};
  const Eigen::VectorXd xi = game_->Gradient(params, 0);
  int64_t offset = 0;
  for (const PlayerSpec& player : players_) {
    const int64_t n = NumElements(player);
    row.push_back(xi.segment(offset, n).norm());
    offset += n;
  }
  const auto metrics = game_->Metrics(params);
  if (metric_names_.empty()) {
    for (const auto& [name, value] : metrics) metric_names_.push_back(name);
  }
  for (const auto& [name, value] : metrics) row.push_back(value);
  rows_.push_back(std::move(row));
}

std::vector<std::string> Recorder::columns() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names{"step"};
  for (const PlayerSpec& player : players_) {
    names.push_back(absl::StrCat("grad_norm_", player.name));
  }
  for (const std::string& name : metric_names_) names.push_back(name);
  return names;
}

std::vector<std::vector<double>> Recorder::rows() const {
  absl::MutexLock lock(&mu_);
  return rows_;
}

std::vector<Eigen::VectorXd> Recorder::trajectory() const {
  absl::MutexLock lock(&mu_);
  return trajectory_;
}

double Recorder::Latest(const std::string& column) const {
  const std::vector<std::string> names = columns();
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == column && !rows_.empty() && i < rows_.back().size()) {
      return rows_.back()[i];
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

absl::Status Recorder::WriteCsv(const std::string& path) const {
  return gameopt::WriteCsv(path, columns(), rows());
}

absl::Status WriteCsv(const std::string& path,
                      const std::vector<std::string>& columns,
                      const std::vector<std::vector<double>>& rows) {
  std::ofstream out(path);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  out << absl::StrJoin(columns, ",") << "\n";
  out.precision(10);
  for (const std::vector<double>& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out << (i ? "," : "") << row[i];
    }
    out << "\n";
  }
  return out.good()
             ? absl::OkStatus()
             : absl::UnavailableError(absl::StrCat("write failed: ", path));
}

}  // namespace gameopt
