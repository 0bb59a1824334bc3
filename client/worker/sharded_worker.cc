#include "client/worker/sharded_worker.h"

#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace gameopt {
namespace {

// ShardedWorkers of one process join the shards one at a time, so each gets
// the same worker id on every shard.
absl::Mutex join_mu(absl::kConstInit);

std::string Describe(const v1::Task& task) {
  return absl::StrCat(v1::TaskKind_Name(task.kind()), " at step ", task.step(),
                      " phase ", task.phase(), " (", task.phase_label(), ")");
}

}  // namespace

struct ShardedWorker::Shard {
  v1::TaskResponse response;  // the shard's current task
  int64_t params_version = 0;
  // Reused request messages: no allocation per round in steady state.
  v1::SubmitGradientRequest gradient_request;
  v1::SubmitJacobianProductsRequest products_request;
  Eigen::VectorXd values;  // scratch in the shard's layout (sharded only)
};

ShardedWorker::ShardedWorker(
    std::vector<std::shared_ptr<grpc::Channel>> channels,
    std::vector<std::string> session_ids, Game* game, WorkerOptions options)
    : game_(game), options_(std::move(options)), layout_(game->players()) {
  const int n = static_cast<int>(channels.size());
  if (n == 0) {
    setup_ = absl::InvalidArgumentError("a worker needs at least one server");
    return;
  }
  if (channels.size() != session_ids.size()) {
    setup_ = absl::InvalidArgumentError(absl::StrCat(
        "a sharded worker needs one session id per server: got ",
        session_ids.size(), " ids for ", channels.size(), " servers"));
    return;
  }
  for (int s = 0; s < n; ++s) {
    links_.push_back(
        std::make_unique<TaskLink>(channels[s], session_ids[s], options_.name,
                                   options_.retry_policy(), &stop_));
  }
  shards_.resize(n);
  params_ = Eigen::VectorXd::Zero(layout_.dimension());
  if (n == 1) {
    links_[0]->set_worker_id(options_.worker_id);
    return;
  }
  if (options_.worker_id != 0) {
    setup_ = absl::InvalidArgumentError(absl::StrCat(
        "worker_id ", options_.worker_id,
        " (rejoin) needs one server: a sharded worker's ids may differ per "
        "shard; leave it 0 to join ",
        n, " shards anew"));
    return;
  }
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(game->players(), n);
  if (!plan.ok()) {
    setup_ = plan.status();
    return;
  }
  plan_ = *std::move(plan);
}

ShardedWorker::~ShardedWorker() = default;

const FlatLayout& ShardedWorker::ShardLayout(int s) const {
  return sharded() ? plan_->shard_layout(s) : layout_;
}

const Eigen::VectorXd& ShardedWorker::Slice(int s,
                                            const Eigen::VectorXd& full) {
  if (!sharded()) return full;
  plan_->Gather(s, full, shards_[s].values);
  return shards_[s].values;
}

absl::Status ShardedWorker::DecodeSlice(int s, const v1::Vector& vector,
                                        Eigen::VectorXd& full) {
  if (!sharded()) return DecodeVector(vector, layout_, full);
  Eigen::VectorXd& values = shards_[s].values;
  values.resize(plan_->shard_layout(s).dimension());
  absl::Status status = DecodeVector(vector, plan_->shard_layout(s), values);
  if (!status.ok()) return OnShard(s, status);
  plan_->Scatter(s, values, full);
  return absl::OkStatus();
}

absl::Status ShardedWorker::OnShard(int s, const absl::Status& status) const {
  if (status.ok() || !sharded()) return status;
  return absl::Status(status.code(), absl::StrCat("shard ", s, " (session ",
                                                  links_[s]->session_id(),
                                                  "): ", status.message()));
}

template <typename Fn>
absl::Status ShardedWorker::ForEachShard(Fn fn) {
  const int n = num_shards();
  if (n == 1) return fn(0);
  std::vector<absl::Status> statuses(n);
  std::vector<std::thread> threads;
  for (int s = 1; s < n; ++s) {
    threads.emplace_back([&statuses, &fn, s] { statuses[s] = fn(s); });
  }
  statuses[0] = fn(0);
  for (std::thread& thread : threads) thread.join();
  for (int s = 0; s < n; ++s) {
    if (!statuses[s].ok()) return OnShard(s, statuses[s]);
  }
  return absl::OkStatus();
}

absl::Status ShardedWorker::JoinAll() {
  if (!sharded()) {
    return links_[0]->Join(shards_[0].params_version, shards_[0].response);
  }
  absl::MutexLock lock(&join_mu);
  for (int s = 0; s < num_shards(); ++s) {
    absl::Status status =
        links_[s]->Join(shards_[s].params_version, shards_[s].response);
    if (!status.ok()) return OnShard(s, status);
  }
  return absl::OkStatus();
}

