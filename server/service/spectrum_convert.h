// Spectrum diagnostics: proto <-> core (spectrum_rounds.h). Part of the
// service's conversion layer.
#ifndef GAMEOPT_SERVER_SERVICE_SPECTRUM_CONVERT_H_
#define GAMEOPT_SERVER_SERVICE_SPECTRUM_CONVERT_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gameopt/v1/gameopt.pb.h"
#include "server/core/config.h"
#include "server/core/spectrum_rounds.h"

namespace gameopt {

// The request of `proto` with its documented defaults (k 3,
// max_applications 2000, tol 1e-8); InvalidArgument names `field`.k etc.
absl::StatusOr<SpectrumRequest> SpectrumRequestFromProto(
    const v1::SpectrumOptions& proto, absl::string_view field);
void SpectrumRequestToProto(const SpectrumRequest& request,
                            v1::SpectrumOptions* out);

// SessionConfig.spectrum; validated with the rest of the config.
absl::StatusOr<SpectrumSchedule> SpectrumScheduleFromProto(
    const v1::SpectrumSchedule& proto);
void SpectrumScheduleToProto(const SpectrumSchedule& schedule,
                             v1::SpectrumSchedule* out);

void SpectrumResultToProto(const SpectrumResult& result, v1::Spectrum* out);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_SPECTRUM_CONVERT_H_
