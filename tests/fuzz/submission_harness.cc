#include "tests/fuzz/submission_harness.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gameopt/v1/gameopt.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/clock.h"
#include "server/core/layout.h"
#include "server/core/session.h"
#include "server/service/config_convert.h"
#include "server/service/proto_convert.h"
#include "server/service/wire_format.h"
#include "tests/fuzz/submission_ops.h"

namespace gameopt::fuzz {
namespace {

// Guards that keep one input fast and small. Configs outside them are
// skipped: a huge shape or AltGD plan is a known memory blow-up (bad_alloc in
// Session::Create, see tests/service/validation_table_test.cc), not
// something to rediscover on every run.
constexpr int64_t kMaxDimension = 4096;
constexpr int kMaxWorkers = 8;
constexpr int kMaxSamplesPerRound = 64;
constexpr int kMaxAltGdPhases = 256;
constexpr int kMaxOps = 64;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gameopt fuzz invariant violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(condition, what)                                  \
  do {                                                               \
    if (!(condition)) Die(absl::StrCat(#condition, " -- ", (what))); \
  } while (0)

bool DocumentedCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

// SplitMix64: deterministic values from the input's seed bytes.
class Values {
 public:
  explicit Values(uint64_t seed) : state_(seed) {}
  double Next() {  // in [-1, 1)
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0;
  }

 private:
  uint64_t state_;
};

struct Record {
  uint8_t op = 0;
  std::string payload;
};

std::vector<Record> ParseRecords(const uint8_t* data, size_t size) {
  std::vector<Record> out;
  size_t i = 0;
  while (i < size && out.size() < static_cast<size_t>(kMaxOps) + 1) {
    Record r;
    r.op = data[i++];
    size_t length = 0;
    if (i < size) length = data[i++];
    if (i < size) length |= static_cast<size_t>(data[i++]) << 8;
    length = std::min(length, size - i);
    r.payload.assign(reinterpret_cast<const char*>(data + i), length);
    i += length;
    out.push_back(std::move(r));
  }
  return out;
}

uint8_t Byte(const std::string& s, size_t i) {
  return i < s.size() ? static_cast<uint8_t>(s[i]) : 0;
}

bool WithinGuards(const SessionConfig& config) {
  if (config.workers_per_round > kMaxWorkers) return false;
  if (config.workers_per_round * config.samples_per_worker >
      kMaxSamplesPerRound) {
    return false;
  }
  int64_t dimension = 0;
  for (const PlayerConfig& p : config.players) {
    for (const TensorConfig& t : p.tensors) {
      int64_t n = 1;
      for (int64_t dim : t.shape) n *= dim;  // validated: <= 2^40, no overflow
      dimension += n;
      if (dimension > kMaxDimension) return false;
    }
  }
  int phases = 0;
  for (const AltGdStage& stage : config.algorithm.altgd_order) {
    phases += stage.steps;
    if (phases > kMaxAltGdPhases) return false;
  }
  return true;
}

class Harness {
 public:
  Harness(std::unique_ptr<Session> session, FakeClock* clock)
      : session_(std::move(session)), clock_(clock) {}

  void JoinAll() {
    for (int i = 0; i < session_->config().workers_per_round; ++i) Join(0, "");
  }

  void Apply(const Record& record) {
    switch (record.op) {
      case kValid:
        return Valid(Byte(record.payload, 0), record.payload);
      case kGradient:
      case kProducts:
        return Fuzzed(record.op == kProducts, record.payload);
      case kJoin: {
        const uint8_t who = Byte(record.payload, 0);
        const std::string name =
            record.payload.size() > 1 ? record.payload.substr(1) : "";
        if (who == 0xff) return Join(0, name);
        if (who >= 0x80) return Join(static_cast<int64_t>(who) - 0x82, name);
        return Join(WorkerId(who), name);
      }
      case kLeave: {
        const absl::Status status =
            session_->Leave(WorkerId(Byte(record.payload, 0)));
        FUZZ_CHECK(status.ok() || status.code() == absl::StatusCode::kNotFound,
                   status.ToString());
        return;
      }
      case kCancel:
        if (!waiting_.empty()) {
          session_->Cancel(waiting_.back());
          waiting_.pop_back();
        }
        return;
      case kDeadline:
        if (session_->config().phase_deadline != absl::InfiniteDuration()) {
          clock_->Advance(session_->config().phase_deadline +
                          absl::Milliseconds(1));
          session_->CheckDeadline();
        }
        return;
      default:
        return;
    }
  }

  // Closes the session and checks that every call was answered once.
  void Finish() {
    session_->Close(absl::UnavailableError("the fuzz input ended"));
    for (size_t i = 0; i < calls_.size(); ++i) {
      FUZZ_CHECK(calls_[i] == 1,
                 absl::StrCat("call ", i, " answered ", calls_[i], " times"));
    }
  }

 private:
  // The id of worker `index` (modulo the workers the session knows), or 1.
  int64_t WorkerId(uint8_t index) const {
    const std::vector<WorkerInfo> workers = session_->Info().workers;
    if (workers.empty()) return 1;
    return workers[index % workers.size()].id;
  }

  // Everything a client can observe: a bad submission must not change it.
  std::string State() const {
    const SessionInfo info = session_->Info();
    std::string out =
        absl::StrCat(info.step, "/", info.phase, "/", info.round, "/",
                     info.done, "/", info.submitted, "/", info.params_version);
    for (const WorkerInfo& w : info.workers) {
      absl::StrAppend(&out, ";", w.id, w.name, WorkerStateName(w.state),
                      w.last_round, ",", w.missed_deadlines);
    }
    const ParametersSnapshot params = session_->Parameters();
    FUZZ_CHECK(params.values != nullptr, "no parameters");
    out.append(static_cast<const char*>(params.values->data()),
               params.values->bytes());
    return out;
  }

  TaskCallback NewCall() {
    const size_t index = calls_.size();
    calls_.push_back(0);
    answers_.emplace_back();
    return [this, index](absl::StatusOr<Task> result) {
      FUZZ_CHECK(++calls_[index] == 1,
                 absl::StrCat("call ", index, " answered twice"));
      answers_[index] = result.status();
      FUZZ_CHECK(DocumentedCode(result.status().code()),
                 result.status().ToString());
      if (result.ok()) Check(*result);
    };
  }

  void Check(const Task& task) {
    const GameLayout& layout = session_->layout();
    const SessionConfig& config = session_->config();
    const std::string where =
        absl::StrCat("task of worker ", task.worker_id, " round ", task.round);
    FUZZ_CHECK(task.round >= last_round_, where);
    FUZZ_CHECK(task.step >= last_step_, where);
    last_round_ = task.round;
    last_step_ = task.step;
    FUZZ_CHECK(task.params != nullptr, where);
    FUZZ_CHECK(task.params->size() == layout.dimension(), where);
    FUZZ_CHECK(task.params->dtype() == config.dtype, where);
    if (task.kind == Task::Kind::kGradient) {
      FUZZ_CHECK(!task.players.empty(), where);
      for (size_t i = 0; i < task.players.size(); ++i) {
        FUZZ_CHECK(task.players[i] >= 0 &&
                       task.players[i] < layout.num_players() &&
                       (i == 0 || task.players[i - 1] < task.players[i]),
                   where);
      }
      FUZZ_CHECK(task.num_samples == config.samples_per_worker, where);
    } else if (task.kind == Task::Kind::kProducts) {
      FUZZ_CHECK(task.vjp || task.jvp, where);
      FUZZ_CHECK(!task.probes.empty() && static_cast<int>(task.probes.size()) <=
                                             config.samples_per_worker,
                 where);
      for (size_t k = 0; k < task.probes.size(); ++k) {
        // Held, lazy or in a sample's bytes: as the transports send it.
        FUZZ_CHECK(task.HasProbe(k), where);
        const std::shared_ptr<const FlatVector> probe = task.Probe(k);
        FUZZ_CHECK(probe->size() == layout.dimension() &&
                       probe->dtype() == config.dtype,
                   where);
      }
    }
    // The hot path writes the response itself (wire_format.h): byte for
    // byte what protobuf writes, with and without the parameters.
    for (int64_t known : {int64_t{0}, task.params_version}) {
      v1::TaskResponse proto;
      TaskToProto(task, layout, known, &proto);
      grpc::ByteBuffer buffer;
      TaskToWire(task, layout, known, &buffer);
      std::vector<grpc::Slice> slices;
      FUZZ_CHECK(buffer.Dump(&slices).ok(), where);
      std::string wire;
      for (const grpc::Slice& slice : slices) {
        wire.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      FUZZ_CHECK(wire == proto.SerializeAsString(),
                 absl::StrCat(where, ": TaskToWire differs from TaskToProto"));
    }
    if (task.worker_id > 0) tasks_[task.worker_id] = task;
  }

  void Join(int64_t worker_id, const std::string& name) {
    CallId call = 0;
    const size_t index = calls_.size();
    session_->Join(worker_id, name, NewCall(), &call);
    // 0 means answered already; a call given an id may be answered in the
    // same call too (its own submission closed the round). Cancelling it
    // afterwards must do nothing: the ids stay in waiting_.
    FUZZ_CHECK(call != 0 || calls_[index] == 1, "CallId 0 but not answered");
    if (call != 0) waiting_.push_back(call);
  }

  // Converts and submits as the service does; a submission answered at once
  // with an error must leave the session as it was.
  template <typename Request>
  void Submit(bool products, const Request& request) {
    Submission submission;
    if (absl::Status s = SubmissionFromProto(request, &submission); !s.ok()) {
      FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, s.ToString());
      return;
    }
    const std::string before = State();
    const size_t index = calls_.size();
    TaskCallback done = NewCall();
    CallId call = 0;
    if (products) {
      session_->SubmitProducts(request.worker_id(), submission, done, &call);
    } else {
      session_->SubmitGradient(request.worker_id(), submission, done, &call);
    }
    // 0 means answered already; a call given an id may be answered in the
    // same call too (its own submission closed the round). Cancelling it
    // afterwards must do nothing: the ids stay in waiting_.
    FUZZ_CHECK(call != 0 || calls_[index] == 1, "CallId 0 but not answered");
    if (call != 0) waiting_.push_back(call);
    if (calls_[index] == 1 && !answers_[index].ok()) {
      FUZZ_CHECK(State() == before,
                 absl::StrCat("rejected with ", answers_[index].ToString(),
                              " but the session changed"));
    }
  }

  // The valid answer of `worker_id` to `task`, with values from `seed`.
  v1::SubmitGradientRequest ValidGradient(int64_t worker_id, const Task& task,
                                          Values& values) const {
    v1::SubmitGradientRequest request;
    request.set_worker_id(worker_id);
    request.set_round(task.round);
    request.set_step(task.step);
    request.set_phase(task.phase);
    const GameLayout& layout = session_->layout();
    for (int k = 0; k < task.num_samples; ++k) {
      FlatVector sample(session_->config().dtype, layout.dimension());
      Fill(sample, values);
      v1::Vector all;
      VectorToProto(sample, layout, &all);
      v1::Vector* wanted = request.add_gradients();
      for (int p : task.players) *wanted->add_players() = all.players(p);
    }
    return request;
  }

  v1::SubmitJacobianProductsRequest ValidProducts(int64_t worker_id,
                                                  const Task& task,
                                                  Values& values) const {
    v1::SubmitJacobianProductsRequest request;
    request.set_worker_id(worker_id);
    request.set_round(task.round);
    request.set_step(task.step);
    request.set_phase(task.phase);
    const GameLayout& layout = session_->layout();
    for (size_t k = 0; k < task.probes.size(); ++k) {
      FlatVector product(session_->config().dtype, layout.dimension());
      if (task.vjp) {
        Fill(product, values);
        VectorToProto(product, layout, request.add_vjp());
      }
      if (task.jvp) {
        Fill(product, values);
        VectorToProto(product, layout, request.add_jvp());
      }
    }
    return request;
  }

  static void Fill(FlatVector& v, Values& values) {
    for (int64_t i = 0; i < v.size(); ++i) {
      if (v.dtype() == DType::kFloat32) {
        v.as<float>()(i) = static_cast<float>(values.Next());
      } else {
        v.as<double>()(i) = values.Next();
      }
    }
  }

  const Task* TaskOf(int64_t worker_id) const {
    auto it = tasks_.find(worker_id);
    return it == tasks_.end() ? nullptr : &it->second;
  }

  void Valid(uint8_t worker, const std::string& payload) {
    const int64_t id = WorkerId(worker);
    const Task* task = TaskOf(id);
    if (task == nullptr || task->kind == Task::Kind::kDone) return;
    uint64_t seed = 0;
    std::memcpy(
        &seed, payload.data() + std::min<size_t>(1, payload.size()),
        std::min<size_t>(8, payload.size() > 1 ? payload.size() - 1 : 0));
    Values values(seed);
    if (task->kind == Task::Kind::kGradient) {
      Submit(false, ValidGradient(id, *task, values));
    } else {
      Submit(true, ValidProducts(id, *task, values));
    }
  }

  void Fuzzed(bool products, const std::string& payload) {
    const uint8_t flags = Byte(payload, 0);
    const std::string bytes = payload.empty() ? "" : payload.substr(1);
    const int64_t id = WorkerId((flags >> 4) & 7);
    const Task* task = TaskOf(id);
    Values values(flags);
    auto fix = [&](auto& request) {
      if (flags & kFixWorker) request.set_worker_id(id);
      if ((flags & kFixRound) && task != nullptr) {
        request.set_round(task->round);
        request.set_step(task->step);
        request.set_phase(task->phase);
      }
    };
    if (products) {
      v1::SubmitJacobianProductsRequest request;
      if ((flags & kOverValid) && task != nullptr &&
          task->kind == Task::Kind::kProducts) {
        request = ValidProducts(id, *task, values);
      }
      if (!request.MergeFromString(bytes)) return;
      fix(request);
      Submit(true, request);
    } else {
      v1::SubmitGradientRequest request;
      if ((flags & kOverValid) && task != nullptr &&
          task->kind == Task::Kind::kGradient) {
        request = ValidGradient(id, *task, values);
      }
      if (!request.MergeFromString(bytes)) return;
      fix(request);
      Submit(false, request);
    }
  }

  std::unique_ptr<Session> session_;
  FakeClock* const clock_;
  // Per call, stable addresses: times answered, and the last answer.
  std::deque<int> calls_;
  std::deque<absl::Status> answers_;
  std::vector<CallId> waiting_;
  std::map<int64_t, Task> tasks_;  // the last task each worker got
  int64_t last_round_ = 0;
  int64_t last_step_ = 0;
};

}  // namespace

// The built-in game (as in tests/service): "gen" owns w [2, 2] and b [2],
// "disc" owns w [3] and s [] (a scalar). d = 10.
v1::SessionConfig BuiltInConfig(const std::string& header) {
  v1::SessionConfig config;
  config.set_name("fuzz");
  const uint8_t flags = Byte(header, 1);
  config.set_dtype((flags & 1) ? v1::FLOAT64 : v1::FLOAT32);
  struct TensorSpec {
    const char* name;
    std::vector<int64_t> shape;
  };
  const std::vector<std::pair<const char*, std::vector<TensorSpec>>> players = {
      {"gen", {{"w", {2, 2}}, {"b", {2}}}}, {"disc", {{"w", {3}}, {"s", {}}}}};
  Values values(Byte(header, 8));
  for (const auto& [name, tensors] : players) {
    v1::PlayerConfig* p = config.add_players();
    p->set_name(name);
    for (const TensorSpec& t : tensors) {
      v1::Tensor* tensor = p->add_tensors();
      tensor->set_name(t.name);
      tensor->set_dtype(v1::FLOAT64);
      int64_t n = 1;
      for (int64_t dim : t.shape) {
        tensor->add_shape(dim);
        n *= dim;
      }
      for (int64_t i = 0; i < n; ++i) {
        const double v = values.Next();
        tensor->mutable_data()->append(reinterpret_cast<const char*>(&v), 8);
      }
    }
    v1::OptimizerConfig* o = p->mutable_optimizer();
    o->set_kind(static_cast<v1::Optimizer>(Byte(header, 6) % 6));
    o->set_learning_rate(0.05);
    o->set_clip_value((flags & 0x80) ? 2.0 : 0.0);
  }
  v1::AlgorithmConfig* a = config.mutable_algorithm();
  a->set_kind(static_cast<v1::Algorithm>(Byte(header, 0) % 7));
  if (flags & 2) {
    a->set_lookahead_k(2);
    a->set_lookahead_alpha(0.5);
  }
  a->set_sga_no_alignment(flags & 0x10);
  a->set_extragradient_frozen_moments(flags & 0x20);
  if (flags & 0x40) a->set_clip_global_norm(1.0);
  a->set_estimator(static_cast<v1::Estimator>(Byte(header, 5) % 4));
  if (a->kind() == v1::ALTGD && (Byte(header, 7) & 0x80)) {
    v1::AltGdStage* stage = a->add_altgd_order();
    stage->set_player("disc");
    stage->set_steps(2);
    a->add_altgd_order()->set_player("gen");
  }
  const int k = Byte(header, 2) % 4 + 1;
  config.set_workers_per_round(k);
  config.set_quorum(Byte(header, 3) % (k + 1));
  config.set_samples_per_worker(Byte(header, 4) % 3 + 1);
  config.set_phase_deadline_seconds((flags & 8) ? 10.0 : -1.0);
  config.set_invalid_sample_policy((flags & 4) ? v1::DROP : v1::REJECT);
  config.set_max_steps(Byte(header, 7) % 8);
  config.set_seed(Byte(header, 9));
  return config;
}

int RunSubmissionInput(const uint8_t* data, size_t size) {
  const std::vector<Record> records = ParseRecords(data, size);
  v1::SessionConfig proto;
  size_t first = 0;
  if (!records.empty() && records[0].op == kConfig) {
    if (!proto.ParseFromString(records[0].payload)) return -1;
    first = 1;
  } else {
    const bool header = !records.empty() && records[0].op == kHeader;
    proto = BuiltInConfig(header ? records[0].payload : "");
    first = header ? 1 : 0;
  }
  absl::StatusOr<SessionConfig> config = SessionConfigFromProto(proto);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
               config.status().ToString());
    return 0;
  }
  if (!WithinGuards(*config)) return -1;
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create("fuzz", *std::move(config), &clock);
  FUZZ_CHECK(session.ok(), absl::StrCat("a validated config fails: ",
                                        session.status().ToString()));
  Harness harness(*std::move(session), &clock);
  harness.JoinAll();
  for (size_t i = first; i < records.size(); ++i) harness.Apply(records[i]);
  harness.Finish();
  return 0;
}

}  // namespace gameopt::fuzz
