// Lazy probes (lazy_probe.h): formed from the round's packed samples, they
// must be ComputeProbes' probes bit for bit, and their encodings (made in
// FormProbes' pass, or from their values for a stochastic stream) must be
// EncodeVector's bytes for those probes.
#include "server/core/lazy_probe.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "server/core/estimator.h"
#include "server/core/submission.h"
#include "server/core/wire_vector.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::ThreePlayers;

// K packed samples (referencing `bytes`) and the same samples decoded.
struct Samples {
  std::shared_ptr<testing::WireSampleBuilder> builder;
  std::vector<PackedVector> packed;
  std::vector<FlatVector> dense;
  std::vector<const FlatVector*> dense_ptrs, no_dense;
  std::vector<const PackedVector*> packed_ptrs;

  Samples(const GameLayout& layout, Compression c, DType dtype, int num,
          float scale)
      : builder(std::make_shared<testing::WireSampleBuilder>(layout)) {
    packed.resize(num);
    dense.resize(num);
    for (int k = 0; k < num; ++k) {
      const SampleView sample = builder->Make(
          c, testing::Wave(layout.dimension(), scale, 0.9f * k), {0, 1, 2});
      // Referenced: the builder owns the bytes.
      EXPECT_TRUE(PackSample(sample, layout, {0, 1, 2}, "g", packed[k], c,
                             dtype, builder)
                      .ok());
      EXPECT_TRUE(
          DecodeSample(sample, layout, {0, 1, 2}, dtype, "g", dense[k], c)
              .ok());
    }
    for (int k = 0; k < num; ++k) {
      dense_ptrs.push_back(&dense[k]);
      no_dense.push_back(nullptr);
      packed_ptrs.push_back(&packed[k]);
    }
  }
  SampleSet Packed() const { return SampleSet(no_dense, packed_ptrs); }
};

bool SameBytes(const FlatVector& a, const FlatVector& b) {
  return a.bytes() == b.bytes() &&
         std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

// The bytes a task would carry for an encoded vector, tensor by tensor.
std::string Wire(const EncodedVector& e) {
  std::string out;
  for (const EncodedTensor& t : e.tensors) {
    out += absl::StrCat(static_cast<int>(t.compression), ":");
    if (t.compression != Compression::kNone)
      out.append(e.bytes, t.offset, t.size);
  }
  return out;
}

template <typename T>
void ExpectProbesMatch(Compression c, EstimatorKind estimator) {
  SCOPED_TRACE(absl::StrCat(CompressionName(c), " ", sizeof(T), " ",
                            static_cast<int>(estimator)));
  const GameLayout layout = ThreePlayers();
  const DType dtype = sizeof(T) == 4 ? DType::kFloat32 : DType::kFloat64;
  const Samples s(layout, c, dtype, 3, 2.0f);
  std::vector<std::shared_ptr<FlatVector>> eager;
  Vec<T> eager_mean, lazy_mean;
  ASSERT_TRUE(
      ComputeProbes<T>(estimator, s.dense_ptrs, eager, &eager_mean).ok());
  std::vector<std::shared_ptr<const LazyProbe>> lazy;
  ASSERT_TRUE(
      FormProbes<T>(estimator, s.Packed(), layout, c, lazy_mean, lazy).ok());
  ASSERT_EQ(lazy.size(), 3u);
  EXPECT_EQ(std::memcmp(eager_mean.data(), lazy_mean.data(),
                        eager_mean.size() * sizeof(T)),
            0);
  Rounding stochastic;
  stochastic.stochastic = true;
  stochastic.seed = 77;
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_TRUE(SameBytes(*lazy[k]->Materialize(), *eager[k])) << k;
    for (const Rounding& r : {Rounding(), stochastic}) {
      const auto want = EncodeVector(*eager[k], layout, c, r);
      const auto got = lazy[k]->Encode(layout, c, r);
      EXPECT_EQ(Wire(*got), Wire(*want)) << k << " " << r.stochastic;
    }
  }
}

TEST(LazyProbe, AreComputeProbesProbesAndEncodeAlike) {
  for (Compression c : {Compression::kBFloat16, Compression::kFloat16,
                        Compression::kInt8Block}) {
    for (EstimatorKind e : {EstimatorKind::kPooled, EstimatorKind::kUnbiased}) {
      ExpectProbesMatch<float>(c, e);
      ExpectProbesMatch<double>(c, e);
    }
  }
}

// FormProbes' encodings are held until each probe has been encoded once
// (the round's tasks), then only while someone else holds them: a later
// Encode gets the same vector while it is alive, else the same bytes
// encoded again.
TEST(LazyProbe, EncodingsAreLetGoOnceEveryProbeHasHadOne) {
  const GameLayout layout = ThreePlayers();
  const Compression c = Compression::kInt8Block;
  const Samples s(layout, c, DType::kFloat32, 3, 2.0f);
  for (EstimatorKind e : {EstimatorKind::kPooled, EstimatorKind::kUnbiased}) {
    SCOPED_TRACE(static_cast<int>(e));
    std::vector<std::shared_ptr<const LazyProbe>> lazy;
    Vec<float> mean;
    ASSERT_TRUE(FormProbes<float>(e, s.Packed(), layout, c, mean, lazy).ok());
    std::vector<std::shared_ptr<const EncodedVector>> sent;
    std::vector<const EncodedVector*> first;
    for (size_t k = 0; k < 3; ++k) {
      sent.push_back(lazy[k]->Encode(layout, c, Rounding()));
      first.push_back(sent[k].get());
    }
    if (e == EstimatorKind::kPooled) {  // one encoding for all
      EXPECT_EQ(first[0], first[1]);
      EXPECT_EQ(first[1], first[2]);
    }
    // Still being sent: the same vector.
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(lazy[k]->Encode(layout, c, Rounding()).get(), first[k]);
    }
    std::vector<std::string> bytes;
    for (const auto& v : sent) bytes.push_back(Wire(*v));
    const std::weak_ptr<const EncodedVector> gone = sent[0];
    sent.clear();
    EXPECT_TRUE(gone.expired());  // the round no longer holds it
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(Wire(*lazy[k]->Encode(layout, c, Rounding())), bytes[k]) << k;
    }
  }
}

