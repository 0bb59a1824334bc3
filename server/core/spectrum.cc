#include "server/core/spectrum.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "Eigen/Eigenvalues"
#include "Eigen/QR"
#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

// Below this fraction of its length before orthogonalization, a new Krylov
// vector is rounding noise: the space is invariant (Arnoldi breakdown).
constexpr double kBreakdown = 1e-12;
// Imaginary parts below this (relative to the modulus) are real eigenvalues.
constexpr double kRealTolerance = 1e-12;

bool IsReal(std::complex<double> z) {
  return std::abs(z.imag()) <= kRealTolerance * std::max(1.0, std::abs(z));
}

// Indices of the pair representatives (real values and the member of each
// conjugate pair with positive imaginary part), sorted by `key`, largest
// first; ties by real part, then imaginary part, largest first.
template <typename Key>
std::vector<int> SortedRepresentatives(const Eigen::VectorXcd& values,
                                       Key key) {
  std::vector<int> order;
  for (int i = 0; i < values.size(); ++i) {
    if (IsReal(values[i]) || values[i].imag() > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const std::complex<double> x = values[a], y = values[b];
    if (key(x) != key(y)) return key(x) > key(y);
    if (x.real() != y.real()) return x.real() > y.real();
    return x.imag() > y.imag();
  });
  return order;
}

}  // namespace

absl::StatusOr<ArnoldiDriver> ArnoldiDriver::Create(
    int64_t n, const SpectrumOptions& options) {
  if (n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the operator's dimension must be >= 1, got ", n));
  }
  if (options.k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be >= 1, got ", options.k));
  }
  if (options.krylov_dim < 0 || options.krylov_dim == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "krylov_dim must be 0 (automatic) or >= 2, got ", options.krylov_dim));
  }
  if (options.max_applications < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_applications must be >= 1, got ", options.max_applications));
  }
  if (!(options.tol > 0) || !std::isfinite(options.tol)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tol must be a positive number, got ", options.tol));
  }
  // Up to 3k (4k with smallest_real) wanted representatives, two
  // dimensions each.
  const int wanted = (options.smallest_real ? 8 : 6) * options.k;
  int64_t m = options.krylov_dim > 0 ? options.krylov_dim
                                     : std::max(40, 2 * wanted + 10);
  if (options.krylov_dim > 0 && options.krylov_dim < wanted + 2 &&
      options.krylov_dim < n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "krylov_dim ", options.krylov_dim, " leaves no room to restart with ",
        "the wanted Ritz vectors of k = ", options.k, "; use at least ",
        wanted + 2, " or 0"));
  }
  m = std::min(m, n);
  return ArnoldiDriver(n, options, static_cast<int>(m));
}

ArnoldiDriver::ArnoldiDriver(int64_t n, const SpectrumOptions& options, int m)
    : n_(n),
      options_(options),
      m_(m),
      rng_(options.seed),
      v_(Eigen::MatrixXd::Zero(n, m + 1)),
      h_(Eigen::MatrixXd::Zero(m + 1, m)) {
  options_.k = static_cast<int>(std::min<int64_t>(options_.k, n));
  v_.col(0) = RandomOrthogonal(0);
  Ask(0);
}

Eigen::VectorXd ArnoldiDriver::Orthogonalize(Eigen::VectorXd& w,
                                             int count) const {
  Eigen::VectorXd c = Eigen::VectorXd::Zero(count);
  if (count == 0) return c;
  const auto basis = v_.leftCols(count);
  for (int pass = 0; pass < 2; ++pass) {
    const Eigen::VectorXd d = basis.transpose() * w;
    w.noalias() -= basis * d;
    c += d;
  }
  return c;
}

Eigen::VectorXd ArnoldiDriver::RandomOrthogonal(int count) {
  std::normal_distribution<double> normal;
  Eigen::VectorXd w(n_);
  for (int attempt = 0; attempt < 10; ++attempt) {
    for (int64_t i = 0; i < n_; ++i) w[i] = normal(rng_);
    const double before = w.norm();
    Orthogonalize(w, count);
    if (w.norm() > 1e-6 * before) return w / w.norm();
  }
  return Eigen::VectorXd::Zero(n_);  // count == n_: nothing is left
}

void ArnoldiDriver::Ask(int index) {
  asked_ = index;
  request_ = v_.col(index);
}

absl::Status ArnoldiDriver::Provide(const Eigen::VectorXd& product) {
  if (done_) {
    return absl::FailedPreconditionError("the spectrum estimate is complete");
  }
  if (product.size() != n_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the product has ", product.size(), " coordinates, expected ", n_));
  }
  if (!product.allFinite()) {
    return absl::InvalidArgumentError("the product has a non-finite value");
  }
  ++result_.applications;
  const int j = asked_;
  Eigen::VectorXd w = product;
  const double before = w.norm();
  h_.col(j).head(j + 1) = Orthogonalize(w, j + 1);
  const double beta = w.norm();
  const bool breakdown = beta <= kBreakdown * before;
  h_(j + 1, j) = breakdown ? 0.0 : beta;
  if (j + 1 < n_) {
    // On breakdown the space is invariant: carry on in a fresh direction.
    v_.col(j + 1) = breakdown ? RandomOrthogonal(j + 1) : w / beta;
  }
  if (j + 1 == m_ || result_.applications >= options_.max_applications) {
    EndCycle(j + 1);
  } else {
    Ask(j + 1);
  }
  return absl::OkStatus();
}

