#include "server/service/wire_format.h"

#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "server/core/lazy_probe.h"
#include "server/core/quote.h"
#include "server/core/wire_vector.h"
#include "server/service/config_convert.h"
#include "server/service/params_cache.h"
#include "server/service/proto_convert.h"

namespace gameopt {
namespace {

constexpr int kVarint = WireReader::kVarint;
constexpr int kFixed64 = WireReader::kFixed64;
constexpr int kLengthDelimited = WireReader::kLengthDelimited;

// A submit request's field numbers, from the generated code so that the
// hand-written parser cannot drift from gameopt.proto (and
// tests/service/wire_format_test.cc checks that it reads every field); 0
// where a kind has no such field (never read: ReadTag refuses field 0).
struct RequestFields {
  int session_id, worker_id, round, step, phase, known_params_version;
  int gradients, vjp, jvp, scalars, loss_player;
};
using GradientRequest = v1::SubmitGradientRequest;
constexpr RequestFields kGradientFields = {
    GradientRequest::kSessionIdFieldNumber,
    GradientRequest::kWorkerIdFieldNumber,
    GradientRequest::kRoundFieldNumber,
    GradientRequest::kStepFieldNumber,
    GradientRequest::kPhaseFieldNumber,
    GradientRequest::kKnownParamsVersionFieldNumber,
    GradientRequest::kGradientsFieldNumber,
    GradientRequest::kVjpFieldNumber,
    GradientRequest::kJvpFieldNumber,
    GradientRequest::kScalarsFieldNumber,
    GradientRequest::kLossPlayerFieldNumber};
using ProductsRequest = v1::SubmitJacobianProductsRequest;
constexpr RequestFields kProductsFields = {
    ProductsRequest::kSessionIdFieldNumber,
    ProductsRequest::kWorkerIdFieldNumber,
    ProductsRequest::kRoundFieldNumber,
    ProductsRequest::kStepFieldNumber,
    ProductsRequest::kPhaseFieldNumber,
    ProductsRequest::kKnownParamsVersionFieldNumber,
    /*gradients=*/0,
    ProductsRequest::kVjpFieldNumber,
    ProductsRequest::kJvpFieldNumber,
    /*scalars=*/0,
    /*loss_player=*/0};

// Room made for a vector's players and a player's tensors before they are
// read: one allocation each for most games, not one per doubling.
constexpr size_t kPlayersReserved = 4;
constexpr size_t kTensorsReserved = 8;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the request is not a well-formed protobuf message: ", what));
}

}  // namespace

absl::Status WireSubmission::ReadString(WireReader& reader,
                                        absl::string_view* out) {
  uint64_t length;
  if (!reader.ReadLength(&length)) return Malformed("bad string length");
  if (!reader.ReadContiguous(length, out)) {  // it spans slices
    std::vector<absl::string_view> pieces;
    reader.ReadPieces(length, &pieces);
    std::string& joined = owned_.emplace_front();
    for (absl::string_view piece : pieces) {
      joined.append(piece.data(), piece.size());
    }
    *out = joined;
  }
  // Protobuf refuses a proto3 string that is not UTF-8.
  if (!IsValidUtf8(*out)) return Malformed("a string that is not UTF-8");
  return absl::OkStatus();
}

absl::Status WireSubmission::ParseTensor(WireReader& reader, Tensor* out) {
  int field, wire_type;
  uint64_t value;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == v1::Tensor::kNameFieldNumber &&
        wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == v1::Tensor::kDtypeFieldNumber && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Malformed("bad dtype");
      out->dtype = static_cast<int>(static_cast<int32_t>(value));
    } else if (field == v1::Tensor::kShapeFieldNumber && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Malformed("bad shape");
      out->shape.push_back(static_cast<int64_t>(value));
    } else if (field == v1::Tensor::kShapeFieldNumber &&
               wire_type == kLengthDelimited) {  // packed
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.PushLimit(length, &outer)) {
        return Malformed("bad shape");
      }
      while (!reader.AtLimit()) {
        if (!reader.ReadVarint(&value)) return Malformed("bad shape");
        out->shape.push_back(static_cast<int64_t>(value));
      }
      reader.PopLimit(outer);
    } else if (field == v1::Tensor::kDataFieldNumber &&
               wire_type == kLengthDelimited) {
      if (!reader.ReadLength(&value)) return Malformed("bad tensor data");
      out->pieces.clear();
      if (!reader.ReadContiguous(value, &out->bytes)) {  // it spans slices
        out->bytes = absl::string_view();
        reader.ReadPieces(value, &out->pieces);
      }
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field in a Tensor");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus() : Malformed("bad Tensor tag");
}

