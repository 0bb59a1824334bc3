// The gameopt server's own work for one worker's step, without gRPC: what
// GameOptimizerService::Submit does between receiving a request and
// handing gRPC the answer (WireSubmission::Parse and ToSubmission, the
// session's accept and close, TaskToWire), on gameopt_bench's null game
// with --tensors tensors per player. Every call of a step runs on one
// thread, as a one-worker round does in the server. Prints
//
//   HANDLER case=<case> tensors=<T> step_us=<us> mallocs_per_step=<n>
//   PARSE bytes=<n> gameopt_us=<us> protobuf_us=<us> ratio=<gameopt/protobuf>
//
// step_us: the best block's mean, both submissions of a step; mallocs: of
// the whole process (this binary replaces malloc), per step. PARSE: one
// gradient request, WireSubmission::Parse against protobuf's generated
// ParseFromString of the same bytes (the best of --blocks blocks each).
// In the server the same work runs with cold caches between calls (gRPC
// and the kernel in between): tests/bench/README.md, "Stop 33".
//
//   build-bench/tests/bench/handler_bench [--case=conopt/2/1] [--tensors=10]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gameopt/v1/gameopt.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/core/clock.h"
#include "server/core/session.h"
#include "server/service/config_convert.h"
#include "server/service/malloc_tuning.h"
#include "server/service/wire_format.h"
#include "tests/bench/null_worker.h"

ABSL_FLAG(std::string, case, "conopt/2/1", "gameopt_bench's case syntax");
ABSL_FLAG(int, tensors, 1, "tensors per player (the case's d split evenly)");
ABSL_FLAG(int, steps, 2000, "steps per timed block");
ABSL_FLAG(int, blocks, 10, "timed blocks; the best counts");

namespace {
std::atomic<int64_t> mallocs{0};
}  // namespace

// Every allocation of the process passes through here (operator new
// included: libstdc++'s calls malloc).
extern "C" {
void* __libc_malloc(size_t);
void* malloc(size_t size) {
  mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
}  // extern "C"

namespace gameopt::bench {
namespace {

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "handler_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// The case's session with `tensors` tensors per player, each of d / 2 /
// tensors values.
v1::SessionConfig ConfigOf(const Case& c, int tensors) {
  v1::SessionConfig config = SessionConfigOf(c, /*max_steps=*/0);
  for (v1::PlayerConfig& player : *config.mutable_players()) {
    player.clear_tensors();
    for (int i = 0; i < tensors; ++i) {
      v1::Tensor* tensor = player.add_tensors();
      tensor->set_name(absl::StrCat("layer", i, ".weight"));
      tensor->set_dtype(v1::FLOAT32);
      tensor->add_shape(c.d / 2 / tensors);
    }
  }
  return config;
}

// A Vector of the session's layout, every value `value`.
void FillVector(const v1::SessionConfig& config, float value, v1::Vector* out) {
  for (const v1::PlayerConfig& player : config.players()) {
    v1::PlayerTensors* values = out->add_players();
    values->set_player(player.name());
    for (const v1::Tensor& layout : player.tensors()) {
      v1::Tensor* tensor = values->add_tensors();
      tensor->set_name(layout.name());
      tensor->set_dtype(v1::FLOAT32);
      *tensor->mutable_shape() = layout.shape();
      const std::vector<float> data(layout.shape(0), value);
      tensor->set_data(data.data(), data.size() * sizeof(float));
    }
  }
}

// The submission answering `task`.
template <typename Request>
grpc::ByteBuffer RequestFor(const Task& task, int64_t known_version,
                            const grpc::Slice& tensors) {
  return SubmissionRequest<Request>("bench", task.worker_id, task.round,
                                    task.step, task.phase, known_version,
                                    tensors);
}

template <typename F>
double BestMicros(int blocks, int per_block, F&& f) {
  double best = 1e300;
  for (int b = 0; b < blocks; ++b) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < per_block; ++i) f();
    const std::chrono::duration<double, std::micro> took =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / per_block);
  }
  return best;
}

