// Packed samples (sample_set.h): submissions kept in the format they arrived
// in (a compressed wire format, or raw values of the session's dtype) and
// decoded block by block by the kernels. Everything they feed
// must be bit-identical to the samples DecodeSample writes: the decoded
// ranges, the errors, the estimators' and the consensus direction's
// results, and a whole session's parameters.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/parallel.h"
#include "server/core/sample_set.h"
#include "server/core/submission.h"
#include "server/core/wire_codec.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::PlayRound;
using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::ThreePlayers;
using testing::ToEigen;
using testing::Wave;
using testing::WireSampleBuilder;

// The formats a sample is kept packed in: the compressed wire formats
// (sent to a float32 session here, but for the kernels' test), and raw
// values of the session's dtype.
struct Format {
  Compression c;
  DType raw;  // of raw tensors (c == kNone): the session's dtype
};
constexpr Format kFormats[] = {{Compression::kBFloat16, DType::kFloat32},
                               {Compression::kFloat16, DType::kFloat32},
                               {Compression::kInt8Block, DType::kFloat32},
                               {Compression::kNone, DType::kFloat32},
                               {Compression::kNone, DType::kFloat64}};

constexpr Compression kWires[] = {Compression::kBFloat16, Compression::kFloat16,
                                  Compression::kInt8Block};

std::string Name(const Format& f) {
  return f.c == Compression::kNone ? absl::StrCat("raw ", DTypeName(f.raw))
                                   : std::string(CompressionName(f.c));
}

template <typename T>
const T* DataOf(const FlatVector& v) {
  return v.as<T>().data();
}

template <typename T>
void ExpectRangesMatch(const PackedVector& packed, const FlatVector& dense) {
  const int64_t d = dense.size();
  for (int64_t begin :
       {0, 1, 255, 256, 257, 299, 300, 301, 304, 305, 306, 555, 1000, 1704}) {
    for (int64_t n :
         {int64_t{1}, int64_t{7}, int64_t{256}, int64_t{512}, d - begin}) {
      if (begin + n > d) continue;
      std::vector<T> got(n);
      packed.Decode(begin, n, got.data());
      ASSERT_EQ(
          std::memcmp(got.data(), DataOf<T>(dense) + begin, n * sizeof(T)), 0)
          << "range " << begin << " + " << n;
    }
  }
}

TEST(PackedSample, DecodedRangesAreDecodeSamplesValues) {
  const GameLayout layout = ThreePlayers();
  ASSERT_EQ(layout.dimension(), 1705);
  const std::vector<float> v = Wave(1705, 3.0f, 0.1f);
  for (const Format& f : kFormats) {
    const Compression c = f.c;
    for (bool split : {false, true}) {
      // All players, and a gradient phase of a and c (b is zero).
      for (const std::vector<int>& players :
           {std::vector<int>{0, 1, 2}, std::vector<int>{0, 2}}) {
        SCOPED_TRACE(absl::StrCat(Name(f), split ? " split" : "", " players ",
                                  players.size()));
        WireSampleBuilder builder(layout);
        const SampleView sample = builder.Make(c, v, players, split, f.raw);
        ASSERT_EQ(PackFormat(sample, c, f.raw), c);
        // Copied, or referenced where the views are (a handle keeps them).
        PackedVector copied, referenced;
        ASSERT_TRUE(PackSample(sample, layout, players, "gradients[0]", copied,
                               c, f.raw)
                        .ok());
        auto handle = std::make_shared<int>(0);
        ASSERT_TRUE(PackSample(sample, layout, players, "gradients[0]",
                               referenced, c, f.raw, handle)
                        .ok());
        EXPECT_FALSE(copied.references());
        EXPECT_TRUE(referenced.references());
        EXPECT_EQ(handle.use_count(), 2);
        EXPECT_TRUE(copied.in_use());
        EXPECT_EQ(copied.dimension(), 1705);
        for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
          FlatVector dense;
          ASSERT_TRUE(DecodeSample(sample, layout, players, dtype,
                                   "gradients[0]", dense, c)
                          .ok());
          for (const PackedVector* packed : {&copied, &referenced}) {
            if (dtype == DType::kFloat32) {
              ExpectRangesMatch<float>(*packed, dense);
            } else {
              ExpectRangesMatch<double>(*packed, dense);
            }
          }
        }
        referenced.Clear();
        EXPECT_EQ(handle.use_count(), 1);
      }
    }
  }
}