absl::Status WireSubmission::ParsePlayer(WireReader& reader, Player* out) {
  out->tensors.reserve(kTensorsReserved);
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == v1::PlayerTensors::kPlayerFieldNumber &&
        wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == v1::PlayerTensors::kTensorsFieldNumber &&
               wire_type == kLengthDelimited) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.EnterMessage(length, &outer)) {
        return Malformed("bad Tensor length");
      }
      if (absl::Status s = ParseTensor(reader, &out->tensors.emplace_back());
          !s.ok()) {
        return s;
      }
      reader.LeaveMessage(outer);
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field in a PlayerTensors");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus()
                               : Malformed("bad PlayerTensors tag");
}

absl::Status WireSubmission::ParseVector(WireReader& reader, Vector* out) {
  out->reserve(kPlayersReserved);
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == v1::Vector::kPlayersFieldNumber &&
        wire_type == kLengthDelimited) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.EnterMessage(length, &outer)) {
        return Malformed("bad PlayerTensors length");
      }
      if (absl::Status s = ParsePlayer(reader, &out->emplace_back()); !s.ok()) {
        return s;
      }
      reader.LeaveMessage(outer);
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field in a Vector");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus() : Malformed("bad Vector tag");
}

absl::Status WireSubmission::ParseScalar(WireReader& reader, ScalarView* out) {
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == v1::Scalar::kNameFieldNumber &&
        wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == v1::Scalar::kValueFieldNumber &&
               wire_type == kFixed64) {
      uint64_t bits;
      if (!reader.ReadFixed64(&bits)) return Malformed("bad Scalar value");
      std::memcpy(&out->value, &bits, sizeof(bits));
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field in a Scalar");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus() : Malformed("bad Scalar tag");
}

absl::Status WireSubmission::Parse(const grpc::ByteBuffer& buffer, Kind kind) {
  slices_.reserve(4);  // a small request comes in one or two
  if (grpc::Status s = buffer.Dump(&slices_); !s.ok()) {
    return Malformed(s.error_message());
  }
  WireReader reader(slices_);
  const RequestFields& fields =
      kind == Kind::kProducts ? kProductsFields : kGradientFields;
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    uint64_t value;
    if (field == fields.session_id && wire_type == kLengthDelimited) {
      absl::string_view id;
      if (absl::Status s = ReadString(reader, &id); !s.ok()) return s;
      session_id_ = std::string(id);
    } else if (field == fields.loss_player && wire_type == kLengthDelimited) {
      absl::string_view name;
      if (absl::Status s = ReadString(reader, &name); !s.ok()) return s;
      loss_player_ = std::string(name);
    } else if (wire_type == kVarint &&
               (field == fields.worker_id || field == fields.round ||
                field == fields.step || field == fields.phase ||
                field == fields.known_params_version)) {
      if (!reader.ReadVarint(&value)) return Malformed("bad varint");
      const int64_t v = static_cast<int64_t>(value);
      if (field == fields.worker_id) worker_id_ = v;
      if (field == fields.round) round_ = v;
      if (field == fields.step) step_ = v;
      if (field == fields.phase) phase_ = static_cast<int32_t>(v);
      if (field == fields.known_params_version) known_params_version_ = v;
    } else if (wire_type == kLengthDelimited && field == fields.scalars) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.EnterMessage(length, &outer)) {
        return Malformed("bad Scalar length");
      }
      if (absl::Status s = ParseScalar(reader, &scalars_.emplace_back());
          !s.ok()) {
        return s;
      }
      reader.LeaveMessage(outer);
    } else if (wire_type == kLengthDelimited &&
               (field == fields.gradients || field == fields.vjp ||
                field == fields.jvp)) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.EnterMessage(length, &outer)) {
        return Malformed("bad Vector length");
      }
      std::vector<Vector>& vectors = field == fields.gradients ? gradients_
                                     : field == fields.vjp     ? vjp_
                                                               : jvp_;
      if (absl::Status s = ParseVector(reader, &vectors.emplace_back());
          !s.ok()) {
        return s;
      }
      reader.LeaveMessage(outer);
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus() : Malformed("bad tag");
}

