// ConOpt with the pooled estimator keeps its mean gradient in the probe
// (TypedAlgorithm::ShareMeanWithProbe): the probe S/K is the mean bit for
// bit, so one parameter-sized buffer holds both through the products
// phase, and the step writes its direction over it when nothing else holds
// it. These tests check that the buffer is shared, that a probe a
// transport still holds keeps its values (the direction then goes next to
// it), and that both ways, and a restore, give the same steps bit for bit.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/algorithm.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::ToEigen;

constexpr int kSamples = 3;

SessionConfig ConOptConfig(const QuadraticGame& game, EstimatorKind estimator,
                           DType dtype) {
  SessionConfig config = QuadraticConfig(game, AlgorithmKind::kConOpt);
  config.algorithm.estimator = estimator;
  config.workers_per_round = kSamples;
  config.dtype = dtype;
  return config;
}

FlatVector FromEigen(const Eigen::VectorXd& v, DType dtype) {
  FlatVector out(dtype, v.size());
  if (dtype == DType::kFloat64) {
    out.as<double>() = v;
  } else {
    out.as<float>() = v.cast<float>();
  }
  return out;
}

// Sample k's gradient at `point`, or its J^T w: the exact value plus a
// per-sample offset, so that the samples differ.
std::vector<FlatVector> Samples(const QuadraticGame& game,
                                const Eigen::VectorXd& exact, int round,
                                DType dtype) {
  std::vector<FlatVector> samples;
  for (int k = 0; k < kSamples; ++k) {
    Eigen::VectorXd v = exact;
    for (int i = 0; i < v.size(); ++i) {
      v(i) += 0.01 * std::sin(1.0 + i + 7.0 * k + 13.0 * round);
    }
    samples.push_back(FromEigen(v, dtype));
  }
  return samples;
}

std::vector<const FlatVector*> Pointers(const std::vector<FlatVector>& v) {
  std::vector<const FlatVector*> out;
  for (const FlatVector& f : v) out.push_back(&f);
  return out;
}

// The round's gradient samples at the algorithm's point.
std::vector<FlatVector> Gradients(const QuadraticGame& game,
                                  const Algorithm& algorithm, int round) {
  const Eigen::VectorXd point = ToEigen(*algorithm.point());
  return Samples(game, game.Xi(point), round, algorithm.parameters()->dtype());
}

// The round's products J^T w on each sample's probe.
std::vector<FlatVector> Products(const QuadraticGame& game,
                                 const Algorithm& algorithm, int round) {
  std::vector<FlatVector> out;
  for (int k = 0; k < kSamples; ++k) {
    const Eigen::VectorXd w = ToEigen(*algorithm.probes()[k]);
    out.push_back(Samples(game, game.J.transpose() * w, round,
                          algorithm.parameters()->dtype())[k]);
  }
  return out;
}

const FlatVector* Named(const AlgorithmState& state, const std::string& name) {
  for (const NamedVector& v : state.vectors) {
    if (v.name == name) return v.value.get();
  }
  return nullptr;
}

