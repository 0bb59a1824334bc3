#include "server/core/submission.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace gameopt {
namespace {

// Copies n little-endian values of type From into `to`, converting to To,
// and returns the index of the first non-finite one, or -1. (x86-64 and
// aarch64 are little-endian, so the wire layout is the memory layout.)
template <typename From, typename To>
int64_t CopyChecked(const char* from, To* to, int64_t n) {
  if constexpr (std::is_same_v<From, To>) {
    std::memcpy(to, from, n * sizeof(To));
  } else {
    for (int64_t i = 0; i < n; ++i) {
      From v;
      std::memcpy(&v, from + i * sizeof(From), sizeof(From));
      to[i] = static_cast<To>(v);
    }
  }
  // A separate pass: the branch-free sum vectorizes, and a NaN or an
  // infinity anywhere makes it non-finite. Only then look for the index.
  To acc = To(0);
  for (int64_t i = 0; i < n; ++i) acc += to[i] * To(0);
  if (std::isfinite(acc)) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(to[i])) return i;
  }
  return -1;
}

template <typename To>
int64_t Copy(const TensorView& view, To* to, int64_t n) {
  return view.dtype == DType::kFloat32
             ? CopyChecked<float, To>(view.bytes.data(), to, n)
             : CopyChecked<double, To>(view.bytes.data(), to, n);
}

}  // namespace

absl::Status DecodeSample(const SampleView& sample, const GameLayout& layout,
                          const std::vector<int>& players, DType dtype,
                          absl::string_view field, FlatVector& out) {
  if (out.dtype() != dtype || out.size() != layout.dimension()) {
    out = FlatVector(dtype, layout.dimension());
  }
  std::vector<bool> wanted(layout.num_players(), false);
  std::vector<bool> seen(layout.num_players(), false);
  for (int p : players) wanted[p] = true;
  for (size_t i = 0; i < sample.size(); ++i) {
    const PlayerValues& values = sample[i];
    const int p = layout.FindPlayer(values.player);
    if (p < 0 || !wanted[p]) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".players[", i, "]: player '", values.player, "' ",
          p < 0 ? "is not a player of this session"
                : "was not asked for in this task"));
    }
    if (seen[p]) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": player '", values.player, "' appears twice"));
    }
    seen[p] = true;
    const PlayerLayout& player = layout.players()[p];
    std::vector<bool> have(player.tensors.size(), false);
    for (const TensorView& view : values.tensors) {
      const std::string where =
          absl::StrCat(field, " player '", player.name, "' tensor '",
                       view.name, "'");
      const int t = layout.FindTensor(p, view.name);
      if (t < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": no such tensor in this player"));
      }
      if (have[t]) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": appears twice"));
      }
      have[t] = true;
      const TensorLayout& tensor = player.tensors[t];
      if (!std::equal(view.shape.begin(), view.shape.end(),
                      tensor.shape.begin(), tensor.shape.end())) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": shape ",
            ShapeString({view.shape.begin(), view.shape.end()}),
            " does not match the session's ", ShapeString(tensor.shape)));
      }
      const size_t expected = tensor.size * DTypeSize(view.dtype);
      if (view.bytes.size() != expected) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": ", view.bytes.size(), " bytes of data, but shape ",
            ShapeString(tensor.shape), " of ", DTypeName(view.dtype),
            " needs ", expected));
      }
      const int64_t bad =
          dtype == DType::kFloat32
              ? Copy(view, out.as<float>().data() + tensor.offset, tensor.size)
              : Copy(view, out.as<double>().data() + tensor.offset,
                     tensor.size);
      if (bad >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": value at index ", bad, " is not finite (NaN or inf)"));
      }
    }
    for (size_t t = 0; t < have.size(); ++t) {
      if (!have[t]) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, " player '", player.name, "': tensor '",
            player.tensors[t].name,
            "' is missing (send zeros for parameters without a gradient)"));
      }
    }
  }
  for (int p : players) {
    if (!seen[p]) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": player '", layout.players()[p].name,
                       "' is missing"));
    }
  }
  for (int p = 0; p < layout.num_players(); ++p) {
    if (wanted[p]) continue;
    const PlayerLayout& player = layout.players()[p];
    if (dtype == DType::kFloat32) {
      out.as<float>().segment(player.offset, player.size).setZero();
    } else {
      out.as<double>().segment(player.offset, player.size).setZero();
    }
  }
  return absl::OkStatus();
}

}  // namespace gameopt
