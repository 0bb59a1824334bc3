// The diagnostics over the wire, end to end: C++ workers (the worker
// library) play the random quadratic game against a real server; the bias
// meter's numbers reach SessionStatus, SessionMetrics and /metrics, and
// each spectrum estimate's rotation index reaches GetSpectrum, checked
// against the game's known J.

#include <cmath>
#include <string>

#include "Eigen/Dense"
#include "absl/strings/match.h"
#include "client/games/quadratic.h"
#include "client/play.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/service/server.h"
#include "tests/service/http_get.h"

namespace gameopt {
namespace {

using testing::HttpGet;

// Exact products in float64: the rotation index of a 5 x 5 J to rounding.
constexpr double kRelative = 1e-9;

class DiagnosticsPlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GameOptServerOptions options;
    options.address = "127.0.0.1:0";
    options.metrics_address = "127.0.0.1:0";
    options.log = nullptr;
    server_ = std::make_unique<GameOptServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::GameOptimizer::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
  }

  PlayConfig Config(double noise, bool meter) const {
    PlayConfig config;
    config.game = "quadratic";
    config.game_options.quadratic_dims = {3, 2};
    config.game_options.quadratic_noise_std = noise;
    config.game_options.seed = 7;
    config.session.algorithm = "conopt";
    config.session.estimator = "pooled";
    config.session.bias_meter = meter;
    config.session.learning_rate = 0.05;
    config.session.gamma = 0.5;
    config.session.workers = 2;
    config.session.samples_per_worker = 2;
    config.session.float64 = true;
    config.steps = 12;
    config.server = absl::StrCat("127.0.0.1:", server_->port());
    config.keep_session = true;
    config.live = false;
    config.plots = false;
    return config;
  }

  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
};

TEST_F(DiagnosticsPlayTest, BiasMeterTravelsAndLeavesTheRunUnchanged) {
  absl::StatusOr<PlayResult> off = Play(Config(0.3, false));
  absl::StatusOr<PlayResult> on = Play(Config(0.3, true));
  ASSERT_TRUE(off.ok()) << off.status();
  ASSERT_TRUE(on.ok()) << on.status();
  // The same minibatches (seeds by round: no extra round), the same steps.
  EXPECT_TRUE(off->final_params == on->final_params)
      << off->final_params.transpose() << "\n"
      << on->final_params.transpose();

  grpc::ClientContext context;
  v1::GetSessionRequest request;
  request.set_session_id(on->session_id);
  v1::SessionStatus status;
  ASSERT_TRUE(stub_->GetSession(&context, request, &status).ok());
  EXPECT_TRUE(status.config().algorithm().bias_meter());
  const v1::StepDiagnostics& d = status.diagnostics();
  ASSERT_TRUE(d.has_bias_meter());
  EXPECT_GT(d.relative_bias(), 0.0);
  EXPECT_TRUE(std::isfinite(d.relative_bias()));
  EXPECT_NEAR(d.relative_bias(), d.bias_norm() / d.pooled_jt_xi_norm(),
              1e-12 * d.relative_bias());
  // Pooled estimator: P is the step's own J^T xi.
  EXPECT_NEAR(d.pooled_jt_xi_norm(), d.jt_xi_norm(), 1e-9 * d.jt_xi_norm());

  grpc::ClientContext metrics_context;
  v1::GetMetricsRequest metrics_request;
  metrics_request.set_session_id(on->session_id);
  v1::GetMetricsResponse metrics;
  ASSERT_TRUE(
      stub_->GetMetrics(&metrics_context, metrics_request, &metrics).ok());
  ASSERT_EQ(metrics.sessions_size(), 1);
  EXPECT_EQ(metrics.sessions(0).diagnostics().relative_bias(),
            d.relative_bias());
  // /metrics and the live page's JSON.
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_TRUE(absl::StrContains(
      text,
      absl::StrCat("gameopt_relative_bias{session=\"", on->session_id, "\"}")))
      << text;
  const std::string json = HttpGet(server_->metrics_port(), "/api/sessions");
  EXPECT_TRUE(absl::StrContains(json, "\"relative_bias\":0.")) << json;

  grpc::ClientContext off_context;
  request.set_session_id(off->session_id);
  v1::SessionStatus off_status;
  ASSERT_TRUE(stub_->GetSession(&off_context, request, &off_status).ok());
  EXPECT_FALSE(off_status.diagnostics().has_bias_meter());
}

TEST_F(DiagnosticsPlayTest, SpectrumEstimatesCarryTheRotationIndexAtXi) {
  // No minibatch noise: J is the game's, xi = J x + b at the estimate's x.
  PlayConfig config = Config(0.0, false);
  config.spectrum_k = 2;  // at step 0 and after the last step
  absl::StatusOr<PlayResult> result = Play(config);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_GE(result->spectra.size(), 2u);
  const QuadraticGame game({3, 2}, 7);
  const Eigen::MatrixXd& j = game.J();
  const Eigen::MatrixXd s = 0.5 * (j + j.transpose());
  const Eigen::MatrixXd a = 0.5 * (j - j.transpose());
  for (const v1::Spectrum& spectrum : result->spectra) {
    SCOPED_TRACE(absl::StrCat("step ", spectrum.step()));
    const Eigen::VectorXd x =
        spectrum.step() == 0 ? game.InitialParameters() : result->final_params;
    const Eigen::VectorXd xi = j * x + game.b();
    const v1::StepDiagnostics& d = spectrum.diagnostics();
    ASSERT_TRUE(d.has_rotation_index());
    const double s_xi = (s * xi).norm();
    const double a_xi = (a.transpose() * xi).norm();
    const double jt_xi = (j.transpose() * xi).norm();
    EXPECT_NEAR(d.xi_norm(), xi.norm(), kRelative * xi.norm());
    EXPECT_NEAR(d.jt_xi_norm(), jt_xi, kRelative * jt_xi);
    EXPECT_NEAR(d.s_xi_norm(), s_xi, kRelative * s_xi);
    EXPECT_NEAR(d.a_xi_norm(), a_xi, kRelative * a_xi);
    EXPECT_NEAR(d.rotation_index(), a_xi / s_xi, kRelative * a_xi / s_xi);
  }

  // /metrics and the live page's JSON: the newest estimate's index.
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("gameopt_spectrum_rotation_index{session=\"",
                         result->session_id, "\"}")))
      << text;
  const std::string json = HttpGet(
      server_->metrics_port(), "/api/spectrum?session=" + result->session_id);
  EXPECT_TRUE(absl::StrContains(json, "\"diagnostics\":{\"xi_norm\":")) << json;
}

}  // namespace
}  // namespace gameopt
