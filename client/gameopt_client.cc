// gameopt_client: the reference client. Plays the sample games of
// client/games/ against a gameopt server.
//
//   gameopt_client play --game bilinear --algorithm conopt --gamma 1
//       --lr 0.2 --workers 2 --steps 500 [--server 127.0.0.1:50051]
//       [--out results/bilinear-conopt]
//     One session and its K worker threads. Without --server it starts an
//     in-process server (--shards N: N of them, sharded).
//   gameopt_client create --server ADDR [play's flags] [--name NAME]
//       [--session ID]
//     Creates the session (with the id ID when given, e.g. one a tokens
//     file names) and prints its id on stdout (workers join later).
//   gameopt_client work --server ADDR (--session ID | --session_name NAME)
//       --game G [game flags] [--workers K]
//     K worker threads on an existing session until it is DONE; then prints
//     a RESULT line with the game's metrics at the final parameters.
//   gameopt_client sweep [--server ADDR] --gamma 0.1,1,10
//       --algorithm simgd,conopt [play's flags] [--parallel P]
//     Every combination of the comma-separated values as parallel sessions
//     on one server; prints a comparison table (and OUT/sweep.csv).
//   gameopt_client status --server ADDR [--watch SECONDS [--watch_count N]]
//     A table of the server's sessions (GetMetrics): step, phase, workers,
//     |xi|, L, correction, steps/s, bytes, stragglers; redrawn in place
//     every SECONDS with --watch.
//   gameopt_client spectrum --server ADDR --session ID
//       [--spectrum_operator jacobian|field] [--spectrum_k K]
//     Estimates the eigenvalues of J (or of the algorithm's field) at the
//     running session's parameters, computed by its workers, and prints
//     them. `play --spectrum_k K` does it before and after training and
//     plots them (OUT/spectrum.png).
//
// Security: --tls_roots CA.pem speaks TLS to --server (--tls_cert and
// --tls_key add a client certificate for mutual TLS); --token (or the
// environment variable GAMEOPT_TOKEN) sends a bearer token on every call.
//
// Sharding: --server A,B,C (one address per shard) shards every player's
// parameters over the servers (client/worker/sharding.h); session ids are
// then lists too ("s1,s1,s2").
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/play.h"
#include "client/play_flags.h"
#include "client/spectrum.h"
#include "client/status.h"
#include "client/sweep.h"
#include "client/worker/sharded_session.h"
#include "client/worker_threads.h"
#include "server/service/server.h"

ABSL_FLAG(bool, if_missing, false,
          "create: when an unfinished session of --name exists already, "
          "print its id instead of creating another (idempotent jobs)");
ABSL_FLAG(std::string, session, "",
          "work: the session id; create: the id to give the session "
          "(default: the server's choice). Sharded: the ids, "
          "comma-separated, in --server's order");
ABSL_FLAG(std::string, session_name, "",
          "work: join the one unfinished session of this name (waits for it "
          "up to --wait_s)");
ABSL_FLAG(double, wait_s, 120,
          "create and work: seconds to wait for the server(s) and the "
          "session");
ABSL_FLAG(std::string, worker_name, "",
          "work: worker name prefix in the server's logs (default: the host "
          "name)");
ABSL_FLAG(int, parallel, 0, "sweep: sessions at once (0: all)");
ABSL_FLAG(double, watch, 0,
          "status: redraw the table every this many seconds (0: print once)");
ABSL_FLAG(int64_t, watch_count, 0,
          "status --watch: stop after this many tables (0: until interrupted)");
ABSL_FLAG(std::string, spectrum_operator, "jacobian",
          "spectrum: jacobian (J) or field (the algorithm's, e.g. "
          "J + gamma J^T J)");
ABSL_FLAG(double, spectrum_tol, 0, "spectrum: relative residual (0: 1e-8)");
ABSL_FLAG(bool, spectrum_smallest_real, false,
          "spectrum: also the eigenvalues of smallest real part");
ABSL_FLAG(int, spectrum_max_products, 0,
          "spectrum: operator products at most (0: 2000)");

