#include "server/core/krylov.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gameopt {

KrylovSolver::KrylovSolver(const KrylovOptions& options, double b_norm,
                           Eigen::VectorXd z0, Eigen::VectorXd r0)
    : options_(options), b_norm_(b_norm), z_(std::move(z0)) {
  residual_ = r0.norm();
  if (b_norm_ == 0.0) {  // A z = 0: z = 0
    z_.setZero();
    residual_ = 0.0;
  }
  if (b_norm_ == 0.0 || Small(residual_) || z_.size() == 0) {
    done_ = true;
    converged_ = true;
    return;
  }
  if (options_.method == KrylovMethod::kConjugateGradient) {
    rr_ = r0.squaredNorm();
    r_ = r0;
    request_ = std::move(r0);  // p_0 = r_0
    return;
  }
  const int m = options_.max_iterations;
  hessenberg_ = Eigen::MatrixXd::Zero(m + 1, m);
  cs_ = Eigen::VectorXd::Zero(m);
  sn_ = Eigen::VectorXd::Zero(m);
  g_ = Eigen::VectorXd::Zero(m + 1);
  g_(0) = residual_;
  basis_.push_back(r0 / residual_);
  request_ = basis_.back();
}

double KrylovSolver::relative_residual() const {
  return b_norm_ > 0.0 ? residual_ / b_norm_ : 0.0;
}

void KrylovSolver::Supply(const Eigen::VectorXd& product) {
  if (done_) return;
  ++iterations_;
  if (options_.method == KrylovMethod::kConjugateGradient) {
    SupplyCg(product);
  } else {
    SupplyGmres(product);
  }
}

void KrylovSolver::SupplyCg(const Eigen::VectorXd& ap) {
  const Eigen::VectorXd& p = request_;
  const double pap = p.dot(ap);
  if (!(pap > 0.0)) {  // not positive definite (or not finite): stop here
    done_ = true;
    return;
  }
  const double alpha = rr_ / pap;
  z_ += alpha * p;
  r_ -= alpha * ap;
  const double rr = r_.squaredNorm();
  residual_ = std::sqrt(rr);
  converged_ = Small(residual_);
  if (converged_ || iterations_ >= options_.max_iterations) {
    done_ = true;
    return;
  }
  request_ = r_ + (rr / rr_) * p;
  rr_ = rr;
}

void KrylovSolver::SupplyGmres(const Eigen::VectorXd& product) {
  const int j = iterations_ - 1;  // the column this product fills
  Eigen::VectorXd w = product;
  for (int i = 0; i <= j; ++i) {  // modified Gram-Schmidt
    hessenberg_(i, j) = basis_[i].dot(w);
    w -= hessenberg_(i, j) * basis_[i];
  }
  const double h = w.norm();
  hessenberg_(j + 1, j) = h;
  for (int i = 0; i < j; ++i) {  // earlier rotations on the new column
    const double a = hessenberg_(i, j), b = hessenberg_(i + 1, j);
    hessenberg_(i, j) = cs_(i) * a + sn_(i) * b;
    hessenberg_(i + 1, j) = -sn_(i) * a + cs_(i) * b;
  }
  const double a = hessenberg_(j, j), b = hessenberg_(j + 1, j);
  const double radius = std::hypot(a, b);
  if (!(radius > 0.0) || !std::isfinite(radius)) {  // singular or not finite
    iterations_ = j;                                // the column does not count
    FinishGmres();
    return;
  }
  cs_(j) = a / radius;
  sn_(j) = b / radius;
  hessenberg_(j, j) = radius;
  hessenberg_(j + 1, j) = 0.0;
  g_(j + 1) = -sn_(j) * g_(j);
  g_(j) = cs_(j) * g_(j);
  residual_ = std::abs(g_(j + 1));
  converged_ = Small(residual_);
  // h == 0: the Krylov space is invariant, the least-squares solution exact.
  if (converged_ || h == 0.0 || iterations_ >= options_.max_iterations) {
    if (h == 0.0) converged_ = true;
    FinishGmres();
    return;
  }
  basis_.push_back(w / h);
  request_ = basis_.back();
}

