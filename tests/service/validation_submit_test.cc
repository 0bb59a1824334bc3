// The validation tables of SubmitGradient and SubmitJacobianProducts
// (validation_table.h): every kind of bad gradient and product, each row
// rejected with its field named and no state changed.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/service/validation_table.h"

namespace gameopt::testing {
namespace {

// ---- SubmitGradient ---------------------------------------------------------

// Sessions of either dtype; the table runs once with the round empty and
// once with the other worker's submission waiting at the barrier.
class GradientTableTest
    : public ValidationTableTest,
      public ::testing::WithParamInterface<std::tuple<v1::DType, bool>> {};

TEST_P(GradientTableTest, BadGradientsAreRejectedAndTouchNothing) {
  const auto [dtype, other_waiting] = GetParam();
  const v1::SessionConfig config =
      QuadraticConfig(game_, v1::SIMGD, 2, 0, dtype);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // At round 2 (step 2): round 0 is closed and is not the worker's last
    // (resending the last one is a retry, answered again).
    ASSERT_NO_FATAL_FAILURE(s->Round());
    ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  Background waiting;
  if (other_waiting) {
    waiting = dirty.SubmitInBackground(1);
    ASSERT_TRUE(WaitForSubmitted(*stub_, dirty.id(), 1));
  }

  using Request = v1::SubmitGradientRequest;
  auto row = [&](const std::string& what, std::function<void(Request&)> edit,
                 grpc::StatusCode code, const std::string& text) {
    return GradientRow(what, dirty, 0, std::move(edit), code, text);
  };
  const std::string w42 = "worker 42 is not in session";
  std::vector<Row> rows = {
      // Ids.
      row(
          "unknown session", [](Request& r) { r.set_session_id("nope"); },
          kNotFound, "no session 'nope'"),
      row(
          "empty session id", [](Request& r) { r.set_session_id(""); },
          kNotFound, "no session ''"),
      row(
          "unknown worker", [](Request& r) { r.set_worker_id(42); }, kNotFound,
          w42),
      row(
          "worker id 0", [](Request& r) { r.set_worker_id(0); }, kNotFound,
          "worker 0 is not in session"),
      row(
          "negative worker id", [](Request& r) { r.set_worker_id(-7); },
          kNotFound, "worker -7 is not in session"),
      // Round, step and phase.
      row(
          "closed round", [](Request& r) { r.set_round(0); }, kStale,
          "round 0 (step 2 phase 0) is closed"),
      row(
          "future round", [](Request& r) { r.set_round(5); }, kStale,
          "round 5 (step 2 phase 0) is not open yet"),
      row(
          "largest round",
          [](Request& r) { r.set_round(std::numeric_limits<int64_t>::max()); },
          kStale, "is not open yet"),
      row(
          "negative round", [](Request& r) { r.set_round(-1); }, kStale,
          "round -1 (step 2 phase 0) is closed"),
      row(
          "wrong step", [](Request& r) { r.set_step(3); }, kInvalid,
          "step 3 phase 0 do not match round 2"),
      row(
          "negative step", [](Request& r) { r.set_step(-1); }, kInvalid,
          "step -1 phase 0 do not match round 2"),
      row(
          "wrong phase", [](Request& r) { r.set_phase(1); }, kInvalid,
          "step 2 phase 1 do not match round 2"),
      // Reported scalars and fused products.
      row(
          "NaN scalar",
          [](Request& r) {
            v1::Scalar* s = r.add_scalars();
            s->set_name("loss/gen");
            s->set_value(kNaN);
          },
          kInvalid, "scalars[0] ('loss/gen').value is nan"),
      row(
          "scalar name with a space",
          [](Request& r) { r.add_scalars()->set_name("a b"); }, kInvalid,
          "scalars[0].name must be 1 to 128 characters"),
      row(
          "65 scalars",
          [](Request& r) {
            for (int i = 0; i < 65; ++i) {
              r.add_scalars()->set_name(absl::StrCat("s", i));
            }
          },
          kInvalid, "scalars: 65 entries; at most 64"),
      row(
          "repeated scalar name",
          [](Request& r) {
            r.add_scalars()->set_name("l");
            r.add_scalars()->set_name("l");
          },
          kInvalid, "scalars[1]: the name 'l' appears twice"),
      row(
          "fused product the task did not ask for",
          [](Request& r) { *r.add_vjp() = r.gradients(0); }, kInvalid,
          "vjp: the task asks for 0 fused product(s)"),
      // Values.
      row(
          "NaN", [](Request& r) { Poke(GradTensor(r, 1, 0), 1, kNaN); },
          kInvalid,
          "gradients[0] player 'disc' tensor 'w': value at index 1 is not "
          "finite"),
      row(
          "+inf", [](Request& r) { Poke(GradTensor(r, 0, 0), 3, kInf); },
          kInvalid,
          "gradients[0] player 'gen' tensor 'w': value at index 3 is not "
          "finite"),
      row(
          "-inf in a scalar",
          [](Request& r) { Poke(GradTensor(r, 1, 1), 0, -kInf); }, kInvalid,
          "gradients[0] player 'disc' tensor 's': value at index 0 is not "
          "finite"),
      row(
          "float32 NaN",
          [](Request& r) {
            v1::Tensor* t = GradTensor(r, 0, 1);
            t->set_dtype(v1::FLOAT32);
            t->mutable_data()->assign(8, '\0');
            Poke(t, 1, kNaN);
          },
          kInvalid,
          "gradients[0] player 'gen' tensor 'b': value at index 1 is not "
          "finite"),
      // Shapes and sizes.
      row(
          "wrong dimension",
          [](Request& r) { GradTensor(r, 0, 0)->set_shape(1, 3); }, kInvalid,
          "gradients[0] player 'gen' tensor 'w': shape [2, 3] does not "
          "match the session's [2, 2]"),
      row(
          "flattened shape",
          [](Request& r) {
            v1::Tensor* t = GradTensor(r, 0, 0);
            t->clear_shape();
            t->add_shape(4);
          },
          kInvalid, "tensor 'w': shape [4] does not match the session's"),
      row(
          "scalar sent as [1]",
          [](Request& r) { GradTensor(r, 1, 1)->add_shape(1); }, kInvalid,
          "tensor 's': shape [1] does not match the session's []"),
      row(
          "negative dimension",
          [](Request& r) { GradTensor(r, 0, 0)->set_shape(0, -2); }, kInvalid,
          "tensor 'w': shape [-2, 2]"),
      row(
          "one byte short",
          [](Request& r) { GradTensor(r, 0, 1)->mutable_data()->pop_back(); },
          kInvalid, "tensor 'b': 15 bytes of data, but shape [2] of float64"),
      row(
          "one value too many",
          [](Request& r) {
            GradTensor(r, 1, 0)->mutable_data()->append(8, '\0');
          },
          kInvalid, "tensor 'w': 32 bytes of data"),
      row(
          "no data", [](Request& r) { GradTensor(r, 1, 1)->clear_data(); },
          kInvalid, "tensor 's': 0 bytes of data"),
      row(
          "float64 bytes labelled float32",
          [](Request& r) { GradTensor(r, 0, 1)->set_dtype(v1::FLOAT32); },
          kInvalid, "tensor 'b': 16 bytes of data, but shape [2] of float32"),
      // Players and tensors.
      row(
          "missing player",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players()->RemoveLast();
          },
          kInvalid, "gradients[0]: player 'disc' is missing"),
      row(
          "unknown player",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players(1)->set_player("ghost");
          },
          kInvalid, "gradients[0].players[1]: player 'ghost' is not a player"),
      row(
          "extra player",
          [](Request& r) {
            v1::PlayerTensors* extra = r.mutable_gradients(0)->add_players();
            *extra = r.gradients(0).players(0);
            extra->set_player("extra");
          },
          kInvalid, "gradients[0].players[2]: player 'extra'"),
      row(
          "duplicate player",
          [](Request& r) {
            *r.mutable_gradients(0)->add_players() = r.gradients(0).players(0);
          },
          kInvalid, "gradients[0]: player 'gen' appears twice"),
      row(
          "empty player name",
          [](Request& r) {
            r.mutable_gradients(0)->mutable_players(0)->set_player("");
          },
          kInvalid, "gradients[0].players[0]: player ''"),
      row(
          "missing tensor",
          [](Request& r) {
            r.mutable_gradients(0)
                ->mutable_players(0)
                ->mutable_tensors()
                ->RemoveLast();
          },
          kInvalid, "gradients[0] player 'gen': tensor 'b' is missing"),
      row(
          "unknown tensor",
          [](Request& r) { GradTensor(r, 1, 1)->set_name("t"); }, kInvalid,
          "gradients[0] player 'disc' tensor 't': no such tensor"),
      row(
          "duplicate tensor",
          [](Request& r) {
            v1::PlayerTensors* p = r.mutable_gradients(0)->mutable_players(1);
            *p->add_tensors() = p->tensors(0);
          },
          kInvalid, "gradients[0] player 'disc' tensor 'w': appears twice"),
      // Samples and dtypes.
      row(
          "no sample", [](Request& r) { r.clear_gradients(); }, kInvalid,
          "gradients: the task asks for 1 sample(s), got 0"),
      row(
          "two samples",
          [](Request& r) { *r.add_gradients() = r.gradients(0); }, kInvalid,
          "gradients: the task asks for 1 sample(s), got 2"),
      row(
          "unspecified dtype",
          [](Request& r) {
            GradTensor(r, 1, 0)->set_dtype(v1::DTYPE_UNSPECIFIED);
          },
          kInvalid,
          "gradients[0].players[1].tensors[0] ('disc/w').dtype is "
          "DTYPE_UNSPECIFIED"),
      row(
          "unknown dtype",
          [](Request& r) {
            GradTensor(r, 0, 0)->set_dtype(static_cast<v1::DType>(9));
          },
          kInvalid,
          "gradients[0].players[0].tensors[0] ('gen/w').dtype: unknown enum "
          "value 9"),
      // A compressed dtype the session's wire does not accept.
      row(
          "bfloat16 without wire.from_workers",
          [](Request& r) { GradTensor(r, 0, 0)->set_dtype(v1::BFLOAT16); },
          kInvalid,
          "dtype bfloat16 is not accepted by this session: send float32, "
          "float64 (the session's wire.from_workers)"),
      // Size.
      row(
          "message over the limit",
          [](Request& r) {
            GradTensor(r, 0, 0)->mutable_data()->resize((kMaxMessageMb << 20) +
                                                        8);
          },
          kExhausted, ""),
      // The other RPC.
      Row{"products in a gradient phase",
          [&] {
            v1::SubmitJacobianProductsRequest request;
            request.set_session_id(dirty.id());
            request.set_worker_id(dirty.worker_id(0));
            request.set_round(dirty.task(0).round());
            request.set_step(dirty.task(0).step());
            request.set_phase(dirty.task(0).phase());
            *request.add_vjp() = dirty.Gradient(0).gradients(0);
            return SendProducts(request);
          },
          kStale, "wants gradients: call SubmitGradient"},
  };
  if (dtype == v1::FLOAT32) {
    // A float64 value past float32's range becomes inf on conversion.
    rows.push_back(row(
        "float64 value overflowing float32",
        [](Request& r) { Poke(GradTensor(r, 0, 1), 0, 1e300); }, kInvalid,
        "gradients[0] player 'gen' tensor 'b': value at index "
        "0 is not finite"));
  }
  RunTable(rows);

