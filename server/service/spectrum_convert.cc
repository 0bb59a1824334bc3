#include "server/service/spectrum_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/service/metrics_convert.h"

namespace gameopt {
namespace {

void EigenvaluesToProto(
    const std::vector<RitzValue>& values,
    google::protobuf::RepeatedPtrField<v1::Eigenvalue>* out) {
  for (const RitzValue& r : values) {
    v1::Eigenvalue* e = out->Add();
    e->set_re(r.value.real());
    e->set_im(r.value.imag());
    e->set_residual(r.residual);
  }
}

}  // namespace

absl::StatusOr<SpectrumRequest> SpectrumRequestFromProto(
    const v1::SpectrumOptions& proto, absl::string_view field) {
  SpectrumRequest request;
  switch (proto.operator_()) {
    case v1::GAME_JACOBIAN:
      request.op = SpectrumOperatorKind::kGameJacobian;
      break;
    case v1::ALGORITHM_FIELD:
      request.op = SpectrumOperatorKind::kAlgorithmField;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".operator = ", proto.operator_(),
                       " is unknown; use GAME_JACOBIAN or ALGORITHM_FIELD"));
  }
  if (proto.k() != 0) request.k = proto.k();
  if (proto.max_applications() != 0) {
    request.max_applications = proto.max_applications();
  }
  if (proto.tol() != 0) request.tol = proto.tol();
  request.smallest_real = proto.smallest_real();
  if (absl::Status status = ValidateSpectrumRequest(request, field);
      !status.ok()) {
    return status;
  }
  return request;
}

void SpectrumRequestToProto(const SpectrumRequest& request,
                            v1::SpectrumOptions* out) {
  out->set_operator_(request.op == SpectrumOperatorKind::kGameJacobian
                         ? v1::GAME_JACOBIAN
                         : v1::ALGORITHM_FIELD);
  out->set_k(request.k);
  out->set_max_applications(request.max_applications);
  out->set_tol(request.tol);
  out->set_smallest_real(request.smallest_real);
}

absl::StatusOr<SpectrumSchedule> SpectrumScheduleFromProto(
    const v1::SpectrumSchedule& proto) {
  SpectrumSchedule schedule;
  schedule.every_steps = proto.every_steps();
  for (int i = 0; i < proto.options_size(); ++i) {
    absl::StatusOr<SpectrumRequest> request = SpectrumRequestFromProto(
        proto.options(i), absl::StrCat("config.spectrum.options[", i, "]"));
    if (!request.ok()) return request.status();
    schedule.requests.push_back(*request);
  }
  return schedule;
}

void SpectrumScheduleToProto(const SpectrumSchedule& schedule,
                             v1::SpectrumSchedule* out) {
  out->set_every_steps(schedule.every_steps);
  for (const SpectrumRequest& request : schedule.requests) {
    SpectrumRequestToProto(request, out->add_options());
  }
}

void SpectrumResultToProto(const SpectrumResult& result, v1::Spectrum* out) {
  out->set_step(result.step);
  out->set_operator_(result.op == SpectrumOperatorKind::kGameJacobian
                         ? v1::GAME_JACOBIAN
                         : v1::ALGORITHM_FIELD);
  out->set_operator_description(result.description);
  EigenvaluesToProto(result.estimate.largest_real, out->mutable_largest_real());
  EigenvaluesToProto(result.estimate.largest_imag, out->mutable_largest_imag());
  EigenvaluesToProto(result.estimate.largest_modulus,
                     out->mutable_largest_modulus());
  EigenvaluesToProto(result.estimate.smallest_real,
                     out->mutable_smallest_real());
  out->set_applications(result.estimate.applications);
  out->set_restarts(result.estimate.restarts);
  out->set_converged(result.estimate.converged);
  out->set_rounds(result.rounds);
  out->set_samples(result.samples);
  if (result.diagnostics.available) {
    StepDiagnosticsFieldsToProto(result.diagnostics,
                                 out->mutable_diagnostics());
  }
}

}  // namespace gameopt
