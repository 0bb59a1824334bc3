// The unbiased estimator's probes written over the gradient samples' own
// bytes (estimator.h, FormProbesInPlace), and the session letting go of
// probes once they are handed out (Algorithm::HandOutPackedProbe): the values
// are ComputeProbes' bit for bit, the session keeps none of the bytes once
// the tasks that carry them are gone, a worker that lost its task is left
// out of the step (or the step starts again when nobody is left), and a
// snapshot taken then resumes at the step's gradient round, bit for bit.
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/estimator.h"
#include "server/core/sample_set.h"
#include "server/core/session.h"
#include "server/core/submission.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::PlayRound;
using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SeedNoise;
using testing::SubmitAnswer;
using testing::ThreePlayers;
using testing::ToEigen;
using testing::Wave;
using testing::WireSampleBuilder;

template <typename T>
bool Same(const T* a, const T* b, int64_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <typename T>
void ExpectInPlaceMatches(int num, bool split) {
  SCOPED_TRACE(
      absl::StrCat(sizeof(T), " bytes, K = ", num, split ? ", split" : ""));
  const GameLayout layout = ThreePlayers();
  const DType dtype = DTypeOf<T>();
  const int64_t d = layout.dimension();
  WireSampleBuilder builder(layout);
  std::vector<PackedVector> packs(num);
  std::vector<FlatVector> decoded(num);
  for (int k = 0; k < num; ++k) {
    const SampleView sample =
        builder.Make(Compression::kNone, Wave(d, 1.0f + k, 0.3f * k), {0, 1, 2},
                     split, dtype);
    ASSERT_TRUE(PackSample(sample, layout, {0, 1, 2}, "gradients", packs[k],
                           Compression::kNone, dtype, std::make_shared<int>(k))
                    .ok());
    ASSERT_TRUE(DecodeSample(sample, layout, {0, 1, 2}, dtype, "gradients",
                             decoded[k], Compression::kNone)
                    .ok());
  }
  std::vector<const FlatVector*> dense, none(num, nullptr);
  std::vector<const PackedVector*> packed;
  for (int k = 0; k < num; ++k) {
    dense.push_back(&decoded[k]);
    packed.push_back(&packs[k]);
  }
  const SampleSet set(none, packed);
  ASSERT_TRUE(CanFormProbesInPlace(EstimatorKind::kUnbiased, set, dtype));
  std::vector<std::shared_ptr<FlatVector>> want;
  Vec<T> want_mean, got_mean;
  ASSERT_TRUE(
      ComputeProbes<T>(EstimatorKind::kUnbiased, dense, want, &want_mean).ok());
  std::vector<std::shared_ptr<const PackedVector>> got;
  FormProbesInPlace<T>(set, got_mean, got);
  EXPECT_TRUE(Same(want_mean.data(), got_mean.data(), d));
  ASSERT_EQ(got.size(), static_cast<size_t>(num));
  std::vector<T> values(d);
  for (int k = 0; k < num; ++k) {
    got[k]->Decode(0, d, values.data());
    EXPECT_TRUE(Same(want[k]->as<T>().data(), values.data(), d)) << k;
    // In place: the sample's own bytes now hold the probe, shared.
    EXPECT_TRUE(got[k]->references());
    packs[k].Decode(0, d, values.data());
    EXPECT_TRUE(Same(want[k]->as<T>().data(), values.data(), d)) << k;
  }
}

TEST(ProbesInPlace, AreComputeProbesBitForBit) {
  for (bool split : {false, true}) {
    for (int num : {2, 3}) {
      ExpectInPlaceMatches<float>(num, split);
      ExpectInPlaceMatches<double>(num, split);
    }
  }
}

// Only unbiased probes of raw samples of the session's dtype, every player
// present, referenced where they arrived (a copy would be the session's
// reused buffer).
TEST(ProbesInPlace, OnlyForRawReferencedCompleteUnbiasedSamples) {
  const GameLayout layout = ThreePlayers();
  const int64_t d = layout.dimension();
  WireSampleBuilder builder(layout);
  const auto pack = [&](Compression c, DType raw, std::vector<int> players,
                        bool referenced) {
    PackedVector out;
    const SampleView sample =
        builder.Make(c, Wave(d, 1.0f, 0.0f), players, false, raw);
    EXPECT_TRUE(PackSample(sample, layout, players, "gradients", out, c, raw,
                           referenced ? std::make_shared<int>(0) : nullptr)
                    .ok());
    return out;
  };
  const PackedVector good =
      pack(Compression::kNone, DType::kFloat32, {0, 1, 2}, true);
  const PackedVector copied =
      pack(Compression::kNone, DType::kFloat32, {0, 1, 2}, false);
  const PackedVector bf16 =
      pack(Compression::kBFloat16, DType::kFloat32, {0, 1, 2}, true);
  const PackedVector partial =
      pack(Compression::kNone, DType::kFloat32, {0, 2}, true);
  const std::vector<const FlatVector*> none = {nullptr, nullptr};
  const auto can = [&](EstimatorKind e, const PackedVector& second,
                       DType dtype) {
    const std::vector<const PackedVector*> packed = {&good, &second};
    return CanFormProbesInPlace(e, SampleSet(none, packed), dtype);
  };
  EXPECT_TRUE(can(EstimatorKind::kUnbiased, good, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kPooled, good, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kLocal, good, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kUnbiased, good, DType::kFloat64));
  EXPECT_FALSE(can(EstimatorKind::kUnbiased, copied, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kUnbiased, bf16, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kUnbiased, partial, DType::kFloat32));
}

// Sessions of ConOpt with the unbiased estimator whose two workers send
// raw values of the session's dtype, referenced where they are: each
// submission's bytes are owned by a builder of its own, so that the test
// sees when the session lets go of them.
class ProbesInPlaceSessionTest : public ::testing::TestWithParam<DType> {
 protected:
  ProbesInPlaceSessionTest() : game_(QuadraticGame::Random({40, 57}, 3)) {}

  std::unique_ptr<Session> Make() {
    SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kConOpt, 0.05);
    config.dtype = GetParam();
    config.workers_per_round = 2;
    config.seed = 9;
    config.algorithm.estimator = EstimatorKind::kUnbiased;
    config.algorithm.gamma = 0.5;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return *std::move(session);
  }

  // The worker's answer: the exact gradient or product plus noise drawn
  // from the task's seed. `bytes` is the handle that owns its bytes.
  Submission Answer(const Session& session, const Task& task,
                    std::weak_ptr<WireSampleBuilder>* bytes = nullptr) {
    auto builder = std::make_shared<WireSampleBuilder>(session.layout());
    if (bytes != nullptr) *bytes = builder;
    Submission s;
    s.keep_alive = builder;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::VectorXd x = ToEigen(*task.params);
    Eigen::VectorXd v = SeedNoise(task.seed, game_.dimension());
    std::vector<int> players = task.players;
    if (task.kind == Task::Kind::kGradient) {
      v += game_.Xi(x);
    } else {
      players = {0, 1};
      v += game_.J.transpose() * ToEigen(*task.Probe(0));
    }
    std::vector<float> values(v.size());
    for (int i = 0; i < v.size(); ++i) values[i] = static_cast<float>(v(i));
    SampleView sample = builder->Make(Compression::kNone, values, players,
                                      /*split=*/true, GetParam());
    (task.kind == Task::Kind::kGradient ? s.gradients : s.vjp)
        .push_back(sample);
    return s;
  }

  // Both workers answer their tasks; the replies' tasks replace them.
  void Round(Session& session, std::vector<Task>& tasks) {
    ASSERT_TRUE(PlayRound(session, tasks, [&](const Task& task) {
      return Answer(session, task);
    }));
  }

  static std::vector<Task> JoinAll(Session& session) {
    std::vector<Task> tasks;
    for (int w = 0; w < 2; ++w) {
      Reply reply;
      session.Join(0, "", reply.Callback());
      EXPECT_TRUE(reply.called && reply.result.ok());
      tasks.push_back(*reply.result);
    }
    return tasks;
  }

  static std::string Bytes(const Session& session) {
    return testing::ParametersBytes(session);
  }

  QuadraticGame game_;
  FakeClock clock_;
};