  if (other_waiting) {
    ASSERT_NO_FATAL_FAILURE(dirty.Submit(0));
    waiting.Join();
  } else {
    ASSERT_NO_FATAL_FAILURE(dirty.Round());
  }
  ASSERT_NO_FATAL_FAILURE(clean.Round());
  ExpectSameState(dirty, clean);
}

INSTANTIATE_TEST_SUITE_P(
    DTypesAndBarrier, GradientTableTest,
    ::testing::Combine(::testing::Values(v1::FLOAT64, v1::FLOAT32),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<v1::DType, bool>>& info) {
      return std::string(v1::DType_Name(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "OtherWaiting" : "RoundEmpty");
    });

// AltGD asks for one player's block per phase: the other is extra.
TEST_F(ValidationTableTest, AltGdGradientOfAPlayerNotAskedForIsRejected) {
  const v1::SessionConfig config = QuadraticConfig(game_, v1::ALTGD, 1, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Create());
  ASSERT_EQ(dirty.task(0).players_size(), 1);
  ASSERT_EQ(dirty.task(0).players(0), "gen");
  RunTable({
      GradientRow(
          "the other player's block too", dirty, 0,
          [this](v1::SubmitGradientRequest& r) {
            *r.mutable_gradients(0) =
                EncodeVector(game_, game_.x0(), v1::FLOAT64);
          },
          kInvalid,
          "gradients[0].players[1]: player 'disc' was not asked for in this "
          "task"),
      GradientRow(
          "the other player's block instead", dirty, 0,
          [this](v1::SubmitGradientRequest& r) {
            *r.mutable_gradients(0) =
                EncodeVector(game_, game_.x0(), v1::FLOAT64, {"disc"});
          },
          kInvalid, "player 'disc' was not asked for in this task"),
  });
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

// ---- SubmitJacobianProducts -------------------------------------------------

class ProductsTableTest : public ValidationTableTest,
                          public ::testing::WithParamInterface<v1::Algorithm> {
};

TEST_P(ProductsTableTest, BadProductsAreRejectedAndTouchNothing) {
  const v1::Algorithm algorithm = GetParam();
  const bool sga = algorithm == v1::SGA;
  const v1::SessionConfig config = QuadraticConfig(game_, algorithm, 2, 0);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // A step, then the gradients of the next: products at round 3, step 1.
    for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(s->Round());
  }
  ASSERT_EQ(dirty.task(0).kind(), v1::PRODUCTS);
  ASSERT_EQ(dirty.task(0).jvp(), sga);

  using Request = v1::SubmitJacobianProductsRequest;
  auto row = [&](const std::string& what, std::function<void(Request&)> edit,
                 grpc::StatusCode code, const std::string& text) {
    return ProductsRow(what, dirty, 0, std::move(edit), code, text);
  };
  std::vector<Row> rows = {
      row(
          "unknown session", [](Request& r) { r.set_session_id("nope"); },
          kNotFound, "no session 'nope'"),
      row(
          "unknown worker", [](Request& r) { r.set_worker_id(42); }, kNotFound,
          "worker 42 is not in session"),
      row(
          "closed round", [](Request& r) { r.set_round(1); }, kStale,
          "round 1 (step 1 phase 1) is closed"),
      row(
          "wrong phase", [](Request& r) { r.set_phase(0); }, kInvalid,
          "step 1 phase 0 do not match round 3"),
      row(
          "wrong step", [](Request& r) { r.set_step(0); }, kInvalid,
          "step 0 phase 1 do not match round 3"),
      row(
          "no vjp", [](Request& r) { r.clear_vjp(); }, kInvalid,
          "vjp: the task asks for 1 product(s) (one per probe), got 0"),
      row(
          "two vjp", [](Request& r) { *r.add_vjp() = r.vjp(0); }, kInvalid,
          "vjp: the task asks for 1 product(s) (one per probe), got 2"),
      row(
          "NaN in vjp", [](Request& r) { Poke(VjpTensor(r, 0, 1), 0, kNaN); },
          kInvalid,
          "vjp[0] player 'gen' tensor 'b': value at index 0 is not finite"),
      row(
          "missing player in vjp",
          [](Request& r) { r.mutable_vjp(0)->mutable_players()->RemoveLast(); },
          kInvalid, "vjp[0]: player 'disc' is missing"),
      row(
          "unknown player in vjp",
          [](Request& r) {
            r.mutable_vjp(0)->mutable_players(1)->set_player("ghost");
          },
          kInvalid, "vjp[0].players[1]: player 'ghost' is not a player"),
      row(
          "duplicate tensor in vjp",
          [](Request& r) {
            v1::PlayerTensors* p = r.mutable_vjp(0)->mutable_players(0);
            *p->add_tensors() = p->tensors(1);
          },
          kInvalid, "vjp[0] player 'gen' tensor 'b': appears twice"),
      row(
          "wrong shape in vjp",
          [](Request& r) { VjpTensor(r, 1, 0)->set_shape(0, 4); }, kInvalid,
          "vjp[0] player 'disc' tensor 'w': shape [4]"),
      row(
          "short vjp",
          [](Request& r) { VjpTensor(r, 1, 1)->mutable_data()->resize(4); },
          kInvalid, "vjp[0] player 'disc' tensor 's': 4 bytes of data"),
      row(
          "unspecified dtype in vjp",
          [](Request& r) {
            VjpTensor(r, 0, 0)->set_dtype(v1::DTYPE_UNSPECIFIED);
          },
          kInvalid, "vjp[0].players[0].tensors[0] ('gen/w').dtype"),
      Row{"gradients in a products phase",
          [&] {
            v1::SubmitGradientRequest request;
            request.set_session_id(dirty.id());
            request.set_worker_id(dirty.worker_id(0));
            request.set_round(dirty.task(0).round());
            request.set_step(dirty.task(0).step());
            request.set_phase(dirty.task(0).phase());
            *request.add_gradients() = dirty.Products(0).vjp(0);
            return SendGradient(request);
          },
          kStale, "wants Jacobian products: call SubmitJacobianProducts"},
  };
  if (sga) {
    rows.push_back(row(
        "no jvp", [](Request& r) { r.clear_jvp(); }, kInvalid,
        "jvp: the task asks for 1 product(s) (one per probe), "
        "got 0"));
    rows.push_back(row(
        "inf in jvp",
        [](Request& r) {
          Poke(r.mutable_jvp(0)->mutable_players(1)->mutable_tensors(0), 2,
               -kInf);
        },
        kInvalid,
        "jvp[0] player 'disc' tensor 'w': value at index 2 "
        "is not finite"));
  } else {
    rows.push_back(row(
        "jvp not asked for", [](Request& r) { *r.add_jvp() = r.vjp(0); },
        kInvalid, "jvp: the task asks for 0 product(s)"));
  }
  RunTable(rows);

  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Round());
  ExpectSameState(dirty, clean);
}

