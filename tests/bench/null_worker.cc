#include "tests/bench/null_worker.h"

#include <cstring>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/service/wire_format.h"

namespace gameopt::bench {
namespace {

constexpr const char* kPlayers[] = {"gen", "disc"};
// The null game's answers: small enough that RMSProp keeps every parameter
// finite for any number of steps.
constexpr float kGradient = 1e-3f;
constexpr float kProduct = 2e-3f;

std::unique_ptr<v1::GameOptimizer::Stub> NewStub(const std::string& target) {
  return v1::GameOptimizer::NewStub(NewChannel(target));
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

constexpr struct {
  const char* name;
  Compression compression;
  v1::DType dtype;
} kWires[] = {{"bf16", Compression::kBFloat16, v1::BFLOAT16},
              {"fp16", Compression::kFloat16, v1::FLOAT16},
              {"int8", Compression::kInt8Block, v1::INT8_BLOCK}};

v1::DType WireDType(Compression c) {
  for (const auto& w : kWires) {
    if (w.compression == c) return w.dtype;
  }
  return v1::FLOAT32;
}

// Both players' blocks filled with `value`, in the case's wire format.
void FillVector(const Case& c, float value, v1::Vector* out) {
  std::string bytes(c.vector_bytes() / 2, '\0');
  std::vector<float> values(c.d / 2, value);
  if (c.wire == Compression::kNone) {
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    Encode(c.wire, values.data(), c.d / 2, Rounding(), bytes.data());
  }
  for (const char* name : kPlayers) {
    v1::PlayerTensors* player = out->add_players();
    player->set_player(name);
    v1::Tensor* tensor = player->add_tensors();
    tensor->set_name("w");
    tensor->set_dtype(WireDType(c.wire));
    tensor->add_shape(c.d / 2);
    tensor->set_data(bytes);
  }
}

}  // namespace

std::vector<int64_t> Case::RequestBytes() const {
  std::vector<int64_t> sizes = {samples() * vector_bytes()};
  if (conopt()) sizes.push_back(samples() * vector_bytes());
  return sizes;
}

int64_t Case::PayloadBytesPerStep() const {
  // Per worker: gradients up; ConOpt: probes down, products up; params down.
  int64_t per_worker = samples() * vector_bytes() + vector_bytes();
  if (conopt()) per_worker += 2 * samples() * vector_bytes();
  return workers * per_worker;
}

std::string Case::Name() const {
  std::string size = absl::StrCat(d);
  if (d % (int64_t{1} << 20) == 0) {
    size = absl::StrCat(d >> 20, "M");
  } else if (d % 1024 == 0) {
    size = absl::StrCat(d >> 10, "K");
  }
  std::string name = absl::StrCat(algorithm, "/", size, "/", workers);
  for (const auto& w : kWires) {
    if (w.compression == wire) absl::StrAppend(&name, "/", w.name);
  }
  if (pooled) absl::StrAppend(&name, "/pooled");
  return name;
}

absl::StatusOr<Case> ParseCase(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  Case c;
  if (parts.size() < 3 || parts.size() > 5 ||
      (parts[0] != "simgd" && parts[0] != "conopt")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "case '", text, "': want simgd|conopt/D/K[/WIRE][/pooled]"));
  }
  for (size_t i = 3; i < parts.size(); ++i) {
    if (parts[i] == "pooled" && parts[0] == "conopt" && !c.pooled) {
      c.pooled = true;
      continue;
    }
    bool known = false;
    for (const auto& w : kWires) {
      if (parts[i] == w.name && c.wire == Compression::kNone) {
        c.wire = w.compression;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "case '", text,
          "': the wire is bf16, fp16 or int8; 'pooled' goes with conopt"));
    }
  }
  c.algorithm = parts[0];
  std::string d = parts[1];
  int64_t scale = 1;
  if (!d.empty() && (d.back() == 'K' || d.back() == 'M')) {
    scale = d.back() == 'K' ? 1024 : 1024 * 1024;
    d.pop_back();
  }
  if (!absl::SimpleAtoi(d, &c.d) || !absl::SimpleAtoi(parts[2], &c.workers) ||
      c.d < 1 || c.workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("case '", text, "'"));
  }
  c.d *= scale;
  if (c.d % 2 != 0) ++c.d;
  return c;
}

v1::SessionConfig SessionConfigOf(const Case& c, int64_t max_steps) {
  v1::SessionConfig config;
  config.set_name(absl::StrCat("bench ", c.Name()));
  config.set_dtype(v1::FLOAT32);
  for (const char* name : kPlayers) {
    v1::PlayerConfig* player = config.add_players();
    player->set_name(name);
    v1::Tensor* tensor = player->add_tensors();
    tensor->set_name("w");
    tensor->set_dtype(v1::FLOAT32);
    tensor->add_shape(c.d / 2);  // initial values: zeros
    player->mutable_optimizer()->set_kind(v1::RMSPROP);
    player->mutable_optimizer()->set_learning_rate(1e-4);
  }
  v1::AlgorithmConfig* algorithm = config.mutable_algorithm();
  if (c.conopt()) {
    algorithm->set_kind(v1::CONOPT);
    algorithm->set_gamma(10.0);
    algorithm->set_estimator(c.pooled ? v1::POOLED : v1::UNBIASED);
  } else {
    algorithm->set_kind(v1::SIMGD);
  }
  config.set_workers_per_round(c.workers);
  config.set_samples_per_worker(c.samples());
  config.set_phase_deadline_seconds(-1);  // wait forever
  config.set_max_steps(max_steps);
  if (c.wire != Compression::kNone) {
    config.mutable_wire()->set_to_workers(WireDType(c.wire));
    config.mutable_wire()->set_from_workers(WireDType(c.wire));
  }
  return config;
}

