// Session::Restore validates everything a checkpoint holds: counters and sample
// ranges in range with overflow-safe arithmetic, names as Join would take them,
// every state value finite. A snapshot mutated at random either restores into a
// session that plays on, or is DataLoss; nothing crashes.
#include <climits>
#include <cmath>
#include <limits>
#include <random>

#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;

// A ConOpt session (a products phase with probes) with momentum slots,
// snapshotted inside its products phase after worker 1 gave its samples.
class RestoreValidationTest : public ::testing::Test {
 protected:
  RestoreValidationTest() : game_(QuadraticGame::Random({2, 3}, 3)) {
    config_ = QuadraticConfig(game_, AlgorithmKind::kConOpt, 0.02);
    config_.workers_per_round = 1;
    config_.samples_per_worker = 2;
    for (PlayerConfig& p : config_.players) {
      p.optimizer.kind = OptimizerKind::kMomentum;
    }
    session_ = *Session::Create("s1", config_, RealClock());
    SampleBuilder builder(session_->layout());
    Reply join;
    session_->Join(0, "w", join.Callback());
    EXPECT_TRUE(join.result.ok()) << join.result.status();
    Submission s;
    s.round = join.result->round;
    for (int k = 0; k < 2; ++k) {
      s.gradients.push_back(builder.Make(Eigen::VectorXd::Ones(5)));
    }
    Reply next;
    session_->SubmitGradient(1, s, next.Callback());
    EXPECT_TRUE(next.result.ok()) << next.result.status();
    EXPECT_EQ(next.result->kind, Task::Kind::kProducts);
    snapshot_ = session_->Snapshot();
  }

  absl::Status Restore(const SessionSnapshot& snapshot) {
    return Session::Restore(snapshot, RealClock()).status();
  }

  // A copy of vector `name` (the first one) with `value` at index 0.
  void Poison(SessionSnapshot& snapshot, const std::string& name,
              double value) {
    for (NamedVector& v : snapshot.algorithm.vectors) {
      if (v.name != name) continue;
      auto copy = std::make_shared<FlatVector>(*v.value);
      copy->as<double>()(0) = value;
      v.value = copy;
      return;
    }
    FAIL() << "no vector " << name;
  }

  QuadraticGame game_;
  SessionConfig config_;
  std::unique_ptr<Session> session_;
  SessionSnapshot snapshot_;
};

TEST_F(RestoreValidationTest, UnchangedSnapshotRestores) {
  EXPECT_TRUE(Restore(snapshot_).ok()) << Restore(snapshot_);
}

TEST_F(RestoreValidationTest, SampleRangeOverflowIsDataLoss) {
  ASSERT_EQ(snapshot_.workers.size(), 1u);
  SessionSnapshot bad = snapshot_;
  // int first_sample + num_samples overflowed before: INT_MAX + 2 < 0.
  bad.workers[0].first_sample = INT_MAX;
  bad.workers[0].num_samples = 2;
  EXPECT_EQ(Restore(bad).code(), absl::StatusCode::kDataLoss);
  bad.workers[0].first_sample = 1;  // 1 + 2 > 2 probes
  EXPECT_EQ(Restore(bad).code(), absl::StatusCode::kDataLoss);
  bad.workers[0].first_sample = 0;
  bad.workers[0].num_samples = INT_MAX;
  EXPECT_EQ(Restore(bad).code(), absl::StatusCode::kDataLoss);
}

TEST_F(RestoreValidationTest, NonFiniteParametersOrSlotsAreDataLoss) {
  for (const char* name : {"x", "opt.0.slot", "probe", "xi"}) {
    for (double value : {std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()}) {
      SessionSnapshot bad = snapshot_;
      Poison(bad, name, value);
      const absl::Status status = Restore(bad);
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss)
          << name << " " << value << ": " << status;
    }
  }
}

TEST_F(RestoreValidationTest, CountersOutOfRangeAreDataLoss) {
  const int64_t huge = std::numeric_limits<int64_t>::max();
  for (int field = 0; field < 7; ++field) {
    SessionSnapshot bad = snapshot_;
    switch (field) {
      case 0:
        bad.round = huge;
        break;
      case 1:
        bad.next_worker_id = huge;
        break;
      case 2:
        bad.algorithm.step = huge;
        break;
      case 3:
        bad.algorithm.point_version = huge;
        break;
      case 4:
        bad.workers[0].last_round = bad.round + 1;
        break;
      case 5:
        bad.workers[0].missed_deadlines = -1;
        break;
      case 6:
        bad.workers[0].name = "forged\nlog line";
        break;
    }
    EXPECT_EQ(Restore(bad).code(), absl::StatusCode::kDataLoss) << field;
  }
}

// The property: whatever the integers say, Restore answers, and a restored
// session takes its worker back and plays on.
TEST_F(RestoreValidationTest, RandomlyMutatedSnapshotsNeverCrash) {
  const int64_t extremes[] = {std::numeric_limits<int64_t>::min(),
                              INT_MIN,
                              -2,
                              -1,
                              0,
                              1,
                              2,
                              3,
                              INT_MAX,
                              int64_t{INT_MAX} + 1,
                              std::numeric_limits<int64_t>::max()};
  std::mt19937_64 rng(15);
  auto pick = [&] { return extremes[rng() % std::size(extremes)]; };
  int restored = 0;
  for (int trial = 0; trial < 400; ++trial) {
    SessionSnapshot bad = snapshot_;
    WorkerSnapshot& w = bad.workers[0];
    switch (rng() % 8) {
      case 0:
        w.first_sample = static_cast<int>(pick());
        break;
      case 1:
        w.num_samples = static_cast<int>(pick());
        break;
      case 2:
        w.id = pick();
        break;
      case 3:
        w.last_round = pick();
        break;
      case 4:
        bad.round = pick();
        break;
      case 5:
        bad.algorithm.phase = static_cast<int>(pick());
        break;
      case 6:
        bad.algorithm.step = pick();
        break;
      case 7:
        bad.joined_ever = pick();
        break;
    }
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Restore(bad, RealClock());
    if (!session.ok()) {
      EXPECT_EQ(session.status().code(), absl::StatusCode::kDataLoss)
          << session.status();
      continue;
    }
    ++restored;
    // Play on: every worker in the table rejoins and answers its task.
    for (const WorkerSnapshot& in : bad.workers) {
      Reply join;
      (*session)->Join(in.id, "", join.Callback());
      if (!join.result.ok() || join.result->kind != Task::Kind::kProducts) {
        continue;
      }
      SampleBuilder builder((*session)->layout());
      Submission s;
      s.round = join.result->round;
      s.step = join.result->step;
      s.phase = join.result->phase;
      for (size_t k = 0; k < join.result->probes.size(); ++k) {
        s.vjp.push_back(builder.Make(Eigen::VectorXd::Ones(5)));
      }
      Reply next;
      (*session)->SubmitProducts(in.id, s, next.Callback());
    }
  }
  EXPECT_GT(restored, 0);
}

}  // namespace
}  // namespace gameopt
