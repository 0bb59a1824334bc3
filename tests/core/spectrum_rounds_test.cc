// Spectrum estimates run by a Session as diagnostic rounds
// (server/core/spectrum_rounds.h), driven directly with in-test workers
// that answer exactly on a quadratic game.
#include "server/core/spectrum_rounds.h"

#include <algorithm>
#include <complex>
#include <random>
#include <utility>
#include <vector>

#include "Eigen/Dense"
#include "gtest/gtest.h"
#include "server/core/session.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::QuadraticConfig;
using testing::QuadraticGame;
using testing::Reply;
using testing::SampleBuilder;
using testing::ToEigen;

// Converged to relative residual 1e-10 on a 7 x 7 operator: the values agree
// with the dense decomposition far below this.
constexpr double kAgreement = 1e-7;

// Captures an EstimateSpectrum callback.
struct SpectrumReply {
  bool called = false;
  absl::StatusOr<SpectrumResult> result = absl::UnknownError("not called");
  SpectrumCallback Callback() {
    return [this](absl::StatusOr<SpectrumResult> r) {
      called = true;
      result = std::move(r);
    };
  }
};

// Workers of a 2-player quadratic game; worker w's minibatch Jacobian is
// J + E_w (E_w fixed per worker), so the round's mean Jacobian is
// J + mean_w E_w.
class SpectrumRoundsTest : public ::testing::Test {
 protected:
  SpectrumRoundsTest() : game_(QuadraticGame::Random({3, 4}, 5)) {}

  std::unique_ptr<Session> Make(SessionConfig config) {
    config.phase_deadline = absl::InfiniteDuration();
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create("s", std::move(config), &clock_);
    EXPECT_TRUE(session.ok()) << session.status();
    return *std::move(session);
  }

  SessionConfig Config(AlgorithmKind kind, int workers) {
    SessionConfig config = QuadraticConfig(game_, kind);
    config.workers_per_round = workers;
    config.algorithm.gamma = 0.5;
    return config;
  }

  Eigen::MatrixXd WorkerJacobian(int64_t worker) const {
    std::mt19937_64 rng(worker);
    std::normal_distribution<double> normal(0.0, 0.3);
    Eigen::MatrixXd e(game_.dimension(), game_.dimension());
    for (int i = 0; i < e.size(); ++i) e.data()[i] = normal(rng);
    return game_.J + e;
  }

  Eigen::MatrixXd MeanJacobian(int workers) const {
    Eigen::MatrixXd sum =
        Eigen::MatrixXd::Zero(game_.dimension(), game_.dimension());
    for (int w = 1; w <= workers; ++w) sum += WorkerJacobian(w);
    return sum / workers;
  }

  Submission Answer(const Task& task, SampleBuilder& builder) const {
    Submission s;
    s.round = task.round;
    s.step = task.step;
    s.phase = task.phase;
    const Eigen::MatrixXd j = WorkerJacobian(task.worker_id);
    const Eigen::VectorXd x = ToEigen(*task.params);
    if (task.kind == Task::Kind::kGradient) {
      for (int k = 0; k < task.num_samples; ++k) {
        s.gradients.push_back(builder.Make(j * x + game_.c, task.players));
      }
    } else {
      for (const auto& probe : task.probes) {
        const Eigen::VectorXd w = ToEigen(*probe);
        if (task.vjp) s.vjp.push_back(builder.Make(j.transpose() * w));
        if (task.jvp) s.jvp.push_back(builder.Make(j * w));
      }
    }
    return s;
  }

