// Estimators of J^T xi on a stochastic quadratic game with known minibatch
// noise: J_k = J + N_k, xi_k = J_k x + c, N_k with iid N(0, s^2) entries.
// Then E[J_k^T xi_k] = J^T xi + d s^2 x (the local estimator's bias) while
// the leave-one-out estimator is unbiased.
#include "server/core/estimator.h"

#include <cstdio>
#include <random>

#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

constexpr int kDim = 3;
constexpr int kSamples = 4;    // K per round
constexpr int kTrials = 4000;  // Monte-Carlo rounds
constexpr double kNoise = 0.5;
// A deviation of more than 5 standard errors has probability ~6e-7 per
// coordinate; the seed is fixed, so the test is deterministic anyway.
constexpr double kSigmas = 5.0;

struct MonteCarlo {
  Eigen::VectorXd mean, standard_error;
};

MonteCarlo Simulate(EstimatorKind estimator, const Eigen::MatrixXd& J,
                    const Eigen::VectorXd& c, const Eigen::VectorXd& x) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0.0, kNoise);
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(kDim);
  Eigen::VectorXd sum_sq = Eigen::VectorXd::Zero(kDim);
  std::vector<FlatVector> xi(kSamples, FlatVector(DType::kFloat64, kDim));
  std::vector<Eigen::MatrixXd> jk(kSamples);
  std::vector<std::shared_ptr<FlatVector>> probes;
  for (int trial = 0; trial < kTrials; ++trial) {
    std::vector<const FlatVector*> samples;
    for (int k = 0; k < kSamples; ++k) {
      jk[k] = J;
      for (int i = 0; i < kDim * kDim; ++i) jk[k].data()[i] += noise(rng);
      xi[k].as<double>() = jk[k] * x + c;
      samples.push_back(&xi[k]);
    }
    EXPECT_TRUE(ComputeProbes<double>(estimator, samples, probes).ok());
    Eigen::VectorXd estimate = Eigen::VectorXd::Zero(kDim);
    for (int k = 0; k < kSamples; ++k) {
      estimate += jk[k].transpose() * probes[k]->as<double>();
    }
    estimate /= kSamples;
    sum += estimate;
    sum_sq += estimate.cwiseAbs2();
  }
  MonteCarlo mc;
  mc.mean = sum / kTrials;
  const Eigen::VectorXd variance =
      (sum_sq / kTrials - mc.mean.cwiseAbs2()) * kTrials / (kTrials - 1);
  mc.standard_error = (variance / kTrials).cwiseSqrt();
  return mc;
}

TEST(Estimators, UnbiasedMatchesMeanFieldGradientLocalShowsItsBias) {
  Eigen::MatrixXd J(kDim, kDim);
  J << 1.0, 0.5, -0.3, -0.5, 0.8, 0.2, 0.3, -0.2, 1.2;
  const Eigen::VectorXd c = Eigen::Vector3d(0.1, -0.2, 0.3);
  const Eigen::VectorXd x = Eigen::Vector3d(1.0, 1.0, 1.0);
  const Eigen::VectorXd truth = J.transpose() * (J * x + c);  // E[J]^T E[xi]
  const Eigen::VectorXd bias = kDim * kNoise * kNoise * x;

  const MonteCarlo unbiased = Simulate(EstimatorKind::kUnbiased, J, c, x);
  const MonteCarlo pooled = Simulate(EstimatorKind::kPooled, J, c, x);
  const MonteCarlo local = Simulate(EstimatorKind::kLocal, J, c, x);
  for (const auto& [name, mc] : {std::pair{"unbiased", unbiased},
                                 {"pooled", pooled},
                                 {"local", local}}) {
    std::printf("%-9s mean - truth = [% .4f % .4f % .4f]  (std. error %.4f)\n",
                name, mc.mean(0) - truth(0), mc.mean(1) - truth(1),
                mc.mean(2) - truth(2), mc.standard_error.maxCoeff());
  }
  std::printf(
      "predicted local bias d*s^2*x = %.4f per coordinate; pooled "
      "bias is 1/K of it = %.4f\n",
      bias(0), bias(0) / kSamples);
  for (int i = 0; i < kDim; ++i) {
    EXPECT_LT(std::abs(unbiased.mean(i) - truth(i)),
              kSigmas * unbiased.standard_error(i))
        << "coordinate " << i;
    // The local estimator's bias stands far out of its noise.
    EXPECT_GT(std::abs(local.mean(i) - truth(i)), 20 * local.standard_error(i))
        << "coordinate " << i;
    // The local estimator's bias is the predicted one.
    EXPECT_LT(std::abs(local.mean(i) - truth(i) - bias(i)),
              kSigmas * local.standard_error(i));
    // Pooling over K samples shrinks it to 1/K.
    EXPECT_LT(std::abs(pooled.mean(i) - truth(i) - bias(i) / kSamples),
              kSigmas * pooled.standard_error(i));
  }
}

