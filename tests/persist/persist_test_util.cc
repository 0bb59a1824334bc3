#include "tests/persist/persist_test_util.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "client/games/games.h"
#include "client/worker/session_builder.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

GameOptions QuadraticOptions() {
  GameOptions options;
  options.seed = 3;
  options.quadratic_dims = {2, 3};
  options.quadratic_noise_std = 0.1;
  return options;
}

}  // namespace

std::string FreshStateDir(const std::string& test) {
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path dir =
      std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
      ("gameopt_persist_" + std::to_string(getpid()) + "_" + test);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

v1::SessionConfig PersistSessionConfig(int64_t max_steps, int workers,
                                       int quorum,
                                       double phase_deadline_seconds) {
  std::unique_ptr<Game> game = *MakeGame("quadratic", QuadraticOptions());
  SessionOptions options;
  options.algorithm = "conopt";
  options.optimizer = "rmsprop";
  options.learning_rate = 0.05;
  options.workers = workers;
  options.quorum = quorum;
  options.phase_deadline_seconds = phase_deadline_seconds;
  options.max_steps = max_steps;
  options.seed = 9;
  options.float64 = true;
  return *BuildSessionConfig(*game, options);
}

std::vector<absl::Status> RunGameWorkers(const std::string& target,
                                         const std::string& session_id, int n,
                                         const ProgressHook& on_progress) {
  std::vector<absl::Status> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Game> game = *MakeGame("quadratic", QuadraticOptions());
      gameopt::WorkerOptions options;
      options.name = "persist-" + std::to_string(i);
      if (on_progress) {
        options.on_progress = [&, i](const WorkerProgress& progress) {
          on_progress(i, progress);
        };
      }
      Worker worker(MakeChannel(target), session_id, game.get(), options);
      results[i] = worker.Run();
    });
  }
  for (std::thread& thread : threads) thread.join();
  return results;
}

GameOptServerOptions StateDirTest::Options() const {
  GameOptServerOptions options = TestServerOptions();
  options.state_dir = dir_;
  return options;
}

}  // namespace gameopt::testing
