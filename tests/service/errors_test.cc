// Every error code of the API, each produced by sending the bad request to
// a real server, followed by a valid round that shows the state untouched.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/test_util.h"

namespace gameopt::testing {
namespace {

using ::testing::HasSubstr;

// A one-worker SimGD session with the worker joined.
class ErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(TestServerOptions()); }

  void Start(GameOptServerOptions options) {
    server_ = StartServer(std::move(options));
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub(server_->port());
    config_ = QuadraticConfig(game_, v1::SIMGD, 1, 0);
    absl::StatusOr<std::string> id = CreateSession(*stub_, config_);
    ASSERT_TRUE(id.ok()) << id.status();
    session_id_ = *id;
    v1::TaskResponse response;
    ASSERT_TRUE(Join(*stub_, session_id_, &response).ok());
    worker_id_ = response.worker_id();
    task_ = response.task();
  }

  v1::SubmitGradientRequest Valid() const {
    return GradientRequest(game_, session_id_, worker_id_, task_, x_);
  }

  // Submits `request` and returns the status; on success moves to the next
  // task and records the request.
  grpc::Status Send(const v1::SubmitGradientRequest& request) {
    v1::TaskResponse response;
    grpc::Status status = Submit(*stub_, request, &response);
    if (status.ok()) {
      recording_.Add(request);
      task_ = response.task();
      if (task_.params_included()) x_ = DecodeVector(game_, task_.params());
    }
    return status;
  }

  // The server's parameters equal the core fed only the accepted requests.
  void ExpectOnlyValidRoundsApplied() {
    absl::StatusOr<v1::GetParametersResponse> wire =
        GetParameters(*stub_, session_id_);
    ASSERT_TRUE(wire.ok()) << wire.status();
    absl::StatusOr<ParametersSnapshot> core = Replay(config_, recording_, 1, 0);
    ASSERT_TRUE(core.ok()) << core.status();
    EXPECT_EQ(wire->step(), core->step);
    EXPECT_EQ(VectorBytes(wire->params()), FlatBytes(*core->values));
  }

  const QuadraticGame game_ = QuadraticGame::TwoPlayer(51);
  Eigen::VectorXd x_ = game_.x0();
  std::unique_ptr<GameOptServer> server_;
  std::unique_ptr<v1::GameOptimizer::Stub> stub_;
  v1::SessionConfig config_;
  std::string session_id_;
  int64_t worker_id_ = 0;
  v1::Task task_;
  Recording recording_;
};

#define EXPECT_GRPC_ERROR(status, code, substring)                            \
  do {                                                                        \
    const grpc::Status s_ = (status);                                         \
    EXPECT_EQ(s_.error_code(), grpc::StatusCode::code) << s_.error_message(); \
    EXPECT_THAT(s_.error_message(), HasSubstr(substring));                    \
  } while (0)