  // Every worker answers its task until `until` holds or the session is
  // done; returns the number of rounds played.
  int Play(Session& session, std::vector<Task>& tasks,
           const std::function<bool()>& until) {
    int rounds = 0;
    while (!until() && tasks[0].kind != Task::Kind::kDone) {
      SampleBuilder builder(session.layout());
      std::vector<Reply> replies(tasks.size());
      for (size_t w = 0; w < tasks.size(); ++w) {
        const Submission s = Answer(tasks[w], builder);
        if (tasks[w].kind == Task::Kind::kGradient) {
          session.SubmitGradient(tasks[w].worker_id, s, replies[w].Callback());
        } else {
          session.SubmitProducts(tasks[w].worker_id, s, replies[w].Callback());
        }
      }
      for (size_t w = 0; w < tasks.size(); ++w) {
        EXPECT_TRUE(replies[w].called);
        if (!replies[w].result.ok()) {
          ADD_FAILURE() << replies[w].result.status();
          return rounds;
        }
        tasks[w] = *replies[w].result;
      }
      ++rounds;
    }
    return rounds;
  }

  std::vector<Task> JoinAll(Session& session, int workers) {
    std::vector<Task> tasks;
    for (int w = 0; w < workers; ++w) {
      Reply reply;
      session.Join(0, "", reply.Callback());
      EXPECT_TRUE(reply.result.ok());
      tasks.push_back(*reply.result);
    }
    return tasks;
  }

  static void ExpectMatchesDense(const SpectrumEstimate& estimate,
                                 const Eigen::MatrixXd& a) {
    Eigen::EigenSolver<Eigen::MatrixXd> solver(a, false);
    std::vector<std::complex<double>> dense(solver.eigenvalues().begin(),
                                            solver.eigenvalues().end());
    auto by_real = dense;
    std::sort(by_real.begin(), by_real.end(),
              [](auto x, auto y) { return x.real() > y.real(); });
    auto by_imag = dense;
    std::sort(by_imag.begin(), by_imag.end(),
              [](auto x, auto y) { return x.imag() > y.imag(); });
    ASSERT_FALSE(estimate.largest_real.empty());
    ASSERT_FALSE(estimate.largest_imag.empty());
    EXPECT_NEAR(estimate.largest_real[0].value.real(), by_real[0].real(),
                kAgreement);
    EXPECT_NEAR(estimate.largest_imag[0].value.imag(), by_imag[0].imag(),
                kAgreement);
    EXPECT_NEAR(estimate.largest_imag[0].value.real(), by_imag[0].real(),
                kAgreement);
  }

  QuadraticGame game_;
  FakeClock clock_;
};

SpectrumRequest Request(SpectrumOperatorKind op) {
  SpectrumRequest request;
  request.op = op;
  request.k = 2;
  request.tol = 1e-10;
  return request;
}

TEST_F(SpectrumRoundsTest, GameJacobianIsTheRoundsMeanJacobian) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kSimGd, 2));
  std::vector<Task> tasks = JoinAll(*session, 2);
  SpectrumReply reply;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            reply.Callback());
  // Nobody had submitted: the estimate starts now, replacing the round.
  const SessionInfo info = session->Info();
  EXPECT_EQ(info.phase_label, "spectrum: gradient");
  for (Task& task : tasks) {  // the old tasks are stale: rejoin
    Reply rejoin;
    session->Join(task.worker_id, "", rejoin.Callback());
    ASSERT_TRUE(rejoin.result.ok());
    task = *rejoin.result;
  }
  Play(*session, tasks, [&] { return reply.called; });
  ASSERT_TRUE(reply.result.ok()) << reply.result.status();
  const SpectrumResult& result = *reply.result;
  EXPECT_EQ(result.step, 0);
  EXPECT_EQ(result.samples, 2);
  EXPECT_EQ(result.description, "J");
  EXPECT_TRUE(result.estimate.converged);
  // One gradient round, the rotation round, then one round per product;
  // 7 x 7 needs 7.
  EXPECT_EQ(result.rounds, 2 + result.estimate.applications);
  ExpectMatchesDense(result.estimate, MeanJacobian(2));
  EXPECT_EQ(session->Spectra().size(), 1u);
}

