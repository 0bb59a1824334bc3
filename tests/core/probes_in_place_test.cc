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
#include "server/core/wire_codec.h"
#include "server/core/wire_vector.h"
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

// The bytes of each tensor of `packed`, as held.
std::string HeldBytes(const PackedVector& packed, size_t tensors) {
  std::string out;
  for (size_t t = 0; t < tensors; ++t) {
    for (absl::string_view piece : packed.TensorPieces(t)) {
      out.append(piece.data(), piece.size());
    }
  }
  return out;
}

// The bytes of each tensor of `values` in format c (raw: as they are),
// rounded to nearest: what a lazy probe's encoding holds.
std::string FormatBytes(const FlatVector& values, const GameLayout& layout,
                        Compression c) {
  if (c == Compression::kNone) {
    return std::string(static_cast<const char*>(values.data()), values.bytes());
  }
  const std::shared_ptr<const EncodedVector> e =
      EncodeVector(values, layout, c, Rounding());
  std::string out;
  for (const EncodedTensor& t : e->tensors) {
    EXPECT_EQ(t.compression, c);
    out.append(e->bytes, t.offset, t.size);
  }
  return out;
}

template <typename T>
void ExpectInPlaceMatches(Compression c, int num, bool split) {
  SCOPED_TRACE(absl::StrCat(CompressionName(c), " ", sizeof(T),
                            " bytes, K = ", num, split ? ", split" : ""));
  const GameLayout layout = ThreePlayers();
  const DType dtype = DTypeOf<T>();
  const int64_t d = layout.dimension();
  size_t tensors = 0;
  for (const PlayerLayout& player : layout.players()) {
    tensors += player.tensors.size();
  }
  WireSampleBuilder builder(layout);
  std::vector<PackedVector> packs(num);
  std::vector<FlatVector> decoded(num);
  for (int k = 0; k < num; ++k) {
    const SampleView sample =
        builder.Make(c, Wave(d, 1.0f + k, 0.3f * k), {0, 1, 2}, split, dtype);
    ASSERT_TRUE(PackSample(sample, layout, {0, 1, 2}, "gradients", packs[k], c,
                           dtype, std::make_shared<int>(k))
                    .ok());
    ASSERT_TRUE(DecodeSample(sample, layout, {0, 1, 2}, dtype, "gradients",
                             decoded[k], c)
                    .ok());
  }
  std::vector<const FlatVector*> dense, none(num, nullptr);
  std::vector<const PackedVector*> packed;
  for (int k = 0; k < num; ++k) {
    dense.push_back(&decoded[k]);
    packed.push_back(&packs[k]);
  }
  const SampleSet set(none, packed);
  ASSERT_TRUE(CanFormProbesInPlace(EstimatorKind::kUnbiased, set, dtype, c));
  std::vector<std::shared_ptr<FlatVector>> want;
  Vec<T> want_mean, got_mean;
  ASSERT_TRUE(
      ComputeProbes<T>(EstimatorKind::kUnbiased, dense, want, &want_mean).ok());
  std::vector<std::shared_ptr<const PackedVector>> got;
  FormProbesInPlace<T>(set, layout, got_mean, got);
  EXPECT_TRUE(Same(want_mean.data(), got_mean.data(), d));
  ASSERT_EQ(got.size(), static_cast<size_t>(num));
  for (int k = 0; k < num; ++k) {
    // ComputeProbes' values in the samples' format (bit for bit when
    // raw, their nearest-even encoding when compressed), in the sample's
    // own bytes, shared.
    const std::string want_bytes = FormatBytes(*want[k], layout, c);
    EXPECT_TRUE(got[k]->references());
    EXPECT_EQ(HeldBytes(*got[k], tensors), want_bytes) << k;
    EXPECT_EQ(HeldBytes(packs[k], tensors), want_bytes) << k;
  }
}

TEST(ProbesInPlace, AreComputeProbesBitForBit) {
  for (bool split : {false, true}) {
    for (int num : {2, 3, 4, 5}) {  // 2-4: loops of their own
      ExpectInPlaceMatches<float>(Compression::kNone, num, split);
      ExpectInPlaceMatches<double>(Compression::kNone, num, split);
    }
  }
}

// Compressed: the bytes of a lazy probe's encoding (lazy_probe.h), which
// the probes of those wires were before; int8 blocks split across pieces.
TEST(ProbesInPlace, AreTheLazyProbesEncodingInACompressedWire) {
  for (Compression c : {Compression::kBFloat16, Compression::kInt8Block}) {
    for (bool split : {false, true}) {
      for (int num : {2, 3, 4, 5}) {
        ExpectInPlaceMatches<float>(c, num, split);
        ExpectInPlaceMatches<double>(c, num, split);
      }
    }
  }
}