absl::Status ShardedWorker::Accept() {
  const v1::Task& first = shards_[0].response.task();
  for (int s = 0; s < num_shards(); ++s) {
    Shard& shard = shards_[s];
    const v1::Task& task = shard.response.task();
    const bool agree =
        s == 0 ||
        (task.kind() == first.kind() &&
         (task.kind() == v1::DONE ||
          (task.step() == first.step() && task.phase() == first.phase() &&
           task.num_samples() == first.num_samples() &&
           task.probes_size() == first.probes_size() &&
           task.vjp() == first.vjp() && task.jvp() == first.jvp() &&
           task.fused_vjp() == first.fused_vjp() &&
           task.fused_jvp() == first.fused_jvp())));
    if (!agree) {
      return absl::FailedPreconditionError(
          absl::StrCat("the shards are out of step: shard 0 sent ",
                       Describe(first), ", shard ", s, " ", Describe(task),
                       "; create the shard sessions together, with one config "
                       "(ShardSessionConfigs)"));
    }
    if (task.params_included()) {
      absl::Status status = DecodeSlice(s, task.params(), params_);
      if (!status.ok()) return status;
      shard.params_version = task.params_version();
      if (task.params().players_size() > 0 &&
          task.params().players(0).tensors_size() > 0) {
        const v1::DType dtype = task.params().players(0).tensors(0).dtype();
        // The session's dtype; compressed parameters do not tell it.
        if (dtype == v1::FLOAT32 || dtype == v1::FLOAT64) dtype_ = dtype;
      }
    }
  }
  if (options_.on_progress) {
    WorkerProgress progress;
    progress.worker_id = links_[0]->worker_id();
    progress.step = first.step();
    progress.phase = first.phase();
    progress.kind = first.kind();
    progress.params = &params_;
    progress.gradient = gradient_.size() > 0 ? &gradient_ : nullptr;
    options_.on_progress(progress);
  }
  return absl::OkStatus();
}

void ShardedWorker::AddScalars(const v1::Task& task) {
  for (Shard& shard : shards_) shard.gradient_request.clear_scalars();
  if (!options_.report_scalars) return;
  for (const auto& [name, value] : options_.report_scalars(task)) {
    for (Shard& shard : shards_) {
      v1::Scalar* scalar = shard.gradient_request.add_scalars();
      scalar->set_name(name);
      scalar->set_value(value);
    }
  }
}

