#include "tests/service/test_util.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "client/games/quadratic.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/service/config_convert.h"
#include "server/service/proto_convert.h"

namespace gameopt::testing {
namespace {

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::string EncodeValues(const double* values, int64_t n, v1::DType dtype) {
  if (dtype == v1::FLOAT64) {
    return std::string(reinterpret_cast<const char*>(values), n * 8);
  }
  std::vector<float> f(values, values + n);
  return std::string(reinterpret_cast<const char*>(f.data()), n * 4);
}

void DecodeValues(const std::string& bytes, v1::DType dtype, double* out) {
  const size_t elem = dtype == v1::FLOAT64 ? 8 : 4;
  for (size_t i = 0; i < bytes.size() / elem; ++i) {
    if (dtype == v1::FLOAT64) {
      std::memcpy(&out[i], bytes.data() + i * 8, 8);
    } else {
      float f;
      std::memcpy(&f, bytes.data() + i * 4, 4);
      out[i] = f;
    }
  }
}

}  // namespace

// ---- The game -------------------------------------------------------------

QuadraticGame QuadraticGame::Random(std::vector<PlayerSpec> players,
                                    uint64_t seed) {
  QuadraticGame g;
  g.players_ = std::move(players);
  // The sample game of client/games/quadratic.h on the players' block
  // sizes: only J and c matter here, the tensors are a layout of the blocks.
  std::vector<int> dims;
  for (const PlayerSpec& p : g.players_) {
    int size = 0;
    for (const TensorSpec& t : p.tensors) size += NumElements(t.shape);
    dims.push_back(size);
  }
  const gameopt::QuadraticGame game(dims, seed);
  g.j_ = game.J();
  g.c_ = game.b();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  g.x0_.resize(g.c_.size());
  for (int i = 0; i < g.x0_.size(); ++i) g.x0_(i) = normal(rng);
  return g;
}

QuadraticGame QuadraticGame::TwoPlayer(uint64_t seed) {
  return Random(
      {{"gen", {{"w", {2, 2}}, {"b", {2}}}}, {"disc", {{"w", {3}}, {"s", {}}}}},
      seed);
}

std::pair<int, int> QuadraticGame::Block(const std::string& name) const {
  int offset = 0;
  for (const PlayerSpec& p : players_) {
    int size = 0;
    for (const TensorSpec& t : p.tensors) size += NumElements(t.shape);
    if (p.name == name) return {offset, size};
    offset += size;
  }
  return {offset, -1};
}

Eigen::VectorXd QuadraticGame::Sample(
    const Eigen::VectorXd& x, uint64_t seed, int k,
    const std::vector<std::string>& players) const {
  std::mt19937_64 rng(seed + 0x9e3779b97f4a7c15ULL * (k + 1));
  std::normal_distribution<double> normal(0.0, kGradientNoise);
  Eigen::VectorXd xi = Xi(x);
  Eigen::VectorXd out = Eigen::VectorXd::Zero(dimension());
  for (const std::string& name : players) {
    const auto [offset, size] = Block(name);
    for (int i = offset; i < offset + size; ++i) out(i) = xi(i) + normal(rng);
  }
  return out;
}

// ---- Vectors ----------------------------------------------------------------

v1::Vector EncodeVector(const QuadraticGame& game, const Eigen::VectorXd& v,
                        v1::DType dtype,
                        const std::vector<std::string>& players) {
  v1::Vector out;
  int offset = 0;
  for (const PlayerSpec& p : game.players()) {
    const bool wanted =
        players.empty() ||
        std::find(players.begin(), players.end(), p.name) != players.end();
    v1::PlayerTensors* pt = wanted ? out.add_players() : nullptr;
    if (pt != nullptr) pt->set_player(p.name);
    for (const TensorSpec& t : p.tensors) {
      const int64_t n = NumElements(t.shape);
      if (pt != nullptr) {
        v1::Tensor* tensor = pt->add_tensors();
        tensor->set_name(t.name);
        tensor->set_dtype(dtype);
        for (int64_t dim : t.shape) tensor->add_shape(dim);
        tensor->set_data(EncodeValues(v.data() + offset, n, dtype));
      }
      offset += n;
    }
  }
  return out;
}

Eigen::VectorXd DecodeVector(const QuadraticGame& game,
                             const v1::Vector& vector) {
  Eigen::VectorXd out = Eigen::VectorXd::Zero(game.dimension());
  for (const v1::PlayerTensors& pt : vector.players()) {
    int offset = game.Block(pt.player()).first;
    for (const PlayerSpec& p : game.players()) {
      if (p.name != pt.player()) continue;
      for (const TensorSpec& t : p.tensors) {
        for (const v1::Tensor& tensor : pt.tensors()) {
          if (tensor.name() == t.name) {
            DecodeValues(tensor.data(), tensor.dtype(), out.data() + offset);
          }
        }
        offset += NumElements(t.shape);
      }
    }
  }
  return out;
}

std::string VectorBytes(const v1::Vector& vector) {
  std::string out;
  for (const v1::PlayerTensors& pt : vector.players()) {
    for (const v1::Tensor& t : pt.tensors()) out += t.data();
  }
  return out;
}

std::string FlatBytes(const FlatVector& values) {
  return std::string(static_cast<const char*>(values.data()), values.bytes());
}

v1::SessionConfig QuadraticConfig(const QuadraticGame& game,
                                  v1::Algorithm algorithm, int workers,
                                  int64_t max_steps, v1::DType dtype,
                                  double learning_rate) {
  v1::SessionConfig config;
  config.set_name("quadratic");
  config.set_dtype(dtype);
  const v1::Vector x0 = EncodeVector(game, game.x0(), v1::FLOAT64);
  for (const v1::PlayerTensors& pt : x0.players()) {
    v1::PlayerConfig* player = config.add_players();
    player->set_name(pt.player());
    *player->mutable_tensors() = pt.tensors();
    player->mutable_optimizer()->set_kind(v1::SGD);
    player->mutable_optimizer()->set_learning_rate(learning_rate);
  }
  config.mutable_algorithm()->set_kind(algorithm);
  config.set_workers_per_round(workers);
  config.set_max_steps(max_steps);
  config.set_phase_deadline_seconds(-1);
  config.set_seed(7);
  return config;
}

// ---- Requests ---------------------------------------------------------------

v1::SubmitGradientRequest GradientRequest(
    const QuadraticGame& game, const std::string& session_id, int64_t worker_id,
    const v1::Task& task, const Eigen::VectorXd& x, v1::DType dtype) {
  v1::SubmitGradientRequest request;
  request.set_session_id(session_id);
  request.set_worker_id(worker_id);
  request.set_round(task.round());
  request.set_step(task.step());
  request.set_phase(task.phase());
  request.set_known_params_version(task.params_version());
  // A CROSS_GRADIENT task (LOLA, SOS): echoed; the sample (all players)
  // stands in for the loss's gradient.
  request.set_loss_player(task.loss_player());
  const std::vector<std::string> players(task.players().begin(),
                                         task.players().end());
  for (int k = 0; k < task.num_samples(); ++k) {
    *request.add_gradients() = EncodeVector(
        game, game.Sample(x, task.seed(), k, players), dtype, players);
  }
  return request;
}

v1::SubmitJacobianProductsRequest ProductsRequest(const QuadraticGame& game,
                                                  const std::string& session_id,
                                                  int64_t worker_id,
                                                  const v1::Task& task,
                                                  v1::DType dtype) {
  v1::SubmitJacobianProductsRequest request;
  request.set_session_id(session_id);
  request.set_worker_id(worker_id);
  request.set_round(task.round());
  request.set_step(task.step());
  request.set_phase(task.phase());
  request.set_known_params_version(task.params_version());
  for (const v1::Vector& probe : task.probes()) {
    const Eigen::VectorXd w = DecodeVector(game, probe);
    if (task.vjp()) {
      *request.add_vjp() =
          EncodeVector(game, game.jacobian().transpose() * w, dtype);
    }
    if (task.jvp()) {
      *request.add_jvp() = EncodeVector(game, game.jacobian() * w, dtype);
    }
  }
  return request;
}

// ---- Recording and replay
// ------------------------------------------------------

void Recording::Add(const v1::SubmitGradientRequest& request) {
  Entry entry;
  entry.worker_id = request.worker_id();
  entry.gradient = request;
  Add(request.round(), std::move(entry));
}

void Recording::Add(const v1::SubmitJacobianProductsRequest& request,
                    const v1::Task& task) {
  Entry entry;
  entry.worker_id = request.worker_id();
  entry.products = true;
  entry.jacobian = request;
  entry.task = task;
  Add(request.round(), std::move(entry));
}

void Recording::Add(int64_t round, Entry entry) {
  absl::MutexLock lock(&mu_);
  std::vector<Entry>& entries = rounds_[round];
  for (const Entry& e : entries) {
    if (e.worker_id == entry.worker_id) return;
  }
  entries.push_back(std::move(entry));
}

std::map<int64_t, std::vector<Recording::Entry>> Recording::rounds() const {
  absl::MutexLock lock(&mu_);
  return rounds_;
}

absl::StatusOr<ParametersSnapshot> Replay(
    const v1::SessionConfig& config, const Recording& recording, int workers,
    uint64_t shuffle_seed,
    const std::function<void(Session&, int64_t round)>& after_round,
    std::map<std::pair<int64_t, int64_t>, Task>* tasks) {
  absl::StatusOr<SessionConfig> core = SessionConfigFromProto(config);
  if (!core.ok()) return core.status();
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create("replay", *std::move(core), RealClock());
  if (!session.ok()) return session.status();
  absl::Status error;
  auto check = [&error, tasks](absl::StatusOr<Task> task) {
    if (!task.ok() && error.ok()) error = task.status();
    if (task.ok() && tasks != nullptr && task->kind == Task::Kind::kProducts) {
      (*tasks)[{task->round, task->worker_id}] = *task;
    }
  };
  for (int w = 0; w < workers; ++w) (*session)->Join(0, "", check);
  std::mt19937_64 rng(shuffle_seed);
  for (auto& [round, entries] : recording.rounds()) {
    std::shuffle(entries.begin(), entries.end(), rng);
    for (const Recording::Entry& entry : entries) {
      Submission submission;
      absl::Status status =
          entry.products ? SubmissionFromProto(entry.jacobian, &submission)
                         : SubmissionFromProto(entry.gradient, &submission);
      if (!status.ok()) return status;
      if (entry.products) {
        (*session)->SubmitProducts(entry.worker_id, submission, check);
      } else {
        (*session)->SubmitGradient(entry.worker_id, submission, check);
      }
    }
    if (after_round) after_round(**session, round);
  }
  if (!error.ok()) return error;
  return (*session)->Parameters();
}

// ---- Comparison with the core ----------------------------------------------

// The server's parameters to equal, byte for byte, the core session
// fed the same submissions (in two different orders within each round).
void ExpectMatchesCore(v1::GameOptimizer::Stub& stub,
                       const std::string& session_id,
                       const v1::SessionConfig& config,
                       const Recording& recording, int workers) {
  absl::StatusOr<v1::GetParametersResponse> wire =
      GetParameters(stub, session_id);
  ASSERT_TRUE(wire.ok()) << wire.status();
  std::map<std::pair<int64_t, int64_t>, Task> tasks;
  for (uint64_t shuffle_seed : {1, 2}) {
    absl::StatusOr<ParametersSnapshot> core =
        Replay(config, recording, workers, shuffle_seed, nullptr, &tasks);
    ASSERT_TRUE(core.ok()) << core.status();
    EXPECT_EQ(wire->step(), core->step);
    EXPECT_EQ(VectorBytes(wire->params()), FlatBytes(*core->values));
  }
  // The probes each worker got over the wire are the core's, byte for
  // byte (the products above are the workers' answers to them).
  for (const auto& [round, entries] : recording.rounds()) {
    for (const Recording::Entry& entry : entries) {
      if (!entry.products || entry.task.probes_size() == 0) continue;
      auto it = tasks.find({round, entry.worker_id});
      ASSERT_NE(it, tasks.end()) << "round " << round;
      ASSERT_EQ(it->second.probes.size(),
                static_cast<size_t>(entry.task.probes_size()));
      for (int k = 0; k < entry.task.probes_size(); ++k) {
        EXPECT_EQ(VectorBytes(entry.task.probes(k)),
                  FlatBytes(*it->second.Probe(k)))
            << "round " << round << " worker " << entry.worker_id;
      }
    }
  }
}

absl::StatusOr<std::string> GenericCall(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& method,
                                        const std::string& request,
                                        const std::string& token) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  if (!token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  auto call = stub.PrepareCall(&context, method, &cq);
  auto step = [&cq](intptr_t id) {
    void* tag;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && tag == reinterpret_cast<void*>(id);
  };
  call->StartCall(reinterpret_cast<void*>(1));
  step(1);
  grpc::Slice slice(request);
  call->Write(grpc::ByteBuffer(&slice, 1), reinterpret_cast<void*>(2));
  step(2);
  call->WritesDone(reinterpret_cast<void*>(3));
  step(3);
  grpc::ByteBuffer buffer;
  call->Read(&buffer, reinterpret_cast<void*>(4));
  const bool got = step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  if (!got) return absl::NotFoundError("no response message");
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace gameopt::testing