// Only unbiased probes of samples in the format asked for (raw values of
// the session's dtype, bfloat16 or int8 blocks; never float16), every
// player present, referenced where they arrived (a copy would be the
// session's reused buffer).
TEST(ProbesInPlace, OnlyForReferencedCompleteUnbiasedSamplesOfTheFormat) {
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
  const PackedVector int8 =
      pack(Compression::kInt8Block, DType::kFloat32, {0, 1, 2}, true);
  const PackedVector f16 =
      pack(Compression::kFloat16, DType::kFloat32, {0, 1, 2}, true);
  const std::vector<const FlatVector*> none = {nullptr, nullptr};
  const auto can = [&](EstimatorKind e, const PackedVector& first,
                       const PackedVector& second, DType dtype,
                       Compression format = Compression::kNone) {
    const std::vector<const PackedVector*> packed = {&first, &second};
    return CanFormProbesInPlace(e, SampleSet(none, packed), dtype, format);
  };
  const EstimatorKind unbiased = EstimatorKind::kUnbiased;
  EXPECT_TRUE(can(unbiased, good, good, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kPooled, good, good, DType::kFloat32));
  EXPECT_FALSE(can(EstimatorKind::kLocal, good, good, DType::kFloat32));
  EXPECT_FALSE(can(unbiased, good, good, DType::kFloat64));
  EXPECT_FALSE(can(unbiased, good, copied, DType::kFloat32));
  EXPECT_FALSE(can(unbiased, good, bf16, DType::kFloat32));
  EXPECT_FALSE(can(unbiased, good, partial, DType::kFloat32));
  const Compression b = Compression::kBFloat16;
  EXPECT_TRUE(can(unbiased, bf16, bf16, DType::kFloat32, b));
  EXPECT_FALSE(can(unbiased, bf16, good, DType::kFloat32, b));
  EXPECT_FALSE(can(unbiased, bf16, int8, DType::kFloat32, b));
  EXPECT_FALSE(can(EstimatorKind::kPooled, bf16, bf16, DType::kFloat32, b));
  EXPECT_TRUE(
      can(unbiased, int8, int8, DType::kFloat32, Compression::kInt8Block));
  EXPECT_FALSE(can(unbiased, f16, f16, DType::kFloat32, Compression::kFloat16));
}

// The session's dtype and the wire both ways (kNone: raw values).
struct Format {
  DType dtype;
  Compression wire;
};

// Sessions of ConOpt with the unbiased estimator whose two workers send
// raw values of the session's dtype or values in the compressed wire,
// referenced where they are: each submission's bytes are owned by a
// builder of its own, so that the test sees when the session lets go of
// them.
class ProbesInPlaceSessionTest : public ::testing::TestWithParam<Format> {
 protected:
  ProbesInPlaceSessionTest() : game_(QuadraticGame::Random({40, 57}, 3)) {}

  std::unique_ptr<Session> Make() {
    SessionConfig config = QuadraticConfig(game_, AlgorithmKind::kConOpt, 0.05);
    config.dtype = GetParam().dtype;
    config.wire.from_workers = GetParam().wire;
    config.wire.to_workers = GetParam().wire;
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
    SampleView sample = builder->Make(GetParam().wire, values, players,
                                      /*split=*/true, GetParam().dtype);
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
  EXPECT_EQ(probe0->dtype(), GetParam().dtype);
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
// any products phase; probes in a compressed format hold only their
// rounded values (int8 blocks would not encode to the same bytes again):
// the snapshot is the step's start then, as when they are gone.
TEST_P(ProbesInPlaceSessionTest, SnapshotWhileProbesAreHeldStoresThem) {
  std::unique_ptr<Session> session = Make();
  std::vector<Task> tasks = JoinAll(*session);
  Round(*session, tasks);
  const SessionSnapshot snapshot = session->Snapshot();
  if (GetParam().wire != Compression::kNone) {
    EXPECT_EQ(snapshot.algorithm.phase, 0);
    EXPECT_EQ(snapshot.round, tasks[0].round - 1);
    for (const NamedVector& v : snapshot.algorithm.vectors) {
      EXPECT_NE(v.name, "probe");
    }
    return;
  }
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

INSTANTIATE_TEST_SUITE_P(
    Formats, ProbesInPlaceSessionTest,
    ::testing::Values(Format{DType::kFloat32, Compression::kNone},
                      Format{DType::kFloat64, Compression::kNone},
                      Format{DType::kFloat32, Compression::kBFloat16},
                      Format{DType::kFloat64, Compression::kInt8Block}),
    [](const auto& info) {
      std::string name(DTypeName(info.param.dtype));
      if (info.param.wire != Compression::kNone) {
        absl::StrAppend(&name, "_", CompressionName(info.param.wire));
      }
      return name;
    });

}  // namespace
}  // namespace gameopt
