// GameOptimizerService's spectrum diagnostics: EstimateSpectrum (waits for
// the estimate, holding no thread) and GetSpectrum. Kept apart from
// game_optimizer_service.cc: the diagnostics are their own concern.
#include <atomic>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "server/service/game_optimizer_service.h"
#include "server/service/grpc_status.h"
#include "server/service/spectrum_convert.h"

namespace gameopt {
namespace {

// One EstimateSpectrum call, answered from the session's callback on
// whichever thread finishes the estimate. Lifetime and cancellation as
// game_optimizer_service.cc's TaskReactor: one reference released by OnDone,
// one by Start; OnCancel before the CallId is known is applied by Start.
class SpectrumReactor final : public grpc::ServerUnaryReactor {
 public:
  SpectrumReactor(std::shared_ptr<Session> session, v1::Spectrum* response,
                  internal::ReactorCount* count)
      : session_(std::move(session)), response_(response), count_(count) {
    count_->Add();
  }

  void Start(const SpectrumRequest& request) {
    CallId id = 0;
    session_->EstimateSpectrum(
        request,
        [this](absl::StatusOr<SpectrumResult> result) {
          if (result.ok()) SpectrumResultToProto(*result, response_);
          Finish(ToGrpcStatus(result.status()));
        },
        &id);
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
      call_ = id;
      cancel = cancelled_;
    }
    if (cancel && id != 0) session_->CancelSpectrum(id);
    Unref();
  }

  void OnCancel() override {
    CallId id;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!started_) return;
      id = call_;
    }
    if (id != 0) session_->CancelSpectrum(id);
  }

  void OnDone() override { Unref(); }

 private:
  ~SpectrumReactor() override { count_->Remove(); }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const std::shared_ptr<Session> session_;
  v1::Spectrum* const response_;
  internal::ReactorCount* const count_;
  std::atomic<int> refs_{2};
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  CallId call_ ABSL_GUARDED_BY(mu_) = 0;
};

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* GameOptimizerService::EstimateSpectrum(
    grpc::CallbackServerContext* context,
    const v1::EstimateSpectrumRequest* request, v1::Spectrum* response) {
  // It adds rounds to the session's timeline: the session's workers (and
  // admins) may ask, readers may not.
  if (absl::Status s = Admit(*context, Access::kWork, request->session_id());
      !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<std::shared_ptr<Session>> session =
      registry_->Get(request->session_id());
  if (!session.ok()) return FinishNow(context, session.status());
  absl::StatusOr<SpectrumRequest> options =
      SpectrumRequestFromProto(request->options(), "options");
  if (!options.ok()) return FinishNow(context, options.status());
  auto* reactor = new SpectrumReactor(*session, response, &reactors_);
  reactor->Start(*options);
  return reactor;
}

grpc::ServerUnaryReactor* GameOptimizerService::GetSpectrum(
    grpc::CallbackServerContext* context,
    const v1::GetSpectrumRequest* request, v1::GetSpectrumResponse* response) {
  if (absl::Status s = Admit(*context, Access::kRead, request->session_id());
      !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<std::shared_ptr<Session>> session =
      registry_->Get(request->session_id());
  if (!session.ok()) return FinishNow(context, session.status());
  for (const SpectrumResult& result : (*session)->Spectra()) {
    SpectrumResultToProto(result, response->add_spectra());
  }
  return FinishNow(context, absl::OkStatus());
}

}  // namespace gameopt
