#include "client/play_files.h"

#include <filesystem>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "client/plots.h"
#include "client/spectrum.h"

namespace gameopt {
namespace {

absl::Status PlotSpectra(const std::vector<v1::Spectrum>& spectra,
                         const std::string& dir, const std::string& title) {
  std::vector<SpectrumSeries> series;
  for (const v1::Spectrum& s : spectra) {
    series.push_back(SpectrumSeries{
        absl::StrCat(s.operator_description(), " at step ", s.step()),
        DistinctEigenvalues(s)});
  }
  return PlotSpectrum(series, dir, absl::StrCat(title, ": eigenvalues"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> WriteRunCsvs(const PlayRecord& record,
                                                      const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  std::vector<std::string> files;
  const std::string csv = absl::StrCat(dir, "/metrics.csv");
  absl::Status status = record.recorder->WriteCsv(csv);
  if (!status.ok()) return status;
  files.push_back(csv);
  if (record.curves != nullptr) {
    const std::string server_csv = absl::StrCat(dir, "/server_metrics.csv");
    status =
        WriteCsv(server_csv, record.curves->columns(), record.curves->rows());
    if (!status.ok()) return status;
    files.push_back(server_csv);
  }
  if (!record.spectra.empty()) {
    const std::string spectrum_csv = dir + "/spectrum.csv";
    status = WriteSpectraCsv(record.spectra, spectrum_csv);
    if (!status.ok()) return status;
    files.push_back(spectrum_csv);
  }
  return files;
}

absl::StatusOr<std::vector<std::string>> PlotRun(const PlayRecord& record,
                                                 Game& game,
                                                 const std::string& dir,
                                                 const std::string& title) {
  std::vector<std::string> files;
  if (!GnuplotAvailable()) return files;
  absl::Status status = PlotMetrics(*record.recorder, dir, title);
  if (!status.ok()) return status;
  files.push_back(dir + "/metrics.png");
  if (record.curves != nullptr && !record.curves->rows().empty()) {
    status = PlotColumns(record.curves->columns(), record.curves->rows(), dir,
                         "server_metrics",
                         absl::StrCat(title, ", as the server saw it"));
    if (!status.ok()) return status;
    files.push_back(dir + "/server_metrics.png");
  }
  if (game.Dimension() == 2) {
    status = PlotTrajectory(game, record.recorder->trajectory(), dir, title);
    if (!status.ok()) return status;
    files.push_back(dir + "/trajectory.png");
  }
  if (!record.spectra.empty()) {
    status = PlotSpectra(record.spectra, dir, title);
    if (!status.ok()) return status;
    files.push_back(dir + "/spectrum.png");
  }
  if (const std::optional<SamplePicture> samples =
          game.Samples(record.final_params)) {
    status = PlotSamples(samples->samples, samples->centers,
                         samples->center_std, dir, title);
    if (!status.ok()) return status;
    files.push_back(dir + "/samples.png");
  }
  return files;
}

}  // namespace gameopt