std::shared_ptr<const void> WireSubmission::ShareSlices() {
  // A moved vector keeps its elements where they are.
  return std::make_shared<const std::vector<grpc::Slice>>(std::move(slices_));
}

absl::Status WireSubmission::ToSubmission(Submission* out) const {
  out->round = round_;
  out->step = step_;
  out->phase = phase_;
  out->loss_player = loss_player_;
  struct Field {
    const std::vector<Vector>& vectors;
    std::vector<SampleView>& samples;
    const char* name;
  };
  out->scalars = scalars_;
  for (const Field& f :
       {Field{gradients_, out->gradients, "gradients"},
        Field{vjp_, out->vjp, "vjp"}, Field{jvp_, out->jvp, "jvp"}}) {
    f.samples.resize(f.vectors.size());
    for (size_t k = 0; k < f.vectors.size(); ++k) {
      const Vector& vector = f.vectors[k];
      SampleView& sample = f.samples[k];
      sample.resize(vector.size());
      for (size_t i = 0; i < vector.size(); ++i) {
        const Player& player = vector[i];
        PlayerValues& values = sample[i];
        values.player = player.name;
        values.tensors.resize(player.tensors.size());
        for (size_t j = 0; j < player.tensors.size(); ++j) {
          const Tensor& tensor = player.tensors[j];
          TensorDType dtype;
          if (tensor.dtype == v1::FLOAT64) {
            dtype.dtype = DType::kFloat64;
          } else if (tensor.dtype != v1::FLOAT32) {
            // The same message as SampleFromProto's.
            absl::StatusOr<TensorDType> other = TensorDTypeFromProto(
                tensor.dtype,
                absl::StrCat(f.name, "[", k, "].players[", i, "].tensors[", j,
                             "] ('", Quote(player.name), "/",
                             Quote(tensor.name), "').dtype"));
            if (!other.ok()) return other.status();
            dtype = *other;
          }
          values.tensors[j] = TensorView{tensor.name,
                                         dtype.dtype,
                                         absl::MakeConstSpan(tensor.shape),
                                         tensor.bytes,
                                         absl::MakeConstSpan(tensor.pieces),
                                         dtype.compression};
        }
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- writing

namespace {

using TaskProto = v1::Task;

// A vector as it goes out: its values, and their encoding when the
// session compresses (each tensor in its own format then).
struct OutVector {
  std::shared_ptr<const FlatVector> values;
  std::shared_ptr<const EncodedVector> encoded;  // null: uncompressed
  // Instead of values: a packed sample's bytes (a probe formed there,
  // Task::packed_probes, in the wire's format), sent as they are.
  std::shared_ptr<const PackedVector> packed;
};

// Tensor `index` (in layout order) of `v`: its dtype and bytes.
v1::DType TensorDTypeOf(const OutVector& v, size_t index) {
  if (v.encoded != nullptr &&
      v.encoded->tensors[index].compression != Compression::kNone) {
    return CompressionToProto(v.encoded->tensors[index].compression);
  }
  if (v.packed != nullptr) {
    return TensorDTypeToProto(v.packed->compression(), v.packed->raw_dtype());
  }
  return DTypeToProto(v.values->dtype());
}
absl::string_view TensorBytes(const OutVector& v, const TensorLayout& tensor,
                              size_t index) {
  if (v.encoded != nullptr &&
      v.encoded->tensors[index].compression != Compression::kNone) {
    const EncodedTensor& e = v.encoded->tensors[index];
    return absl::string_view(v.encoded->bytes.data() + e.offset, e.size);
  }
  const size_t elem = DTypeSize(v.values->dtype());
  return absl::string_view(
      static_cast<const char*>(v.values->data()) + tensor.offset * elem,
      tensor.size * elem);
}

size_t TensorSize(const TensorLayout& tensor, v1::DType dtype, size_t data) {
  size_t shape = 0;
  for (int64_t dim : tensor.shape) shape += VarintSize(AsVarint(dim));
  size_t size = VarintFieldSize(v1::Tensor::kDtypeFieldNumber, dtype);
  if (!tensor.name.empty()) {
    size +=
        LengthDelimitedSize(v1::Tensor::kNameFieldNumber, tensor.name.size());
  }
  if (shape > 0)
    size += LengthDelimitedSize(v1::Tensor::kShapeFieldNumber, shape);
  if (data > 0) size += LengthDelimitedSize(v1::Tensor::kDataFieldNumber, data);
  return size;
}

size_t TensorDataSize(const OutVector& v, const TensorLayout& tensor,
                      size_t index) {
  if (v.packed != nullptr) {
    size_t bytes = 0;
    for (absl::string_view piece : v.packed->TensorPieces(index)) {
      bytes += piece.size();
    }
    return bytes;
  }
  return TensorBytes(v, tensor, index).size();
}

// A Vector's nested sizes, computed once for both its length prefixes and
// its writing: per tensor (layout order) its dtype, data bytes and Tensor
// message size; per player its PlayerTensors size; the Vector's size.
struct VectorSizes {
  struct Tensor {
    v1::DType dtype;
    size_t data;
    size_t message;
  };
  absl::InlinedVector<Tensor, 16> tensors;
  absl::InlinedVector<size_t, 4> players;
  size_t total = 0;
};

VectorSizes SizesOf(const OutVector& v, const GameLayout& layout) {
  VectorSizes sizes;
  size_t index = 0;
  for (const PlayerLayout& player : layout.players()) {
    size_t size = 0;
    if (!player.name.empty()) {
      size += LengthDelimitedSize(v1::PlayerTensors::kPlayerFieldNumber,
                                  player.name.size());
    }
    for (const TensorLayout& tensor : player.tensors) {
      const v1::DType dtype = TensorDTypeOf(v, index);
      const size_t data = TensorDataSize(v, tensor, index);
      const size_t message = TensorSize(tensor, dtype, data);
      sizes.tensors.push_back({dtype, data, message});
      size +=
          LengthDelimitedSize(v1::PlayerTensors::kTensorsFieldNumber, message);
      ++index;
    }
    sizes.players.push_back(size);
    sizes.total += LengthDelimitedSize(v1::Vector::kPlayersFieldNumber, size);
  }
  return sizes;
}

// What VectorToProto (EncodedVectorToProto) builds, serialized.
void WriteVector(const OutVector& v, const VectorSizes& sizes,
                 const GameLayout& layout, WireWriter& out) {
  size_t index = 0;
  std::shared_ptr<const void> owner = v.values;
  if (v.encoded != nullptr) owner = v.encoded;
  if (v.packed != nullptr) owner = v.packed;
  for (size_t p = 0; p < layout.players().size(); ++p) {
    const PlayerLayout& player = layout.players()[p];
    out.Tag(v1::Vector::kPlayersFieldNumber, kLengthDelimited);
    out.Varint(sizes.players[p]);
    out.StringField(v1::PlayerTensors::kPlayerFieldNumber, player.name);
    for (const TensorLayout& tensor : player.tensors) {
      const size_t t = index++;
      const VectorSizes::Tensor& size = sizes.tensors[t];
      out.Tag(v1::PlayerTensors::kTensorsFieldNumber, kLengthDelimited);
      out.Varint(size.message);
      out.StringField(v1::Tensor::kNameFieldNumber, tensor.name);
      out.VarintField(v1::Tensor::kDtypeFieldNumber, size.dtype);
      size_t shape = 0;
      for (int64_t dim : tensor.shape) shape += VarintSize(AsVarint(dim));
      if (shape > 0) {
        out.Tag(v1::Tensor::kShapeFieldNumber, kLengthDelimited);
        out.Varint(shape);
        for (int64_t dim : tensor.shape) out.Varint(AsVarint(dim));
      }
      if (v.packed != nullptr) {
        out.DataField(v1::Tensor::kDataFieldNumber, v.packed->TensorPieces(t),
                      owner);
        continue;
      }
      const absl::string_view bytes = TensorBytes(v, tensor, t);
      // A tensor that fell back to the session's dtype lives in `values`.
      const bool in_encoded =
          v.encoded != nullptr &&
          v.encoded->tensors[t].compression != Compression::kNone;
      out.DataField(v1::Tensor::kDataFieldNumber, bytes.data(), bytes.size(),
                    in_encoded ? owner : std::shared_ptr<const void>(v.values));
    }
  }
}

}  // namespace

void TaskToWire(const Task& task, const GameLayout& layout,
                int64_t known_params_version, grpc::ByteBuffer* out,
                const WireConfig& wire) {
  const bool send_params =
      task.params != nullptr &&
      ShouldSendParams(task.params_version, known_params_version);
  const bool compress = wire.to_workers != Compression::kNone;
  absl::InlinedVector<OutVector, 4> probes;
  for (size_t k = 0; k < task.probes.size(); ++k) {
    OutVector& v = probes.emplace_back();
    v.values = task.probes[k];
    const Rounding rounding =
        TaskRounding(wire, task.seed, static_cast<int>(k));
    if (v.values == nullptr && !task.packed_probes.empty()) {
      // In a sample's bytes, already in the wire's format (formed so only
      // with nearest-even rounding: CorrectedGradient::AggregateGradient),
      // sent as they are.
      v.packed = task.packed_probes[k];
    } else if (v.values == nullptr) {
      // Formed as it is encoded (LazyProbe: a compressed wire); a tensor
      // that does not fit the format goes from the whole probe.
      const LazyProbe& lazy = *task.lazy_probes[k];
      v.encoded = lazy.Encode(layout, wire.to_workers, rounding);
      for (const EncodedTensor& e : v.encoded->tensors) {
        if (e.compression == Compression::kNone) {
          v.values = lazy.Materialize();
          break;
        }
      }
    } else if (compress) {
      v.encoded = EncodeVector(*v.values, layout, wire.to_workers, rounding);
    }
  }
  OutVector params;
  if (send_params) {
    params.values = task.params;
    if (compress) {
      params.encoded = GlobalParamsCache().Get(task.params, task.params_version,
                                               wire.to_workers, layout);
    }
  }
  // Task's fields in field order, as protobuf serializes them; first the
  // sizes (every nested message is length-prefixed), then the bytes.
  absl::InlinedVector<VectorSizes, 4> probe_sizes;
  for (const OutVector& probe : probes) {
    probe_sizes.push_back(SizesOf(probe, layout));
  }
  const VectorSizes params_sizes =
      send_params ? SizesOf(params, layout) : VectorSizes();
  const size_t params_size = params_sizes.total;
  const v1::TaskKind kind = TaskKindToProto(task);
  const absl::string_view loss_player =
      task.loss >= 0 ? absl::string_view(layout.players()[task.loss].name)
                     : absl::string_view();
  size_t task_size =
      VarintFieldSize(TaskProto::kKindFieldNumber, kind) +
      VarintFieldSize(TaskProto::kStepFieldNumber, AsVarint(task.step)) +
      VarintFieldSize(TaskProto::kPhaseFieldNumber, AsVarint(task.phase)) +
      VarintFieldSize(TaskProto::kRoundFieldNumber, AsVarint(task.round));
  if (!task.phase_label.empty()) {
    task_size += LengthDelimitedSize(TaskProto::kPhaseLabelFieldNumber,
                                     task.phase_label.size());
  }
  for (int p : task.players) {
    task_size += LengthDelimitedSize(TaskProto::kPlayersFieldNumber,
                                     layout.players()[p].name.size());
  }
  task_size += VarintFieldSize(TaskProto::kNumSamplesFieldNumber,
                               AsVarint(task.num_samples)) +
               VarintFieldSize(TaskProto::kVjpFieldNumber, task.vjp) +
               VarintFieldSize(TaskProto::kJvpFieldNumber, task.jvp);
  for (const VectorSizes& sizes : probe_sizes) {
    task_size +=
        LengthDelimitedSize(TaskProto::kProbesFieldNumber, sizes.total);
  }
  task_size += VarintFieldSize(TaskProto::kParamsVersionFieldNumber,
                               AsVarint(task.params_version));
  if (send_params) {
    task_size +=
        LengthDelimitedSize(TaskProto::kParamsFieldNumber, params_size) +
        VarintFieldSize(TaskProto::kParamsIncludedFieldNumber, 1);
  }
  task_size +=
      VarintFieldSize(TaskProto::kSeedFieldNumber, task.seed) +
      VarintFieldSize(TaskProto::kFusedVjpFieldNumber, task.fused_vjp) +
      VarintFieldSize(TaskProto::kFusedJvpFieldNumber, task.fused_jvp) +
      VarintFieldSize(TaskProto::kFullShardFieldNumber, task.full_shard);
  if (!loss_player.empty()) {
    task_size += LengthDelimitedSize(TaskProto::kLossPlayerFieldNumber,
                                     loss_player.size());
  }

  WireWriter w;
  w.Reserve(VarintFieldSize(v1::TaskResponse::kWorkerIdFieldNumber,
                            AsVarint(task.worker_id)) +
            LengthDelimitedSize(v1::TaskResponse::kTaskFieldNumber, task_size));
  w.VarintField(v1::TaskResponse::kWorkerIdFieldNumber,
                AsVarint(task.worker_id));
  w.Tag(v1::TaskResponse::kTaskFieldNumber, kLengthDelimited);
  w.Varint(task_size);
  w.VarintField(TaskProto::kKindFieldNumber, kind);
  w.VarintField(TaskProto::kStepFieldNumber, AsVarint(task.step));
  w.VarintField(TaskProto::kPhaseFieldNumber, AsVarint(task.phase));
  w.VarintField(TaskProto::kRoundFieldNumber, AsVarint(task.round));
  w.StringField(TaskProto::kPhaseLabelFieldNumber, task.phase_label);
  for (int p : task.players) {
    w.StringField(TaskProto::kPlayersFieldNumber, layout.players()[p].name,
                  /*always=*/true);
  }
  w.VarintField(TaskProto::kNumSamplesFieldNumber, AsVarint(task.num_samples));
  w.VarintField(TaskProto::kVjpFieldNumber, task.vjp);
  w.VarintField(TaskProto::kJvpFieldNumber, task.jvp);
  for (size_t k = 0; k < task.probes.size(); ++k) {
    w.Tag(TaskProto::kProbesFieldNumber, kLengthDelimited);
    w.Varint(probe_sizes[k].total);
    WriteVector(probes[k], probe_sizes[k], layout, w);
  }
  w.VarintField(TaskProto::kParamsVersionFieldNumber,
                AsVarint(task.params_version));
  if (send_params) {
    w.Tag(TaskProto::kParamsFieldNumber, kLengthDelimited);
    w.Varint(params_size);
    WriteVector(params, params_sizes, layout, w);
    w.VarintField(TaskProto::kParamsIncludedFieldNumber, 1);
  }
  w.VarintField(TaskProto::kSeedFieldNumber, task.seed);
  w.VarintField(TaskProto::kFusedVjpFieldNumber, task.fused_vjp);
  w.VarintField(TaskProto::kFusedJvpFieldNumber, task.fused_jvp);
  w.StringField(TaskProto::kLossPlayerFieldNumber, loss_player);
  w.VarintField(TaskProto::kFullShardFieldNumber, task.full_shard);
  w.Finish(out);
}

}  // namespace gameopt
