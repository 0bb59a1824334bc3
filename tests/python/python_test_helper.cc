// python_test_helper: the C++ side of the Python and Node.js worker tests.
//
//   python_test_helper worker --server HOST:PORT --session ID --game G
//       [--name N] [--players 2,2] [--game_seed 1] [--dim 1] ...
//     Joins an EXISTING session as one C++ worker (client/worker) playing
//     sample game G (client/games) until the session is DONE.
//   python_test_helper dump-quadratic --players 2,2 --game_seed 1 --out FILE
//     Writes the quadratic game's J and b as JSON, every number printed
//     with 17 significant digits (exact round trip), so that the Python and
//     Node.js workers compute the very same game.
//   python_test_helper mog-products --dir DIR --seed S [--batch B]
//     Reads DIR/x.bin, DIR/w.bin, DIR/u.bin (raw little-endian float64 in
//     the MoG game's flat layout), draws minibatch slot 0 of
//     DrawMinibatches(1, S) and writes DIR/z.bin (B x z_dim, row-major),
//     DIR/real.bin (B x 2), DIR/gradient.bin, DIR/vjp.bin (J^T w) and
//     DIR/jvp.bin (J u).
//   python_test_helper random --seed S --count N
//     Prints N lines "uniform gaussian" of one RandomStream(S), then
//     "slot_seed" lines of SlotSeed(S, k), k < N: the Python port's check.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/games/games.h"
#include "client/games/mog_gan.h"
#include "client/games/quadratic.h"
#include "client/games/sampling.h"
#include "client/worker/worker.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "worker: host:port");
ABSL_FLAG(std::string, session, "", "worker: session id");
ABSL_FLAG(std::string, name, "cpp-worker", "worker: worker name");
ABSL_FLAG(std::string, game, "quadratic", "bilinear, dirac, quadratic, mog");
ABSL_FLAG(std::string, players, "2,2", "quadratic: player dimensions");
ABSL_FLAG(uint64_t, game_seed, 1, "the game's own seed");
ABSL_FLAG(int, dim, 1, "bilinear: d");
ABSL_FLAG(std::string, variant, "gan", "dirac: variant");
ABSL_FLAG(double, penalty, 0.3, "dirac: penalty weight");
ABSL_FLAG(double, noise, 0.5, "dirac: instance noise std");
ABSL_FLAG(int, batch, 512, "mog: batch");
ABSL_FLAG(std::string, out, "", "dump-quadratic: output file");
ABSL_FLAG(std::string, dir, "", "mog-products: folder of inputs and outputs");
ABSL_FLAG(uint64_t, seed, 1, "mog-products / random: seed");
ABSL_FLAG(int, count, 8, "random: number of draws");

namespace gameopt {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "python_test_helper: %s\n", message.c_str());
  return 1;
}

absl::StatusOr<std::unique_ptr<Game>> GameFromFlags() {
  GameOptions options;
  options.seed = absl::GetFlag(FLAGS_game_seed);
  options.bilinear_dim = absl::GetFlag(FLAGS_dim);
  absl::StatusOr<DiracVariant> variant =
      ParseDiracVariant(absl::GetFlag(FLAGS_variant));
  if (!variant.ok()) return variant.status();
  options.dirac.variant = *variant;
  options.dirac.penalty_weight = absl::GetFlag(FLAGS_penalty);
  options.dirac.noise_std = absl::GetFlag(FLAGS_noise);
  options.quadratic_dims.clear();
  for (absl::string_view item :
       absl::StrSplit(absl::GetFlag(FLAGS_players), ',', absl::SkipEmpty())) {
    int d = 0;
    if (!absl::SimpleAtoi(item, &d)) {
      return absl::InvalidArgumentError("--players: not a number");
    }
    options.quadratic_dims.push_back(d);
  }
  options.mog.batch = absl::GetFlag(FLAGS_batch);
  return MakeGame(absl::GetFlag(FLAGS_game), options);
}

bool ReadDoubles(const std::string& path, Eigen::VectorXd& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (bytes.size() % 8 != 0) return false;
  out.resize(bytes.size() / 8);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return true;
}

bool WriteDoubles(const std::string& path, const double* data, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), n * sizeof(double));
  return bool(out);
}