// Every refusal of PackSample is DecodeSample's, word for word, and leaves
// the packed vector cleared.
TEST(PackedSample, RefusesWhatDecodeSampleRefusesWithItsMessage) {
  const GameLayout layout = ThreePlayers();
  for (const Format& f : kFormats) {
    const Compression c = f.c;
    SCOPED_TRACE(Name(f));
    std::vector<float> bad = Wave(1705, 1.0f, 0.2f);
    bad[1300] = std::numeric_limits<float>::infinity();
    WireSampleBuilder builder(layout);
    const std::vector<int> all = {0, 1, 2};
    const auto make = [&](const std::vector<float>& v) {
      return builder.Make(c, v, all, /*split=*/false, f.raw);
    };
    std::vector<SampleView> samples;
    samples.push_back(make(bad));  // not finite
    SampleView shape = make(Wave(1705, 1.0f, 0.0f));
    const std::vector<int64_t> wrong = {1400};
    shape[2].tensors[0].shape = wrong;
    samples.push_back(shape);
    SampleView missing = make(Wave(1705, 1.0f, 0.0f));
    missing.pop_back();
    samples.push_back(missing);
    SampleView short_bytes = make(Wave(1705, 1.0f, 0.0f));
    short_bytes[0].tensors[0].bytes.remove_suffix(1);
    samples.push_back(short_bytes);
    SampleView twice = make(Wave(1705, 1.0f, 0.0f));
    twice.push_back(twice[1]);
    samples.push_back(twice);
    for (size_t i = 0; i < samples.size(); ++i) {
      FlatVector dense;
      const absl::Status want =
          DecodeSample(samples[i], layout, all, f.raw, "vjp[1]", dense, c);
      ASSERT_FALSE(want.ok()) << i;
      PackedVector packed;
      const absl::Status got =
          PackSample(samples[i], layout, all, "vjp[1]", packed, c, f.raw);
      EXPECT_EQ(got, want) << i;
      EXPECT_FALSE(packed.in_use()) << i;
    }
  }
}

// What cannot be kept packed is decoded: raw values of the other dtype, and
// a sample mixing raw and compressed tensors (a float16 overflow's
// fallback). PackSample refuses those; the session never asks it to.
// Workers send players and tensors in the layout's order, and the checks
// look there first (GameLayout::FindPlayer / FindTensor's hint); any other
// order finds them by name and gives the same values.
TEST(PackedSample, PlayersAndTensorsInAnyOrderGiveTheSameValues) {
  std::vector<PlayerConfig> players(2);
  for (int p = 0; p < 2; ++p) {
    players[p].name = p == 0 ? "gen" : "disc";
    for (int t = 0; t < 3; ++t) {
      TensorConfig& tensor = players[p].tensors.emplace_back();
      tensor.name = absl::StrCat("layer", t);
      tensor.shape = {300 + 7 * t + p};  // d = 1845 (ExpectRangesMatch)
    }
  }
  const GameLayout layout = *GameLayout::Create(players);
  const std::vector<float> v = Wave(layout.dimension(), 2.0f, 0.3f);
  const std::vector<int> all = {0, 1};
  WireSampleBuilder builder(layout);
  const SampleView in_order = builder.Make(Compression::kNone, v, all);
  SampleView reversed(in_order.rbegin(), in_order.rend());
  for (PlayerValues& values : reversed) {
    std::reverse(values.tensors.begin(), values.tensors.end());
  }
  FlatVector want, got;
  ASSERT_TRUE(
      DecodeSample(in_order, layout, all, DType::kFloat32, "gradients[0]", want)
          .ok());
  ASSERT_TRUE(
      DecodeSample(reversed, layout, all, DType::kFloat32, "gradients[0]", got)
          .ok());
  ASSERT_EQ(std::memcmp(DataOf<float>(got), DataOf<float>(want),
                        4 * layout.dimension()),
            0);
  PackedVector packed;
  ASSERT_TRUE(PackSample(reversed, layout, all, "gradients[0]", packed,
                         Compression::kNone, DType::kFloat32)
                  .ok());
  ExpectRangesMatch<float>(packed, want);
  // A name that is not there is refused whatever the position it takes.
  reversed[0].tensors[1].name = "layer9";
  const absl::Status status =
      DecodeSample(reversed, layout, all, DType::kFloat32, "gradients[0]", got);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'layer9': no such tensor"),
            std::string::npos)
      << status.message();
}

