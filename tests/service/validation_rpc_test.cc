// The validation tables of JoinSession, LeaveSession, GetSession,
// DeleteSession and GetParameters (validation_table.h), and regression
// tests for requests that once got through.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/service/validation_table.h"

namespace gameopt::testing {
namespace {

// ---- JoinSession, LeaveSession, GetSession, DeleteSession, GetParameters ----

TEST_F(ValidationTableTest, UnknownIdsAreNotFoundEverywhere) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  auto get = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::GetSessionRequest request;
    request.set_session_id(id);
    v1::SessionStatus response;
    return stub_->GetSession(&context, request, &response);
  };
  auto params = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::GetParametersRequest request;
    request.set_session_id(id);
    v1::GetParametersResponse response;
    return stub_->GetParameters(&context, request, &response);
  };
  auto del = [this](const std::string& id) {
    grpc::ClientContext context;
    v1::DeleteSessionRequest request;
    request.set_session_id(id);
    v1::DeleteSessionResponse response;
    return stub_->DeleteSession(&context, request, &response);
  };
  const std::string id = dirty.id();
  // A session id that differs from a real one only in case or padding.
  std::string upper = id;
  upper[0] = 'S';
  RunTable({
      {"join an unknown session", [&] { return SendJoin("nope", 0); },
       kNotFound, "no session 'nope'"},
      {"join a padded id", [&] { return SendJoin(id + " ", 0); }, kNotFound,
       "no session '" + id + " '"},
      {"join as an unknown worker", [&] { return SendJoin(id, 42); }, kNotFound,
       "worker 42 is not in session"},
      {"join as a negative worker", [&] { return SendJoin(id, -1); }, kNotFound,
       "worker -1 is not in session"},
      {"join a full session", [&] { return SendJoin(id, 0, "third"); },
       kExhausted, "already has 2 active workers"},
      {"join with a message over the limit",
       [&] {
         return SendJoin(id, 0, std::string((kMaxMessageMb << 20) + 1, 'n'));
       },
       kExhausted, ""},
      {"leave an unknown session", [&] { return SendLeave("nope", 1); },
       kNotFound, "no session 'nope'"},
      {"leave as an unknown worker", [&] { return SendLeave(id, 42); },
       kNotFound, "worker 42 is not in session"},
      {"leave as worker 0", [&] { return SendLeave(id, 0); }, kNotFound,
       "worker 0 is not in session"},
      {"get an unknown session", [&] { return get("nope"); }, kNotFound,
       "no session 'nope'"},
      {"get an empty id", [&] { return get(""); }, kNotFound, "no session ''"},
      {"get with the wrong case", [&] { return get(upper); }, kNotFound,
       "no session '" + upper + "'"},
      {"parameters of an unknown session", [&] { return params("nope"); },
       kNotFound, "no session 'nope'"},
      {"parameters of an empty id", [&] { return params(""); }, kNotFound,
       "no session ''"},
      {"delete an unknown session", [&] { return del("nope"); }, kNotFound,
       "no session 'nope'"},
      {"delete an empty id", [&] { return del(""); }, kNotFound,
       "no session ''"},
  });
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

// ---- Requests that once got through ---------------------------------------
//
// Each was a gap found by this table (see the fix's commit); they stay as
// regression tests.

// A 40-byte CreateSession asks for a 2^36-element tensor, which passes
// validation (the limit is 2^40 elements) and Session::Create allocates it.
// When the allocation fails, std::bad_alloc escapes the handler and gRPC
// answers UNIMPLEMENTED with an empty message (seen here); when it fits
// (2^31 float32 is 8 GiB per copy, and the session keeps several), one
// request takes the machine's memory. A limit on the dimension (a server
// flag) and RESOURCE_EXHAUSTED would bound it.
TEST_F(ValidationTableTest, HugeShapeIsRejectedNotACrash) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  v1::Tensor* t = config.mutable_players(0)->mutable_tensors(0);
  t->clear_data();
  t->clear_shape();
  t->add_shape(int64_t{1} << 36);
  const grpc::Status status = SendCreate(config);
  EXPECT_TRUE(status.error_code() == kInvalid ||
              status.error_code() == kExhausted)
      << status.error_code() << " " << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.players[0].tensors[0].shape"));
  EXPECT_EQ(Snapshot(*stub_).rfind("ListSessions failed", 0),
            std::string::npos);
}

// An 800 KB config (100,000 AltGD stages of 1000 steps each) expands into a
// plan of 10^8 phases in Session::Create: many seconds of a server thread
// and GBs of memory (the client's 5 s deadline passes first), then
// std::bad_alloc. A cap on the total steps of a plan would bound it.
TEST_F(ValidationTableTest, HugeAltGdPlanIsRejectedNotACrash) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::ALTGD, 1, 0);
  for (int i = 0; i < 100000; ++i) {
    v1::AltGdStage* stage = config.mutable_algorithm()->add_altgd_order();
    stage->set_player("gen");
    stage->set_steps(1000);
  }
  GameOptServerOptions options = TestServerOptions();
  server_ = StartServer(options);  // the default message limit
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  const absl::Time start = absl::Now();
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kInvalid)
      << status.error_code() << " " << status.error_message() << " after "
      << absl::Now() - start;
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.algorithm.altgd_order"));
}