namespace gameopt {
namespace {

int Fail(const absl::Status& status, int code = 1) {
  std::fprintf(stderr, "gameopt_client: %s\n", status.ToString().c_str());
  return code;
}

absl::Duration WaitFlag() {
  return absl::Seconds(std::max(0.0, absl::GetFlag(FLAGS_wait_s)));
}

int CreateCommand() {
  absl::StatusOr<PlayConfig> config = ConfigFromFlags();
  if (!config.ok()) return Fail(config.status(), 2);
  if (config->server.empty()) {
    return Fail(absl::InvalidArgumentError("create needs --server"), 2);
  }
  absl::StatusOr<std::unique_ptr<Game>> game =
      MakeGame(config->game, config->game_options);
  if (!game.ok()) return Fail(game.status(), 2);
  SessionOptions options = config->session;
  options.max_steps = config->steps;
  absl::StatusOr<v1::SessionConfig> session_config =
      BuildSessionConfig(**game, options);
  if (!session_config.ok()) return Fail(session_config.status(), 2);
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      ServerChannels(*config);
  if (!channels.ok()) return Fail(channels.status(), 2);
  if (absl::GetFlag(FLAGS_if_missing)) {
    absl::StatusOr<ShardedSession> existing = ShardedSession::OpenByName(
        *channels, **game, session_config->name(), absl::ZeroDuration());
    if (existing.ok()) {
      std::fprintf(stderr, "session %s '%s' exists already on %s\n",
                   existing->id().c_str(), session_config->name().c_str(),
                   config->server.c_str());
      std::printf("%s\n", existing->id().c_str());
      return 0;
    }
  }
  absl::StatusOr<ShardedSession> session =
      ShardedSession::Create(*channels, **game, *session_config, WaitFlag(),
                             SplitList(absl::GetFlag(FLAGS_session)));
  if (!session.ok()) return Fail(session.status());
  std::fprintf(stderr,
               "created session %s '%s' (%s, %s, K = %d, %lld steps) on %s\n",
               session->id().c_str(), session_config->name().c_str(),
               config->game.c_str(), options.algorithm.c_str(), options.workers,
               static_cast<long long>(config->steps), config->server.c_str());
  std::printf("%s\n", session->id().c_str());
  return 0;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "worker";
  }
  return name;
}

int WorkCommand() {
  absl::StatusOr<PlayConfig> config = ConfigFromFlags();
  if (!config.ok()) return Fail(config.status(), 2);
  const std::string ids = absl::GetFlag(FLAGS_session);
  const std::string name = absl::GetFlag(FLAGS_session_name);
  if (config->server.empty() || ids.empty() == name.empty()) {
    return Fail(
        absl::InvalidArgumentError("work needs --server and one of --session, "
                                   "--session_name"),
        2);
  }
  absl::StatusOr<std::unique_ptr<Game>> game =
      MakeGame(config->game, config->game_options);
  if (!game.ok()) return Fail(game.status(), 2);
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      ServerChannels(*config);
  if (!channels.ok()) return Fail(channels.status(), 2);
  absl::StatusOr<ShardedSession> session =
      name.empty()
          ? ShardedSession::Open(*channels, **game, SplitList(ids))
          : ShardedSession::OpenByName(*channels, **game, name, WaitFlag());
  if (!session.ok()) return Fail(session.status());
  const int threads = std::max(1, config->session.workers);
  std::string prefix = absl::GetFlag(FLAGS_worker_name);
  if (prefix.empty()) prefix = HostName();
  std::fprintf(stderr, "%s: %d worker(s) on session %s at %s\n", prefix.c_str(),
               threads, session->id().c_str(), config->server.c_str());
  WorkerThreadsOptions options;
  options.threads = threads;
  options.name_prefix = prefix;
  options.send_dtype = *ParseWireDType(config->session.wire);  // checked
  options.stochastic_rounding = config->session.wire_stochastic;
  absl::StatusOr<double> seconds = RunWorkerThreads(*session, **game, options);
  if (!seconds.ok()) return Fail(seconds.status());
  absl::StatusOr<SessionParameters> params = session->GetParameters();
  if (!params.ok()) return Fail(params.status());
  std::string line =
      absl::StrCat("RESULT game=", (*game)->name(), " session=", session->id(),
                   " worker_threads=", threads, " steps=", params->step);
  for (const auto& [metric, value] : (*game)->Metrics(params->values)) {
    absl::StrAppendFormat(&line, " %s=%.6g", metric, value);
  }
  absl::StrAppendFormat(&line, " seconds=%.3f", *seconds);
  std::printf("%s\n", line.c_str());
  return 0;
}

// Flags whose values are lists themselves, never sweep axes.
bool Sweepable(const std::string& flag) {
  static const std::set<std::string> kLists = {
      "server", "players",   "altgd_order", "session", "session_name", "out",
      "name",   "tls_roots", "tls_cert",    "tls_key", "token"};
  if (kLists.count(flag) > 0) return false;
  absl::CommandLineFlag* found = absl::FindCommandLineFlag(flag);
  return found != nullptr && !found->IsOfType<bool>();
}

int SweepCommand(const std::vector<SweepAxis>& axes) {
  std::vector<SweepPoint> points;
  for (const SweepLabels& labels : ExpandGrid(axes)) {
    for (const auto& [flag, value] : labels) {
      std::string error;
      if (!absl::FindCommandLineFlag(flag)->ParseFrom(value, &error)) {
        return Fail(absl::InvalidArgumentError(
                        absl::StrCat("--", flag, "=", value, ": ", error)),
                    2);
      }
    }
    absl::StatusOr<PlayConfig> config = ConfigFromFlags();
    if (!config.ok()) return Fail(config.status(), 2);
    points.push_back({labels, *config});
  }
  PlayConfig& first = points[0].config;
  // One server for every session: the given one(s), or one in this process.
  std::unique_ptr<GameOptServer> local;
  std::string server = first.server;
  if (server.empty()) {
    GameOptServerOptions options;
    options.address = "127.0.0.1:0";
    options.max_message_mb = first.channel.max_message_mb;
    options.log = nullptr;
    local = std::make_unique<GameOptServer>(options);
    if (absl::Status status = local->Start(); !status.ok()) {
      return Fail(status);
    }
    server = local->address();
  }
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) out = absl::StrCat("results/sweep-", first.game);
  for (SweepPoint& point : points) {
    point.config.server = server;
    point.config.shards = 1;
    point.config.live = false;
    point.config.out_dir = absl::StrCat(out, "/", LabelSlug(point.labels));
  }
  std::fprintf(stderr, "sweep: %zu sessions on %s, %d at once\n", points.size(),
               server.c_str(),
               absl::GetFlag(FLAGS_parallel) > 0
                   ? std::min<int>(absl::GetFlag(FLAGS_parallel), points.size())
                   : static_cast<int>(points.size()));
  const std::vector<SweepRun> runs =
      RunSweep(points, absl::GetFlag(FLAGS_parallel));
  if (local) local->Shutdown();
  std::printf("%s", SweepTable(runs).c_str());
  const std::string csv = absl::StrCat(out, "/sweep.csv");
  if (absl::Status status = WriteSweepCsv(runs, csv); status.ok()) {
    std::printf("wrote %s\n", csv.c_str());
  } else {
    std::fprintf(stderr, "gameopt_client: %s\n", status.ToString().c_str());
  }
  for (const SweepRun& run : runs) {
    if (!run.result.ok()) return 1;
  }
  return 0;
}

