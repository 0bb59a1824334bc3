// `gameopt_client play`: one session of a sample game, K worker threads,
// a live progress line, and a results folder (metrics.csv and PNG plots).
// Play() strings the parts together: the servers (play_servers.h), the
// worker threads (worker_threads.h), the recorder (recorder.h) and the
// server's curves (server_curves.h), then the results folder
// (play_files.h).
#ifndef GAMEOPT_CLIENT_PLAY_H_
#define GAMEOPT_CLIENT_PLAY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "client/games/games.h"
#include "client/worker/channel.h"
#include "client/worker/session_builder.h"

namespace gameopt {

struct PlayConfig {
  std::string game = "bilinear";  // bilinear, dirac, quadratic, mog
  GameOptions game_options;
  SessionOptions session;  // workers, algorithm, optimizer, ...
  int64_t steps = 500;     // the session's max_steps
  // host:port, or a comma-separated list of S > 1 host:port, one per shard:
  // the experiment is then sharded over them (client/worker/sharding.h).
  // Empty = `shards` in-process servers.
  std::string server;
  int shards = 1;
  // Message limit (also of in-process servers), TLS and bearer token of the
  // channels to `server`.
  ChannelOptions channel;
  std::string out_dir;        // results folder; empty = none written
  int metrics_every = 1;      // record metrics every this many steps
  bool live = true;           // the one-line progress display on stderr
  bool plots = true;          // PNGs through gnuplot (skipped if missing)
  bool keep_session = false;  // leave the session on the server afterwards
  // > 0: the session estimates the spectrum (k eigenvalues per group) of J
  // and, for conopt / sga, of the algorithm's field, at step 0 and after
  // the last step; written to spectrum.csv and spectrum.png. One server.
  int spectrum_k = 0;
};

struct PlayResult {
  std::string session_id;  // sharded: the shards' ids joined by ','
  int shards = 1;
  std::string game_name;
  int64_t steps = 0;
  double seconds = 0.0;
  Eigen::VectorXd final_params;
  // grad_norm_<player> and the game's metrics at the final parameters.
  std::vector<std::pair<std::string, double>> final_metrics;
  std::vector<std::string> files;     // what was written to out_dir
  std::vector<v1::Spectrum> spectra;  // with spectrum_k, oldest first
};

absl::StatusOr<PlayResult> Play(const PlayConfig& config);

// One channel per address of config.server, with config.channel's options;
// MakeChannel's InvalidArgument for unreadable TLS files.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ServerChannels(
    const PlayConfig& config);

// One line, "key=value" pairs, for scripts: "RESULT game=... distance=...".
std::string ResultLine(const PlayConfig& config, const PlayResult& result);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_PLAY_H_
