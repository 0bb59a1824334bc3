// Element types of parameters, gradients and optimizer slots.
#ifndef GAMEOPT_SERVER_CORE_DTYPE_H_
#define GAMEOPT_SERVER_CORE_DTYPE_H_

#include <cstddef>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace gameopt {

// float32 is the default: it halves memory and bandwidth for real models.
// float64 exists for small analytic games that are tested exactly.
enum class DType { kFloat32, kFloat64 };

constexpr size_t DTypeSize(DType dtype) {
  return dtype == DType::kFloat32 ? 4 : 8;
}

constexpr absl::string_view DTypeName(DType dtype) {
  return dtype == DType::kFloat32 ? "float32" : "float64";
}

// The DType of float (kFloat32) or double (kFloat64).
template <typename T>
constexpr DType DTypeOf() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
}

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_DTYPE_H_