void KrylovSolver::FinishGmres() {
  const int k = iterations_;
  if (k > 0) {
    const Eigen::VectorXd y =
        hessenberg_.topLeftCorner(k, k).triangularView<Eigen::Upper>().solve(
            g_.head(k));
    for (int i = 0; i < k; ++i) z_ += y(i) * basis_[i];
  }
  basis_.clear();
  basis_.shrink_to_fit();
  done_ = true;
}

// Layout: [method, dimension, b_norm, done, converged, iterations, residual]
// then z; CG: rr, r, p; GMRES (while running): H, cs, sn, g, the basis.
std::vector<double> KrylovSolver::Export() const {
  std::vector<double> out = {
      options_.method == KrylovMethod::kGmres ? 1.0 : 0.0,
      static_cast<double>(z_.size()),
      b_norm_,
      done_ ? 1.0 : 0.0,
      converged_ ? 1.0 : 0.0,
      static_cast<double>(iterations_),
      residual_};
  auto append = [&out](const Eigen::VectorXd& v) {
    out.insert(out.end(), v.data(), v.data() + v.size());
  };
  append(z_);
  if (done_) return out;
  if (options_.method == KrylovMethod::kConjugateGradient) {
    out.push_back(rr_);
    append(r_);
    append(request_);
    return out;
  }
  out.insert(out.end(), hessenberg_.data(),
             hessenberg_.data() + hessenberg_.size());
  append(cs_);
  append(sn_);
  append(g_);
  for (const Eigen::VectorXd& v : basis_) append(v);
  return out;
}

absl::Status KrylovSolver::Import(absl::Span<const double> values,
                                  const KrylovOptions& options, int dimension,
                                  KrylovSolver* out) {
  const int64_t n = dimension;
  const int64_t m = options.max_iterations;
  constexpr int64_t kHeader = 7;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("Krylov solver state: ", why));
  };
  if (static_cast<int64_t>(values.size()) < kHeader + n) {
    return bad(absl::StrCat("has ", values.size(), " values, fewer than ",
                            kHeader + n));
  }
  const bool gmres = values[0] == 1.0;
  if (gmres != (options.method == KrylovMethod::kGmres) ||
      values[1] != static_cast<double>(n)) {
    return bad("method or dimension differ from the session's");
  }
  const double iterations = values[5];
  if (!(iterations >= 0 && iterations <= m)) {
    return bad(
        absl::StrCat("iterations ", iterations, " outside [0, ", m, "]"));
  }
  KrylovSolver s;
  s.options_ = options;
  s.b_norm_ = values[2];
  s.done_ = values[3] != 0.0;
  s.converged_ = values[4] != 0.0;
  s.iterations_ = static_cast<int>(iterations);
  s.residual_ = values[6];
  int64_t at = kHeader;
  auto take = [&](int64_t size) {
    Eigen::VectorXd v =
        Eigen::Map<const Eigen::VectorXd>(values.data() + at, size);
    at += size;
    return v;
  };
  s.z_ = take(n);
  int64_t expected = at;
  if (!s.done_) {
    if (!gmres) {
      expected += 1 + 2 * n;
    } else {
      expected += (m + 1) * m + 2 * m + (m + 1) + (s.iterations_ + 1) * n;
    }
  }
  if (static_cast<int64_t>(values.size()) != expected) {
    return bad(
        absl::StrCat("has ", values.size(), " values, expected ", expected));
  }
  if (!s.done_ && !gmres) {
    s.rr_ = values[at++];
    s.r_ = take(n);
    s.request_ = take(n);
  } else if (!s.done_) {
    s.hessenberg_ =
        Eigen::Map<const Eigen::MatrixXd>(values.data() + at, m + 1, m);
    at += (m + 1) * m;
    s.cs_ = take(m);
    s.sn_ = take(m);
    s.g_ = take(m + 1);
    for (int i = 0; i <= s.iterations_; ++i) s.basis_.push_back(take(n));
    s.request_ = s.basis_.back();
  }
  *out = std::move(s);
  return absl::OkStatus();
}

}  // namespace gameopt