TEST_F(SpectrumRoundsTest, RotationIndexIsThatOfTheMeanJacobianAtXi) {
  // ConOpt asks for no J xi per step: its rotation index comes with the
  // estimate, at the estimate's minibatches. Here J = mean_w J_w and
  // xi = J x0 + c (each worker's gradient is J_w x0 + c).
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kConOpt, 3));
  SpectrumReply reply;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kAlgorithmField),
                            reply.Callback());
  std::vector<Task> tasks = JoinAll(*session, 3);
  Play(*session, tasks, [&] {
    if (session->Info().phase_label == "spectrum: rotation") {
      EXPECT_TRUE(tasks[0].vjp && tasks[0].jvp);
    }
    return reply.called;
  });
  ASSERT_TRUE(reply.result.ok()) << reply.result.status();
  const Eigen::MatrixXd j = MeanJacobian(3);
  const Eigen::VectorXd xi = j * game_.x0 + game_.c;
  const Eigen::MatrixXd s = 0.5 * (j + j.transpose());
  const Eigen::MatrixXd a = 0.5 * (j - j.transpose());
  const StepDiagnostics& d = reply.result->diagnostics;
  // Sums of 3 products of 7 terms in float64: rounding near 1e-15.
  constexpr double kRelative = 1e-12;
  ASSERT_TRUE(d.available);
  ASSERT_TRUE(d.has_rotation_index);
  EXPECT_NEAR(d.xi_norm, xi.norm(), kRelative * xi.norm());
  const double jt_xi = (j.transpose() * xi).norm();
  EXPECT_NEAR(d.jt_xi_norm, jt_xi, kRelative * jt_xi);
  EXPECT_NEAR(d.stationarity_ratio, jt_xi / xi.norm(), kRelative);
  const double s_xi = (s * xi).norm(), a_xi = (a.transpose() * xi).norm();
  EXPECT_NEAR(d.s_xi_norm, s_xi, kRelative * s_xi);
  EXPECT_NEAR(d.a_xi_norm, a_xi, kRelative * a_xi);
  EXPECT_NEAR(d.rotation_index, a_xi / s_xi, kRelative * a_xi / s_xi);
  // One extra round for the whole estimate, not per product.
  EXPECT_EQ(reply.result->rounds, 2 + 2 * reply.result->estimate.applications);
}

TEST_F(SpectrumRoundsTest, Float32SessionsEstimateToSinglePrecision) {
  // Probes and products travel as float32 (relative rounding 6e-8 per
  // coordinate): the values agree to about 1e-6 of the spectral radius.
  SessionConfig config = Config(AlgorithmKind::kSimGd, 2);
  config.dtype = DType::kFloat32;
  std::unique_ptr<Session> session = Make(config);
  SpectrumRequest request = Request(SpectrumOperatorKind::kGameJacobian);
  request.tol = 1e-6;
  SpectrumReply reply;
  session->EstimateSpectrum(request, reply.Callback());
  std::vector<Task> tasks = JoinAll(*session, 2);
  Play(*session, tasks, [&] { return reply.called; });
  ASSERT_TRUE(reply.result.ok()) << reply.result.status();
  const Eigen::MatrixXd j = MeanJacobian(2);
  const double radius = Eigen::EigenSolver<Eigen::MatrixXd>(j, false)
                            .eigenvalues()
                            .cwiseAbs()
                            .maxCoeff();
  const std::complex<double> top = reply.result->estimate.largest_real[0].value;
  Eigen::EigenSolver<Eigen::MatrixXd> solver(j, false);
  double nearest = 1e300;
  for (auto z : solver.eigenvalues())
    nearest = std::min(nearest, std::abs(z - top));
  EXPECT_LE(nearest, 1e-5 * radius);
}

