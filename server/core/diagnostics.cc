#include "server/core/diagnostics.h"

#include <limits>

namespace gameopt {
namespace {

double Ratio(double num, double den) {
  if (den > 0.0) return num / den;
  return num > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
}

}  // namespace

StepDiagnostics StationarityDiagnostics(double xi_norm, double jt_xi_norm) {
  StepDiagnostics d;
  d.available = true;
  d.xi_norm = xi_norm;
  d.jt_xi_norm = jt_xi_norm;
  d.stationarity_ratio = xi_norm > 0.0 ? jt_xi_norm / xi_norm : 0.0;
  return d;
}

double CancellationFromNorms(double xi_norm, double correction_norm,
                             double direction_norm) {
  if (!(xi_norm > 0.0)) return 0.0;
  const double dot =
      0.5 * (direction_norm * direction_norm - xi_norm * xi_norm -
             correction_norm * correction_norm);
  return -dot / (xi_norm * xi_norm);
}

void AddRotationIndex(double j_plus_jt_norm, double jt_minus_j_norm,
                      StepDiagnostics& diagnostics) {
  diagnostics.has_rotation_index = true;
  diagnostics.s_xi_norm = 0.5 * j_plus_jt_norm;
  diagnostics.a_xi_norm = 0.5 * jt_minus_j_norm;
  diagnostics.rotation_index =
      Ratio(diagnostics.a_xi_norm, diagnostics.s_xi_norm);
}

}  // namespace gameopt
