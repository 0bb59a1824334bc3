// GameOptimizerService's spectrum diagnostics: EstimateSpectrum (waits for
// the estimate, holding no thread) and GetSpectrum. Kept apart from
// game_optimizer_service.cc: the diagnostics are their own concern.
#include <memory>
#include <utility>

#include "server/service/game_optimizer_service.h"
#include "server/service/grpc_status.h"
#include "server/service/spectrum_convert.h"
#include "server/service/waiting_reactor.h"

namespace gameopt {
namespace {

// One EstimateSpectrum call, answered from the session's callback on
// whichever thread finishes the estimate (waiting_reactor.h).
class SpectrumReactor final : public internal::WaitingReactor {
 public:
  SpectrumReactor(std::shared_ptr<Session> session, v1::Spectrum* response,
                  internal::ReactorCount* count)
      : WaitingReactor(std::move(session), count), response_(response) {}

  void Start(const SpectrumRequest& request) {
    CallId id = 0;
    session().EstimateSpectrum(
        request,
        [this](absl::StatusOr<SpectrumResult> result) {
          if (result.ok()) SpectrumResultToProto(*result, response_);
          Finish(ToGrpcStatus(result.status()));
        },
        &id);
    Started(id);
  }

 private:
  void CancelCall(CallId id) override { session().CancelSpectrum(id); }

  v1::Spectrum* const response_;
};

}  // namespace

grpc::ServerUnaryReactor* GameOptimizerService::EstimateSpectrum(
    grpc::CallbackServerContext* context,
    const v1::EstimateSpectrumRequest* request, v1::Spectrum* response) {
  // It adds rounds to the session's timeline: the session's workers (and
  // admins) may ask, readers may not.
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kWork, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  absl::StatusOr<SpectrumRequest> options =
      SpectrumRequestFromProto(request->options(), "options");
  if (!options.ok()) return Finished(context, options.status());
  auto* reactor = new SpectrumReactor(opened->session, response, &reactors_);
  reactor->Start(*options);
  return reactor;
}

grpc::ServerUnaryReactor* GameOptimizerService::GetSpectrum(
    grpc::CallbackServerContext* context, const v1::GetSpectrumRequest* request,
    v1::GetSpectrumResponse* response) {
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kRead, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  for (const SpectrumResult& result : opened->session->Spectra()) {
    SpectrumResultToProto(result, response->add_spectra());
  }
  return Finished(context, absl::OkStatus());
}

}  // namespace gameopt
