#include "client/worker/worker.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace gameopt {

Worker::Worker(std::shared_ptr<grpc::Channel> channel, std::string session_id,
               Game* game, WorkerOptions options)
    : game_(game),
      options_(std::move(options)),
      layout_(game->players()),
      link_(std::move(channel), std::move(session_id), options_.name,
            options_.retry_policy(), &stop_),
      params_(Eigen::VectorXd::Zero(layout_.dimension())) {
  link_.set_worker_id(options_.worker_id);
}

absl::Status Worker::Accept(const v1::TaskResponse& response) {
  task_ = response.task();
  if (task_.params_included()) {
    absl::Status status = DecodeVector(task_.params(), layout_, params_);
    if (!status.ok()) return status;
    params_version_ = task_.params_version();
    if (task_.params().players_size() > 0 &&
        task_.params().players(0).tensors_size() > 0) {
      dtype_ = task_.params().players(0).tensors(0).dtype();
    }
  }
  if (options_.on_progress) {
    WorkerProgress progress;
    progress.worker_id = link_.worker_id();
    progress.step = task_.step();
    progress.phase = task_.phase();
    progress.kind = task_.kind();
    progress.params = &params_;
    progress.gradient = gradient_.size() > 0 ? &gradient_ : nullptr;
    options_.on_progress(progress);
  }
  return absl::OkStatus();
}

absl::Status Worker::Compute(const v1::Task& task) {
  const std::vector<std::string> players(task.players().begin(),
                                         task.players().end());
  if (task.kind() == v1::GRADIENT) {
    game_->DrawMinibatches(task.num_samples(), task.seed());
    v1::SubmitGradientRequest& request = gradient_request_;
    request.set_round(task.round());
    request.set_step(task.step());
    request.set_phase(task.phase());
    request.set_known_params_version(params_version_);
    request.clear_vjp();
    request.clear_jvp();
    for (int k = 0; k < task.num_samples(); ++k) {
      Eigen::VectorXd g = game_->Gradient(params_, k);
      v1::Vector* out = k < request.gradients_size()
                            ? request.mutable_gradients(k)
                            : request.add_gradients();
      EncodeVector(g, layout_, players, dtype_, *out);
      // Fused local products: on sample k's own gradient as the server
      // holds it (the LOCAL probe of the unfused products round).
      if (task.fused_vjp() || task.fused_jvp()) {
        const Eigen::VectorXd probe = RoundToDType(g, dtype_);
        if (task.fused_vjp()) {
          EncodeVector(game_->Vjp(params_, probe, k), layout_, {}, dtype_,
                       *request.add_vjp());
        }
        if (task.fused_jvp()) {
          EncodeVector(game_->Jvp(params_, probe, k), layout_, {}, dtype_,
                       *request.add_jvp());
        }
      }
      if (k == 0) gradient_ = std::move(g);
    }
    while (request.gradients_size() > task.num_samples()) {
      request.mutable_gradients()->RemoveLast();
    }
    request.clear_scalars();
    if (options_.report_scalars) {
      for (const auto& [name, value] : options_.report_scalars(task)) {
        v1::Scalar* scalar = request.add_scalars();
        scalar->set_name(name);
        scalar->set_value(value);
      }
    }
    v1::TaskResponse response;
    absl::Status status = link_.Submit(request, response);
    if (!status.ok()) return status;
    return Accept(response);
  }
  v1::SubmitJacobianProductsRequest& request = products_request_;
  request.set_round(task.round());
  request.set_step(task.step());
  request.set_phase(task.phase());
  request.set_known_params_version(params_version_);
  request.clear_vjp();
  request.clear_jvp();
  Eigen::VectorXd probe = Eigen::VectorXd::Zero(layout_.dimension());
  for (int k = 0; k < task.probes_size(); ++k) {
    absl::Status status = DecodeVector(task.probes(k), layout_, probe);
    if (!status.ok()) return status;
    if (task.vjp()) {
      EncodeVector(game_->Vjp(params_, probe, k), layout_, {}, dtype_,
                   *request.add_vjp());
    }
    if (task.jvp()) {
      EncodeVector(game_->Jvp(params_, probe, k), layout_, {}, dtype_,
                   *request.add_jvp());
    }
  }
  v1::TaskResponse response;
  absl::Status status = link_.Submit(request, response);
  if (!status.ok()) return status;
  return Accept(response);
}

absl::Status Worker::Run() {
  v1::TaskResponse response;
  absl::Status status = link_.Join(params_version_, response);
  if (!status.ok()) return status;
  status = Accept(response);
  while (status.ok() && task_.kind() != v1::DONE) {
    if (stop_) return absl::CancelledError("worker stopped");
    v1::Task task;
    task.Swap(&task_);  // Compute() refills task_ with the next task
    status = Compute(task);
    ++tasks_done_;
  }
  return status;
}

}  // namespace gameopt
