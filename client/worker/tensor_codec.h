// Between a game's flat double vectors and the wire's Vector messages.
#ifndef GAMEOPT_CLIENT_WORKER_TENSOR_CODEC_H_
#define GAMEOPT_CLIENT_WORKER_TENSOR_CODEC_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "client/worker/game.h"
#include "gameopt/v1/gameopt.pb.h"
#include "server/core/wire_codec.h"

namespace gameopt {

// Where each (player, tensor) of a game lives in its flat vector. Built from
// the game's PlayerSpecs, in their order: the same layout the server uses.
class FlatLayout {
 public:
  explicit FlatLayout(std::vector<PlayerSpec> players);

  const std::vector<PlayerSpec>& players() const { return players_; }
  int64_t dimension() const { return dimension_; }
  // Offset of the player's block, and of one of its tensors; -1 if unknown.
  int64_t PlayerOffset(const std::string& player) const;
  int64_t TensorOffset(const std::string& player,
                       const std::string& tensor) const;

 private:
  std::vector<PlayerSpec> players_;
  std::map<std::pair<std::string, std::string>, int64_t> offsets_;
  std::map<std::string, int64_t> player_offsets_;
  int64_t dimension_ = 0;
};

// Writes the tensors present in `vector` into `out` (of the layout's
// dimension), converting FLOAT32 / FLOAT64 and the compressed formats
// (BFLOAT16, FLOAT16, INT8_BLOCK; server/core/wire_codec.h) to double.
// Coordinates of absent tensors are left as they were. InvalidArgument on
// unknown names, dtypes or sizes.
absl::Status DecodeVector(const v1::Vector& vector, const FlatLayout& layout,
                          Eigen::VectorXd& out);

// `values` as a server of `dtype` holds them after EncodeVector: each
// value rounded to float32 for FLOAT32, unchanged for FLOAT64. (A fused
// task's products are on the gradient as the server would send it back as
// the LOCAL probe.)
Eigen::VectorXd RoundToDType(const Eigen::VectorXd& values, v1::DType dtype);

// Encodes the blocks of `players` (all when empty) of `values` as `dtype`,
// reusing `out`'s existing messages and buffers where it can. For a
// compressed dtype, values round per `rounding` (its counter advanced by
// each tensor's offset in `layout`); a tensor with a finite value the
// format cannot hold (FLOAT16 past 65504) is sent as FLOAT32.
void EncodeVector(const Eigen::VectorXd& values, const FlatLayout& layout,
                  const std::vector<std::string>& players, v1::DType dtype,
                  v1::Vector& out, const Rounding& rounding = Rounding());

// The compressed format of a wire dtype, kNone for FLOAT32 / FLOAT64.
Compression CompressionOf(v1::DType dtype);

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_WORKER_TENSOR_CODEC_H_
