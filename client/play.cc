#include "client/play.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/play_files.h"
#include "client/play_servers.h"
#include "client/recorder.h"
#include "client/server_curves.h"
#include "client/spectrum.h"
#include "client/worker/sharded_session.h"
#include "client/worker_threads.h"

namespace gameopt {
namespace {

// "step 120/500 | grad x 1.2e-01 y 3.4e-01 | distance 0.12 | 850 steps/s |
// ETA 0.4 s", redrawn in place.
void PrintProgress(const Recorder& recorder, int64_t total, absl::Time start) {
  const int64_t step = std::max<int64_t>(recorder.latest_step(), 0);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double rate = seconds > 0 ? step / seconds : 0.0;
  std::string line = absl::StrFormat("\rstep %lld/%lld |", step, total);
  const std::vector<std::string> columns = recorder.columns();
  for (size_t i = 1; i < columns.size(); ++i) {
    std::string name = columns[i];
    if (name.rfind("grad_norm_", 0) == 0) name = "|xi_" + name.substr(10) + "|";
    absl::StrAppendFormat(&line, " %s %.3g", name, recorder.Latest(columns[i]));
  }
  absl::StrAppendFormat(&line, " | %.0f steps/s | ETA %.1f s   ", rate,
                        rate > 0 ? (total - step) / rate : 0.0);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

// Spectra of J (and of the followed field for conopt / sga) at step 0 and
// after the last step.
void ScheduleSpectra(const PlayConfig& config, v1::SessionConfig& session) {
  v1::SpectrumSchedule* schedule = session.mutable_spectrum();
  // Adaptive gamma's schedule (session_builder.h) stays: these estimates
  // come with it, at its steps.
  if (schedule->every_steps() == 0) {
    schedule->set_every_steps(std::max<int64_t>(config.steps, 1));
  }
  v1::SpectrumOptions* jacobian = schedule->add_options();
  jacobian->set_operator_(v1::GAME_JACOBIAN);
  jacobian->set_k(config.spectrum_k);
  const std::string& algorithm = config.session.algorithm;
  if (algorithm == "conopt" || algorithm == "sga") {
    v1::SpectrumOptions* field = schedule->add_options();
    *field = *jacobian;
    field->set_operator_(v1::ALGORITHM_FIELD);
  }
}

// The session of the run, created on the servers of `channels`.
absl::StatusOr<ShardedSession> CreatePlaySession(
    const PlayConfig& config, const Game& game,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  SessionOptions session_options = config.session;
  session_options.max_steps = config.steps;
  absl::StatusOr<v1::SessionConfig> session_config =
      BuildSessionConfig(game, session_options);
  if (!session_config.ok()) return session_config.status();
  if (config.spectrum_k > 0) {
    if (channels.size() > 1) {
      return absl::InvalidArgumentError(
          "--spectrum_k needs one server: a shard sees only its slice of J");
    }
    ScheduleSpectra(config, *session_config);
  }
  return ShardedSession::Create(channels, game, *session_config);
}

}  // namespace

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ServerChannels(
    const PlayConfig& config) {
  return ChannelsTo(config.server, config.channel);
}

absl::StatusOr<PlayResult> Play(const PlayConfig& config) {
  absl::StatusOr<std::unique_ptr<Game>> game =
      MakeGame(config.game, config.game_options);
  if (!game.ok()) return game.status();
  PlayResult result;
  result.game_name = (*game)->name();

  absl::StatusOr<PlayServers> servers =
      PlayServers::Start(config.server, config.shards, config.channel);
  if (!servers.ok()) return servers.status();
  const std::vector<std::shared_ptr<grpc::Channel>>& channels =
      servers->channels();
  absl::StatusOr<ShardedSession> session =
      CreatePlaySession(config, **game, channels);
  if (!session.ok()) return session.status();
  result.session_id = session->id();
  result.shards = session->num_shards();

  // K workers; the first one feeds the recorder and, unsharded, the
  // server's curves (a sharded session's per-shard norms would be of
  // slices).
  Recorder recorder(**game, config.metrics_every);
  std::unique_ptr<ServerCurves> curves;
  if (result.shards == 1) {
    curves = std::make_unique<ServerCurves>(channels[0], session->id(),
                                            config.metrics_every);
  }
  WorkerThreadsOptions threads;
  threads.threads = config.session.workers;
  threads.send_dtype = *ParseWireDType(config.session.wire);  // checked
  threads.stochastic_rounding = config.session.wire_stochastic;
  threads.first_worker_progress = [&recorder,
                                   &curves](const WorkerProgress& p) {
    if (p.kind != v1::DONE && p.kind != v1::PRODUCTS && p.phase == 0) {
      recorder.Record(p.step, *p.params);
      if (curves) curves->StepStarted(p.step);
    }
  };
  const absl::Time start = absl::Now();
  if (config.live) {
    threads.tick = [&] { PrintProgress(recorder, config.steps, start); };
  }
  absl::StatusOr<double> seconds = RunWorkerThreads(*session, **game, threads);
  if (config.live) {
    PrintProgress(recorder, config.steps, start);
    std::fputs("\n", stderr);
  }
  if (!seconds.ok()) return seconds.status();
  result.seconds = *seconds;
  if (curves) {
    if (absl::Status status = curves->Finish(); !status.ok()) return status;
  }

  // Final parameters from the server(s).
  absl::StatusOr<SessionParameters> params = session->GetParameters();
  if (!params.ok()) return params.status();
  result.final_params = std::move(params->values);
  result.steps = params->step;
  recorder.Finish(result.steps, result.final_params);
  const std::vector<std::string> columns = recorder.columns();
  for (size_t i = 1; i < columns.size(); ++i) {
    result.final_metrics.emplace_back(columns[i], recorder.Latest(columns[i]));
  }
  if (config.spectrum_k > 0) {
    absl::StatusOr<std::vector<v1::Spectrum>> spectra =
        FetchSpectra(channels[0], result.session_id);
    if (!spectra.ok()) return spectra.status();
    result.spectra = *std::move(spectra);
  }
  if (!config.keep_session) session->Delete().IgnoreError();
  servers->Shutdown();

  if (config.out_dir.empty()) return result;
  PlayRecord record{&recorder, curves.get(), result.spectra,
                    result.final_params};
  absl::StatusOr<std::vector<std::string>> csvs =
      WriteRunCsvs(record, config.out_dir);
  if (!csvs.ok()) return csvs.status();
  result.files = *std::move(csvs);
  if (config.plots) {
    const std::string title = absl::StrCat(
        result.game_name, " / ", config.session.algorithm, " (",
        config.session.optimizer, ", lr ", config.session.learning_rate, ")");
    absl::StatusOr<std::vector<std::string>> plots =
        PlotRun(record, **game, config.out_dir, title);
    if (!plots.ok()) return plots.status();
    result.files.insert(result.files.end(), plots->begin(), plots->end());
  }
  return result;
}

std::string ResultLine(const PlayConfig& config, const PlayResult& result) {
  std::string line = absl::StrCat(
      "RESULT game=", result.game_name, " algorithm=", config.session.algorithm,
      " optimizer=", config.session.optimizer,
      " workers=", config.session.workers, " steps=", result.steps);
  if (result.shards > 1) absl::StrAppend(&line, " shards=", result.shards);
  for (const auto& [name, value] : result.final_metrics) {
    absl::StrAppendFormat(&line, " %s=%.6g", name, value);
  }
  absl::StrAppendFormat(&line, " seconds=%.3f steps_per_s=%.1f", result.seconds,
                        result.seconds > 0 ? result.steps / result.seconds : 0);
  if (!config.out_dir.empty()) absl::StrAppend(&line, " out=", config.out_dir);
  return line;
}

}  // namespace gameopt
