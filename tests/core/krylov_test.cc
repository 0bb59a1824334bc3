// Conjugate gradient and GMRES in reverse communication against Eigen's
// dense direct solvers.
#include "server/core/krylov.h"

#include <random>

#include "Eigen/Dense"
#include "gtest/gtest.h"

namespace gameopt {
namespace {

// The solves run to a relative residual of 1e-14 on well-conditioned
// 30 x 30 systems (condition number below 100): the error is then below
// cond * 1e-14 plus rounding, far under this bound.
constexpr double kSolveTolerance = 1e-10;
constexpr int kN = 30;

Eigen::MatrixXd Random(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (int i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// I + G G^T / n: symmetric positive definite, eigenvalues in [1, ~5].
Eigen::MatrixXd Spd(uint64_t seed) {
  const Eigen::MatrixXd g = Random(kN, kN, seed);
  return Eigen::MatrixXd::Identity(kN, kN) + g * g.transpose() / kN;
}

// I - G / (2 sqrt(n)) + skew: nonsymmetric, well conditioned.
Eigen::MatrixXd Nonsymmetric(uint64_t seed) {
  const Eigen::MatrixXd g = Random(kN, kN, seed);
  return 2.0 * Eigen::MatrixXd::Identity(kN, kN) + g / std::sqrt(kN);
}

Eigen::VectorXd Solve(const Eigen::MatrixXd& a, const Eigen::VectorXd& b,
                      KrylovOptions options, const Eigen::VectorXd& z0,
                      int* iterations = nullptr) {
  KrylovSolver solver(options, b.norm(), z0, b - a * z0);
  int guard = 0;
  while (!solver.done() && guard++ < 10000) solver.Supply(a * solver.request());
  if (iterations != nullptr) *iterations = solver.iterations();
  return solver.solution();
}

KrylovOptions Options(KrylovMethod method) {
  KrylovOptions options;
  options.method = method;
  options.tolerance = 1e-14;
  options.max_iterations = 2 * kN;
  return options;
}

TEST(Krylov, ConjugateGradientMatchesCholesky) {
  const Eigen::MatrixXd a = Spd(1);
  const Eigen::VectorXd b = Random(kN, 1, 2);
  const Eigen::VectorXd z =
      Solve(a, b, Options(KrylovMethod::kConjugateGradient),
            Eigen::VectorXd::Zero(kN));
  EXPECT_LT((z - a.llt().solve(b)).norm(), kSolveTolerance);
}

TEST(Krylov, GmresMatchesLu) {
  const Eigen::MatrixXd a = Nonsymmetric(3);
  const Eigen::VectorXd b = Random(kN, 1, 4);
  int iterations = 0;
  const Eigen::VectorXd z = Solve(a, b, Options(KrylovMethod::kGmres),
                                  Eigen::VectorXd::Zero(kN), &iterations);
  EXPECT_LT((z - a.partialPivLu().solve(b)).norm(), kSolveTolerance);
  EXPECT_LE(iterations, kN);  // exact after n steps in exact arithmetic
}

// Warm start from z0 with the true residual b - A z0 solves A z = b; had the
// solver started from r0 = b it would return z0 + A^-1 b.
TEST(Krylov, WarmStartWithTrueResidualSolvesTheSystem) {
  for (KrylovMethod method :
       {KrylovMethod::kConjugateGradient, KrylovMethod::kGmres}) {
    const Eigen::MatrixXd a =
        method == KrylovMethod::kGmres ? Nonsymmetric(5) : Spd(5);
    const Eigen::VectorXd b = Random(kN, 1, 6);
    const Eigen::VectorXd exact = a.partialPivLu().solve(b);
    const Eigen::VectorXd z0 = exact + 1e-3 * Random(kN, 1, 7);
    int warm = 0, cold = 0;
    const Eigen::VectorXd z = Solve(a, b, Options(method), z0, &warm);
    Solve(a, b, Options(method), Eigen::VectorXd::Zero(kN), &cold);
    EXPECT_LT((z - exact).norm(), kSolveTolerance);
    EXPECT_LE(warm, cold);
    // From the exact solution: no product at all.
    Solve(a, b, Options(method), exact, &warm);
    EXPECT_EQ(warm, 0);
  }
}

TEST(Krylov, StopsAtTheIterationCapAndTheTolerance) {
  const Eigen::MatrixXd a = Nonsymmetric(8);
  const Eigen::VectorXd b = Random(kN, 1, 9);
  for (KrylovMethod method :
       {KrylovMethod::kConjugateGradient, KrylovMethod::kGmres}) {
    KrylovOptions options = Options(method);
    options.max_iterations = 3;
    const Eigen::MatrixXd op = method == KrylovMethod::kGmres ? a : Spd(8);
    KrylovSolver solver(options, b.norm(), Eigen::VectorXd::Zero(kN), b);
    while (!solver.done()) solver.Supply(op * solver.request());
    EXPECT_EQ(solver.iterations(), 3);
    EXPECT_FALSE(solver.converged());
    // The reported residual is the true one.
    EXPECT_NEAR(solver.relative_residual(),
                (b - op * solver.solution()).norm() / b.norm(), 1e-12);
    options.max_iterations = 100;
    options.tolerance = 1e-3;
    KrylovSolver loose(options, b.norm(), Eigen::VectorXd::Zero(kN), b);
    while (!loose.done()) loose.Supply(op * loose.request());
    EXPECT_TRUE(loose.converged());
    EXPECT_LE((b - op * loose.solution()).norm(), 1.001e-3 * b.norm());
  }
}

TEST(Krylov, ZeroRightHandSideGivesZero) {
  KrylovSolver solver(Options(KrylovMethod::kGmres), 0.0,
                      Eigen::VectorXd::Ones(4), Eigen::VectorXd::Ones(4));
  EXPECT_TRUE(solver.done());
  EXPECT_EQ(solver.solution(), Eigen::VectorXd::Zero(4));
}

// Export in the middle of a solve, import into a new solver, finish both:
// the same iterate bit for bit.
TEST(Krylov, ExportImportMidSolveContinuesExactly) {
  for (KrylovMethod method :
       {KrylovMethod::kConjugateGradient, KrylovMethod::kGmres}) {
    const Eigen::MatrixXd a =
        method == KrylovMethod::kGmres ? Nonsymmetric(10) : Spd(10);
    const Eigen::VectorXd b = Random(kN, 1, 11);
    const KrylovOptions options = Options(method);
    KrylovSolver solver(options, b.norm(), Eigen::VectorXd::Zero(kN), b);
    for (int i = 0; i < 5; ++i) solver.Supply(a * solver.request());
    const std::vector<double> state = solver.Export();
    KrylovSolver restored(options, 0.0, Eigen::VectorXd(), Eigen::VectorXd());
    ASSERT_TRUE(KrylovSolver::Import(state, options, kN, &restored).ok());
    while (!solver.done()) solver.Supply(a * solver.request());
    while (!restored.done()) restored.Supply(a * restored.request());
    EXPECT_EQ(solver.solution(), restored.solution());
    EXPECT_EQ(solver.iterations(), restored.iterations());
    // A state of another dimension or method is refused.
    EXPECT_FALSE(KrylovSolver::Import(state, options, kN + 1, &restored).ok());
    KrylovOptions other = options;
    other.method = method == KrylovMethod::kGmres
                       ? KrylovMethod::kConjugateGradient
                       : KrylovMethod::kGmres;
    EXPECT_FALSE(KrylovSolver::Import(state, other, kN, &restored).ok());
  }
}

}  // namespace
}  // namespace gameopt
