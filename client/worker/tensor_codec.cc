#include "client/worker/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace gameopt {

FlatLayout::FlatLayout(std::vector<PlayerSpec> players)
    : players_(std::move(players)) {
  for (const PlayerSpec& player : players_) {
    player_offsets_[player.name] = dimension_;
    for (const TensorSpec& tensor : player.tensors) {
      offsets_[{player.name, tensor.name}] = dimension_;
      dimension_ += NumElements(tensor);
    }
  }
}

int64_t FlatLayout::PlayerOffset(const std::string& player) const {
  auto it = player_offsets_.find(player);
  return it == player_offsets_.end() ? -1 : it->second;
}

int64_t FlatLayout::TensorOffset(const std::string& player,
                                 const std::string& tensor) const {
  auto it = offsets_.find({player, tensor});
  return it == offsets_.end() ? -1 : it->second;
}

absl::Status DecodeVector(const v1::Vector& vector, const FlatLayout& layout,
                          Eigen::VectorXd& out) {
  for (const v1::PlayerTensors& player : vector.players()) {
    for (const v1::Tensor& tensor : player.tensors()) {
      const int64_t offset =
          layout.TensorOffset(player.player(), tensor.name());
      if (offset < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("the server sent unknown tensor '", player.player(),
                         "/", tensor.name(), "'"));
      }
      int64_t n = 1;
      for (int64_t dim : tensor.shape()) n *= dim;
      const Compression compression = CompressionOf(tensor.dtype());
      if (compression != Compression::kNone) {
        if (tensor.data().size() != CompressedBytes(compression, n) ||
            offset + n > out.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "tensor '", player.player(), "/", tensor.name(), "' has ",
              tensor.data().size(), " bytes of ", CompressionName(compression),
              ", which does not fit the game"));
        }
        Decode(compression, tensor.data().data(), n, out.data() + offset);
        continue;
      }
      if (tensor.dtype() != v1::FLOAT32 && tensor.dtype() != v1::FLOAT64) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", player.player(), "/", tensor.name(),
                         "' has unknown dtype ", tensor.dtype()));
      }
      const size_t width = tensor.dtype() == v1::FLOAT64 ? 8 : 4;
      if (tensor.data().size() != n * width || offset + n > out.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", player.player(), "/", tensor.name(), "' has ",
            tensor.data().size(), " bytes, which does not fit the game"));
      }
      const char* raw = tensor.data().data();
      if (width == 8) {
        std::memcpy(out.data() + offset, raw, n * 8);
      } else {
        for (int64_t i = 0; i < n; ++i) {
          float v;
          std::memcpy(&v, raw + i * 4, 4);
          out[offset + i] = v;
        }
      }
    }
  }
  return absl::OkStatus();
}

void EncodeVector(const Eigen::VectorXd& values, const FlatLayout& layout,
                  const std::vector<std::string>& players, v1::DType dtype,
                  v1::Vector& out, const Rounding& rounding) {
  const Compression compression = CompressionOf(dtype);
  int index = 0;
  for (const PlayerSpec& spec : layout.players()) {
    if (!players.empty() &&
        std::find(players.begin(), players.end(), spec.name) == players.end()) {
      continue;
    }
    v1::PlayerTensors* player = index < out.players_size()
                                    ? out.mutable_players(index)
                                    : out.add_players();
    ++index;
    player->set_player(spec.name);
    int t = 0;
    for (const TensorSpec& tensor_spec : spec.tensors) {
      v1::Tensor* tensor = t < player->tensors_size()
                               ? player->mutable_tensors(t)
                               : player->add_tensors();
      ++t;
      tensor->set_name(tensor_spec.name);
      tensor->set_dtype(dtype);
      tensor->mutable_shape()->Assign(tensor_spec.shape.begin(),
                                      tensor_spec.shape.end());
      const int64_t n = NumElements(tensor_spec);
      const int64_t offset = layout.TensorOffset(spec.name, tensor_spec.name);
      const double* src = values.data() + offset;
      std::string* data = tensor->mutable_data();
      if (compression != Compression::kNone) {
        data->resize(CompressedBytes(compression, n));
        Rounding r = rounding;
        r.counter += static_cast<uint64_t>(offset);
        if (Encode(compression, src, n, r, data->data())) continue;
        tensor->set_dtype(v1::FLOAT32);  // does not fit: uncompressed
      }
      if (dtype == v1::FLOAT64) {
        data->resize(n * 8);
        std::memcpy(data->data(), src, n * 8);
      } else {
        data->resize(n * 4);
        for (int64_t i = 0; i < n; ++i) {
          const float v = static_cast<float>(src[i]);
          std::memcpy(data->data() + i * 4, &v, 4);
        }
      }
    }
    while (player->tensors_size() > t) player->mutable_tensors()->RemoveLast();
  }
  while (out.players_size() > index) out.mutable_players()->RemoveLast();
}

Compression CompressionOf(v1::DType dtype) {
  switch (dtype) {
    case v1::BFLOAT16:
      return Compression::kBFloat16;
    case v1::FLOAT16:
      return Compression::kFloat16;
    case v1::INT8_BLOCK:
      return Compression::kInt8Block;
    default:
      return Compression::kNone;
  }
}

Eigen::VectorXd RoundToDType(const Eigen::VectorXd& values, v1::DType dtype) {
  if (dtype != v1::FLOAT32) return values;
  return values.cast<float>().cast<double>();
}

}  // namespace gameopt