TEST_P(ProbesInPlaceSessionTest, SentProbesLiveOnlyInTheirTasks) {
  std::unique_ptr<Session> session = Make();
  std::vector<Task> tasks = JoinAll(*session);
  std::vector<std::weak_ptr<WireSampleBuilder>> bytes(2);
  std::vector<Submission> answers;
  for (int w = 0; w < 2; ++w) {
    answers.push_back(Answer(*session, tasks[w], &bytes[w]));
  }
  std::vector<Reply> replies(2);
  for (int w = 0; w < 2; ++w) {
    SubmitAnswer(*session, tasks[w], answers[w], replies[w]);
  }
  answers.clear();
  for (int w = 0; w < 2; ++w) {
    ASSERT_TRUE(replies[w].called && replies[w].result.ok());
    tasks[w] = *std::move(replies[w].result);
    replies[w] = Reply();
    ASSERT_EQ(tasks[w].kind, Task::Kind::kProducts);
    ASSERT_EQ(tasks[w].packed_probes.size(), 1u);
    EXPECT_EQ(tasks[w].probes[0], nullptr);
  }
  // Probe k = (S - s_k) / (K - 1) is in the bytes worker k sent; only the
  // task holds it.
  for (int w = 0; w < 2; ++w) {
    EXPECT_EQ(tasks[w].packed_probes[0].use_count(), 1);
    EXPECT_FALSE(bytes[w].expired());
  }
  const std::shared_ptr<const FlatVector> probe0 = tasks[0].Probe(0);
  EXPECT_EQ(probe0->dtype(), GetParam());
  tasks[0].packed_probes.clear();
  EXPECT_TRUE(bytes[0].expired()) << "the session still holds sample 0";
  EXPECT_FALSE(bytes[1].expired());

  // Worker 1 lost its task and asks again: left out of this step, it waits
  // for the next round; worker 2's product completes the step.
  Reply again;
  session->Join(tasks[0].worker_id, "", again.Callback());
  EXPECT_FALSE(again.called);
  SubmitAnswer(*session, tasks[1], Answer(*session, tasks[1]), replies[1]);
  ASSERT_TRUE(replies[1].called && replies[1].result.ok());
  ASSERT_TRUE(again.called && again.result.ok()) << again.result.status();
  EXPECT_EQ(session->Info().step, 1);
  EXPECT_EQ(again.result->kind, Task::Kind::kGradient);
  EXPECT_EQ(again.result->step, 1);
  EXPECT_EQ(replies[1].result->kind, Task::Kind::kGradient);
  tasks[1] = Task();
  EXPECT_TRUE(bytes[1].expired());
}

