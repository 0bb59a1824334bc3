// Crash safety of the real gameopt_server binary with --state_dir: a
// deterministic session is played by worker-library workers; the server is
// killed (SIGKILL) or stopped (SIGTERM) in the middle of a round, restarted
// on the same state_dir and port, and the workers, which only retry, finish
// the run. Its final parameters must equal, byte for byte, those of the
// same session played without interruption.
#include <signal.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "client/worker/worker.h"
#include "gtest/gtest.h"
#include "tests/load/server_process.h"
#include "tests/persist/persist_test_util.h"
#include "tests/service/test_util.h"

namespace gameopt {
namespace {

using testing::ServerProcess;

constexpr int kWorkers = 2;
constexpr int64_t kSteps = 10;

struct CrashCase {
  std::string name;
  int signal;
  int64_t checkpoint_every_steps;  // 0: automatic (every step here)
  // The crash comes while the gradient round (unbiased_products: the
  // products round) of this step is open, after
  // one worker's submission and before the other's.
  int64_t crash_step = 5;
  // ConOpt with fused local products and a step learning-rate schedule:
  // restored mid-schedule, one round per step.
  bool fused_and_scheduled = false;
  // ConOpt with the unbiased estimator, the crash in the step's products
  // round: its probes were sent and let go (server/README.md, "Probes in
  // the samples' bytes"), so the checkpoint is the step's start and the
  // restored server replays the step's gradient round.
  bool unbiased_products = false;
};

// Names the case in test listings (ctest shows the parameter).
void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.name; }

class CrashTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  void SetUp() override {
    state_dir_ = testing::FreshStateDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  std::unique_ptr<ServerProcess> StartServer(const std::string& address) {
    auto server = std::make_unique<ServerProcess>();
    std::vector<std::string> flags = {
        "--state_dir=" + state_dir_,
        "--checkpoint_every_steps=" +
            std::to_string(GetParam().checkpoint_every_steps)};
    if (!address.empty()) flags.push_back("--address=" + address);
    EXPECT_TRUE(server->Start(GAMEOPT_SERVER_BINARY, flags));
    return server;
  }

  std::string state_dir_;
};

TEST_P(CrashTest, WorkersFinishWithTheParametersOfAnUninterruptedRun) {
  std::unique_ptr<ServerProcess> server = StartServer("");
  const std::string target = server->target();
  auto stub = testing::NewStub(target);
  v1::SessionConfig config = testing::PersistSessionConfig(kSteps);
  if (GetParam().fused_and_scheduled) {
    config.mutable_algorithm()->set_estimator(v1::LOCAL);
    config.mutable_algorithm()->set_fuse_local_products(true);
    for (v1::PlayerConfig& player : *config.mutable_players()) {
      v1::LearningRateSchedule* schedule =
          player.mutable_optimizer()->mutable_schedule();
      schedule->set_kind(v1::LearningRateSchedule::STEP);
      schedule->set_gamma(0.5);
      schedule->set_step_size(3);
    }
  }
  if (GetParam().unbiased_products) {
    config.mutable_algorithm()->set_estimator(v1::UNBIASED);
  }
  absl::StatusOr<std::string> session = testing::CreateSession(*stub, config);
  ASSERT_TRUE(session.ok()) << session.status();
  const int crash_phase = GetParam().unbiased_products ? 1 : 0;
  const v1::TaskKind crash_kind =
      GetParam().unbiased_products ? v1::PRODUCTS : v1::GRADIENT;

  // The second worker stops before computing its task of kCrashStep until
  // the server is back.
  absl::Notification reached, restarted;
  auto gate = [&](int worker, const WorkerProgress& progress) {
    if (worker == 1 && progress.step == GetParam().crash_step &&
        progress.phase == crash_phase && progress.kind == crash_kind &&
        !reached.HasBeenNotified()) {
      reached.Notify();
      restarted.WaitForNotification();
    }
  };
  std::thread workers([&] {
    const std::vector<absl::Status> results =
        testing::RunGameWorkers(target, *session, kWorkers, gate);
    for (const absl::Status& status : results)
      EXPECT_TRUE(status.ok()) << status;
  });
  ASSERT_TRUE(reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // The first worker's submission waits at the barrier: mid-round.
  EXPECT_TRUE(testing::WaitForSubmitted(*stub, *session, 1));
  const int status = server->Stop(GetParam().signal);
  if (GetParam().signal == SIGTERM) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  } else {
    EXPECT_TRUE(WIFSIGNALED(status)) << status;
  }
  server = StartServer(target);
  restarted.Notify();
  workers.join();

  auto restarted_stub = testing::NewStub(target);
  absl::StatusOr<v1::GetParametersResponse> crashed =
      testing::GetParameters(*restarted_stub, *session);
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  EXPECT_EQ(crashed->step(), kSteps);

  // The same session, uninterrupted, on the restarted server.
  absl::StatusOr<std::string> reference =
      testing::CreateSession(*restarted_stub, config);
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_NE(*reference, *session);
  for (const absl::Status& status :
       testing::RunGameWorkers(target, *reference, kWorkers, nullptr)) {
    EXPECT_TRUE(status.ok()) << status;
  }
  absl::StatusOr<v1::GetParametersResponse> expected =
      testing::GetParameters(*restarted_stub, *reference);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(testing::VectorBytes(crashed->params()),
            testing::VectorBytes(expected->params()));
  server->Stop();
}

INSTANTIATE_TEST_SUITE_P(
    Signals, CrashTest,
    ::testing::Values(CrashCase{"sigkill_every_step", SIGKILL, 0},
                      // Restored 1 step back (or more: checkpoints are
                      // written behind): the workers' submissions for later
                      // rounds are refused and they rejoin.
                      CrashCase{"sigkill_every_4_steps", SIGKILL, 4},
                      // Before any step boundary: the session and its
                      // workers were written when they were created.
                      CrashCase{"sigkill_first_round", SIGKILL, 0, 0},
                      CrashCase{"sigterm", SIGTERM, 0},
                      CrashCase{"sigkill_fused_scheduled", SIGKILL, 0, 5, true},
                      CrashCase{"sigterm_unbiased_products", SIGTERM, 0, 5,
                                false, true}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace gameopt
