#include "server/service/proto_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "server/core/quote.h"
#include "server/service/metrics_convert.h"

namespace gameopt {
namespace {

absl::Status SamplesFromProto(
    const google::protobuf::RepeatedPtrField<v1::Vector>& vectors,
    absl::string_view field, std::vector<SampleView>* out) {
  out->resize(vectors.size());
  for (int k = 0; k < vectors.size(); ++k) {
    absl::Status status = SampleFromProto(
        vectors[k], absl::StrCat(field, "[", k, "]"), &(*out)[k]);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

v1::TaskKind TaskKindToProto(Task::Kind kind) {
  switch (kind) {
    case Task::Kind::kGradient:
      return v1::GRADIENT;
    case Task::Kind::kProducts:
      return v1::PRODUCTS;
    case Task::Kind::kDone:
      return v1::DONE;
  }
  return v1::TASK_KIND_UNSPECIFIED;
}

v1::TaskKind TaskKindToProto(const Task& task) {
  if (task.kind == Task::Kind::kGradient && task.loss >= 0) {
    return v1::CROSS_GRADIENT;
  }
  return TaskKindToProto(task.kind);
}

v1::WorkerState WorkerStateToProto(WorkerState state) {
  switch (state) {
    case WorkerState::kActive:
      return v1::WORKER_STATE_ACTIVE;
    case WorkerState::kDropped:
      return v1::WORKER_STATE_DROPPED;
    case WorkerState::kLeft:
      return v1::WORKER_STATE_LEFT;
  }
  return v1::WORKER_STATE_UNSPECIFIED;
}

absl::Status SampleFromProto(const v1::Vector& vector, absl::string_view field,
                             SampleView* out) {
  out->resize(vector.players_size());
  for (int i = 0; i < vector.players_size(); ++i) {
    const v1::PlayerTensors& player = vector.players(i);
    PlayerValues& values = (*out)[i];
    values.player = player.player();
    values.tensors.resize(player.tensors_size());
    for (int j = 0; j < player.tensors_size(); ++j) {
      const v1::Tensor& tensor = player.tensors(j);
      absl::StatusOr<TensorDType> dtype = TensorDTypeFromProto(
          tensor.dtype(), absl::StrCat(field, ".players[", i, "].tensors[", j,
                                       "] ('", Quote(player.player()), "/",
                                       Quote(tensor.name()), "').dtype"));
      if (!dtype.ok()) return dtype.status();
      values.tensors[j] =
          TensorView{tensor.name(),
                     dtype->dtype,
                     absl::Span<const int64_t>(tensor.shape().data(),
                                               tensor.shape().size()),
                     tensor.data(),
                     {},
                     dtype->compression};
    }
  }
  return absl::OkStatus();
}

absl::Status SubmissionFromProto(const v1::SubmitGradientRequest& request,
                                 Submission* out) {
  out->round = request.round();
  out->step = request.step();
  out->phase = request.phase();
  out->loss_player = request.loss_player();
  absl::Status status =
      SamplesFromProto(request.gradients(), "gradients", &out->gradients);
  if (!status.ok()) return status;
  status = SamplesFromProto(request.vjp(), "vjp", &out->vjp);
  if (!status.ok()) return status;
  status = SamplesFromProto(request.jvp(), "jvp", &out->jvp);
  if (!status.ok()) return status;
  out->scalars.clear();
  for (const v1::Scalar& scalar : request.scalars()) {
    out->scalars.push_back(ScalarView{scalar.name(), scalar.value()});
  }
  return absl::OkStatus();
}

absl::Status SubmissionFromProto(
    const v1::SubmitJacobianProductsRequest& request, Submission* out) {
  out->round = request.round();
  out->step = request.step();
  out->phase = request.phase();
  absl::Status status = SamplesFromProto(request.vjp(), "vjp", &out->vjp);
  if (!status.ok()) return status;
  return SamplesFromProto(request.jvp(), "jvp", &out->jvp);
}

bool ShouldSendParams(int64_t version, int64_t known) {
  return known <= 0 || version != known;
}

namespace {

// The players and tensors of `layout` added to `out` (names and shapes),
// each tensor's dtype and data set by fill(tensor, t, index), index
// counting the tensors in layout order.
template <typename Fill>
void AddTensors(const GameLayout& layout, v1::Vector* out, Fill fill) {
  size_t index = 0;
  for (const PlayerLayout& player : layout.players()) {
    v1::PlayerTensors* p = out->add_players();
    p->set_player(player.name);
    for (const TensorLayout& tensor : player.tensors) {
      v1::Tensor* t = p->add_tensors();
      t->set_name(tensor.name);
      for (int64_t dim : tensor.shape) t->add_shape(dim);
      fill(tensor, t, index++);
    }
  }
}

// A probe in a sample's bytes (Task::packed_probes), already in the wire's
// format: its bytes as they are held, as TaskToWire sends them.
void PackedVectorToProto(const PackedVector& packed, const GameLayout& layout,
                         v1::Vector* out) {
  const v1::DType dtype =
      TensorDTypeToProto(packed.compression(), packed.raw_dtype());
  AddTensors(layout, out,
             [&](const TensorLayout&, v1::Tensor* t, size_t index) {
               t->set_dtype(dtype);
               for (absl::string_view piece : packed.TensorPieces(index)) {
                 t->mutable_data()->append(piece.data(), piece.size());
               }
             });
}

}  // namespace

void VectorToProto(const FlatVector& values, const GameLayout& layout,
                   v1::Vector* out) {
  const size_t elem = DTypeSize(values.dtype());
  const char* data = static_cast<const char*>(values.data());
  const v1::DType dtype = DTypeToProto(values.dtype());
  AddTensors(layout, out,
             [&](const TensorLayout& tensor, v1::Tensor* t, size_t) {
               t->set_dtype(dtype);
               t->set_data(data + tensor.offset * elem, tensor.size * elem);
             });
}

void EncodedVectorToProto(const FlatVector& values,
                          const EncodedVector& encoded,
                          const GameLayout& layout, v1::Vector* out) {
  const size_t elem = DTypeSize(values.dtype());
  const char* data = static_cast<const char*>(values.data());
  AddTensors(layout, out,
             [&](const TensorLayout& tensor, v1::Tensor* t, size_t index) {
               const EncodedTensor& e = encoded.tensors[index];
               t->set_dtype(TensorDTypeToProto(e.compression, values.dtype()));
               if (e.compression == Compression::kNone) {
                 t->set_data(data + tensor.offset * elem, tensor.size * elem);
               } else {
                 t->set_data(encoded.bytes.data() + e.offset, e.size);
               }
             });
}

void TaskToProto(const Task& task, const GameLayout& layout,
                 int64_t known_params_version, v1::TaskResponse* out,
                 const WireConfig& wire) {
  const auto vector_to_proto = [&](const FlatVector& values, int probe,
                                   v1::Vector* v) {
    if (wire.to_workers == Compression::kNone) {
      VectorToProto(values, layout, v);
      return;
    }
    EncodedVectorToProto(values,
                         *EncodeVector(values, layout, wire.to_workers,
                                       TaskRounding(wire, task.seed, probe)),
                         layout, v);
  };
  out->set_worker_id(task.worker_id);
  v1::Task* t = out->mutable_task();
  t->set_kind(TaskKindToProto(task));
  t->set_step(task.step);
  t->set_phase(task.phase);
  t->set_round(task.round);
  t->set_phase_label(task.phase_label);
  for (int p : task.players) t->add_players(layout.players()[p].name);
  t->set_num_samples(task.num_samples);
  t->set_vjp(task.vjp);
  t->set_jvp(task.jvp);
  for (size_t k = 0; k < task.probes.size(); ++k) {
    if (task.probes[k] == nullptr && !task.packed_probes.empty()) {
      PackedVectorToProto(*task.packed_probes[k], layout, t->add_probes());
      continue;
    }
    // A lazy probe as a vector (Task::Probe).
    vector_to_proto(*task.Probe(k), static_cast<int>(k), t->add_probes());
  }
  t->set_params_version(task.params_version);
  if (task.params != nullptr &&
      ShouldSendParams(task.params_version, known_params_version)) {
    vector_to_proto(*task.params, -1, t->mutable_params());
    t->set_params_included(true);
  }
  t->set_seed(task.seed);
  t->set_fused_vjp(task.fused_vjp);
  t->set_fused_jvp(task.fused_jvp);
  if (task.loss >= 0) t->set_loss_player(layout.players()[task.loss].name);
  t->set_full_shard(task.full_shard);
}

void SessionStatusToProto(const SessionInfo& info, const SessionConfig& config,
                          v1::SessionStatus* out) {
  out->set_session_id(info.id);
  SessionConfigToProto(config, out->mutable_config());
  out->set_step(info.step);
  out->set_phase(info.phase);
  out->set_phase_label(info.phase_label);
  out->set_round(info.round);
  out->set_done(info.done);
  out->set_submitted(info.submitted);
  for (const WorkerInfo& worker : info.workers) {
    v1::WorkerStatus* w = out->add_workers();
    w->set_worker_id(worker.id);
    w->set_name(worker.name);
    w->set_state(WorkerStateName(worker.state));
    w->set_worker_state(WorkerStateToProto(worker.state));
    w->set_last_round(worker.last_round);
    w->set_missed_deadlines(worker.missed_deadlines);
    w->set_state_reason(worker.reason);
    w->set_idle_seconds(absl::ToDoubleSeconds(worker.idle));
  }
  for (double norm : info.stats.xi_norm) out->add_xi_norm(norm);
  out->set_correction_norm(info.stats.correction_norm);
  out->set_gradient_samples(info.stats.gradient_samples);
  out->set_params_version(info.params_version);
  out->set_sga_lambda(info.stats.sga_lambda);
  out->set_sos_p(info.stats.sos_p);
  out->set_product_samples(info.stats.product_samples);
  ScalarsToProto(info.scalars, out->mutable_scalars());
  StepDiagnosticsToProto(info.stats.diagnostics, out);
  GammaToProto(info.stats, out);
  out->set_cgd_rounds(info.stats.cgd_rounds);
  out->set_cgd_iterations(info.stats.cgd_iterations);
  out->set_cgd_residual(info.stats.cgd_residual);
}

void ScalarsToProto(absl::Span<const NamedValue> scalars,
                    google::protobuf::RepeatedPtrField<v1::Scalar>* out) {
  for (const NamedValue& scalar : scalars) {
    v1::Scalar* s = out->Add();
    s->set_name(scalar.name);
    s->set_value(scalar.value);
  }
}

void ParametersToProto(const ParametersSnapshot& snapshot,
                       const GameLayout& layout,
                       v1::GetParametersResponse* out) {
  out->set_step(snapshot.step);
  out->set_params_version(snapshot.version);
  if (snapshot.values != nullptr) {
    VectorToProto(*snapshot.values, layout, out->mutable_params());
  }
}

}  // namespace gameopt
