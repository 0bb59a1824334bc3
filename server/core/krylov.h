// KrylovSolver: conjugate gradient and GMRES for A z = b in reverse
// communication: the solver asks for one product A v at a time and is fed
// the answer, so a caller whose products come from elsewhere (the workers'
// product rounds, for competitive gradient descent) drives it step by step.
//
//   KrylovSolver solver(options, b.norm(), z0, b - A z0);
//   while (!solver.done()) solver.Supply(A * solver.request());
//   use solver.solution();
//
// Warm start: z0 is any starting guess; the caller passes its TRUE residual
// r0 = b - A z0 (starting from r0 = b with z0 != 0 solves for a different
// right-hand side). Stops when |r_k| <= tolerance * |b| (the recursively
// updated residual; exact in exact arithmetic), after max_iterations
// products, or at a breakdown (CG: p^T A p <= 0, A is not positive
// definite; GMRES: an exact invariant subspace, which means the solution is
// exact). b = 0 gives z = 0 at once.
//
// kConjugateGradient needs A symmetric positive definite; kGmres any
// nonsingular A, keeping max_iterations + 1 basis vectors (no restart).
// Float64 throughout. Not thread-safe.
#ifndef GAMEOPT_SERVER_CORE_KRYLOV_H_
#define GAMEOPT_SERVER_CORE_KRYLOV_H_

#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace gameopt {

enum class KrylovMethod { kConjugateGradient, kGmres };

struct KrylovOptions {
  KrylovMethod method = KrylovMethod::kGmres;
  double tolerance = 1e-8;  // relative to |b|, >= 0
  int max_iterations = 50;  // products of A after the start, >= 1
};

class KrylovSolver {
 public:
  // `r0` = b - A z0, the same size as z0.
  KrylovSolver(const KrylovOptions& options, double b_norm, Eigen::VectorXd z0,
               Eigen::VectorXd r0);

  bool done() const { return done_; }
  // The vector v whose product A v the solver wants next (while !done()).
  const Eigen::VectorXd& request() const { return request_; }
  // Feeds A request(); may finish the solve.
  void Supply(const Eigen::VectorXd& product);
  // The current iterate (CG), or the final one once done (GMRES; before
  // that the start z0).
  const Eigen::VectorXd& solution() const { return z_; }
  // Products of A consumed so far (not counting the caller's A z0).
  int iterations() const { return iterations_; }
  // |r_k| / |b| of the current iterate (0 when b = 0).
  double relative_residual() const;
  bool converged() const { return converged_; }

  // The whole state as float64 values, for checkpoints; Import restores
  // it into a solver of the same dimension and options. InvalidArgument
  // when the values do not fit (size, method, dimension).
  std::vector<double> Export() const;
  static absl::Status Import(absl::Span<const double> values,
                             const KrylovOptions& options, int dimension,
                             KrylovSolver* out);

 private:
  KrylovSolver() = default;
  void SupplyCg(const Eigen::VectorXd& product);
  void SupplyGmres(const Eigen::VectorXd& product);
  void FinishGmres();
  bool Small(double residual) const {
    return residual <= options_.tolerance * b_norm_;
  }

  KrylovOptions options_;
  double b_norm_ = 0.0;
  bool done_ = false;
  bool converged_ = false;
  int iterations_ = 0;
  double residual_ = 0.0;  // |r_k|
  Eigen::VectorXd z_;
  Eigen::VectorXd request_;
  // CG
  Eigen::VectorXd r_;
  double rr_ = 0.0;
  // GMRES: basis V (columns 0..iterations_), Hessenberg H after the Givens
  // rotations (upper triangular in its leading block), rotations (c, s),
  // the rotated residual vector g; the start z0 in z_ until done.
  std::vector<Eigen::VectorXd> basis_;
  Eigen::MatrixXd hessenberg_;  // (max_iterations + 1) x max_iterations
  Eigen::VectorXd cs_, sn_, g_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_KRYLOV_H_
