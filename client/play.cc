#include "client/play.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "client/games/mog_gan.h"
#include "client/plots.h"
#include "client/recorder.h"
#include "client/server_curves.h"
#include "client/spectrum.h"
#include "client/worker/sharded_session.h"
#include "client/worker/worker.h"
#include "server/service/server.h"

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

absl::Status PlotSpectra(const std::vector<v1::Spectrum>& spectra,
                         const std::string& dir, const std::string& title) {
  std::vector<SpectrumSeries> series;
  for (const v1::Spectrum& s : spectra) {
    series.push_back(SpectrumSeries{
        absl::StrCat(s.operator_description(), " at step ", s.step()),
        DistinctEigenvalues(s)});
  }
  return PlotSpectrum(series, dir, absl::StrCat(title, ": eigenvalues"));
}

}  // namespace

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ServerChannels(
    const PlayConfig& config) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& address : SplitList(config.server)) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(address, config.channel);
    if (!channel.ok()) return channel.status();
    channels.push_back(*std::move(channel));
  }
  return channels;
}

absl::StatusOr<PlayResult> Play(const PlayConfig& config) {
  absl::StatusOr<std::unique_ptr<Game>> game =
      MakeGame(config.game, config.game_options);
  if (!game.ok()) return game.status();
  PlayResult result;
  result.game_name = (*game)->name();

  // The servers: given, or in this process (one per shard).
  std::vector<std::unique_ptr<GameOptServer>> local;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  if (config.server.empty()) {
    for (int s = 0; s < std::max(1, config.shards); ++s) {
      GameOptServerOptions options;
      options.address = "127.0.0.1:0";
      options.max_message_mb = config.channel.max_message_mb;
      options.log = nullptr;
      local.push_back(std::make_unique<GameOptServer>(options));
      absl::Status started = local.back()->Start();
      if (!started.ok()) return started;
      channels.push_back(local.back()->InProcessChannel());
    }
  } else {
    absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> remote =
        ServerChannels(config);
    if (!remote.ok()) return remote.status();
    channels = *std::move(remote);
    if (config.shards > 1 &&
        static_cast<int>(channels.size()) != config.shards) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shards=", config.shards, " but ", channels.size(),
                       " server address(es): give one address per shard"));
    }
  }

  SessionOptions session_options = config.session;
  session_options.max_steps = config.steps;
  absl::StatusOr<v1::SessionConfig> session_config =
      BuildSessionConfig(**game, session_options);
  if (!session_config.ok()) return session_config.status();
  if (config.spectrum_k > 0) {
    if (channels.size() > 1) {
      return absl::InvalidArgumentError(
          "--spectrum_k needs one server: a shard sees only its slice of J");
    }
    ScheduleSpectra(config, *session_config);
  }
  absl::StatusOr<ShardedSession> session =
      ShardedSession::Create(channels, **game, *session_config);
  if (!session.ok()) return session.status();
  result.session_id = session->id();
  result.shards = session->num_shards();

  // K workers, each with its own game; the first one feeds the recorder
  // and, unsharded, the server's curves (a sharded session's per-shard
  // norms would be of slices).
  Recorder recorder(**game, config.metrics_every);
  std::unique_ptr<ServerCurves> curves;
  if (result.shards == 1) {
    curves = std::make_unique<ServerCurves>(channels[0], session->id(),
                                            config.metrics_every);
  }
  const int k = std::max(1, session_options.workers);
  std::vector<absl::Status> statuses(k);
  std::vector<std::thread> threads;
  absl::Mutex mu;
  int running = k;
  absl::Time finished;
  const absl::Time start = absl::Now();
  for (int i = 0; i < k; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Game> mine = (*game)->Clone();
      WorkerOptions options;
      options.name = absl::StrCat("worker-", i);
      if (i == 0) {
        options.on_progress = [&recorder, &curves](const WorkerProgress& p) {
          if (p.kind != v1::DONE && p.kind != v1::PRODUCTS && p.phase == 0) {
            recorder.Record(p.step, *p.params);
            if (curves) curves->StepStarted(p.step);
          }
        };
      }
      statuses[i] = session->RunWorker(mine.get(), options);
      absl::MutexLock lock(&mu);
      if (--running == 0) finished = absl::Now();
    });
  }
  {
    absl::MutexLock lock(&mu);
    const auto all_done = [&running]() { return running == 0; };
    while (!mu.AwaitWithTimeout(absl::Condition(&all_done),
                                absl::Milliseconds(200))) {
      if (config.live) PrintProgress(recorder, config.steps, start);
    }
  }
  for (std::thread& t : threads) t.join();
  result.seconds = absl::ToDoubleSeconds(finished - start);
  if (config.live) {
    PrintProgress(recorder, config.steps, start);
    std::fputs("\n", stderr);
  }
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
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
  for (std::unique_ptr<GameOptServer>& server : local) server->Shutdown();

  if (!config.out_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(config.out_dir, error);
    if (error) {
      return absl::UnavailableError(absl::StrCat(
          "cannot create ", config.out_dir, ": ", error.message()));
    }
    const std::string csv = absl::StrCat(config.out_dir, "/metrics.csv");
    absl::Status status = recorder.WriteCsv(csv);
    if (!status.ok()) return status;
    result.files.push_back(csv);
    const std::string server_csv =
        absl::StrCat(config.out_dir, "/server_metrics.csv");
    if (curves) {
      status = WriteCsv(server_csv, curves->columns(), curves->rows());
      if (!status.ok()) return status;
      result.files.push_back(server_csv);
    }
    if (!result.spectra.empty()) {
      const std::string spectrum_csv = config.out_dir + "/spectrum.csv";
      status = WriteSpectraCsv(result.spectra, spectrum_csv);
      if (!status.ok()) return status;
      result.files.push_back(spectrum_csv);
    }
    if (config.plots && GnuplotAvailable()) {
      const std::string title =
          absl::StrCat(result.game_name, " / ", session_options.algorithm, " (",
                       session_options.optimizer, ", lr ",
                       session_options.learning_rate, ")");
      status = PlotMetrics(recorder, config.out_dir, title);
      if (!status.ok()) return status;
      result.files.push_back(config.out_dir + "/metrics.png");
      if (curves && !curves->rows().empty()) {
        status = PlotColumns(curves->columns(), curves->rows(), config.out_dir,
                             "server_metrics",
                             absl::StrCat(title, ", as the server saw it"));
        if (!status.ok()) return status;
        result.files.push_back(config.out_dir + "/server_metrics.png");
      }
      if ((*game)->Dimension() == 2) {
        status = PlotTrajectory(**game, recorder.trajectory(), config.out_dir,
                                title);
        if (!status.ok()) return status;
        result.files.push_back(config.out_dir + "/trajectory.png");
      }
      if (!result.spectra.empty()) {
        status = PlotSpectra(result.spectra, config.out_dir, title);
        if (!status.ok()) return status;
        result.files.push_back(config.out_dir + "/spectrum.png");
      }
      if (auto* mog = dynamic_cast<MogGan*>(game->get())) {
        // The samples the coverage metric counts (same count and seed).
        const Eigen::MatrixXd samples =
            mog->Generate(result.final_params, 2000, /*seed=*/1);
        status = PlotSamples(samples, mog->ModeCenters(),
                             mog->options().data_std, config.out_dir, title);
        if (!status.ok()) return status;
        result.files.push_back(config.out_dir + "/samples.png");
      }
    }
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