TEST_F(ErrorsTest, UnknownSessionIsNotFound) {
  v1::TaskResponse response;
  EXPECT_GRPC_ERROR(Join(*stub_, "nope", &response), NOT_FOUND, "'nope'");
  v1::SubmitGradientRequest request = Valid();
  request.set_session_id("nope");
  EXPECT_GRPC_ERROR(Submit(*stub_, request, &response), NOT_FOUND, "'nope'");
  EXPECT_EQ(GetSession(*stub_, "nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(GetParameters(*stub_, "nope").status().code(),
            absl::StatusCode::kNotFound);
  grpc::ClientContext context;
  v1::DeleteSessionRequest del;
  del.set_session_id("nope");
  v1::DeleteSessionResponse deleted;
  EXPECT_GRPC_ERROR(stub_->DeleteSession(&context, del, &deleted), NOT_FOUND,
                    "'nope'");
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

TEST_F(ErrorsTest, UnknownWorkerIsNotFound) {
  v1::TaskResponse response;
  EXPECT_GRPC_ERROR(Join(*stub_, session_id_, &response, 42), NOT_FOUND,
                    "worker 42");
  v1::SubmitGradientRequest request = Valid();
  request.set_worker_id(42);
  EXPECT_GRPC_ERROR(Send(request), NOT_FOUND, "worker 42");
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

TEST_F(ErrorsTest, StaleRoundIsFailedPreconditionWithTheCurrentStep) {
  const v1::SubmitGradientRequest round0 = Valid();
  ASSERT_TRUE(Send(round0).ok());
  ASSERT_TRUE(Send(Valid()).ok());
  ASSERT_EQ(task_.step(), 2);
  EXPECT_GRPC_ERROR(Send(round0), FAILED_PRECONDITION, "at step 2");
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

TEST_F(ErrorsTest, BadSubmissionsAreInvalidArgumentAndLeaveTheRoundAlone) {
  struct Case {
    std::string what;
    std::function<void(v1::SubmitGradientRequest&)> edit;
    std::string expected;
  };
  auto tensor = [](v1::SubmitGradientRequest& r, int p, int t) {
    return r.mutable_gradients(0)->mutable_players(p)->mutable_tensors(t);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Case> cases = {
      {"NaN",
       [&](v1::SubmitGradientRequest& r) {
         std::string& data = *tensor(r, 1, 0)->mutable_data();
         std::memcpy(&data[8], &nan, 8);
       },
       "gradients[0] player 'disc' tensor 'w': value at index 1 is not "
       "finite"},
      {"wrong shape",
       [&](v1::SubmitGradientRequest& r) { tensor(r, 0, 0)->set_shape(1, 3); },
       "gradients[0] player 'gen' tensor 'w': shape [2, 3]"},
      {"short data",
       [&](v1::SubmitGradientRequest& r) {
         tensor(r, 0, 1)->mutable_data()->resize(12);
       },
       "tensor 'b': 12 bytes"},
      {"missing tensor",
       [](v1::SubmitGradientRequest& r) {
         r.mutable_gradients(0)
             ->mutable_players(1)
             ->mutable_tensors()
             ->RemoveLast();
       },
       "tensor 's' is missing"},
      {"missing player",
       [](v1::SubmitGradientRequest& r) {
         r.mutable_gradients(0)->mutable_players()->RemoveLast();
       },
       "gradients[0]: player 'disc' is missing"},
      {"unknown player",
       [](v1::SubmitGradientRequest& r) {
         r.mutable_gradients(0)->mutable_players(0)->set_player("ghost");
       },
       "'ghost' is not a player"},
      {"no dtype",
       [&](v1::SubmitGradientRequest& r) {
         tensor(r, 0, 1)->set_dtype(v1::DTYPE_UNSPECIFIED);
       },
       "gradients[0].players[0].tensors[1] ('gen/b').dtype"},
      {"two samples",
       [](v1::SubmitGradientRequest& r) {
         *r.add_gradients() = r.gradients(0);
       },
       "gradients: the task asks for 1 sample(s), got 2"},
      {"wrong step", [](v1::SubmitGradientRequest& r) { r.set_step(3); },
       "step 3 phase 0 do not match round 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::SubmitGradientRequest request = Valid();
    c.edit(request);
    EXPECT_GRPC_ERROR(Send(request), INVALID_ARGUMENT, c.expected);
  }
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, session_id_);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->submitted(), 0);
  EXPECT_EQ(status->step(), 0);
  ASSERT_TRUE(Send(Valid()).ok());
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

TEST_F(ErrorsTest, BadConfigIsInvalidArgumentNamingTheField) {
  v1::SessionConfig config = config_;
  config.mutable_players(1)->mutable_optimizer()->set_learning_rate(-0.1);
  EXPECT_EQ(CreateSession(*stub_, config).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(CreateSession(*stub_, config).status().message()),
              HasSubstr("config.players[1].optimizer.learning_rate"));
  config = config_;
  config.mutable_algorithm()->set_kind(static_cast<v1::Algorithm>(99));
  EXPECT_THAT(std::string(CreateSession(*stub_, config).status().message()),
              HasSubstr("config.algorithm.kind: unknown enum value 99"));
  config = config_;
  config.mutable_players(0)->mutable_tensors(0)->mutable_data()->resize(3);
  EXPECT_THAT(std::string(CreateSession(*stub_, config).status().message()),
              HasSubstr("initial_values"));
  grpc::ClientContext context;
  v1::ListSessionsResponse list;
  ASSERT_TRUE(
      stub_->ListSessions(&context, v1::ListSessionsRequest(), &list).ok());
  EXPECT_EQ(list.sessions_size(), 1);  // nothing half-created
}

TEST_F(ErrorsTest, WrongSubmitMethodIsFailedPrecondition) {
  v1::SubmitJacobianProductsRequest request;
  request.set_session_id(session_id_);
  request.set_worker_id(worker_id_);
  request.set_round(task_.round());
  v1::TaskResponse response;
  EXPECT_GRPC_ERROR(Submit(*stub_, request, &response), FAILED_PRECONDITION,
                    "call SubmitGradient");
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

TEST_F(ErrorsTest, FullSessionIsResourceExhausted) {
  v1::TaskResponse response;
  EXPECT_GRPC_ERROR(Join(*stub_, session_id_, &response), RESOURCE_EXHAUSTED,
                    "already has 1 active workers");
}

TEST_F(ErrorsTest, MessageOverTheLimitIsResourceExhausted) {
  GameOptServerOptions options = TestServerOptions();
  options.max_message_mb = 1;
  Start(options);
  v1::SubmitGradientRequest request = Valid();
  request.mutable_gradients(0)
      ->mutable_players(0)
      ->mutable_tensors(0)
      ->mutable_data()
      ->resize(2 << 20);  // 2 MiB > 1 MiB
  v1::TaskResponse response;
  EXPECT_EQ(Submit(*stub_, request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(Send(Valid()).ok());
  ExpectOnlyValidRoundsApplied();
}

}  // namespace
}  // namespace gameopt::testing