int Main() {
  absl::StatusOr<Case> c = ParseCase(absl::GetFlag(FLAGS_case));
  if (!c.ok()) Die(c.status());
  const int tensors = std::max(1, absl::GetFlag(FLAGS_tensors));
  if (c->d / 2 < tensors) Die(absl::InvalidArgumentError("d / 2 < tensors"));
  const v1::SessionConfig proto = ConfigOf(*c, tensors);
  absl::StatusOr<SessionConfig> config = SessionConfigFromProto(proto);
  if (!config.ok()) Die(config.status());
  absl::StatusOr<std::unique_ptr<Session>> created =
      Session::Create("bench", *config, RealClock());
  if (!created.ok()) Die(created.status());
  Session& session = **created;

  grpc::Slice gradients, products;  // serialized tensors of one request
  {
    v1::SubmitGradientRequest g;
    v1::SubmitJacobianProductsRequest p;
    for (int k = 0; k < c->samples(); ++k) {
      FillVector(proto, 1e-3f, g.add_gradients());
      FillVector(proto, 2e-3f, p.add_vjp());
    }
    gradients = grpc::Slice(g.SerializeAsString());
    products = grpc::Slice(p.SerializeAsString());
  }

  Task task;
  int64_t known_version = 0;
  grpc::ByteBuffer answer;
  bool answered = false;
  const auto done = [&](absl::StatusOr<Task> next) {
    if (!next.ok()) Die(next.status());
    task = *std::move(next);
    answered = true;
    grpc::ByteBuffer response;  // as gRPC's: fresh for every call
    TaskToWire(task, session.layout(), known_version, &response,
               session.config().wire);
  };
  session.Join(0, "bench", done);
  // One call as the service makes it (GameOptimizerService::Submit).
  const auto submit = [&] {
    if (task.params != nullptr) known_version = task.params_version;
    const bool products_task = task.kind == Task::Kind::kProducts;
    grpc::ByteBuffer request =
        products_task ? RequestFor<v1::SubmitJacobianProductsRequest>(
                            task, known_version, products)
                      : RequestFor<v1::SubmitGradientRequest>(
                            task, known_version, gradients);
    WireSubmission wire;
    absl::Status status =
        wire.Parse(request, products_task ? WireSubmission::Kind::kProducts
                                          : WireSubmission::Kind::kGradient);
    Submission submission;
    if (status.ok()) status = wire.ToSubmission(&submission);
    if (!status.ok()) Die(status);
    submission.keep_alive = wire.ShareSlices();
    answered = false;
    if (products_task) {
      session.SubmitProducts(task.worker_id, submission, done);
    } else {
      session.SubmitGradient(task.worker_id, submission, done);
    }
    if (!answered) Die(absl::InternalError("a one-worker round waited"));
  };
  const int steps = std::max(1, absl::GetFlag(FLAGS_steps));
  const int blocks = std::max(1, absl::GetFlag(FLAGS_blocks));
  for (int i = 0; i < 200; ++i) submit();  // warm-up
  const int64_t mallocs_before = mallocs.load();
  // A step is two submissions for ConOpt, one for SimGD.
  const int calls = c->conopt() ? 2 : 1;
  const double step_us = calls * BestMicros(blocks, calls * steps, submit);
  const double mallocs_per_step =
      static_cast<double>(mallocs.load() - mallocs_before) /
      (static_cast<double>(blocks) * steps);
  std::printf("HANDLER case=%s tensors=%d step_us=%.2f mallocs_per_step=%.1f\n",
              c->Name().c_str(), tensors, step_us, mallocs_per_step);

  // The gradient request alone: gameopt's parser against protobuf's.
  const grpc::ByteBuffer request =
      RequestFor<v1::SubmitGradientRequest>(task, known_version, gradients);
  std::string flat;
  {
    std::vector<grpc::Slice> slices;
    if (!request.Dump(&slices).ok()) Die(absl::InternalError("dump"));
    for (const grpc::Slice& s : slices) {
      flat.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  const double gameopt_us = BestMicros(blocks, steps, [&] {
    WireSubmission wire;
    if (!wire.Parse(request, WireSubmission::Kind::kGradient).ok()) {
      Die(absl::InternalError("parse"));
    }
  });
  const double protobuf_us = BestMicros(blocks, steps, [&] {
    v1::SubmitGradientRequest parsed;
    if (!parsed.ParseFromString(flat)) Die(absl::InternalError("protobuf"));
  });
  std::printf("PARSE bytes=%zu gameopt_us=%.3f protobuf_us=%.3f ratio=%.3f\n",
              flat.size(), gameopt_us, protobuf_us, gameopt_us / protobuf_us);
  return 0;
}

}  // namespace
}  // namespace gameopt::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As gameopt_server's main(): its malloc settings, and no lock-order
  // cycle detection (on in Debian's Abseil).
  gameopt::TuneMallocForLargeMessages();
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return gameopt::bench::Main();
}