TEST_F(SpectrumRoundsTest, ConOptFieldIsJPlusGammaJTransposeJ) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kConOpt, 2));
  SpectrumReply reply;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kAlgorithmField),
                            reply.Callback());
  std::vector<Task> tasks = JoinAll(*session, 2);
  EXPECT_EQ(tasks[0].phase_label, "spectrum: gradient");
  Play(*session, tasks, [&] { return reply.called; });
  ASSERT_TRUE(reply.result.ok()) << reply.result.status();
  EXPECT_EQ(reply.result->description, "J + 0.5 J^T J");
  // Two rounds per product: J v, then J^T (J v).
  EXPECT_EQ(reply.result->rounds, 2 + 2 * reply.result->estimate.applications);
  const Eigen::MatrixXd j = MeanJacobian(2);
  ExpectMatchesDense(reply.result->estimate, j + 0.5 * j.transpose() * j);
}

TEST_F(SpectrumRoundsTest, ConOptFieldSmallestRealPartsMatchDense) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kConOpt, 2));
  SpectrumRequest request = Request(SpectrumOperatorKind::kAlgorithmField);
  request.smallest_real = true;
  SpectrumReply reply;
  session->EstimateSpectrum(request, reply.Callback());
  std::vector<Task> tasks = JoinAll(*session, 2);
  Play(*session, tasks, [&] { return reply.called; });
  ASSERT_TRUE(reply.result.ok()) << reply.result.status();
  const Eigen::MatrixXd j = MeanJacobian(2);
  const Eigen::MatrixXd field = j + 0.5 * j.transpose() * j;
  Eigen::EigenSolver<Eigen::MatrixXd> solver(field, false);
  double smallest = 1e300;
  for (auto z : solver.eigenvalues()) smallest = std::min(smallest, z.real());
  const std::vector<RitzValue>& got = reply.result->estimate.smallest_real;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NEAR(got[0].value.real(), smallest, kAgreement);
  EXPECT_LE(got[0].value.real(), got[1].value.real());
}

TEST_F(SpectrumRoundsTest, DiagnosticRoundsLeaveTheTrainingUnchanged) {
  // Same steps with and without estimates in between: same parameters,
  // bit for bit (these workers' answers do not depend on the round).
  SessionConfig config = Config(AlgorithmKind::kConOpt, 2);
  config.max_steps = 6;
  std::unique_ptr<Session> plain = Make(config);
  std::vector<Task> plain_tasks = JoinAll(*plain, 2);
  Play(*plain, plain_tasks, [] { return false; });

  config.spectrum.every_steps = 3;
  config.spectrum.requests = {Request(SpectrumOperatorKind::kGameJacobian),
                              Request(SpectrumOperatorKind::kAlgorithmField)};
  std::unique_ptr<Session> watched = Make(config);
  std::vector<Task> tasks = JoinAll(*watched, 2);
  const int rounds = Play(*watched, tasks, [] { return false; });
  EXPECT_GT(rounds, 6 * 2);

  EXPECT_EQ(ToEigen(*watched->Parameters().values),
            ToEigen(*plain->Parameters().values));
  // J and the field at steps 0, 3 and 6: the last ones before the workers
  // got DONE.
  const std::vector<SpectrumResult> spectra = watched->Spectra();
  ASSERT_EQ(spectra.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(spectra[i].step, 3 * (i / 2));
    EXPECT_EQ(spectra[i].op, i % 2 == 0
                                 ? SpectrumOperatorKind::kGameJacobian
                                 : SpectrumOperatorKind::kAlgorithmField);
    // J does not depend on x here: the same spectrum each time.
    EXPECT_NEAR(spectra[i].estimate.largest_real[0].value.real(),
                spectra[i % 2].estimate.largest_real[0].value.real(), 1e-8);
  }
  // The field's gradient and rotation rounds are the Jacobian's: no second
  // ones, and the same rotation index.
  EXPECT_EQ(spectra[1].diagnostics.rotation_index,
            spectra[0].diagnostics.rotation_index);
  EXPECT_EQ(spectra[1].rounds, 2 * spectra[1].estimate.applications);
}

