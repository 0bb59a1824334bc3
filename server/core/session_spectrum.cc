// Session: spectrum diagnostics between steps (session.h, spectrum_rounds.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/session.h"
#include "server/core/session_internal.h"

namespace gameopt {

void Session::EstimateSpectrum(const SpectrumRequest& request,
                               SpectrumCallback done, CallId* call) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  if (call != nullptr) *call = 0;
  if (!closed_.ok()) return out.Add(std::move(done), closed_);
  if (absl::Status status = ValidateSpectrumRequest(request, "spectrum");
      !status.ok()) {
    return out.Add(std::move(done), status);
  }
  if (Done()) {
    return out.Add(std::move(done),
                   absl::FailedPreconditionError(absl::StrCat(
                       "session ", id_, " is done (", algorithm_->step(),
                       " steps): its workers are gone. Request the spectrum "
                       "while it runs, or create the session with "
                       "spectrum.every_steps to get one at the last step")));
  }
  const CallId id = next_call_++;
  if (call != nullptr) *call = id;
  algorithm_->Enqueue(id, request, std::move(done));
  Log(absl::StrCat("spectrum (", SpectrumOperatorName(request.op),
                   ") requested at ", Where()));
  // At a step boundary that no worker has started on, begin now: the open
  // round is replaced (a worker that computed its task for it is told the
  // round closed and rejoins).
  if (barrier_.count() == 0 && algorithm_->StartIfIdle()) OpenRound(out);
  DeliverSpectra(out);
}

void Session::CancelSpectrum(CallId call) {
  OutboxLock lock(this);
  Outbox& out = lock.out();
  bool stopped = false;
  SpectrumCallback done = algorithm_->Cancel(call, &stopped);
  if (done) {
    out.Add(std::move(done), absl::CancelledError("the call was cancelled"));
  }
  if (stopped && closed_.ok()) {
    Log(
        absl::StrCat("spectrum estimate stopped (its call was cancelled) "
                     "at round ",
                     round_));
    OpenRound(out);
  }
}

std::vector<SpectrumResult> Session::Spectra() const {
  absl::MutexLock lock(&mu_);
  return algorithm_->history();
}

void Session::DeliverSpectra(Outbox& out) {
  for (auto& [done, result] : algorithm_->TakeFinished()) {
    if (result.ok()) {
      Log(absl::StrCat("spectrum of ", result->description, " at step ",
                       result->step, ": ", result->estimate.applications,
                       " products in ", result->rounds, " rounds",
                       result->estimate.converged ? "" : " (not converged)"));
    } else {
      Log(absl::StrCat("spectrum estimate failed: ",
                       result.status().message()));
    }
    if (done) out.Add(std::move(done), std::move(result));
  }
}

StepDiagnostics Session::LastSpectrumDiagnostics() const {
  absl::MutexLock lock(&mu_);
  const std::vector<SpectrumResult>& history = algorithm_->history();
  return history.empty() ? StepDiagnostics{} : history.back().diagnostics;
}

}  // namespace gameopt
