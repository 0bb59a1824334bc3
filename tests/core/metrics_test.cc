// The session's monitoring numbers (server/core/metrics.h) with a fake
// clock: phase latencies and their histogram buckets, steps per second,
// which worker the others waited for, and L = 1/2 |xi|^2.
#include "server/core/metrics.h"

#include <cmath>

#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

// Sums of a few seconds-with-fractions in double: exact to well below this.
constexpr double kSecondsTolerance = 1e-9;

const PhaseLatency* Find(const RoundTiming& timing, const std::string& label) {
  for (const PhaseLatency& phase : timing.phases) {
    if (phase.label == label) return &phase;
  }
  return nullptr;
}

TEST(RoundTimer, LatencyRunsFromThePreviousCloseAndFillsItsBucket) {
  const absl::Time t0 = absl::UnixEpoch();
  RoundTimer timer(t0);
  timer.RoundClosed("gradient", t0 + absl::Milliseconds(3), false);
  timer.RoundClosed("consensus", t0 + absl::Milliseconds(4), true);
  timer.RoundClosed("gradient", t0 + absl::Seconds(2), false);
  const RoundTiming timing = timer.Snapshot(t0 + absl::Seconds(2), false);
  ASSERT_EQ(timing.phases.size(), 2u);
  EXPECT_EQ(timing.phases[0].label, "gradient");  // first closed first
  const PhaseLatency& gradient = timing.phases[0];
  EXPECT_EQ(gradient.rounds, 2);
  EXPECT_NEAR(gradient.total_seconds, 0.003 + 1.996, kSecondsTolerance);
  EXPECT_NEAR(gradient.last_seconds, 1.996, kSecondsTolerance);
  EXPECT_NEAR(gradient.max_seconds, 1.996, kSecondsTolerance);
  // 3 ms falls in (2.5 ms, 5 ms], 1.996 s in (1 s, 2.5 s].
  for (size_t b = 0; b < gradient.buckets.size(); ++b) {
    const bool filled =
        (b < kLatencyBucketBounds.size() &&
         (kLatencyBucketBounds[b] == 0.005 || kLatencyBucketBounds[b] == 2.5));
    EXPECT_EQ(gradient.buckets[b], filled ? 1 : 0) << "bucket " << b;
  }
  EXPECT_NEAR(timing.phases[1].last_seconds, 0.001, kSecondsTolerance);
}

TEST(RoundTimer, ALatencyOnABoundGoesIntoThatBucketAndBeyondTheLastIntoInf) {
  const absl::Time t0 = absl::UnixEpoch();
  RoundTimer timer(t0);
  timer.RoundClosed("gradient", t0 + absl::Seconds(1), true);
  timer.RoundClosed("gradient", t0 + absl::Seconds(100), true);
  const RoundTiming timing = timer.Snapshot(t0, false);
  const PhaseLatency& phase = timing.phases[0];
  EXPECT_EQ(phase.buckets[10], 1);  // le = 1, inclusive as in Prometheus
  EXPECT_EQ(kLatencyBucketBounds[10], 1.0);
  EXPECT_EQ(phase.buckets.back(), 1);  // 99 s > 60 s: +Inf
}

TEST(RoundTimer, StepsPerSecondOverTheLastWindowOfSteps) {
  const absl::Time t0 = absl::UnixEpoch();
  RoundTimer timer(t0);
  EXPECT_EQ(timer.Snapshot(t0 + absl::Seconds(1), false).steps_per_second, 0);
  // 4 steps of 0.5 s: 2 steps/s; while running the rate decays with time.
  for (int i = 1; i <= 4; ++i) {
    timer.RoundClosed("gradient", t0 + absl::Milliseconds(500 * i), true);
  }
  EXPECT_DOUBLE_EQ(
      timer.Snapshot(t0 + absl::Seconds(2), false).steps_per_second, 2.0);
  EXPECT_DOUBLE_EQ(
      timer.Snapshot(t0 + absl::Seconds(4), false).steps_per_second, 1.0);
  // Done: up to the last step, however late one asks.
  EXPECT_DOUBLE_EQ(timer.Snapshot(t0 + absl::Hours(1), true).steps_per_second,
                   2.0);
  // After a slow start the window forgets it: 2 * kRateWindow fast steps of
  // 10 ms leave only fast steps in the window.
  RoundTimer slow_start(t0);
  absl::Time now = t0 + absl::Seconds(100);
  for (int i = 0; i < 2 * RoundTimer::kRateWindow; ++i) {
    slow_start.RoundClosed("gradient", now, true);
    now += absl::Milliseconds(10);
  }
  now -= absl::Milliseconds(10);
  EXPECT_NEAR(slow_start.Snapshot(now, true).steps_per_second, 100.0, 1e-6);
}

