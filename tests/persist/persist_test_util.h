// Helpers of the persistence tests: a fresh state_dir, a deterministic
// session over client/games' noisy quadratic game, and worker-library
// workers that play it to the end.
#ifndef GAMEOPT_TESTS_PERSIST_PERSIST_TEST_UTIL_H_
#define GAMEOPT_TESTS_PERSIST_PERSIST_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/worker/worker.h"
#include "gameopt/v1/gameopt.pb.h"
#include "gtest/gtest.h"
#include "server/service/server.h"

namespace gameopt::testing {

// An empty folder under $TMPDIR (or /tmp) named after `test`, created anew.
std::string FreshStateDir(const std::string& test);

// A fixture with a fresh state_dir per test (dir_), and the test server's
// options on it.
class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshStateDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  GameOptServerOptions Options() const;

  std::string dir_;
};

// ConOpt with RMSProp (optimizer slots and a products phase whose probes
// cross the phase boundary) on client/games' quadratic game with players of
// 2 and 3 coordinates and minibatch noise, so every sample matters; float64,
// `workers` per round, `max_steps` steps, seed 9.
v1::SessionConfig PersistSessionConfig(int64_t max_steps, int workers = 2,
                                       int quorum = 0,
                                       double phase_deadline_seconds = -1.0);

// Runs `n` Worker-library workers (each with its own game) on `session_id`
// until DONE; `on_progress(i, progress)` is worker i's WorkerOptions
// hook (may be null). Their Run() statuses, in order.
using ProgressHook = std::function<void(int worker, const WorkerProgress&)>;
std::vector<absl::Status> RunGameWorkers(const std::string& target,
                                         const std::string& session_id, int n,
                                         const ProgressHook& on_progress);

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_PERSIST_PERSIST_TEST_UTIL_H_