absl::Status ShardedWorker::Compute() {
  // The tasks agree (Accept); the seed is shard 0's.
  const v1::Task& task = shards_[0].response.task();
  const int n = num_shards();
  if (task.kind() == v1::GRADIENT || task.kind() == v1::CROSS_GRADIENT) {
    const std::vector<std::string> players(task.players().begin(),
                                           task.players().end());
    const int samples = task.num_samples();
    // CROSS_GRADIENT: the gradients of this player's loss.
    int loss = -1;
    if (task.kind() == v1::CROSS_GRADIENT) {
      const std::vector<PlayerSpec> specs = game_->players();
      for (size_t p = 0; p < specs.size(); ++p) {
        if (specs[p].name == task.loss_player()) loss = static_cast<int>(p);
      }
      if (loss < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the server asks for the gradients of player '", task.loss_player(),
            "''s loss; game ", game_->name(), " has no such player"));
      }
    }
    for (int s = 0; s < n; ++s) {
      const v1::Task& own = shards_[s].response.task();
      v1::SubmitGradientRequest& request = shards_[s].gradient_request;
      request.set_round(own.round());
      request.set_step(own.step());
      request.set_phase(own.phase());
      request.set_known_params_version(shards_[s].params_version);
      while (request.gradients_size() > samples) {
        request.mutable_gradients()->RemoveLast();
      }
      request.clear_vjp();
      request.clear_jvp();
      request.set_loss_player(loss >= 0 ? task.loss_player() : "");
    }
    if (task.full_shard()) {
      if (absl::Status s = game_->DrawFullShard(samples); !s.ok()) return s;
    } else {
      game_->DrawMinibatches(samples, task.seed());
    }
    const v1::DType send = send_dtype();
    for (int k = 0; k < samples; ++k) {
      Eigen::VectorXd g;
      if (loss < 0) {
        g = game_->Gradient(params_, k);
      } else {
        std::optional<Eigen::VectorXd> cross =
            game_->LossGradient(params_, loss, k);
        if (!cross.has_value()) {
          return absl::UnimplementedError(absl::StrCat(
              "game ", game_->name(),
              " does not provide cross gradients (Game::LossGradient: the "
              "gradient of one player's loss with respect to every player's "
              "parameters), which this session's algorithm (LOLA or SOS) "
              "asks for in CROSS_GRADIENT tasks; use a game that does "
              "(quadratic, bilinear) or another algorithm"));
        }
        g = *std::move(cross);
      }
      for (int s = 0; s < n; ++s) {
        v1::SubmitGradientRequest& request = shards_[s].gradient_request;
        EncodeVector(Slice(s, g), ShardLayout(s), players, send,
                     k < request.gradients_size()
                         ? *request.mutable_gradients(k)
                         : *request.add_gradients(),
                     SendRounding(task, 3 * k));
      }
      // Fused local products, on sample k's own gradient as the server
      // holds it (the LOCAL probe of the unfused products round), each
      // shard sent its slice.
      if (task.fused_vjp() || task.fused_jvp()) {
        if (CompressionOf(send) == Compression::kNone) {
          probe_ = RoundToDType(g, dtype_);
        } else {
          // As the server decodes what was sent.
          probe_ = Eigen::VectorXd::Zero(params_.size());
          for (int s = 0; s < n; ++s) {
            absl::Status status = DecodeSlice(
                s, shards_[s].gradient_request.gradients(k), probe_);
            if (!status.ok()) return status;
          }
        }
      }
      for (const bool vjp : {true, false}) {
        if (vjp ? !task.fused_vjp() : !task.fused_jvp()) continue;
        product_ = vjp ? game_->Vjp(params_, probe_, k)
                       : game_->Jvp(params_, probe_, k);
        for (int s = 0; s < n; ++s) {
          v1::SubmitGradientRequest& request = shards_[s].gradient_request;
          EncodeVector(Slice(s, product_), ShardLayout(s), {}, send,
                       vjp ? *request.add_vjp() : *request.add_jvp(),
                       SendRounding(task, 3 * k + (vjp ? 1 : 2)));
        }
      }
      if (k == 0) gradient_ = std::move(g);
    }
    AddScalars(task);
    return ForEachShard([this](int s) {
      return links_[s]->Submit(shards_[s].gradient_request,
                               shards_[s].response);
    });
  }
  for (int s = 0; s < n; ++s) {
    const v1::Task& own = shards_[s].response.task();
    v1::SubmitJacobianProductsRequest& request = shards_[s].products_request;
    request.set_round(own.round());
    request.set_step(own.step());
    request.set_phase(own.phase());
    request.set_known_params_version(shards_[s].params_version);
    request.clear_vjp();
    request.clear_jvp();
  }
  probe_ = Eigen::VectorXd::Zero(params_.size());
  for (int k = 0; k < task.probes_size(); ++k) {
    for (int s = 0; s < n; ++s) {
      absl::Status status =
          DecodeSlice(s, shards_[s].response.task().probes(k), probe_);
      if (!status.ok()) return status;
    }
    for (const bool vjp : {true, false}) {
      if (vjp ? !task.vjp() : !task.jvp()) continue;
      product_ =
          vjp ? game_->Vjp(params_, probe_, k) : game_->Jvp(params_, probe_, k);
      for (int s = 0; s < n; ++s) {
        v1::SubmitJacobianProductsRequest& request =
            shards_[s].products_request;
        EncodeVector(Slice(s, product_), ShardLayout(s), {}, send_dtype(),
                     vjp ? *request.add_vjp() : *request.add_jvp(),
                     SendRounding(task, 2 * k + (vjp ? 0 : 1)));
      }
    }
  }
  return ForEachShard([this](int s) {
    return links_[s]->Submit(shards_[s].products_request, shards_[s].response);
  });
}

v1::DType ShardedWorker::send_dtype() const {
  return options_.send_dtype == v1::DTYPE_UNSPECIFIED ? dtype_
                                                      : options_.send_dtype;
}

Rounding ShardedWorker::SendRounding(const v1::Task& task, int index) const {
  Rounding rounding;
  rounding.stochastic = options_.stochastic_rounding;
  // A stream per (task, worker, vector): splitmix64 of them.
  uint64_t z = task.seed() ^
               (static_cast<uint64_t>(links_[0]->worker_id()) << 20) ^
               (static_cast<uint64_t>(task.round()) << 40);
  z += 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  rounding.seed = z ^ (z >> 31);
  return rounding;
}

absl::Status ShardedWorker::Run() {
  if (!setup_.ok()) return setup_;
  absl::Status status = JoinAll();
  if (status.ok()) status = Accept();
  while (status.ok() && shards_[0].response.task().kind() != v1::DONE) {
    if (stop_) return absl::CancelledError("worker stopped");
    status = Compute();
    if (status.ok()) status = Accept();
    ++tasks_done_;
  }
  return status;
}

}  // namespace gameopt
