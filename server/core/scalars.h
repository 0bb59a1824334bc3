// Reported scalars: named numbers (losses, user metrics) that workers send
// with their gradients, validated and averaged per step by name.
//
// A submission carries at most kMaxScalars entries, each with a name of
// 1..128 characters from [A-Za-z0-9_.:/-], distinct within the submission,
// and a finite value. The session adds the accepted entries of a step's
// gradient submissions, in worker-id order per round, and shows the mean
// per name of the last completed step.
#ifndef GAMEOPT_SERVER_CORE_SCALARS_H_
#define GAMEOPT_SERVER_CORE_SCALARS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace gameopt {

inline constexpr int kMaxScalars = 64;
inline constexpr int kMaxScalarNameLength = 128;

// One entry as a transport received it (the name views its buffer).
struct ScalarView {
  absl::string_view name;
  double value = 0.0;
};

// A named value, owned.
struct NamedValue {
  std::string name;
  double value = 0.0;
};

// InvalidArgument naming the first bad entry ("scalars[3] ('loss/g'):
// ...") when there are more than kMaxScalars, a name is malformed or
// repeated, or a value is not finite.
absl::Status ValidateScalars(absl::Span<const ScalarView> scalars);

// Sums per name; Means() in name order. Not thread-safe.
class ScalarAccumulator {
 public:
  void Add(absl::Span<const NamedValue> scalars);
  bool empty() const { return sums_.empty(); }
  void Clear() { sums_.clear(); }
  // The mean of each name over the Add calls that reported it, by name.
  std::vector<NamedValue> Means() const;

 private:
  std::map<std::string, std::pair<double, int64_t>, std::less<>> sums_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_SCALARS_H_