int StatusCommand() {
  const std::vector<std::string> servers =
      SplitList(absl::GetFlag(FLAGS_server));
  if (servers.size() != 1) {
    return Fail(absl::InvalidArgumentError(
                    "status needs --server HOST:PORT (one server)"),
                2);
  }
  StatusOptions options;
  options.watch = absl::Seconds(std::max(0.0, absl::GetFlag(FLAGS_watch)));
  options.count = absl::GetFlag(FLAGS_watch_count);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(servers[0], ChannelFromFlags());
  if (!channel.ok()) return Fail(channel.status(), 2);
  auto stub = v1::GameOptimizer::NewStub(*channel);
  const absl::Status status = RunStatus(*stub, options, stdout);
  return status.ok() ? 0 : Fail(status);
}

// gameopt_client spectrum: one estimate on a running session, printed.
int SpectrumCommand() {
  const std::string server = absl::GetFlag(FLAGS_server);
  const std::string id = absl::GetFlag(FLAGS_session);
  if (server.empty() || id.empty()) {
    return Fail(absl::InvalidArgumentError(
                    "spectrum needs --server and --session (the session's "
                    "workers must be running: they compute the products)"),
                2);
  }
  v1::SpectrumOptions options;
  const std::string op = absl::GetFlag(FLAGS_spectrum_operator);
  if (op != "jacobian" && op != "field") {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--spectrum_operator=", op, ": use jacobian or field")),
                2);
  }
  options.set_operator_(op == "field" ? v1::ALGORITHM_FIELD
                                      : v1::GAME_JACOBIAN);
  options.set_k(absl::GetFlag(FLAGS_spectrum_k));
  options.set_tol(absl::GetFlag(FLAGS_spectrum_tol));
  options.set_smallest_real(absl::GetFlag(FLAGS_spectrum_smallest_real));
  options.set_max_applications(absl::GetFlag(FLAGS_spectrum_max_products));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(server, ChannelFromFlags());
  if (!channel.ok()) return Fail(channel.status(), 2);
  absl::StatusOr<v1::Spectrum> spectrum = RequestSpectrum(
      *channel, id, options, absl::Seconds(absl::GetFlag(FLAGS_wait_s)));
  if (!spectrum.ok()) return Fail(spectrum.status());
  std::printf("%s", FormatSpectrum(*spectrum).c_str());
  return 0;
}

