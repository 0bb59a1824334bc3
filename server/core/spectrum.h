// Spectrum estimation of a real linear operator A (n x n) that is only known
// through products A v: restarted Arnoldi as a state machine.
//
// The operator here is the game Jacobian J = d xi / d x, or the Jacobian of
// the field an algorithm follows (ConOpt: J + gamma J^T J). Its products
// come from workers, asynchronously, one round at a time, so the driver does
// not call the operator: it says which vector it needs multiplied
// (request()) and takes the answer (Provide()), until done(). Everything is
// float64 whatever the session's dtype.
//
// Method: Arnoldi with thick restarts (Krylov-Schur equivalent). A cycle
// extends an orthonormal basis V (two passes of classical Gram-Schmidt) to
// m vectors with A V_m = V_m H + f e_m^T. The Ritz values are the
// eigenvalues of the small m x m matrix H (Eigen::EigenSolver); Ritz pair
// (theta, y) has residual |A V y - theta V y| = |f| |e_m^T y| (V y of unit
// norm). If the wanted Ritz values have not converged, the restart keeps an
// orthonormal real basis W of their eigenvectors (both members of each
// conjugate pair) and continues from V_m W, with H's top-left block
// W^T H W and the row |f| e_m^T W. Wanted: the k of largest real part, the
// k of largest imaginary part and the k of largest modulus (and, as an
// option, the k of smallest real part). Residuals are
// reported no smaller than the rounding floor eps |H|_F (the estimate keeps
// shrinking past what float64 products resolve). Converged when each wanted
// Ritz value's residual <= max(tol |theta|, eps |H|_F): relative to the
// value, or at the floor for values near 0. When the Krylov space becomes
// invariant before n vectors
// (|f| ~ 0), the basis continues from a fresh random vector, so every
// eigenvalue can be reached; with m = n the result is a dense
// decomposition.
//
// Sign convention: the eigenvalues of A as given (players minimize, so
// positive real parts of J attract simultaneous descent).
//
// Not thread-safe.
#ifndef GAMEOPT_SERVER_CORE_SPECTRUM_H_
#define GAMEOPT_SERVER_CORE_SPECTRUM_H_

#include <complex>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gameopt {

struct SpectrumOptions {
  // How many eigenvalues of each kind to report, >= 1 (clamped to n).
  int k = 3;
  // Krylov basis size per cycle; 0 = automatic: max(40, 2 * wanted + 10)
  // clamped to n, where wanted <= 6k counts the wanted values with their
  // conjugates.
  int krylov_dim = 0;
  // Budget of operator applications (products A v), >= 1. The estimate
  // stops unconverged past it.
  int max_applications = 1000;
  // Relative residual at which a Ritz value counts as converged, > 0.
  double tol = 1e-10;
  // Seeds the random starting vector.
  uint64_t seed = 1;
  // Also want the k of smallest real part (SpectrumEstimate::smallest_real).
  bool smallest_real = false;
};

// An eigenvalue estimate and |A x - theta x| for its unit Ritz vector x.
struct RitzValue {
  std::complex<double> value;
  double residual = 0.0;
};

struct SpectrumEstimate {
  // Each sorted by its key, largest first; at most k values each. Complex
  // eigenvalues of a real operator come in conjugate pairs, so
  // largest_imag holds those with the largest (non-negative) imaginary
  // parts.
  std::vector<RitzValue> largest_real;
  std::vector<RitzValue> largest_imag;
  std::vector<RitzValue> largest_modulus;
  // With SpectrumOptions::smallest_real: the k of smallest real part,
  // smallest first (both members of a conjugate pair), else empty. These
  // decide stability under descent (players minimize: an eigenvalue with a
  // negative real part repels). Arnoldi on A finds them as it finds the
  // largest: they are extreme too, and the Krylov space of A is that of the
  // shifted operator sigma I - A for every sigma, whose largest real parts
  // they are (sigma - lambda), with the same Ritz vectors and residuals;
  // so no shift and no extra product is needed.
  std::vector<RitzValue> smallest_real;
  int applications = 0;  // operator applications used
  int restarts = 0;
  bool converged = false;  // every reported value within tol
};

class ArnoldiDriver {
 public:
  // InvalidArgument names the bad option, or a dimension n < 1.
  static absl::StatusOr<ArnoldiDriver> Create(int64_t n,
                                              const SpectrumOptions& options);

  int64_t dimension() const { return n_; }
  // True once converged or out of budget; then Result() is final.
  bool done() const { return done_; }
  // The unit vector v whose product A v Provide() wants. Not done() only.
  const Eigen::VectorXd& request() const { return request_; }
  // Takes A v for v = request(). InvalidArgument on a wrong size or a
  // non-finite value (the state is unchanged); FailedPrecondition when
  // done().
  absl::Status Provide(const Eigen::VectorXd& product);
  // The current Ritz values (final once done()).
  SpectrumEstimate Result() const { return result_; }

 private:
  ArnoldiDriver(int64_t n, const SpectrumOptions& options, int m);

  // Removes from w its components along the first `count` basis vectors
  // (two Gram-Schmidt passes); returns the coefficients.
  Eigen::VectorXd Orthogonalize(Eigen::VectorXd& w, int count) const;
  // A random unit vector orthogonal to the first `count` basis vectors.
  Eigen::VectorXd RandomOrthogonal(int count);
  // Makes column `index` of the basis the next vector to multiply.
  void Ask(int index);
  // The first `size` products are in (size = m_ unless out of budget):
  // Ritz values, convergence, restart.
  void EndCycle(int size);
  // Thick restart on the Ritz vectors of `keep` (indices into the
  // eigen-decomposition of the m x m projected matrix).
  void Restart(const Eigen::MatrixXcd& vectors, const std::vector<int>& keep);

  int64_t n_;
  SpectrumOptions options_;
  int m_;  // Krylov basis size per cycle, <= n_
  std::mt19937_64 rng_;
  // Orthonormal basis, n x (m_ + 1); (m_ + 1) n doubles of memory.
  Eigen::MatrixXd v_;
  int asked_ = 0;      // the column of v_ whose product is awaited
  Eigen::MatrixXd h_;  // (m_ + 1) x m_ projected operator
  Eigen::VectorXd request_;
  SpectrumEstimate result_;
  bool done_ = false;
};

// Runs the driver to the end with a synchronous operator (tests, dense
// references).
absl::StatusOr<SpectrumEstimate> EstimateSpectrum(
    int64_t n, const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& op,
    const SpectrumOptions& options);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SPECTRUM_H_