TEST_F(SpectrumRoundsTest, PhaseNumbersIncreaseInTimeOrder) {
  // The field alternates "J v" and "field" rounds, and two estimates share
  // each boundary: (step, phase) still increases from every task a worker
  // answers to the next, diagnostic rounds below the step's phase 0.
  SessionConfig config = Config(AlgorithmKind::kConOpt, 1);
  config.max_steps = 4;
  config.spectrum.every_steps = 2;
  config.spectrum.requests = {Request(SpectrumOperatorKind::kAlgorithmField),
                              Request(SpectrumOperatorKind::kGameJacobian)};
  std::unique_ptr<Session> session = Make(config);
  std::vector<Task> tasks = JoinAll(*session, 1);
  std::vector<std::pair<int64_t, int>> seen;  // every task, in time order
  int diagnostic = 0;
  Play(*session, tasks, [&] {
    if (tasks[0].kind == Task::Kind::kDone) return true;
    const std::pair<int64_t, int> now = {tasks[0].step, tasks[0].phase};
    if (!seen.empty()) {
      EXPECT_LT(seen.back(), now) << "after step " << seen.back().first
                                  << " phase " << seen.back().second;
    }
    seen.push_back(now);
    const bool spectrum = tasks[0].phase_label.rfind("spectrum", 0) == 0;
    EXPECT_EQ(spectrum, now.second < 0) << tasks[0].phase_label;
    if (spectrum) ++diagnostic;
    return false;
  });
  EXPECT_EQ(seen.front(), std::make_pair(int64_t{0}, kFirstDiagnosticPhase));
  // Estimates at steps 0, 2 and 4, each a gradient round and more products.
  ASSERT_EQ(session->Spectra().size(), 6u);
  EXPECT_GT(diagnostic, 3 * 3);
  EXPECT_EQ(session->Info().phase, 0);  // done: the step's numbering again
  EXPECT_EQ(static_cast<int>(seen.size()), diagnostic + 4 * 2);
}

TEST_F(SpectrumRoundsTest, RequestWaitsForTheStepBoundary) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kConOpt, 1));
  std::vector<Task> tasks = JoinAll(*session, 1);
  SampleBuilder builder(session->layout());
  Reply reply;
  session->SubmitGradient(tasks[0].worker_id, Answer(tasks[0], builder),
                          reply.Callback());
  ASSERT_TRUE(reply.result.ok());
  tasks[0] = *reply.result;  // ConOpt's products phase of step 0
  SpectrumReply spectrum;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            spectrum.Callback());
  EXPECT_EQ(session->Info().phase_label, "consensus");
  Play(*session, tasks, [&] { return spectrum.called; });
  ASSERT_TRUE(spectrum.result.ok()) << spectrum.result.status();
  EXPECT_EQ(spectrum.result->step, 1);
}

TEST_F(SpectrumRoundsTest, WorkerLeavingMidEstimateAborts) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kSimGd, 2));
  SpectrumReply reply;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            reply.Callback());
  std::vector<Task> tasks = JoinAll(*session, 2);
  Play(*session, tasks,
       [&] { return session->Info().phase_label == "spectrum: J v"; });
  ASSERT_TRUE(session->Leave(tasks[1].worker_id).ok());
  tasks.pop_back();
  Play(*session, tasks, [&] { return reply.called; });
  EXPECT_EQ(reply.result.status().code(), absl::StatusCode::kAborted)
      << reply.result.status();
}