TEST(HalfSquaredNorm, IsHalfTheSumOfThePlayersSquaredNorms) {
  EXPECT_DOUBLE_EQ(HalfSquaredNorm({3.0, 4.0}), 12.5);
  EXPECT_DOUBLE_EQ(HalfSquaredNorm({}), 0.0);
}

// A real Session: ConOpt with two workers, driven by hand with a FakeClock.
class SessionMetricsTest : public ::testing::Test {
 protected:
  SessionMetricsTest() : game_(QuadraticGame::Random({2, 3}, 7)) {
    SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kConOpt);
    config.workers_per_round = 2;
    config.phase_deadline = absl::Seconds(30);
    session_ = *Session::Create("s1", config, &clock_);
  }

  Task Join() {
    Reply reply;
    session_->Join(0, "", reply.Callback());
    return *reply.result;
  }

  // Submits `task`'s honest answer; `reply` is called once the round closes.
  void Answer(const Task& task, Reply& reply) {
    SampleBuilder& builder = builders_.emplace_back(session_->layout());
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      s.gradients.push_back(builder.Make(game_.Xi(x), task.players));
      session_->SubmitGradient(task.worker_id, s, reply.Callback());
    } else {
      for (const auto& probe : task.probes) {
        s.vjp.push_back(builder.Make(game_.J.transpose() * ToEigen(*probe)));
      }
      session_->SubmitProducts(task.worker_id, s, reply.Callback());
    }
  }

  QuadraticGame game_;
  FakeClock clock_;
  std::unique_ptr<Session> session_;
  std::deque<SampleBuilder> builders_;
};

TEST_F(SessionMetricsTest, PhaseLatencyStragglerAndRateFollowTheClock) {
  Task a = Join(), b = Join();
  // Two steps; in each round worker a answers at once, worker b after
  // 250 ms (gradient) or 100 ms (consensus): b is the straggler.
  for (int step = 0; step < 2; ++step) {
    for (absl::Duration wait :
         {absl::Milliseconds(250), absl::Milliseconds(100)}) {
      Reply ra, rb;
      Answer(a, ra);
      clock_.Advance(wait);
      Answer(b, rb);
      ASSERT_TRUE(ra.called && rb.called);
      a = *ra.result;
      b = *rb.result;
    }
  }
  const SessionInfo info = session_->Info();
  EXPECT_EQ(info.step, 2);
  const PhaseLatency* gradient = Find(info.timing, "gradient");
  const PhaseLatency* consensus = Find(info.timing, "consensus");
  ASSERT_NE(gradient, nullptr);
  ASSERT_NE(consensus, nullptr);
  EXPECT_EQ(gradient->rounds, 2);
  EXPECT_NEAR(gradient->total_seconds, 0.5, kSecondsTolerance);
  EXPECT_EQ(consensus->rounds, 2);
  EXPECT_NEAR(consensus->last_seconds, 0.1, kSecondsTolerance);
  // 2 steps in 0.7 s.
  EXPECT_NEAR(info.timing.steps_per_second, 2 / 0.7, 1e-9);
  ASSERT_EQ(info.workers.size(), 2u);
  EXPECT_EQ(info.workers[0].last_to_submit, 0);
  EXPECT_EQ(info.workers[1].last_to_submit, 4);
  EXPECT_DOUBLE_EQ(HalfSquaredNorm(info.stats.xi_norm),
                   0.5 * (info.stats.xi_norm[0] * info.stats.xi_norm[0] +
                          info.stats.xi_norm[1] * info.stats.xi_norm[1]));
  EXPECT_GT(info.stats.correction_norm, 0);
}

TEST_F(SessionMetricsTest, AWorkerDroppedAtTheDeadlineCountsAMissedRound) {
  SessionConfig config = session_->config();
  config.quorum = 1;
  session_ = *Session::Create("s2", config, &clock_);
  Task a = Join();
  Join();
  Reply ra;
  Answer(a, ra);
  clock_.Advance(absl::Seconds(31));
  session_->CheckDeadline();
  ASSERT_TRUE(ra.called);
  const SessionInfo info = session_->Info();
  EXPECT_EQ(info.workers[1].missed_deadlines, 1);
  // A deadline close names no last submitter: the missing worker was it.
  EXPECT_EQ(info.workers[0].last_to_submit, 0);
  EXPECT_NEAR(Find(info.timing, "gradient")->last_seconds, 31,
              kSecondsTolerance);
}

TEST_F(SessionMetricsTest, TrafficCountersAddUpAndShowInInfo) {
  session_->traffic().AddReceived(100);
  session_->traffic().AddReceived(20);
  session_->traffic().AddSent(7);
  const SessionInfo info = session_->Info();
  EXPECT_EQ(info.bytes_received, 120);
  EXPECT_EQ(info.bytes_sent, 7);
}

}  // namespace
}  // namespace gameopt