int PlayCommand() {
  absl::StatusOr<PlayConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "gameopt_client: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<PlayResult> result = Play(*config);
  if (!result.ok()) {
    std::fprintf(stderr, "gameopt_client: %s\n",
                 result.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", ResultLine(*config, *result).c_str());
  for (const v1::Spectrum& spectrum : result->spectra) {
    std::printf("%s", FormatSpectrum(spectrum).c_str());
  }
  for (const std::string& file : result->files) {
    std::printf("wrote %s\n", file.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace gameopt

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gameopt_client COMMAND [flags]\n"
      "  play   --game G --algorithm A [--workers K] [--steps N] "
      "[--server HOST:PORT[,HOST:PORT...]] [hyper-parameters]\n"
      "  create --server ADDR [play's flags] [--name NAME]: prints the "
      "session id\n"
      "  work   --server ADDR (--session ID | --session_name NAME) --game G "
      "[--workers K]\n"
      "  sweep  [--server ADDR] --FLAG V1,V2,... [--FLAG ...] [play's flags] "
      "[--parallel P]\n"
      "  status --server ADDR [--watch SECONDS]: the server's sessions\n"
      "  spectrum --server ADDR --session ID [--spectrum_operator "
      "jacobian|field] [--spectrum_k K]: eigenvalues of J at the running "
      "session's parameters\n"
      "  Games: bilinear, bilinear_sum, dirac, quadratic, mog, tandem. "
      "Algorithms: simgd, altgd, conopt, sga, extragradient, optimistic, "
      "optimistic_adam, extrapolation_from_the_past, lead, cgd, acgd, shgd, "
      "l_svrhg, lola, sos (--lookahead K wraps any). "
      "See --help for every flag.");
  std::vector<char*> raw(argv, argv + argc);
  const std::string first = argc > 1 ? argv[1] : "";
  std::vector<gameopt::SweepAxis> axes;
  if (first == "sweep")
    axes = gameopt::ExtractSweepAxes(raw, gameopt::Sweepable);
  std::vector<char*> args =
      absl::ParseCommandLine(static_cast<int>(raw.size()), raw.data());
  const std::string command = args.size() > 1 ? args[1] : "";
  if (command == "play") return gameopt::PlayCommand();
  if (command == "create") return gameopt::CreateCommand();
  if (command == "work") return gameopt::WorkCommand();
  if (command == "sweep") return gameopt::SweepCommand(axes);
  if (command == "status") return gameopt::StatusCommand();
  if (command == "spectrum") return gameopt::SpectrumCommand();
  std::fprintf(stderr, "usage: %s\n",
               std::string(absl::ProgramUsageMessage()).c_str());
  return 2;
}