absl::StatusOr<std::string> CreateSession(const std::string& target,
                                          const v1::SessionConfig& config) {
  auto stub = NewStub(target);
  grpc::ClientContext context;
  v1::CreateSessionRequest request;
  *request.mutable_config() = config;
  v1::CreateSessionResponse response;
  absl::Status status = FromGrpc(
      stub->CreateSession(&context, request, &response), "CreateSession");
  if (!status.ok()) return status;
  return response.session_id();
}

absl::Status DeleteSession(const std::string& target,
                           const std::string& session_id) {
  auto stub = NewStub(target);
  grpc::ClientContext context;
  v1::DeleteSessionRequest request;
  request.set_session_id(session_id);
  v1::DeleteSessionResponse response;
  return FromGrpc(stub->DeleteSession(&context, request, &response),
                  "DeleteSession");
}

namespace {

// What the worker needs of a TaskResponse, read without parsing the
// tensors (the null game ignores them).
struct TaskFields {
  int64_t worker_id = 0;
  int kind = 0;
  int64_t step = 0;
  int64_t phase = 0;
  int64_t round = 0;
  int probes = 0;
  int64_t params_version = 0;
  bool params_included = false;
};

absl::Status ReadTask(const grpc::ByteBuffer& buffer, TaskFields* out) {
  *out = TaskFields();
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InternalError("dump");
  WireReader reader(slices);
  int field, wire_type;
  uint64_t value;
  const absl::Status bad = absl::InternalError("bad TaskResponse");
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == 1 && wire_type == WireReader::kVarint) {
      if (!reader.ReadVarint(&value)) return bad;
      out->worker_id = static_cast<int64_t>(value);
    } else if (field == 2 && wire_type == WireReader::kLengthDelimited) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.PushLimit(length, &outer)) {
        return bad;
      }
      while (reader.ReadTag(&field, &wire_type)) {
        if (wire_type == WireReader::kVarint) {
          if (!reader.ReadVarint(&value)) return bad;
          const int64_t v = static_cast<int64_t>(value);
          if (field == 1) out->kind = static_cast<int>(v);
          if (field == 2) out->step = v;
          if (field == 3) out->phase = v;
          if (field == 4) out->round = v;
          if (field == 11) out->params_version = v;
          if (field == 13) out->params_included = v != 0;
        } else {
          if (field == 10) ++out->probes;
          if (!reader.Skip(wire_type)) return bad;
        }
      }
      reader.PopLimit(outer);
    } else if (!reader.Skip(wire_type)) {
      return bad;
    }
  }
  return absl::OkStatus();
}

// The submission answering `task`.
template <typename Request>
grpc::ByteBuffer RequestOf(const std::string& session_id, int64_t worker_id,
                           const TaskFields& task, int64_t known_version,
                           const grpc::Slice& tensors) {
  return SubmissionRequest<Request>(session_id, worker_id, task.round,
                                    task.step, task.phase, known_version,
                                    tensors);
}

}  // namespace

absl::StatusOr<Window> RunNullWorker(
    const std::string& target, const std::string& session_id, const Case& c,
    int64_t timed_from_step, const std::function<void(int64_t)>& on_step) {
  std::shared_ptr<grpc::Channel> channel = NewChannel(target);
  const RawMethod join(channel, "/gameopt.v1.GameOptimizer/JoinSession");
  const RawMethod submit_gradient(channel,
                                  "/gameopt.v1.GameOptimizer/SubmitGradient");
  const RawMethod submit_products(
      channel, "/gameopt.v1.GameOptimizer/SubmitJacobianProducts");
  // The answers' tensors, serialized once.
  grpc::Slice gradients, products;
  {
    v1::SubmitGradientRequest g;
    v1::SubmitJacobianProductsRequest p;
    for (int k = 0; k < c.samples(); ++k) {
      FillVector(c, kGradient, g.add_gradients());
      FillVector(c, kProduct, p.add_vjp());
    }
    gradients = grpc::Slice(g.SerializeAsString());
    products = grpc::Slice(p.SerializeAsString());
  }
  grpc::ByteBuffer response;
  TaskFields task;
  {
    v1::JoinSessionRequest request;
    request.set_session_id(session_id);
    absl::Status status =
        FromGrpc(join.Call(Serialized(request), &response), "JoinSession");
    if (!status.ok()) return status;
    if (status = ReadTask(response, &task); !status.ok()) return status;
  }
  const int64_t worker_id = task.worker_id;
  int64_t known_version = 0;
  Window window;
  while (task.kind != v1::DONE) {
    if (task.step == timed_from_step && task.phase == 0 &&
        window.start_ns == 0) {
      window.start_ns = NowNs();
    }
    if (task.phase == 0 && on_step) on_step(task.step);
    if (task.params_included) known_version = task.params_version;
    grpc::Status status;
    if (task.kind == v1::GRADIENT) {
      status = submit_gradient.Call(
          RequestOf<v1::SubmitGradientRequest>(session_id, worker_id, task,
                                               known_version, gradients),
          &response);
    } else if (task.kind == v1::PRODUCTS) {
      if (task.probes != c.samples()) {
        return absl::InternalError("unexpected number of probes");
      }
      status = submit_products.Call(
          RequestOf<v1::SubmitJacobianProductsRequest>(
              session_id, worker_id, task, known_version, products),
          &response);
    } else {
      return absl::InternalError("unexpected task kind");
    }
    if (absl::Status s = FromGrpc(status, "Submit"); !s.ok()) return s;
    if (absl::Status s = ReadTask(response, &task); !s.ok()) return s;
  }
  window.end_ns = NowNs();
  return window;
}

}  // namespace gameopt::bench
