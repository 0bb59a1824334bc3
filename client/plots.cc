#include "client/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

// Grid of the vector field: kGrid x kGrid arrows.
constexpr int kGrid = 21;
// Field draws use one fixed minibatch (only stochastic games care).
constexpr uint64_t kFieldSeed = 7;

absl::Status RunGnuplot(const std::string& script) {
  const std::string command =
      absl::StrCat("gnuplot '", script, "' > '", script, ".log' 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("gnuplot failed on ", script, "; see ", script, ".log"));
  }
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return out.good()
             ? absl::OkStatus()
             : absl::UnavailableError(absl::StrCat("cannot write ", path));
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

bool GnuplotAvailable() {
  return std::system("gnuplot --version > /dev/null 2>&1") == 0;
}

absl::Status PlotMetrics(const Recorder& recorder, const std::string& dir,
                         const std::string& title) {
  return PlotColumns(recorder.columns(), recorder.rows(), dir, "metrics",
                     title);
}

absl::Status PlotColumns(const std::vector<std::string>& columns,
                         const std::vector<std::vector<double>>& rows,
                         const std::string& dir, const std::string& stem,
                         const std::string& title) {
  if (rows.empty() || columns.size() < 2) return absl::OkStatus();
  const std::string data = absl::StrCat(dir, "/", stem, ".dat");
  {
    std::ofstream out(data);
    out.precision(10);
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) out << (i ? " " : "") << row[i];
      out << "\n";
    }
  }
  const int panels = static_cast<int>(columns.size()) - 1;
  std::string script = absl::StrCat(
      "set terminal pngcairo noenhanced size 900,", 220 * panels + 60,
      " font 'sans,10'\nset output '", dir, "/", stem, ".png'\n",
      "set multiplot layout ", panels, ",1 title \"", Escape(title), "\"\n",
      "set grid\nset key off\nset xlabel 'step'\n");
  for (int c = 1; c <= panels; ++c) {
    bool positive = true;
    for (const auto& row : rows) positive &= row[c] > 0;
    const bool log_scale = positive && columns[c] != "modes_covered" &&
                           columns[c] != "off_mode_share";
    absl::StrAppend(&script,
                    log_scale ? "set logscale y\n" : "unset logscale y\n",
                    "set ylabel \"", Escape(columns[c]), "\"\n", "plot '", data,
                    "' using 1:", c + 1,
                    " with lines linewidth 2 linecolor rgb '#1f77b4'\n");
  }
  absl::StrAppend(&script, "unset multiplot\n");
  const std::string path = absl::StrCat(dir, "/", stem, ".gp");
  absl::Status status = WriteFile(path, script);
  return status.ok() ? RunGnuplot(path) : status;
}

absl::Status PlotTrajectory(Game& game,
                            const std::vector<Eigen::VectorXd>& trajectory,
                            const std::string& dir, const std::string& title) {
  if (game.Dimension() != 2 || trajectory.empty()) return absl::OkStatus();
  double lo_x = -1, hi_x = 1, lo_y = -1, hi_y = 1;
  for (const Eigen::VectorXd& x : trajectory) {
    lo_x = std::min(lo_x, x(0));
    hi_x = std::max(hi_x, x(0));
    lo_y = std::min(lo_y, x(1));
    hi_y = std::max(hi_y, x(1));
  }
  const double pad_x = 0.1 * (hi_x - lo_x), pad_y = 0.1 * (hi_y - lo_y);
  lo_x -= pad_x, hi_x += pad_x, lo_y -= pad_y, hi_y += pad_y;
  const double cell_x = (hi_x - lo_x) / (kGrid - 1);
  const double cell_y = (hi_y - lo_y) / (kGrid - 1);
  game.DrawMinibatches(1, kFieldSeed);
  const std::string field = absl::StrCat(dir, "/field.dat");
  const std::string path_data = absl::StrCat(dir, "/trajectory.dat");
  {
    std::ofstream out(field);
    for (int i = 0; i < kGrid; ++i) {
      for (int j = 0; j < kGrid; ++j) {
        Eigen::VectorXd x(2);
        x << lo_x + i * cell_x, lo_y + j * cell_y;
        const Eigen::VectorXd xi = game.Gradient(x, 0);
        // Unit arrows in cell units, so every arrow fits its cell.
        const double dx = -xi(0) / cell_x, dy = -xi(1) / cell_y;
        const double norm = std::hypot(dx, dy);
        if (norm == 0) continue;
        out << x(0) << " " << x(1) << " " << 0.7 * cell_x * dx / norm << " "
            << 0.7 * cell_y * dy / norm << "\n";
      }
    }
    std::ofstream path_out(path_data);
    path_out.precision(10);
    for (const Eigen::VectorXd& x : trajectory) {
      path_out << x(0) << " " << x(1) << "\n";
    }
  }
  const std::vector<PlayerSpec> players = game.players();
  const std::string script = absl::StrCat(
      "set terminal pngcairo noenhanced size 800,800 font 'sans,10'\n",
      "set output '", dir, "/trajectory.png'\n", "set title \"", Escape(title),
      "\"\n", "set xlabel \"", Escape(players[0].name), "\"\nset ylabel \"",
      Escape(players[1].name), "\"\n", "set xrange [", lo_x, ":", hi_x,
      "]\nset yrange [", lo_y, ":", hi_y, "]\nset size ratio -1\n",
      "set key bottom left box opaque\n", "plot '", field,
      "' using 1:2:3:4 with vectors head filled size screen 0.008,20 "
      "linecolor rgb '#aaaaaa' title 'update field -xi', \\\n  '",
      path_data,
      "' using 1:2 with linespoints pointtype 7 pointsize 0.3 linewidth 1.5 "
      "linecolor rgb '#d62728' title 'trajectory', \\\n  '",
      path_data,
      "' every ::0::0 using 1:2 with points pointtype 7 pointsize 2 "
      "linecolor rgb '#2ca02c' title 'start', \\\n  '<echo 0 0' with points "
      "pointtype 3 pointsize 3 linecolor rgb 'black' title 'equilibrium'\n");
  const std::string script_path = absl::StrCat(dir, "/trajectory.gp");
  absl::Status status = WriteFile(script_path, script);
  return status.ok() ? RunGnuplot(script_path) : status;
}