TEST_P(ProbesInPlaceSessionTest, StepStartsAgainWhenEveryHolderLostItsProbe) {
  std::unique_ptr<Session> session = Make();
  std::vector<Task> tasks = JoinAll(*session);
  Round(*session, tasks);  // gradients: the products tasks come back
  ASSERT_EQ(tasks[0].kind, Task::Kind::kProducts);
  const int64_t round = session->Info().round;
  const std::vector<int64_t> ids = {tasks[0].worker_id, tasks[1].worker_id};
  tasks.clear();  // both lost
  std::vector<Reply> again(2);
  session->Join(ids[0], "", again[0].Callback());
  EXPECT_FALSE(again[0].called);
  session->Join(ids[1], "", again[1].Callback());
  for (int w = 0; w < 2; ++w) {
    ASSERT_TRUE(again[w].called && again[w].result.ok())
        << again[w].result.status();
    EXPECT_EQ(again[w].result->kind, Task::Kind::kGradient);
    EXPECT_EQ(again[w].result->step, 0);
    EXPECT_EQ(again[w].result->round, round + 1);
    tasks.push_back(*again[w].result);
  }
  Round(*session, tasks);
  Round(*session, tasks);
  EXPECT_EQ(session->Info().step, 1);
}

// Interrupted in step 2's products phase once both probes are gone: the
// snapshot is the step's start under its gradient round's number, and the
// restored session ends where the uninterrupted one does, bit for bit.
TEST_P(ProbesInPlaceSessionTest, SnapshotWithoutProbesResumesAtTheStepStart) {
  constexpr int kRounds = 10;
  std::unique_ptr<Session> reference = Make();
  std::vector<Task> tasks = JoinAll(*reference);
  for (int r = 0; r < kRounds; ++r) Round(*reference, tasks);

  std::unique_ptr<Session> first = Make();
  tasks = JoinAll(*first);
  for (int r = 0; r < 5; ++r) Round(*first, tasks);
  ASSERT_EQ(tasks[0].kind, Task::Kind::kProducts);
  ASSERT_EQ(first->Info().step, 2);
  const int64_t gradient_round = tasks[0].round - 1;
  const std::vector<int64_t> ids = {tasks[0].worker_id, tasks[1].worker_id};
  tasks.clear();  // the probes are sent and gone
  const SessionSnapshot snapshot = first->Snapshot();
  EXPECT_EQ(snapshot.algorithm.phase, 0);
  EXPECT_EQ(snapshot.round, gradient_round);
  first->Close(absl::UnavailableError("server shutting down"));

  absl::StatusOr<std::unique_ptr<Session>> restored =
      Session::Restore(snapshot, &clock_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  Session& session = **restored;
  for (int64_t id : ids) {
    Reply reply;
    session.Join(id, "", reply.Callback());
    ASSERT_TRUE(reply.called && reply.result.ok()) << reply.result.status();
    EXPECT_EQ(reply.result->kind, Task::Kind::kGradient);
    EXPECT_EQ(reply.result->round, gradient_round);
    tasks.push_back(*reply.result);
  }
  for (int r = 4; r < kRounds; ++r) Round(session, tasks);
  EXPECT_EQ(session.Info().round, reference->Info().round);
  EXPECT_EQ(session.Info().step, reference->Info().step);
  EXPECT_EQ(Bytes(session), Bytes(*reference));
}

// While the tasks still hold the probes, a snapshot stores them, as for
// any products phase.
TEST_P(ProbesInPlaceSessionTest, SnapshotWhileProbesAreHeldStoresThem) {
  std::unique_ptr<Session> session = Make();
  std::vector<Task> tasks = JoinAll(*session);
  Round(*session, tasks);
  const SessionSnapshot snapshot = session->Snapshot();
  EXPECT_EQ(snapshot.algorithm.phase, 1);
  int probes = 0;
  for (const NamedVector& v : snapshot.algorithm.vectors) {
    if (v.name != "probe") continue;
    const std::shared_ptr<const FlatVector> want = tasks[probes].Probe(0);
    EXPECT_EQ(std::memcmp(v.value->data(), want->data(), want->bytes()), 0);
    ++probes;
  }
  EXPECT_EQ(probes, 2);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ProbesInPlaceSessionTest,
                         ::testing::Values(DType::kFloat32, DType::kFloat64),
                         [](const auto& info) {
                           return std::string(DTypeName(info.param));
                         });

}  // namespace
}  // namespace gameopt