// The total-size check once named no field ("config.the game has more than
// 2^40 coordinates"). Past the server's --max_parameters it is
// RESOURCE_EXHAUSTED naming the tensor that crosses the limit.
TEST_F(ValidationTableTest, GameOverTheSizeLimitNamesTheTensor) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  v1::Tensor* t = config.mutable_players(1)->mutable_tensors(0);
  t->clear_data();
  t->set_shape(0, int64_t{1} << 40);
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kExhausted) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.players[1].tensors[0].shape"));
}

// Players and tensors are unbounded in number and looked up by linear
// search (GameLayout::FindPlayer / FindTensor), so creating a session and
// decoding every submission is quadratic in their count: 16,000 players
// take 0.7 s to create, 100,000 (a 1.3 MB request) about 45 s of a server
// thread. A cap (say 1024 players and 65536 tensors per player) or a hash
// index would bound it.
TEST_F(ValidationTableTest, TooManyPlayersAreRejectedQuickly) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 1, 0);
  config.clear_players();
  for (int i = 0; i < 100000; ++i) {
    v1::PlayerConfig* p = config.add_players();
    p->set_name("p" + std::to_string(i));
    p->add_tensors()->set_name("w");
  }
  GameOptServerOptions options = TestServerOptions();
  server_ = StartServer(options);  // the default message limit
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  const grpc::Status status = SendCreate(config);
  EXPECT_EQ(status.error_code(), kInvalid) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("config.players"));
}

// worker_name is stored, logged and returned by GetSession unchecked: any
// length up to the message limit, any bytes (newlines forge log lines).
TEST_F(ValidationTableTest, WorkerNameIsValidated) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 3, 0);
  absl::StatusOr<std::string> id = CreateSession(*stub_, config);
  ASSERT_TRUE(id.ok());
  RunTable({
      {"name of 100 KB",
       [&] { return SendJoin(*id, 0, std::string(100 << 10, 'n')); }, kInvalid,
       "worker_name"},
      {"name with a newline",
       [&] { return SendJoin(*id, 0, "w\n2024-01-01 00:00:00.000 forged"); },
       kInvalid, "worker_name"},
  });
}

// A submission for round -1 from a worker that has not submitted yet
// matches its last_round (-1, "none") and is taken for a retry: OK with the
// current task instead of FAILED_PRECONDITION.
TEST_F(ValidationTableTest, RoundMinusOneIsNotARetry) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  Scenario scenario(*stub_, game_, config);
  ASSERT_NO_FATAL_FAILURE(scenario.Create());
  RunTable({GradientRow(
      "round -1 of a fresh worker", scenario, 0,
      [](v1::SubmitGradientRequest& r) { r.set_round(-1); }, kStale,
      "round -1")});
}

// An error message echoes the client's session id whole: a long id makes
// the status too large for gRPC's metadata limit (8 KiB by default), and
// the client gets something other than NOT_FOUND.
TEST_F(ValidationTableTest, LongSessionIdIsNotFound) {
  const std::string id(64 << 10, 's');
  RunTable({
      {"get a 64 KiB id",
       [&] {
         grpc::ClientContext context;
         v1::GetSessionRequest request;
         request.set_session_id(id);
         v1::SessionStatus response;
         return stub_->GetSession(&context, request, &response);
       },
       kNotFound, "no session"},
      {"join a 64 KiB id", [&] { return SendJoin(id, 0); }, kNotFound,
       "no session"},
  });
}

// A worker dropped at a deadline that resends its last submission (a retry)
// is made active again without the check Join makes, so K + 1 workers can
// be active in a K-worker session.
TEST_F(ValidationTableTest, DroppedWorkerRetryDoesNotExceedK) {
  FakeClock clock;
  GameOptServerOptions options = TestServerOptions();
  options.clock = &clock;
  server_ = StartServer(options);
  ASSERT_NE(server_, nullptr);
  stub_ = NewStub(server_->port());
  v1::SessionConfig config = QuadraticConfig(game_, v1::SIMGD, 2, 0);
  config.set_quorum(1);
  config.set_phase_deadline_seconds(10);
  Scenario scenario(*stub_, game_, config);
  ASSERT_NO_FATAL_FAILURE(scenario.Create());
  // Round 0: both submit. Round 1: only worker 0; the deadline drops 1.
  ASSERT_NO_FATAL_FAILURE(scenario.Round());
  const v1::SubmitGradientRequest last_of_1 = [&] {
    v1::SubmitGradientRequest r = scenario.Gradient(1);
    r.set_round(0);  // its last accepted submission, resent
    r.set_step(0);
    return r;
  }();
  Background w0 = scenario.SubmitInBackground(0);
  ASSERT_TRUE(WaitForSubmitted(*stub_, scenario.id(), 1));
  clock.Advance(absl::Seconds(11));
  w0.Join();
  absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, scenario.id());
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->workers(1).state(), "dropped");
  // A new worker takes the free place.
  v1::TaskResponse joined;
  ASSERT_TRUE(Join(*stub_, scenario.id(), &joined, 0, "replacement").ok());
  // The dropped worker retries its last submission.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(500));
  v1::TaskResponse response;
  stub_->SubmitGradient(&context, last_of_1, &response);
  status = GetSession(*stub_, scenario.id());
  ASSERT_TRUE(status.ok());
  int active = 0;
  for (const v1::WorkerStatus& w : status->workers()) {
    active += w.state() == "active";
  }
  EXPECT_LE(active, 2) << status->DebugString();
  server_.reset();  // before `clock`, which it reads
}

}  // namespace
}  // namespace gameopt::testing
