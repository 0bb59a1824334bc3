#include "client/spectrum.h"

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gameopt {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

struct Group {
  const char* name;
  const google::protobuf::RepeatedPtrField<v1::Eigenvalue>& values;
};

std::vector<Group> Groups(const v1::Spectrum& s) {
  return {{"largest_real", s.largest_real()},
          {"largest_imag", s.largest_imag()},
          {"largest_modulus", s.largest_modulus()},
          {"smallest_real", s.smallest_real()}};
}

}  // namespace

absl::StatusOr<v1::Spectrum> RequestSpectrum(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::string& session_id, const v1::SpectrumOptions& options,
    absl::Duration timeout) {
  std::unique_ptr<v1::GameOptimizer::Stub> stub =
      v1::GameOptimizer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::EstimateSpectrumRequest request;
  request.set_session_id(session_id);
  *request.mutable_options() = options;
  v1::Spectrum response;
  grpc::Status status = stub->EstimateSpectrum(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<std::vector<v1::Spectrum>> FetchSpectra(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::string& session_id) {
  std::unique_ptr<v1::GameOptimizer::Stub> stub =
      v1::GameOptimizer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::GetSpectrumRequest request;
  request.set_session_id(session_id);
  v1::GetSpectrumResponse response;
  grpc::Status status = stub->GetSpectrum(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return std::vector<v1::Spectrum>(response.spectra().begin(),
                                   response.spectra().end());
}

std::string FormatSpectrum(const v1::Spectrum& s) {
  std::string out = absl::StrFormat(
      "spectrum of %s at step %d: %s after %d products (%d restarts, %d "
      "rounds, J averaged over %d samples)\n",
      s.operator_description(), s.step(),
      s.converged() ? "converged" : "NOT converged", s.applications(),
      s.restarts(), s.rounds(), s.samples());
  if (s.has_diagnostics() && s.diagnostics().has_rotation_index()) {
    const v1::StepDiagnostics& d = s.diagnostics();
    absl::StrAppendFormat(
        &out,
        "  at xi: rotation index |A^T xi|/|S xi| = %.6g, |xi| = %.6g, "
        "|J^T xi| = %.6g (ratio %.6g)\n",
        d.rotation_index(), d.xi_norm(), d.jt_xi_norm(),
        d.stationarity_ratio());
  }
  for (const Group& group : Groups(s)) {
    if (group.values.empty()) continue;  // smallest_real unless asked for
    absl::StrAppendFormat(&out, "  %s:\n", group.name);
    for (const v1::Eigenvalue& e : group.values) {
      absl::StrAppendFormat(&out, "    %+.10g %c %.10g i   (residual %.2e)\n",
                            e.re(), e.im() < 0 ? '-' : '+', std::abs(e.im()),
                            e.residual());
    }
  }
  return out;
}

std::vector<std::complex<double>> DistinctEigenvalues(const v1::Spectrum& s) {
  std::vector<std::complex<double>> out;
  auto add = [&out](std::complex<double> z) {
    for (std::complex<double> seen : out) {
      if (std::abs(seen - z) <= 1e-12 * std::max(1.0, std::abs(z))) return;
    }
    out.push_back(z);
  };
  for (const Group& group : Groups(s)) {
    for (const v1::Eigenvalue& e : group.values) {
      add({e.re(), e.im()});
      add({e.re(), -e.im()});
    }
  }
  return out;
}

absl::Status WriteSpectraCsv(const std::vector<v1::Spectrum>& spectra,
                             const std::string& path) {
  std::ofstream out(path);
  out << "step,operator,group,rank,re,im,residual\n";
  for (const v1::Spectrum& s : spectra) {
    for (const Group& group : Groups(s)) {
      for (int i = 0; i < group.values.size(); ++i) {
        const v1::Eigenvalue& e = group.values[i];
        out << absl::StrFormat("%d,\"%s\",%s,%d,%.17g,%.17g,%.3g\n", s.step(),
                               s.operator_description(), group.name, i, e.re(),
                               e.im(), e.residual());
      }
    }
  }
  return out.good()
             ? absl::OkStatus()
             : absl::UnavailableError(absl::StrCat("cannot write ", path));
}

}  // namespace gameopt
