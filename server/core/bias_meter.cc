#include "server/core/bias_meter.h"

#include <limits>

#include "Eigen/Core"

namespace gameopt {
namespace {

Eigen::VectorXd ToDouble(const FlatVector& v) {
  if (v.dtype() == DType::kFloat32) return v.as<float>().cast<double>();
  return v.as<double>();
}

}  // namespace

std::optional<BiasMeterReading> MeasureBias(
    EstimatorKind estimator, absl::Span<const FlatVector* const> answers,
    absl::Span<const FlatVector* const> own) {
  const size_t num = answers.size();
  if (estimator == EstimatorKind::kLocal || num < 2 || own.size() != num) {
    return std::nullopt;
  }
  const double k = static_cast<double>(num);
  const int64_t d = answers[0]->size();
  Eigen::VectorXd pooled = Eigen::VectorXd::Zero(d);   // sum_k J_k^T S
  Eigen::VectorXd own_sum = Eigen::VectorXd::Zero(d);  // sum_k J_k^T xi_k
  for (size_t i = 0; i < num; ++i) {
    if (answers[i]->size() != d || own[i]->size() != d) return std::nullopt;
    const Eigen::VectorXd a = ToDouble(*answers[i]);
    const Eigen::VectorXd b = ToDouble(*own[i]);
    if (estimator == EstimatorKind::kPooled) {
      pooled += k * a;
    } else {
      pooled += (k - 1.0) * a + b;
    }
    own_sum += b;
  }
  // P = sum_k J_k^T S / K^2, U = (sum_k J_k^T S - sum_k J_k^T xi_k) /
  // (K (K - 1)).
  const Eigen::VectorXd p = pooled / (k * k);
  const Eigen::VectorXd u = (pooled - own_sum) / (k * (k - 1.0));
  BiasMeterReading reading;
  reading.bias_norm = (p - u).norm();
  reading.pooled_norm = p.norm();
  if (reading.pooled_norm > 0.0) {
    reading.relative_bias = reading.bias_norm / reading.pooled_norm;
  } else {
    reading.relative_bias =
        reading.bias_norm > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
  }
  return reading;
}

}  // namespace gameopt
