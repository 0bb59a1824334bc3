#include "server/service/metrics_convert.h"

#include <string>

#include "server/core/metrics.h"
#include "server/service/proto_convert.h"

namespace gameopt {

int ActiveWorkers(const SessionInfo& info) {
  int active = 0;
  for (const WorkerInfo& worker : info.workers) {
    active += worker.state == WorkerState::kActive;
  }
  return active;
}

void SessionMetricsToProto(const SessionInfo& info, const SessionConfig& config,
                           v1::SessionMetrics* out) {
  out->set_session_id(info.id);
  out->set_name(config.name);
  out->set_algorithm(std::string(AlgorithmName(config.algorithm.kind)));
  out->set_step(info.step);
  out->set_max_steps(config.max_steps);
  out->set_phase_label(info.phase_label);
  out->set_done(info.done);
  out->set_workers_active(ActiveWorkers(info));
  out->set_workers_per_round(config.workers_per_round);
  for (const PlayerConfig& player : config.players) {
    out->add_players(player.name);
  }
  for (double norm : info.stats.xi_norm) out->add_xi_norm(norm);
  out->set_loss(HalfSquaredNorm(info.stats.xi_norm));
  out->set_correction_norm(info.stats.correction_norm);
  out->set_steps_per_second(info.timing.steps_per_second);
  for (const PhaseLatency& phase : info.timing.phases) {
    v1::PhaseLatency* p = out->add_phase_latency();
    p->set_phase_label(phase.label);
    p->set_rounds(phase.rounds);
    p->set_total_seconds(phase.total_seconds);
    p->set_last_seconds(phase.last_seconds);
    p->set_max_seconds(phase.max_seconds);
  }
  for (const WorkerInfo& worker : info.workers) {
    v1::WorkerMetrics* w = out->add_workers();
    w->set_worker_id(worker.id);
    w->set_name(worker.name);
    w->set_state(WorkerStateName(worker.state));
    w->set_worker_state(WorkerStateToProto(worker.state));
    w->set_last_to_submit_rounds(worker.last_to_submit);
    w->set_missed_rounds(worker.missed_deadlines);
    w->set_state_reason(worker.reason);
  }
  StepDiagnosticsToProto(info.stats.diagnostics, out);
  GammaToProto(info.stats, out);
  out->set_bytes_received(info.bytes_received);
  out->set_bytes_sent(info.bytes_sent);
  ScalarsToProto(info.scalars, out->mutable_scalars());
  for (double lr : info.learning_rates) out->add_learning_rate(lr);
  out->set_cgd_rounds(info.stats.cgd_rounds);
  out->set_cgd_iterations(info.stats.cgd_iterations);
  out->set_cgd_residual(info.stats.cgd_residual);
  out->set_sos_p(info.stats.sos_p);
}

template <typename Message>
void StepDiagnosticsToProto(const StepDiagnostics& d, Message* out) {
  if (!d.available) return;
  StepDiagnosticsFieldsToProto(d, out->mutable_diagnostics());
}

void StepDiagnosticsFieldsToProto(const StepDiagnostics& d,
                                  v1::StepDiagnostics* p) {
  p->set_xi_norm(d.xi_norm);
  p->set_jt_xi_norm(d.jt_xi_norm);
  p->set_stationarity_ratio(d.stationarity_ratio);
  p->set_has_rotation_index(d.has_rotation_index);
  p->set_rotation_index(d.rotation_index);
  p->set_s_xi_norm(d.s_xi_norm);
  p->set_a_xi_norm(d.a_xi_norm);
  p->set_cancellation(d.cancellation);
  p->set_has_bias_meter(d.has_bias_meter);
  p->set_relative_bias(d.relative_bias);
  p->set_bias_norm(d.bias_norm);
  p->set_pooled_jt_xi_norm(d.pooled_jt_xi_norm);
}

template <typename Message>
void GammaToProto(const StepStats& stats, Message* out) {
  out->set_gamma(stats.gamma);
  for (const GammaChange& change : stats.gamma_trajectory) {
    v1::GammaChange* c = out->add_gamma_trajectory();
    c->set_step(change.step);
    c->set_gamma(change.gamma);
    c->set_reason(GammaChangeReasonName(change.reason));
  }
}
template void GammaToProto(const StepStats&, v1::SessionMetrics*);
template void GammaToProto(const StepStats&, v1::SessionStatus*);
template void StepDiagnosticsToProto(const StepDiagnostics&,
                                     v1::SessionMetrics*);
template void StepDiagnosticsToProto(const StepDiagnostics&,
                                     v1::SessionStatus*);

}  // namespace gameopt