TEST(PackedSample, MixedOrForeignRawSamplesHaveNoPackFormat) {
  const GameLayout layout = ThreePlayers();
  WireSampleBuilder builder(layout);
  const std::vector<float> v = Wave(1705, 1.0f, 0.0f);
  const SampleView f64 =
      builder.Make(Compression::kNone, v, {0, 1, 2}, false, DType::kFloat64);
  EXPECT_EQ(PackFormat(f64, Compression::kNone, DType::kFloat32), std::nullopt);
  EXPECT_EQ(PackFormat(f64, Compression::kNone, DType::kFloat64),
            Compression::kNone);
  SampleView mixed = builder.Make(Compression::kFloat16, v, {0, 1, 2});
  mixed[1] = builder.Make(Compression::kNone, v, {1})[0];
  EXPECT_EQ(PackFormat(mixed, Compression::kFloat16, DType::kFloat32),
            std::nullopt);
  PackedVector packed;
  EXPECT_EQ(PackSample(mixed, layout, {0, 1, 2}, "vjp[0]", packed,
                       Compression::kFloat16, DType::kFloat32)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(packed.in_use());
  FlatVector dense;
  EXPECT_TRUE(DecodeSample(mixed, layout, {0, 1, 2}, DType::kFloat32, "vjp[0]",
                           dense, Compression::kFloat16)
                  .ok());
}

// A long tensor is packed on several threads: the same bytes, and the
// first non-finite value's index, for any thread count.
TEST(PackedSample, LongTensorsPackAlikeOnAnyNumberOfThreads) {
  constexpr int64_t kLong = (int64_t{1} << 19) + 4321;
  const GameLayout layout = testing::OneTensorLayout(kLong);
  for (const Format& f : kFormats) {
    const Compression c = f.c;
    for (bool finite : {true, false}) {
      SCOPED_TRACE(absl::StrCat(Name(f), finite ? "" : " nan"));
      std::vector<float> v = Wave(kLong, 2.0f, 0.1f);
      if (!finite) {
        v[kLong - 7] = std::numeric_limits<float>::infinity();
        v[300001] = std::numeric_limits<float>::quiet_NaN();
      }
      WireSampleBuilder builder(layout);
      const SampleView sample = builder.Make(c, v, {0}, /*split=*/true, f.raw);
      FlatVector dense;
      const absl::Status want =
          DecodeSample(sample, layout, {0}, f.raw, "gradients[0]", dense, c);
      for (int threads : {1, 64}) {
        SetMaxParallelism(threads);
        PackedVector packed;
        const absl::Status got =
            PackSample(sample, layout, {0}, "gradients[0]", packed, c, f.raw,
                       threads == 1 ? nullptr : std::make_shared<int>(0));
        SetMaxParallelism(0);
        EXPECT_EQ(got, want) << threads;
        if (!want.ok()) continue;
        std::vector<char> decoded(dense.bytes());
        if (f.raw == DType::kFloat32) {
          packed.Decode(0, kLong, reinterpret_cast<float*>(decoded.data()));
        } else {
          packed.Decode(0, kLong, reinterpret_cast<double*>(decoded.data()));
        }
        EXPECT_EQ(std::memcmp(decoded.data(), dense.data(), dense.bytes()), 0)
            << threads;
      }
    }
  }
}

// The kernels on a set mixing packed and dense vectors give the bytes they
// give on the decoded vectors.
template <typename T>
void ExpectKernelsMatch(Compression c) {
  SCOPED_TRACE(absl::StrCat(CompressionName(c), " ", sizeof(T)));
  const GameLayout layout = ThreePlayers();
  const DType dtype = DTypeOf<T>();
  constexpr int kSamples = 3;
  WireSampleBuilder builder(layout);
  std::vector<PackedVector> packs(kSamples);
  std::vector<FlatVector> decoded(kSamples);
  for (int k = 0; k < kSamples; ++k) {
    // Raw values (kNone) of the session's dtype T.
    const SampleView sample = builder.Make(c, Wave(1705, 1.0f + k, 0.3f * k),
                                           {0, 1, 2}, /*split=*/true, dtype);
    ASSERT_TRUE(
        PackSample(sample, layout, {0, 1, 2}, "vjp", packs[k], c, dtype).ok());
    ASSERT_TRUE(
        DecodeSample(sample, layout, {0, 1, 2}, dtype, "vjp", decoded[k], c)
            .ok());
  }
  // Samples 0 and 2 packed, 1 dense; the reference all dense.
  const std::vector<const FlatVector*> dense = {&decoded[0], &decoded[1],
                                                &decoded[2]};
  const std::vector<const FlatVector*> mixed_dense = {nullptr, &decoded[1],
                                                      nullptr};
  const std::vector<const PackedVector*> mixed_packed = {&packs[0], nullptr,
                                                         &packs[2]};
  const SampleSet mixed(mixed_dense, mixed_packed);
  ASSERT_TRUE(mixed.has_packed());
  auto same = [](const Vec<T>& a, const Vec<T>& b) {
    return a.size() == b.size() &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
  };
  Vec<T> want, got;
  MeanOf<T>(dense, want);
  MeanOf<T>(mixed, got);
  EXPECT_TRUE(same(want, got));
  for (EstimatorKind e : {EstimatorKind::kPooled, EstimatorKind::kUnbiased,
                          EstimatorKind::kLocal}) {
    std::vector<std::shared_ptr<FlatVector>> want_probes, got_probes;
    Vec<T> want_mean, got_mean;
    ASSERT_TRUE(ComputeProbes<T>(e, dense, want_probes, &want_mean).ok());
    ASSERT_TRUE(ComputeProbes<T>(e, mixed, got_probes, &got_mean).ok());
    EXPECT_TRUE(same(want_mean, got_mean));
    for (int k = 0; k < kSamples; ++k) {
      EXPECT_TRUE(same(want_probes[k]->as<T>(), got_probes[k]->as<T>()))
          << static_cast<int>(e) << " " << k;
    }
  }
  const Vec<T> xi = decoded[1].as<T>();
  Vec<T> want_g, got_g;
  const ConsensusNorms a = ConsensusDirection<T>(xi, dense, T(0.7), want_g);
  const ConsensusNorms b = ConsensusDirection<T>(xi, mixed, T(0.7), got_g);
  EXPECT_TRUE(same(want_g, got_g));
  EXPECT_EQ(a.correction, b.correction);
  EXPECT_EQ(a.direction, b.direction);
  EXPECT_EQ(a.direction_max_abs, b.direction_max_abs);
}

TEST(PackedSample, KernelsOnPackedSamplesAreBitIdentical) {
  for (const Format& f : kFormats) {
    if (f.raw == DType::kFloat64) continue;  // kNone: the T = double run
    ExpectKernelsMatch<float>(f.c);
    ExpectKernelsMatch<double>(f.c);
  }
}

// A whole session: workers that send compressed gradients and products
// (kept packed), or their decoded values as raw values of the session's
// dtype (kept packed too), end at the same parameters, bit for bit, as
// workers that send the decoded values in the other dtype (decoded at
// submission, as before).
class PackedSessionTest : public ::testing::Test {
 protected:
  PackedSessionTest() : game_(QuadraticGame::Random({300, 517}, 5)) {}

  SessionConfig Config(AlgorithmKind kind, EstimatorKind estimator,
                       Compression c, DType dtype) {
    SessionConfig config = QuadraticConfig(game_, kind, 0.01);
    config.dtype = dtype;
    config.workers_per_round = 2;
    config.samples_per_worker = 2;
    config.algorithm.estimator = estimator;
    config.algorithm.gamma = 0.5;
    config.wire.from_workers = c;
    // Probes go out compressed too: referenced samples then give lazy
    // probes (lazy_probe.h), which must not change a value either.
    config.wire.to_workers = c;
    config.phase_deadline = absl::Seconds(10);
    return config;
  }

  // Probe k of `task` as a worker decodes it from the wire (the probes go
  // out in the wire's format, rounded to nearest): in that format already
  // when formed in a sample's bytes (estimator.h, FormProbesInPlace), else
  // its values encoded so and decoded.
  FlatVector WireProbe(const Task& task, int k) {
    const std::shared_ptr<const FlatVector> probe = task.Probe(k);
    FlatVector out = *probe;
    if (!task.packed_probes.empty() || wire_ == Compression::kNone) return out;
    const std::shared_ptr<const EncodedVector> e =
        EncodeVector(*probe, layout_, wire_, Rounding());
    size_t t = 0;
    for (const PlayerLayout& player : layout_.players()) {
      for (const TensorLayout& where : player.tensors) {
        const EncodedTensor& tensor = e->tensors[t++];
        const char* bytes = e->bytes.data() + tensor.offset;
        if (out.dtype() == DType::kFloat32) {
          Decode(tensor.compression, bytes, where.size,
                 out.as<float>().data() + where.offset);
        } else {
          Decode(tensor.compression, bytes, where.size,
                 out.as<double>().data() + where.offset);
        }
      }
    }
    return out;
  }

  // What a worker sends: xi or J_k^T w, plus noise, as float32 values.
  std::vector<float> Values(const Task& task, int k) {
    const Eigen::VectorXd x = ToEigen(*task.params);
    Eigen::VectorXd v;
    if (task.kind == Task::Kind::kGradient) {
      v = game_.Xi(x);
    } else {
      lazy_ += task.probes[k] == nullptr;
      in_place_ += !task.packed_probes.empty();
      v = (game_.J * (1.0 + 0.01 * k)).transpose() *
          ToEigen(WireProbe(task, k));
    }
    std::vector<float> out(v.size());
    for (int i = 0; i < v.size(); ++i) {
      out[i] = static_cast<float>(
          v(i) + 0.1 * std::sin(0.3 * i + task.worker_id + 7 * k + task.step));
    }
    return out;
  }

  enum class Mode { kCopied, kReferenced, kRaw, kDecoded };

  // Compressed submissions, kept by the session as copies or where they
  // are (with a keep_alive handle: the builder keeps the bytes through the
  // round); or their decoded values, raw in the session's `dtype` (kRaw,
  // referenced) or in the other dtype (kDecoded).
  Submission Answer(const Task& task, Compression c, DType dtype, Mode mode,
                    const std::shared_ptr<WireSampleBuilder>& builder,
                    const std::shared_ptr<std::deque<std::string>>& owned) {
    const bool decoded = mode == Mode::kRaw || mode == Mode::kDecoded;
    const DType raw = (mode == Mode::kRaw) == (dtype == DType::kFloat32)
                          ? DType::kFloat32
                          : DType::kFloat64;
    Submission s;
    // Referenced: the builder and `owned`, which own the bytes, are the
    // handle (the session's lazy probes hold it into the products round).
    if (mode == Mode::kReferenced || mode == Mode::kRaw) {
      s.keep_alive =
          std::make_shared<std::pair<std::shared_ptr<WireSampleBuilder>,
                                     std::shared_ptr<std::deque<std::string>>>>(
              builder, owned);
    }
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const bool gradient = task.kind == Task::Kind::kGradient;
    const int n =
        gradient ? task.num_samples : static_cast<int>(task.probes.size());
    std::vector<int> all;
    for (int p = 0; p < 2; ++p) all.push_back(p);
    for (int k = 0; k < n; ++k) {
      SampleView sample =
          builder->Make(c, Values(task, k), gradient ? task.players : all);
      if (decoded) {
        for (PlayerValues& player : sample) {
          for (TensorView& view : player.tensors) {
            const int64_t size = view.shape[0];
            std::string& bytes = owned->emplace_back(size * DTypeSize(raw), 0);
            if (raw == DType::kFloat32) {
              Decode(c, view.bytes.data(), size,
                     reinterpret_cast<float*>(bytes.data()));
            } else {
              Decode(c, view.bytes.data(), size,
                     reinterpret_cast<double*>(bytes.data()));
            }
            view.bytes = bytes;
            view.dtype = raw;
            view.compression = Compression::kNone;
          }
        }
      }
      (gradient ? s.gradients : s.vjp).push_back(sample);
    }
    return s;
  }

  std::string Play(SessionConfig config, Mode mode, int steps) {
    const Compression c = config.wire.from_workers;
    const DType dtype = config.dtype;
    wire_ = config.wire.to_workers;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    layout_ = (*session)->layout();
    std::vector<Task> tasks;
    for (int w = 0; w < 2; ++w) {
      Reply reply;
      (*session)->Join(0, "", reply.Callback());
      EXPECT_TRUE(reply.result.ok()) << reply.result.status();
      tasks.push_back(*reply.result);
    }
    while (tasks[0].kind != Task::Kind::kDone && tasks[0].step < steps) {
      auto builder = std::make_shared<WireSampleBuilder>((*session)->layout());
      auto owned = std::make_shared<std::deque<std::string>>();
      if (!PlayRound(**session, tasks, [&](const Task& task) {
            return Answer(task, c, dtype, mode, builder, owned);
          })) {
        return "";
      }
    }
    const ParametersSnapshot params = (*session)->Parameters();
    return std::string(static_cast<const char*>(params.values->data()),
                       params.values->bytes());
  }

  QuadraticGame game_;
  FakeClock clock_;
  int64_t lazy_ = 0;      // lazy or packed probes the workers were given
  int64_t in_place_ = 0;  // of those, packed (in a sample's bytes)
  GameLayout layout_;     // of the session played
  Compression wire_ = Compression::kNone;  // its wire to the workers
};

TEST_F(PackedSessionTest, PackedRunIsBitIdenticalToTheDecodedRun) {
  struct Case {
    AlgorithmKind kind;
    EstimatorKind estimator;
  };
  for (const Case& run :
       {Case{AlgorithmKind::kConOpt, EstimatorKind::kUnbiased},
        Case{AlgorithmKind::kConOpt, EstimatorKind::kPooled},
        Case{AlgorithmKind::kSimGd, EstimatorKind::kPooled}}) {
    for (Compression c : kWires) {
      for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
        SCOPED_TRACE(absl::StrCat(AlgorithmName(run.kind), " ",
                                  static_cast<int>(run.estimator), " ",
                                  CompressionName(c), " ", DTypeName(dtype)));
        const SessionConfig config = Config(run.kind, run.estimator, c, dtype);
        // 5 steps of 2 workers x 2 samples, and as many products (ConOpt).
        const int64_t per_step = run.kind == AlgorithmKind::kConOpt ? 8 : 4;
        int64_t before = PackedSamples();
        int64_t referenced_before = ReferencedSamples();
        lazy_ = 0;
        const std::string copied = Play(config, Mode::kCopied, 5);
        EXPECT_EQ(PackedSamples() - before, 5 * per_step);
        EXPECT_EQ(ReferencedSamples(), referenced_before);
        EXPECT_EQ(lazy_, 0);  // copies are not kept by probes
        // Referenced, compressed or raw: ConOpt's probes were lazy or in
        // the samples' bytes (5 steps x 4), and only there.
        std::string referenced[2];
        for (Mode mode : {Mode::kReferenced, Mode::kRaw}) {
          lazy_ = 0;
          in_place_ = 0;
          before = PackedSamples();
          referenced_before = ReferencedSamples();
          referenced[mode == Mode::kRaw] = Play(config, mode, 5);
          EXPECT_EQ(PackedSamples() - before, 5 * per_step);
          EXPECT_EQ(ReferencedSamples() - referenced_before, 5 * per_step);
          EXPECT_EQ(lazy_, run.kind == AlgorithmKind::kConOpt ? 20 : 0);
          // Unbiased probes in the samples' own bytes when those are in
          // the wire's format (never float16).
          const bool in_place = run.estimator == EstimatorKind::kUnbiased &&
                                mode == Mode::kReferenced &&
                                c != Compression::kFloat16;
          EXPECT_EQ(in_place_, in_place ? 20 : 0);
        }
        lazy_ = 0;
        before = PackedSamples();
        const std::string decoded = Play(config, Mode::kDecoded, 5);
        EXPECT_EQ(PackedSamples(), before);
        EXPECT_EQ(lazy_, 0);
        ASSERT_FALSE(copied.empty());
        EXPECT_TRUE(copied == decoded);
        EXPECT_TRUE(referenced[0] == decoded);
        EXPECT_TRUE(referenced[1] == decoded);
      }
    }
  }
}

}  // namespace
}  // namespace gameopt