bool BitEqual(const FlatVector& a, const FlatVector& b) {
  return a.dtype() == b.dtype() && a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

// A float64 ConOpt session of `estimator` after its first gradient round,
// whose samples `samples` receives.
std::unique_ptr<Algorithm> AfterGradientRound(
    const QuadraticGame& game, EstimatorKind estimator,
    std::vector<FlatVector>* samples) {
  std::unique_ptr<Algorithm> algorithm =
      *Algorithm::Create(ConOptConfig(game, estimator, DType::kFloat64));
  *samples = Gradients(game, *algorithm, 0);
  EXPECT_TRUE(algorithm->CompleteGradient(Pointers(*samples)).ok());
  return algorithm;
}

TEST(PooledConOpt, TheProbeHoldsTheMeanGradient) {
  const QuadraticGame game = QuadraticGame::Random({3, 4}, 11);
  std::vector<FlatVector> samples;
  std::unique_ptr<Algorithm> algorithm =
      AfterGradientRound(game, EstimatorKind::kPooled, &samples);
  const AlgorithmState state = algorithm->ExportState();
  const FlatVector* xi = Named(state, "xi");
  const FlatVector* probe = Named(state, "probe");
  ASSERT_NE(xi, nullptr);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(xi, probe) << "the mean and the pooled probe are one buffer";
  EXPECT_EQ(algorithm->probes()[0].get(), xi);
  // S / K, summed in sample order as the kernels do.
  Eigen::VectorXd sum = samples[0].as<double>();
  for (int k = 1; k < kSamples; ++k) sum += samples[k].as<double>();
  const Eigen::VectorXd mean = sum / static_cast<double>(kSamples);
  EXPECT_TRUE(BitEqual(*xi, FromEigen(mean, DType::kFloat64)));
  // The gradient norms are read from the probe.
  const PlayerLayout& first = algorithm->layout().players()[0];
  EXPECT_NEAR(algorithm->stats().xi_norm[0],
              mean.segment(first.offset, first.size).norm(), 1e-12);
}

TEST(PooledConOpt, OtherEstimatorsKeepTheirOwnMean) {
  const QuadraticGame game = QuadraticGame::Random({3, 4}, 12);
  std::vector<FlatVector> samples;
  const AlgorithmState state =
      AfterGradientRound(game, EstimatorKind::kUnbiased, &samples)
          ->ExportState();
  EXPECT_NE(Named(state, "xi"), Named(state, "probe"));
}

// A runs alone; B's probe is held (as by a transport still sending it)
// through every products phase: B's direction goes next to it, A's over
// it. The held values must not change and both must step alike.
TEST(PooledConOpt, AHeldProbeKeepsItsValuesAndTheStepsAgree) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const QuadraticGame game = QuadraticGame::Random({3, 4}, 13);
    const SessionConfig config =
        ConOptConfig(game, EstimatorKind::kPooled, dtype);
    std::unique_ptr<Algorithm> a = *Algorithm::Create(config);
    std::unique_ptr<Algorithm> b = *Algorithm::Create(config);
    for (int round = 0; a->step() < 5; ++round) {
      ASSERT_EQ(a->phase().kind, b->phase().kind);
      if (a->phase().kind == PhaseSpec::Kind::kGradient) {
        const std::vector<FlatVector> samples = Gradients(game, *a, round);
        ASSERT_TRUE(a->CompleteGradient(Pointers(samples)).ok());
        ASSERT_TRUE(b->CompleteGradient(Pointers(samples)).ok());
        continue;
      }
      const std::vector<FlatVector> products = Products(game, *a, round);
      const std::shared_ptr<FlatVector> held = b->probes()[0];
      const FlatVector before = *held;
      ASSERT_TRUE(a->CompleteProducts(Pointers(products), {}).ok());
      ASSERT_TRUE(b->CompleteProducts(Pointers(products), {}).ok());
      EXPECT_TRUE(BitEqual(*held, before)) << "round " << round;
      EXPECT_TRUE(BitEqual(*a->parameters(), *b->parameters()))
          << "round " << round;
    }
  }
}

// A checkpoint of the products phase stores the shared buffer as both
// "xi" and "probe"; a restore from it steps as the original does.
TEST(PooledConOpt, ARestoreInTheProductsPhaseStepsAlike) {
  const QuadraticGame game = QuadraticGame::Random({3, 4}, 14);
  const SessionConfig config =
      ConOptConfig(game, EstimatorKind::kPooled, DType::kFloat64);
  std::unique_ptr<Algorithm> original = *Algorithm::Create(config);
  const std::vector<FlatVector> samples = Gradients(game, *original, 0);
  ASSERT_TRUE(original->CompleteGradient(Pointers(samples)).ok());
  std::unique_ptr<Algorithm> restored = *Algorithm::Create(config);
  {
    AlgorithmState state = original->ExportState();
    // Stored and read back as separate vectors, as a checkpoint file does.
    for (NamedVector& v : state.vectors) {
      v.value = std::make_shared<FlatVector>(*v.value);
    }
    ASSERT_TRUE(restored->ImportState(state).ok());
  }
  const std::vector<FlatVector> products = Products(game, *original, 1);
  ASSERT_TRUE(original->CompleteProducts(Pointers(products), {}).ok());
  ASSERT_TRUE(restored->CompleteProducts(Pointers(products), {}).ok());
  EXPECT_EQ(original->step(), 1);
  EXPECT_TRUE(BitEqual(*original->parameters(), *restored->parameters()));
}

}  // namespace
}  // namespace gameopt
