// The client side of the spectrum diagnostics: ask a session for
// an estimate of its Jacobian's eigenvalues (EstimateSpectrum), fetch the
// ones it kept (GetSpectrum), print them, write them as CSV and as the
// points of a complex-plane plot (plots.h, PlotSpectrum).
#ifndef GAMEOPT_CLIENT_SPECTRUM_H_
#define GAMEOPT_CLIENT_SPECTRUM_H_

#include <complex>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace gameopt {

// Waits for the estimate (it needs the session's workers running) up to
// `timeout`.
absl::StatusOr<v1::Spectrum> RequestSpectrum(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::string& session_id, const v1::SpectrumOptions& options,
    absl::Duration timeout);

// Every estimate the session kept, oldest first.
absl::StatusOr<std::vector<v1::Spectrum>> FetchSpectra(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::string& session_id);

// A few lines for people: the operator, step, convergence, then each group
// as "re +- im i (residual r)".
std::string FormatSpectrum(const v1::Spectrum& spectrum);

// The distinct eigenvalues of the three groups (conjugates included).
std::vector<std::complex<double>> DistinctEigenvalues(
    const v1::Spectrum& spectrum);

// CSV with the columns step,operator,group,rank,re,im,residual.
absl::Status WriteSpectraCsv(const std::vector<v1::Spectrum>& spectra,
                             const std::string& path);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_SPECTRUM_H_
