// Callbacks run after the session's lock is released (session.h, OutboxLock
// in session_internal.h): every callback here calls the session again.
// absl::Mutex is not reentrant: a callback delivered under the lock calls
// back in on a held mutex, which absl reports as a potential deadlock and
// aborts on (checked by making ~OutboxLock deliver before unlocking); were
// it not detected, the test would hang until the suite's timeout. No
// timeout of its own.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::SampleBuilder;
using testing::ToEigen;

class SessionReentryTest : public ::testing::Test {
 protected:
  SessionReentryTest() : game_(QuadraticGame::Random({2, 3}, 11)) {}

  std::unique_ptr<Session> Make(SessionConfig config) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s1", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return *std::move(session);
  }

  // The exact answer to `task`: xi(x), or J^T w and J w per probe.
  Submission Answer(const Task& task, SampleBuilder& builder) const {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      for (int k = 0; k < task.num_samples; ++k) {
        s.gradients.push_back(builder.Make(game_.Xi(x), task.players));
      }
      return s;
    }
    for (const auto& probe : task.probes) {
      const Eigen::VectorXd w = ToEigen(*probe);
      if (task.vjp) s.vjp.push_back(builder.Make(game_.J.transpose() * w));
      if (task.jvp) s.jvp.push_back(builder.Make(game_.J * w));
    }
    return s;
  }

  // A callback that records the status code and calls the session back.
  TaskCallback Reenter(Session& session, std::vector<absl::StatusCode>& got) {
    return [&session, &got](absl::StatusOr<Task> result) {
      got.push_back(result.status().code());
      session.Info();
    };
  }

  QuadraticGame game_;
  FakeClock clock_;
};

// Two workers play a whole ConOpt run, with a spectrum estimate, from
// inside their callbacks: each task is answered by a submission made in
// the callback that delivered it; the listener checkpoints (Snapshot) and
// the spectrum's callback reads the session.
TEST_F(SessionReentryTest, WorkersPlayFromInsideTheirCallbacks) {
  SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kConOpt);
  config.workers_per_round = 2;
  config.max_steps = 3;
  std::unique_ptr<Session> session = Make(config);
  int snapshots = 0;
  int added = 0;
  SessionListener listener;
  listener.round_opened = [&](Session& s, int64_t, int) {
    s.Snapshot();
    ++snapshots;
  };
  listener.worker_added = [&](Session& s) {
    s.Info();
    ++added;
    return absl::OkStatus();
  };
  session->set_listener(listener);

  bool spectrum_done = false;
  session->EstimateSpectrum(SpectrumRequest{},
                            [&](absl::StatusOr<SpectrumResult> result) {
                              EXPECT_TRUE(result.ok()) << result.status();
                              session->Spectra();
                              spectrum_done = true;
                            });

  std::vector<bool> done(2, false);
  std::function<void(int, absl::StatusOr<Task>)> play =
      [&](int w, absl::StatusOr<Task> task) {
        ASSERT_TRUE(task.ok()) << task.status();
        session->Info();
        if (task->kind == Task::Kind::kDone) {
          done[w] = true;
          return;
        }
        SampleBuilder builder(session->layout());
        const Submission s = Answer(*task, builder);
        auto next = [&play, w](absl::StatusOr<Task> t) {
          play(w, std::move(t));
        };
        if (task->kind == Task::Kind::kGradient) {
          session->SubmitGradient(task->worker_id, s, next);
        } else {
          session->SubmitProducts(task->worker_id, s, next);
        }
      };
  for (int w = 0; w < 2; ++w) {
    session->Join(
        0, "", [&play, w](absl::StatusOr<Task> t) { play(w, std::move(t)); });
  }
  EXPECT_TRUE(done[0]);
  EXPECT_TRUE(done[1]);
  EXPECT_TRUE(spectrum_done);
  EXPECT_EQ(added, 2);
  EXPECT_GT(snapshots, 2 * 3);  // two rounds a step, and the estimate's
  const SessionInfo info = session->Info();
  EXPECT_TRUE(info.done);
  EXPECT_EQ(info.step, 3);
}

// The answers that are errors, cancellations and closes call back in too:
// the deadline's ABORTED, Cancel, Leave, CancelSpectrum, a join the
// listener refused, Close.
TEST_F(SessionReentryTest, ErrorsCancellationsAndCloseCallBackIn) {
  SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kSimGd);
  config.workers_per_round = 2;
  config.phase_deadline = absl::Seconds(10);
  std::unique_ptr<Session> session = Make(config);
  std::vector<absl::StatusCode> got;
  SampleBuilder builder(session->layout());

  // Worker 1 submits and waits for worker 2, who never joins: past the
  // deadline without a quorum, ABORTED.
  Task task;
  session->Join(0, "a", [&](absl::StatusOr<Task> t) {
    ASSERT_TRUE(t.ok()) << t.status();
    session->Info();
    task = *t;
  });
  const Submission s = Answer(task, builder);
  session->SubmitGradient(1, s, Reenter(*session, got));
  clock_.Advance(absl::Seconds(11));
  session->CheckDeadline();
  ASSERT_EQ(got.back(), absl::StatusCode::kAborted);
  // A retry waits again; Cancel answers it.
  CallId call = 0;
  session->SubmitGradient(1, s, Reenter(*session, got), &call);
  ASSERT_NE(call, 0u);
  session->Cancel(call);
  ASSERT_EQ(got.back(), absl::StatusCode::kCancelled);
  // A retry waits again; Leave cancels it.
  session->SubmitGradient(1, s, Reenter(*session, got));
  ASSERT_TRUE(session->Leave(1).ok());
  ASSERT_EQ(got.back(), absl::StatusCode::kCancelled);
  // A spectrum estimate withdrawn.
  bool spectrum_called = false;
  session->EstimateSpectrum(
      SpectrumRequest{},
      [&](absl::StatusOr<SpectrumResult> r) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
        session->Spectra();
        spectrum_called = true;
      },
      &call);
  session->CancelSpectrum(call);
  ASSERT_TRUE(spectrum_called);
  // A join the listener could not record.
  SessionListener listener;
  listener.worker_added = [](Session& s) {
    s.Info();
    return absl::UnavailableError("disk full");
  };
  session->set_listener(listener);
  session->Join(0, "b", Reenter(*session, got));
  ASSERT_EQ(got.back(), absl::StatusCode::kUnavailable);
  session->set_listener({});
  // Close answers the waiting call.
  session->Join(1, "", Reenter(*session, got));  // waits for worker 2
  session->Close(absl::UnavailableError("shutting down"));
  ASSERT_EQ(got.back(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got.size(), 5u);
}

}  // namespace
}  // namespace gameopt
