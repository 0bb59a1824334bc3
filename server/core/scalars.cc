#include "server/core/scalars.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/core/quote.h"

namespace gameopt {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
         c == '/' || c == '-';
}

}  // namespace

absl::Status ValidateScalars(absl::Span<const ScalarView> scalars) {
  if (scalars.size() > static_cast<size_t>(kMaxScalars)) {
    return absl::InvalidArgumentError(
        absl::StrCat("scalars: ", scalars.size(), " entries; at most ",
                     kMaxScalars, " are allowed per submission"));
  }
  std::set<absl::string_view> seen;
  for (size_t i = 0; i < scalars.size(); ++i) {
    const ScalarView& s = scalars[i];
    bool good = !s.name.empty() &&
                s.name.size() <= static_cast<size_t>(kMaxScalarNameLength);
    for (char c : s.name) good = good && NameChar(c);
    if (!good) {
      // The name is not echoed: it may hold anything.
      return absl::InvalidArgumentError(absl::StrCat(
          "scalars[", i, "].name must be 1 to ", kMaxScalarNameLength,
          " characters from [A-Za-z0-9_.:/-] (got ", s.name.size(), " bytes)"));
    }
    if (!std::isfinite(s.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("scalars[", i, "] ('", Quote(s.name), "').value is ",
                       s.value, "; reported values must be finite"));
    }
    if (!seen.insert(s.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("scalars[", i, "]: the name '", Quote(s.name),
                       "' appears twice in one submission"));
    }
  }
  return absl::OkStatus();
}

void ScalarAccumulator::Add(absl::Span<const NamedValue> scalars) {
  for (const NamedValue& s : scalars) {
    auto& [sum, count] = sums_[s.name];
    sum += s.value;
    ++count;
  }
}

std::vector<NamedValue> ScalarAccumulator::Means() const {
  std::vector<NamedValue> out;
  out.reserve(sums_.size());
  for (const auto& [name, sum_count] : sums_) {
    out.push_back(NamedValue{
        name, sum_count.first / static_cast<double>(sum_count.second)});
  }
  return out;
}

}  // namespace gameopt