absl::Status PlotSamples(const Eigen::MatrixXd& samples,
                         const Eigen::MatrixXd& centers, double data_std,
                         const std::string& dir, const std::string& title) {
  const std::string data = absl::StrCat(dir, "/samples.dat");
  const std::string modes = absl::StrCat(dir, "/modes.dat");
  {
    std::ofstream out(data);
    for (int j = 0; j < samples.cols(); ++j) {
      out << samples(0, j) << " " << samples(1, j) << "\n";
    }
    std::ofstream m(modes);
    for (int k = 0; k < centers.cols(); ++k) {
      m << centers(0, k) << " " << centers(1, k) << " " << 3 * data_std << "\n";
    }
  }
  const std::string script = absl::StrCat(
      "set terminal pngcairo noenhanced size 800,800 font 'sans,10'\n",
      "set output '", dir, "/samples.png'\n", "set title \"", Escape(title),
      "\"\n",
      "set xrange [-1.6:1.6]\nset yrange [-1.6:1.6]\nset size ratio -1\n",
      "set grid\nset key top right\n", "plot '", data,
      "' using 1:2 with points pointtype 7 pointsize 0.35 linecolor rgb "
      "'#1f77b4' title 'generated', \\\n  '",
      modes,
      "' using 1:2:3 with circles linecolor rgb '#d62728' linewidth 2 title "
      "'modes (3 std)'\n");
  const std::string path = absl::StrCat(dir, "/samples.gp");
  absl::Status status = WriteFile(path, script);
  return status.ok() ? RunGnuplot(path) : status;
}

absl::Status PlotSpectrum(const std::vector<SpectrumSeries>& series,
                          const std::string& dir, const std::string& title) {
  static const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c",
                                        "#ff7f0e", "#9467bd", "#8c564b"};
  static const int kPoints[] = {7, 5, 9, 11, 13, 15};
  const std::string data = absl::StrCat(dir, "/spectrum.dat");
  std::string plot;
  {
    std::ofstream out(data);
    out.precision(12);
    for (size_t s = 0; s < series.size(); ++s) {
      out << "# " << series[s].label << "\n";
      for (std::complex<double> z : series[s].values) {
        out << z.real() << " " << z.imag() << "\n";
      }
      out << "\n\n";  // a gnuplot data block per series
      absl::StrAppend(&plot, s ? ", \\\n  " : "plot ", "'", data, "' index ", s,
                      " using 1:2 with points pointtype ", kPoints[s % 6],
                      " pointsize 1.4 linecolor rgb '", kColors[s % 6],
                      "' title \"", Escape(series[s].label), "\"");
    }
  }
  if (series.empty()) return absl::OkStatus();
  const std::string script = absl::StrCat(
      "set terminal pngcairo noenhanced size 800,700 font 'sans,10'\n",
      "set output '", dir, "/spectrum.png'\n", "set title \"", Escape(title),
      "\"\n", "set xlabel 'Re(lambda)'\nset ylabel 'Im(lambda)'\n",
      "set grid\nset key outside bottom center box\n",
      "set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08\n",
      "set xzeroaxis linewidth 1\nset yzeroaxis linewidth 2\n", plot, "\n");
  const std::string path = absl::StrCat(dir, "/spectrum.gp");
  absl::Status status = WriteFile(path, script);
  return status.ok() ? RunGnuplot(path) : status;
}

}  // namespace gameopt
