// FlatVector: a dense vector of the session's dtype over all coordinates of
// a game (player by player, tensor by tensor, row-major), or a block of it.
#ifndef GAMEOPT_SERVER_CORE_FLAT_VECTOR_H_
#define GAMEOPT_SERVER_CORE_FLAT_VECTOR_H_

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "Eigen/Core"
#include "server/core/dtype.h"

namespace gameopt {

template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <typename T>
using VecMap = Eigen::Map<Vec<T>>;
template <typename T>
using ConstVecMap = Eigen::Map<const Vec<T>>;

// Owns its storage; copyable. Exactly one of the two storages is in use,
// the one of dtype(). Not thread-safe for writes; concurrent reads are fine.
class FlatVector {
 public:
  FlatVector() = default;
  FlatVector(DType dtype, int64_t size) : dtype_(dtype) { Resize(size); }

  DType dtype() const { return dtype_; }
  int64_t size() const { return size_; }
  size_t bytes() const { return size_ * DTypeSize(dtype_); }
  const void* data() const {
    return dtype_ == DType::kFloat32 ? static_cast<const void*>(f32_.data())
                                     : static_cast<const void*>(f64_.data());
  }
  void* mutable_data() {
    return dtype_ == DType::kFloat32 ? static_cast<void*>(f32_.data())
                                     : static_cast<void*>(f64_.data());
  }

  // Resizes, keeping the dtype; new coordinates are zero.
  void Resize(int64_t size) {
    size_ = size;
    if (dtype_ == DType::kFloat32) {
      f32_.resize(size);
    } else {
      f64_.resize(size);
    }
  }
  void SetZero() {
    std::fill(f32_.begin(), f32_.end(), 0.0f);
    std::fill(f64_.begin(), f64_.end(), 0.0);
  }

  // Typed views; T must match dtype() (checked in debug builds).
  template <typename T>
  VecMap<T> as() {
    return VecMap<T>(typed<T>(), size_);
  }
  template <typename T>
  ConstVecMap<T> as() const {
    return ConstVecMap<T>(const_cast<FlatVector*>(this)->typed<T>(), size_);
  }

 private:
  template <typename T>
  T* typed() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    if constexpr (std::is_same_v<T, float>) {
      assert(dtype_ == DType::kFloat32);
      return f32_.data();
    } else {
      assert(dtype_ == DType::kFloat64);
      return f64_.data();
    }
  }

  DType dtype_ = DType::kFloat64;
  int64_t size_ = 0;
  std::vector<float> f32_;
  std::vector<double> f64_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_FLAT_VECTOR_H_