void ArnoldiDriver::EndCycle(int size) {
  const Eigen::MatrixXd h = h_.topLeftCorner(size, size);
  const double beta = std::abs(h_(size, size - 1));
  Eigen::EigenSolver<Eigen::MatrixXd> solver(h, /*computeEigenvectors=*/true);
  const Eigen::VectorXcd values = solver.eigenvalues();
  const Eigen::MatrixXcd vectors = solver.eigenvectors();  // unit columns
  // |f| |e_m^T y| keeps shrinking once a value has converged, far below
  // what float64 products can resolve: report at least the rounding floor.
  const double floor = std::numeric_limits<double>::epsilon() * h.norm();
  auto ritz = [&](int i) {
    return RitzValue{values[i],
                     std::max(floor, beta * std::abs(vectors(size - 1, i)))};
  };
  std::vector<std::vector<int>> orders = {
      SortedRepresentatives(values, [](auto z) { return z.real(); }),
      SortedRepresentatives(values, [](auto z) { return z.imag(); }),
      SortedRepresentatives(values, [](auto z) { return std::abs(z); })};
  if (options_.smallest_real) {
    orders.push_back(
        SortedRepresentatives(values, [](auto z) { return -z.real(); }));
  }
  // Real reports list both members of a pair; largest_imag only the upper.
  auto report = [&](const std::vector<int>& order, bool with_conjugates) {
    std::vector<RitzValue> out;
    for (int i : order) {
      if (static_cast<int>(out.size()) >= options_.k) break;
      out.push_back(ritz(i));
      if (with_conjugates && !IsReal(values[i]) &&
          static_cast<int>(out.size()) < options_.k) {
        out.push_back(RitzValue{std::conj(values[i]), out.back().residual});
      }
    }
    return out;
  };
  result_.largest_real = report(orders[0], true);
  result_.largest_imag = report(orders[1], false);
  result_.largest_modulus = report(orders[2], true);
  if (options_.smallest_real) result_.smallest_real = report(orders[3], true);

  result_.converged = true;
  for (const auto* group : {&result_.largest_real, &result_.largest_imag,
                            &result_.largest_modulus, &result_.smallest_real}) {
    for (const RitzValue& r : *group) {
      if (r.residual > std::max(options_.tol * std::abs(r.value), floor)) {
        result_.converged = false;
      }
    }
  }
  // With m = n the decomposition is complete: more cycles cannot help.
  if (result_.converged || m_ == n_ ||
      result_.applications >= options_.max_applications) {
    done_ = true;
    return;
  }
  // Keep the wanted representatives (the first k of each order), then fill
  // up to about half the basis with the next ones, round-robin.
  const int target = std::max(m_ / 2, 1);
  std::vector<int> keep;
  int dims = 0;
  for (int rank = 0; rank < size; ++rank) {
    for (const std::vector<int>& order : orders) {
      if (rank >= static_cast<int>(order.size())) continue;
      const int i = order[rank];
      if (std::find(keep.begin(), keep.end(), i) != keep.end()) continue;
      const int size = IsReal(values[i]) ? 1 : 2;
      if (rank >= options_.k && dims + size > target) continue;
      if (dims + size > m_ - 2) continue;
      keep.push_back(i);
      dims += size;
    }
  }
  Restart(vectors, keep);
}

void ArnoldiDriver::Restart(const Eigen::MatrixXcd& vectors,
                            const std::vector<int>& keep) {
  // A real basis of the kept Ritz vectors' span: real and imaginary parts.
  std::vector<Eigen::VectorXd> columns;
  for (int i : keep) {
    columns.push_back(vectors.col(i).real());
    if (vectors.col(i).imag().norm() > kRealTolerance) {
      columns.push_back(vectors.col(i).imag());
    }
  }
  Eigen::MatrixXd y(m_, columns.size());
  for (size_t c = 0; c < columns.size(); ++c) y.col(c) = columns[c];
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(y);
  const int p = static_cast<int>(qr.rank());
  const Eigen::MatrixXd w =
      (qr.householderQ() * Eigen::MatrixXd::Identity(m_, p));
  // A V_m W = V_m W S + f e_m^T W with S = W^T H W (span W is invariant).
  const Eigen::MatrixXd s = w.transpose() * h_.topLeftCorner(m_, m_) * w;
  const Eigen::RowVectorXd b = h_(m_, m_ - 1) * w.row(m_ - 1);
  const Eigen::MatrixXd kept = v_.leftCols(m_) * w;
  v_.leftCols(p) = kept;
  v_.col(p) = v_.col(m_);
  h_.setZero();
  h_.topLeftCorner(p, p) = s;
  h_.row(p).head(p) = b;
  ++result_.restarts;
  Ask(p);
}

absl::StatusOr<SpectrumEstimate> EstimateSpectrum(
    int64_t n, const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& op,
    const SpectrumOptions& options) {
  absl::StatusOr<ArnoldiDriver> driver = ArnoldiDriver::Create(n, options);
  if (!driver.ok()) return driver.status();
  while (!driver->done()) {
    absl::Status status = driver->Provide(op(driver->request()));
    if (!status.ok()) return status;
  }
  return driver->Result();
}

}  // namespace gameopt