INSTANTIATE_TEST_SUITE_P(ConOptAndSga, ProductsTableTest,
                         ::testing::Values(v1::CONOPT, v1::SGA),
                         [](const auto& info) {
                           return v1::Algorithm_Name(info.param);
                         });

// A worker that sent no gradient sample of the step has no probe to answer.
TEST_F(ValidationTableTest, ProductsFromAWorkerWithoutASampleAreRejected) {
  v1::SessionConfig config = QuadraticConfig(game_, v1::CONOPT, 2, 0);
  config.set_quorum(1);
  Scenario dirty(*stub_, game_, config), clean(*stub_, game_, config);
  for (Scenario* s : {&dirty, &clean}) {
    ASSERT_NO_FATAL_FAILURE(s->Create());
    // Worker 1 leaves before it submits: the round closes with worker 0's
    // sample alone, and worker 1 rejoins into the products phase.
    ASSERT_TRUE(SendLeave(s->id(), s->worker_id(1)).ok());
    ASSERT_NO_FATAL_FAILURE(s->Submit(0));
    ASSERT_EQ(s->task(0).kind(), v1::PRODUCTS);
  }
  const int64_t second = dirty.worker_id(1);
  auto products_of_second = [&] {
    v1::SubmitJacobianProductsRequest request = dirty.Products(0);
    request.set_worker_id(second);
    return SendProducts(request);
  };
  RunTable({{"products of a worker that left", products_of_second, kStale,
             "worker 2 left session"}});
  // Rejoining makes it active again, still without a sample: it has no
  // role in this phase, so its Join waits (a short deadline ends it).
  auto rejoin = [&](const Scenario& s) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(300));
    v1::JoinSessionRequest join;
    join.set_session_id(s.id());
    join.set_worker_id(s.worker_id(1));
    v1::TaskResponse response;
    return stub_->JoinSession(&context, join, &response).error_code();
  };
  for (Scenario* s : {&dirty, &clean}) {
    EXPECT_EQ(rejoin(*s), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The expired Join's cancellation reaches the server a little later and
  // drops the worker (liveness): wait for it before taking the tables'
  // before-state.
  for (Scenario* s : {&dirty, &clean}) {
    EXPECT_TRUE(WaitFor([&] {
      absl::StatusOr<v1::SessionStatus> status = GetSession(*stub_, s->id());
      return status.ok() && status->workers_size() == 2 &&
             status->workers(1).state() == "dropped";
    }));
  }
  RunTable({{"products of a rejoined worker that holds no sample",
             products_of_second, kStale,
             "worker 2 holds no gradient sample of step 0 phase 1"}});
  for (Scenario* s : {&dirty, &clean}) ASSERT_NO_FATAL_FAILURE(s->Submit(0));
  ExpectSameState(dirty, clean);
}

}  // namespace
}  // namespace gameopt::testing