int RunWorker() {
  auto game = GameFromFlags();
  if (!game.ok()) return Fail(game.status().ToString());
  WorkerOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  Worker worker(MakeChannel(absl::GetFlag(FLAGS_server)),
                absl::GetFlag(FLAGS_session), game->get(), options);
  const absl::Status status = worker.Run();
  if (!status.ok()) return Fail(status.ToString());
  std::printf("worker %lld done after %lld tasks\n",
              static_cast<long long>(worker.worker_id()),
              static_cast<long long>(worker.tasks_done()));
  return 0;
}

int DumpQuadratic() {
  auto game = GameFromFlags();
  if (!game.ok()) return Fail(game.status().ToString());
  auto* quadratic = dynamic_cast<QuadraticGame*>(game->get());
  if (quadratic == nullptr)
    return Fail("dump-quadratic needs --game quadratic");
  std::string json = "{\"dims\": [";
  for (int i = 0; i < quadratic->num_players(); ++i) {
    const int next = i + 1 < quadratic->num_players()
                         ? quadratic->offset(i + 1)
                         : static_cast<int>(quadratic->b().size());
    absl::StrAppend(&json, i ? ", " : "", next - quadratic->offset(i));
  }
  json += "],\n \"J\": [";
  const Eigen::MatrixXd& j = quadratic->J();
  for (int r = 0; r < j.rows(); ++r) {
    json += r ? ",\n  [" : "[";
    for (int c = 0; c < j.cols(); ++c) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%s%.17g", c ? ", " : "", j(r, c));
      json += buffer;
    }
    json += "]";
  }
  json += "],\n \"b\": [";
  for (int r = 0; r < quadratic->b().size(); ++r) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%s%.17g", r ? ", " : "",
                  quadratic->b()[r]);
    json += buffer;
  }
  json += "]}\n";
  std::ofstream out(absl::GetFlag(FLAGS_out));
  out << json;
  return out ? 0 : Fail("cannot write " + absl::GetFlag(FLAGS_out));
}

int MogProducts() {
  MogGanOptions options;
  options.batch = absl::GetFlag(FLAGS_batch);
  MogGan game(options, /*seed=*/1);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  Eigen::VectorXd x, w, u;
  if (!ReadDoubles(dir + "/x.bin", x) || !ReadDoubles(dir + "/w.bin", w) ||
      !ReadDoubles(dir + "/u.bin", u)) {
    return Fail("cannot read x.bin, w.bin and u.bin in " + dir);
  }
  if (x.size() != game.Dimension() || w.size() != x.size() ||
      u.size() != x.size()) {
    return Fail(absl::StrCat("inputs must have ", game.Dimension(), " values"));
  }
  game.DrawMinibatches(1, absl::GetFlag(FLAGS_seed));
  const MogGan::Minibatch& batch = game.minibatch(0);
  // Column-major z_dim x B is row-major B x z_dim: one sample per row.
  const Eigen::VectorXd gradient = game.Gradient(x, 0);
  const Eigen::VectorXd vjp = game.Vjp(x, w, 0);
  const Eigen::VectorXd jvp = game.Jvp(x, u, 0);
  const bool ok =
      WriteDoubles(dir + "/z.bin", batch.z.data(), batch.z.size()) &&
      WriteDoubles(dir + "/real.bin", batch.real.data(), batch.real.size()) &&
      WriteDoubles(dir + "/gradient.bin", gradient.data(), gradient.size()) &&
      WriteDoubles(dir + "/vjp.bin", vjp.data(), vjp.size()) &&
      WriteDoubles(dir + "/jvp.bin", jvp.data(), jvp.size());
  return ok ? 0 : Fail("cannot write the outputs in " + dir);
}

int Random() {
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  RandomStream random(seed);
  const int count = absl::GetFlag(FLAGS_count);
  for (int i = 0; i < count; ++i) {
    const double uniform = random.Uniform();
    const double gaussian = random.Gaussian();
    std::printf("%.17g %.17g\n", uniform, gaussian);
  }
  for (int k = 0; k < count; ++k) {
    std::printf("%llu\n", static_cast<unsigned long long>(SlotSeed(seed, k)));
  }
  return 0;
}

}  // namespace
}  // namespace gameopt

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() > 1 ? args[1] : "";
  if (command == "worker") return gameopt::RunWorker();
  if (command == "dump-quadratic") return gameopt::DumpQuadratic();
  if (command == "mog-products") return gameopt::MogProducts();
  if (command == "random") return gameopt::Random();
  std::fprintf(stderr,
               "usage: python_test_helper worker|dump-quadratic|mog-products|"
               "random [flags]\n");
  return 2;
}