TEST_F(SpectrumRoundsTest, BadRequestsAndDoneSessionsAreRefused) {
  SessionConfig config = Config(AlgorithmKind::kSimGd, 1);
  config.max_steps = 1;
  std::unique_ptr<Session> session = Make(config);
  SpectrumRequest bad;
  bad.k = 0;
  SpectrumReply reply;
  session->EstimateSpectrum(bad, reply.Callback());
  EXPECT_EQ(reply.result.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Task> tasks = JoinAll(*session, 1);
  Play(*session, tasks, [] { return false; });
  SpectrumReply late;
  session->EstimateSpectrum(SpectrumRequest{}, late.Callback());
  EXPECT_EQ(late.result.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SpectrumRoundsTest, CancelledEstimateStopsItsDiagnosticRounds) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kSimGd, 1));
  SpectrumReply spectrum;
  CallId call = 0;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            spectrum.Callback(), &call);
  std::vector<Task> tasks = JoinAll(*session, 1);
  Play(*session, tasks,
       [&] { return session->Info().phase_label == "spectrum: J v"; });
  const Task diagnostic = tasks[0];
  const int64_t round = session->Info().round;
  session->CancelSpectrum(call);
  EXPECT_EQ(spectrum.result.status().code(), absl::StatusCode::kCancelled);
  const SessionInfo info = session->Info();
  EXPECT_GT(info.round, round);
  EXPECT_EQ(info.phase_label.rfind("spectrum", 0), std::string::npos)
      << info.phase_label;

  // The diagnostic task's round closed: the worker rejoins and trains, and
  // no diagnostic round comes back.
  SampleBuilder builder(session->layout());
  Reply late;
  session->SubmitProducts(diagnostic.worker_id, Answer(diagnostic, builder),
                          late.Callback());
  EXPECT_EQ(late.result.status().code(), absl::StatusCode::kFailedPrecondition);
  Reply rejoined;
  session->Join(diagnostic.worker_id, "", rejoined.Callback());
  ASSERT_TRUE(rejoined.result.ok()) << rejoined.result.status();
  tasks[0] = *rejoined.result;
  int steps = 0;
  Play(*session, tasks, [&] {
    EXPECT_EQ(session->Info().phase_label.rfind("spectrum", 0),
              std::string::npos);
    return ++steps > 3;
  });
  EXPECT_EQ(session->Info().step, 3);
  EXPECT_TRUE(session->Spectra().empty());
}

TEST_F(SpectrumRoundsTest, AnEstimateCancelledInItsRotationRoundLeavesNone) {
  // The next estimate at the same step keeps the minibatches but runs the
  // rotation round again: its index is measured, not left over.
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kSimGd, 1));
  SpectrumReply first, second;
  CallId call = 0;
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            first.Callback(), &call);
  session->EstimateSpectrum(Request(SpectrumOperatorKind::kGameJacobian),
                            second.Callback());
  std::vector<Task> tasks = JoinAll(*session, 1);
  Play(*session, tasks,
       [&] { return session->Info().phase_label == "spectrum: rotation"; });
  session->CancelSpectrum(call);
  EXPECT_EQ(session->Info().phase_label, "spectrum: rotation");
  Reply rejoined;
  session->Join(tasks[0].worker_id, "", rejoined.Callback());
  ASSERT_TRUE(rejoined.result.ok()) << rejoined.result.status();
  tasks[0] = *rejoined.result;
  Play(*session, tasks, [&] { return second.called; });
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  EXPECT_EQ(second.result->rounds, 1 + second.result->estimate.applications);
  const Eigen::MatrixXd j = MeanJacobian(1);
  const Eigen::VectorXd xi = j * game_.x0 + game_.c;
  const double expected = (0.5 * (j - j.transpose()).transpose() * xi).norm() /
                          (0.5 * (j + j.transpose()) * xi).norm();
  ASSERT_TRUE(second.result->diagnostics.has_rotation_index);
  EXPECT_NEAR(second.result->diagnostics.rotation_index, expected,
              1e-12 * expected);
}

TEST_F(SpectrumRoundsTest, CancelAndCloseAnswerWaitingRequests) {
  std::unique_ptr<Session> session = Make(Config(AlgorithmKind::kSimGd, 1));
  SpectrumReply cancelled, closed;
  CallId call = 0;
  session->EstimateSpectrum(SpectrumRequest{}, cancelled.Callback(), &call);
  session->EstimateSpectrum(SpectrumRequest{}, closed.Callback());
  session->CancelSpectrum(call);
  EXPECT_EQ(cancelled.result.status().code(), absl::StatusCode::kCancelled);
  session->Close(absl::UnavailableError("shutting down"));
  EXPECT_EQ(closed.result.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gameopt