TEST(Estimators, UnbiasedWithOneSampleIsAnErrorThatSaysHowToFixIt) {
  FlatVector sample(DType::kFloat64, 2);
  const FlatVector* samples[] = {&sample};
  std::vector<std::shared_ptr<FlatVector>> probes;
  const absl::Status status =
      ComputeProbes<double>(EstimatorKind::kUnbiased, samples, probes);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("samples_per_worker >= 2"),
            absl::string_view::npos)
      << status;
}

TEST(Estimators, ProbeBuffersAreReusedUnlessSomeoneHoldsThem) {
  FlatVector a(DType::kFloat64, 2), b(DType::kFloat64, 2);
  const FlatVector* samples[] = {&a, &b};
  std::vector<std::shared_ptr<FlatVector>> probes;
  ASSERT_TRUE(
      ComputeProbes<double>(EstimatorKind::kUnbiased, samples, probes).ok());
  const FlatVector* first = probes[0].get();
  std::shared_ptr<const FlatVector> held = probes[1];  // a transport sending
  ASSERT_TRUE(
      ComputeProbes<double>(EstimatorKind::kUnbiased, samples, probes).ok());
  EXPECT_EQ(probes[0].get(), first);       // reused in place
  EXPECT_NE(probes[1].get(), held.get());  // copied: the holder's is intact
}

TEST(Estimators, ThePooledProbeIsOneBufferForEverySample) {
  FlatVector a(DType::kFloat64, 2), b(DType::kFloat64, 2),
      c(DType::kFloat64, 2);
  a.as<double>() << 1, 2;
  b.as<double>() << 3, 4;
  c.as<double>() << 5, 9;
  const FlatVector* samples[] = {&a, &b, &c};
  std::vector<std::shared_ptr<FlatVector>> probes;
  ASSERT_TRUE(
      ComputeProbes<double>(EstimatorKind::kPooled, samples, probes).ok());
  ASSERT_EQ(probes.size(), 3u);
  EXPECT_EQ(probes[1], probes[0]);
  EXPECT_EQ(probes[2], probes[0]);
  const FlatVector* first = probes[0].get();
  // Computed again: the same buffer, in place.
  ASSERT_TRUE(
      ComputeProbes<double>(EstimatorKind::kPooled, samples, probes).ok());
  EXPECT_EQ(probes[0].get(), first);
  // A transport still sending it keeps its values; the probes move on.
  std::shared_ptr<const FlatVector> held = probes[2];
  a.as<double>() << 4, 5;
  ASSERT_TRUE(
      ComputeProbes<double>(EstimatorKind::kPooled, samples, probes).ok());
  EXPECT_NE(probes[0].get(), held.get());
  EXPECT_EQ(probes[1], probes[0]);
  EXPECT_EQ(probes[2], probes[0]);
  EXPECT_EQ(held->as<double>()(0), 3.0);       // (1 + 3 + 5) / 3
  EXPECT_EQ(probes[0]->as<double>()(0), 4.0);  // (4 + 3 + 5) / 3
}

}  // namespace
}  // namespace gameopt