// Probes past float16's range (bfloat16 samples of 1e5): those tensors are
// marked to go uncompressed, as EncodeVector marks them.
TEST(LazyProbe, ATensorThatDoesNotFitIsMarkedAsEncodeVectorMarksIt) {
  const GameLayout layout = ThreePlayers();
  const Samples s(layout, Compression::kBFloat16, DType::kFloat32, 2, 1e5f);
  std::vector<std::shared_ptr<const LazyProbe>> lazy;
  Vec<float> mean;
  ASSERT_TRUE(FormProbes<float>(EstimatorKind::kUnbiased, s.Packed(), layout,
                                Compression::kFloat16, mean, lazy)
                  .ok());
  for (size_t k = 0; k < 2; ++k) {
    const auto want = EncodeVector(*lazy[k]->Materialize(), layout,
                                   Compression::kFloat16, Rounding());
    const auto got = lazy[k]->Encode(layout, Compression::kFloat16, Rounding());
    EXPECT_EQ(Wire(*got), Wire(*want));
    int unfit = 0;
    for (const EncodedTensor& t : got->tensors) {
      unfit += t.compression == Compression::kNone;
    }
    EXPECT_GT(unfit, 0);
  }
}

TEST(LazyProbe, TooFewSamplesAreRefusedAsComputeProbesRefusesThem) {
  const GameLayout layout = ThreePlayers();
  const Samples s(layout, Compression::kInt8Block, DType::kFloat32, 1, 1.0f);
  std::vector<std::shared_ptr<FlatVector>> eager;
  const absl::Status want =
      ComputeProbes<float>(EstimatorKind::kUnbiased, s.dense_ptrs, eager);
  std::vector<std::shared_ptr<const LazyProbe>> lazy;
  Vec<float> mean;
  const absl::Status got =
      FormProbes<float>(EstimatorKind::kUnbiased, s.Packed(), layout,
                        Compression::kInt8Block, mean, lazy);
  EXPECT_FALSE(got.ok());
  EXPECT_EQ(got, want);
  EXPECT_TRUE(lazy.empty());
}

// ConOpt's state in its products phase holds the probes as vectors: the
// lazy ones formed in full, equal to the stored ones of a decoding run.
TEST(LazyProbe, ConOptExportsTheProbesItWouldHaveStored) {
  const GameLayout layout = ThreePlayers();
  for (EstimatorKind e : {EstimatorKind::kPooled, EstimatorKind::kUnbiased}) {
    SessionConfig config;
    config.dtype = DType::kFloat32;
    config.algorithm.kind = AlgorithmKind::kConOpt;
    config.algorithm.estimator = e;
    config.workers_per_round = 3;
    config.wire.from_workers = Compression::kInt8Block;
    config.wire.to_workers = Compression::kInt8Block;
    // Unbiased probes rounded to nearest are formed in the samples' bytes
    // (probes_in_place_test.cc); stochastic ones stay lazy.
    config.wire.stochastic_rounding = true;
    for (const PlayerLayout& player : layout.players()) {
      PlayerConfig p;
      p.name = player.name;
      TensorConfig t;
      t.name = player.tensors[0].name;
      t.shape = player.tensors[0].shape;
      p.tensors.push_back(t);
      config.players.push_back(p);
    }
    auto lazy = Algorithm::Create(config);
    auto eager = Algorithm::Create(config);
    ASSERT_TRUE(lazy.ok() && eager.ok()) << lazy.status() << eager.status();
    const Samples s(layout, Compression::kInt8Block, DType::kFloat32, 3, 1.0f);
    ASSERT_TRUE((*lazy)->CompleteGradient(s.Packed()).ok());
    ASSERT_TRUE((*eager)->CompleteGradient(s.dense_ptrs).ok());
    ASSERT_EQ((*lazy)->lazy_probes().size(), 3u);
    EXPECT_TRUE((*eager)->lazy_probes().empty());
    const AlgorithmState a = (*lazy)->ExportState();
    const AlgorithmState b = (*eager)->ExportState();
    ASSERT_EQ(a.vectors.size(), b.vectors.size());
    int probes = 0;
    for (size_t i = 0; i < a.vectors.size(); ++i) {
      EXPECT_EQ(a.vectors[i].name, b.vectors[i].name);
      EXPECT_TRUE(SameBytes(*a.vectors[i].value, *b.vectors[i].value))
          << a.vectors[i].name;
      probes += a.vectors[i].name == "probe";
    }
    EXPECT_EQ(probes, 3);
  }
}

}  // namespace
}  // namespace gameopt
