#include "server/service/wire_format.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "server/core/quote.h"
#include "server/service/config_convert.h"
#include "server/service/proto_convert.h"

namespace gameopt {
namespace {

constexpr int kVarint = WireReader::kVarint;
constexpr int kLengthDelimited = WireReader::kLengthDelimited;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the request is not a well-formed protobuf message: ", what));
}

}  // namespace

absl::Status WireSubmission::ReadString(WireReader& reader,
                                        absl::string_view* out) {
  uint64_t length;
  if (!reader.ReadLength(&length)) return Malformed("bad string length");
  std::vector<absl::string_view> pieces;
  reader.ReadPieces(length, &pieces);
  if (pieces.size() <= 1) {
    *out = pieces.empty() ? absl::string_view() : pieces[0];
  } else {
    std::string& joined = owned_.emplace_back();
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
    if (field == 1 && wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == 2 && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Malformed("bad dtype");
      out->dtype = static_cast<int>(static_cast<int32_t>(value));
    } else if (field == 3 && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Malformed("bad shape");
      out->shape.push_back(static_cast<int64_t>(value));
    } else if (field == 3 && wire_type == kLengthDelimited) {  // packed
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.PushLimit(length, &outer)) {
        return Malformed("bad shape");
      }
      while (!reader.AtLimit()) {
        if (!reader.ReadVarint(&value)) return Malformed("bad shape");
        out->shape.push_back(static_cast<int64_t>(value));
      }
      reader.PopLimit(outer);
    } else if (field == 4 && wire_type == kLengthDelimited) {
      if (!reader.ReadLength(&value)) return Malformed("bad tensor data");
      out->pieces.clear();
      reader.ReadPieces(value, &out->pieces);
      out->bytes =
          out->pieces.size() == 1 ? out->pieces[0] : absl::string_view();
      if (out->pieces.size() <= 1) out->pieces.clear();
    } else if (!reader.Skip(wire_type)) {
      return Malformed("bad field in a Tensor");
    }
  }
  return reader.EndedCleanly() ? absl::OkStatus() : Malformed("bad Tensor tag");
}

absl::Status WireSubmission::ParsePlayer(WireReader& reader, Player* out) {
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == 1 && wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == 2 && wire_type == kLengthDelimited) {
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
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    if (field == 1 && wire_type == kLengthDelimited) {
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
    if (field == 1 && wire_type == kLengthDelimited) {
      if (absl::Status s = ReadString(reader, &out->name); !s.ok()) return s;
    } else if (field == 2 && wire_type == WireReader::kFixed64) {
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
  kind_ = kind;
  if (grpc::Status s = buffer.Dump(&slices_); !s.ok()) {
    return Malformed(s.error_message());
  }
  WireReader reader(slices_);
  // Field numbers of SubmitGradientRequest / SubmitJacobianProductsRequest.
  const bool products = kind == Kind::kProducts;
  const int known_field = products ? 8 : 7;
  int field, wire_type;
  while (reader.ReadTag(&field, &wire_type)) {
    uint64_t value;
    if (field == 1 && wire_type == kLengthDelimited) {
      absl::string_view id;
      if (absl::Status s = ReadString(reader, &id); !s.ok()) return s;
      session_id_ = std::string(id);
    } else if (wire_type == kVarint &&
               (field == 2 || field == 3 || field == 4 || field == 5 ||
                field == known_field)) {
      if (!reader.ReadVarint(&value)) return Malformed("bad varint");
      const int64_t v = static_cast<int64_t>(value);
      if (field == 2) worker_id_ = v;
      if (field == 3) round_ = v;
      if (field == 4) step_ = v;
      if (field == 5) phase_ = static_cast<int32_t>(v);
      if (field == known_field) known_params_version_ = v;
    } else if (wire_type == kLengthDelimited && !products && field == 10) {
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
               (field == 6 || (products && field == 7) ||
                (!products && (field == 8 || field == 9)))) {
      uint64_t length, outer;
      if (!reader.ReadLength(&length) || !reader.EnterMessage(length, &outer)) {
        return Malformed("bad Vector length");
      }
      // SubmitGradientRequest: gradients 6, vjp 8, jvp 9;
      // SubmitJacobianProductsRequest: vjp 6, jvp 7.
      std::vector<Vector>& vectors =
          field == 6 ? first_ : (field == 8 ? third_ : second_);
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

absl::Status WireSubmission::ToSubmission(Submission* out) const {
  out->round = round_;
  out->step = step_;
  out->phase = phase_;
  struct Field {
    const std::vector<Vector>& vectors;
    std::vector<SampleView>& samples;
    const char* name;
  };
  const bool products = kind_ == Kind::kProducts;
  out->scalars = scalars_;
  // Gradients: gradients 6, fused vjp 8, jvp 9; products: vjp 6, jvp 7.
  const std::vector<Vector> none;
  for (const Field& f :
       {Field{products ? none : first_, out->gradients, "gradients"},
        Field{products ? first_ : third_, out->vjp, "vjp"},
        Field{second_, out->jvp, "jvp"}}) {
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
          DType dtype = DType::kFloat32;
          if (tensor.dtype == v1::FLOAT64) {
            dtype = DType::kFloat64;
          } else if (tensor.dtype != v1::FLOAT32) {
            // The same message as SampleFromProto's.
            absl::StatusOr<DType> bad = DTypeFromProto(
                tensor.dtype,
                absl::StrCat(f.name, "[", k, "].players[", i, "].tensors[", j,
                             "] ('", Quote(player.name), "/",
                             Quote(tensor.name), "').dtype"));
            if (!bad.ok()) return bad.status();
            dtype = *bad;
          }
          values.tensors[j] =
              TensorView{tensor.name, dtype, absl::MakeConstSpan(tensor.shape),
                         tensor.bytes, absl::MakeConstSpan(tensor.pieces)};
        }
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- writing

namespace {

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Protobuf writes a negative int32 / int64 / enum as 10 bytes, sign-extended.
uint64_t AsVarint(int64_t value) { return static_cast<uint64_t>(value); }

size_t LengthDelimitedSize(size_t length) {
  return 1 + VarintSize(length) + length;  // tags of fields 1..15: 1 byte
}

// The TaskResponse's bytes as slices: small fields are gathered into
// copied slices, large tensor values referenced in place.
class SliceWriter {
 public:
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      pending_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    pending_.push_back(static_cast<char>(value));
  }
  void Tag(int field, int wire_type) { Varint((field << 3) | wire_type); }
  // Proto3 leaves zero scalars and empty strings out.
  void VarintField(int field, uint64_t value) {
    if (value == 0) return;
    Tag(field, kVarint);
    Varint(value);
  }
  void StringField(int field, absl::string_view value, bool always = false) {
    if (value.empty() && !always) return;
    Tag(field, kLengthDelimited);
    Varint(value.size());
    pending_.append(value.data(), value.size());
  }
  // A bytes field whose value lives in `owner` (kept alive by the slice).
  void DataField(int field, const char* data, size_t size,
                 const std::shared_ptr<const FlatVector>& owner) {
    if (size == 0) return;
    Tag(field, kLengthDelimited);
    Varint(size);
    if (size < kAliasMinBytes) {
      pending_.append(data, size);
      return;
    }
    Flush();
    auto* keep = new std::shared_ptr<const FlatVector>(owner);
    slices_.emplace_back(const_cast<char*>(data), size, &Release, keep);
  }
  void Finish(grpc::ByteBuffer* out) {
    Flush();
    grpc::ByteBuffer buffer(slices_.data(), slices_.size());
    out->Swap(&buffer);
  }

 private:
  static void Release(void* keep) {
    delete static_cast<std::shared_ptr<const FlatVector>*>(keep);
  }
  void Flush() {
    if (pending_.empty()) return;
    slices_.emplace_back(pending_);
    pending_.clear();
  }

  std::vector<grpc::Slice> slices_;
  std::string pending_;
};

size_t TensorSize(const TensorLayout& tensor, v1::DType dtype, size_t elem) {
  size_t shape = 0;
  for (int64_t dim : tensor.shape) shape += VarintSize(AsVarint(dim));
  size_t size = 0;
  if (!tensor.name.empty()) size += LengthDelimitedSize(tensor.name.size());
  if (dtype != 0) size += 1 + VarintSize(dtype);
  if (shape > 0) size += LengthDelimitedSize(shape);
  const size_t data = tensor.size * elem;
  if (data > 0) size += LengthDelimitedSize(data);
  return size;
}

size_t PlayerSize(const PlayerLayout& player, v1::DType dtype, size_t elem) {
  size_t size = 0;
  if (!player.name.empty()) size += LengthDelimitedSize(player.name.size());
  for (const TensorLayout& tensor : player.tensors) {
    size += LengthDelimitedSize(TensorSize(tensor, dtype, elem));
  }
  return size;
}

size_t VectorSize(const FlatVector& values, const GameLayout& layout) {
  const v1::DType dtype = DTypeToProto(values.dtype());
  const size_t elem = DTypeSize(values.dtype());
  size_t size = 0;
  for (const PlayerLayout& player : layout.players()) {
    size += LengthDelimitedSize(PlayerSize(player, dtype, elem));
  }
  return size;
}

// What VectorToProto builds, serialized.
void WriteVector(const std::shared_ptr<const FlatVector>& values,
                 const GameLayout& layout, SliceWriter& out) {
  const v1::DType dtype = DTypeToProto(values->dtype());
  const size_t elem = DTypeSize(values->dtype());
  const char* data = static_cast<const char*>(values->data());
  for (const PlayerLayout& player : layout.players()) {
    out.Tag(1, kLengthDelimited);
    out.Varint(PlayerSize(player, dtype, elem));
    out.StringField(1, player.name);
    for (const TensorLayout& tensor : player.tensors) {
      out.Tag(2, kLengthDelimited);
      out.Varint(TensorSize(tensor, dtype, elem));
      out.StringField(1, tensor.name);
      out.VarintField(2, dtype);
      size_t shape = 0;
      for (int64_t dim : tensor.shape) shape += VarintSize(AsVarint(dim));
      if (shape > 0) {
        out.Tag(3, kLengthDelimited);
        out.Varint(shape);
        for (int64_t dim : tensor.shape) out.Varint(AsVarint(dim));
      }
      out.DataField(4, data + tensor.offset * elem, tensor.size * elem, values);
    }
  }
}

}  // namespace

void TaskToWire(const Task& task, const GameLayout& layout,
                int64_t known_params_version, grpc::ByteBuffer* out) {
  const bool send_params =
      task.params != nullptr &&
      ShouldSendParams(task.params_version, known_params_version);
  // Task's fields in field order, as protobuf serializes them; first the
  // sizes (every nested message is length-prefixed), then the bytes.
  std::vector<size_t> probe_sizes;
  for (const auto& probe : task.probes) {
    probe_sizes.push_back(VectorSize(*probe, layout));
  }
  const size_t params_size = send_params ? VectorSize(*task.params, layout) : 0;
  const v1::TaskKind kind = TaskKindToProto(task.kind);
  auto varint_field = [](uint64_t value) {
    return value == 0 ? 0 : 1 + VarintSize(value);
  };
  size_t task_size = varint_field(kind) + varint_field(AsVarint(task.step)) +
                     varint_field(AsVarint(task.phase)) +
                     varint_field(AsVarint(task.round));
  if (!task.phase_label.empty()) {
    task_size += LengthDelimitedSize(task.phase_label.size());
  }
  for (int p : task.players) {
    task_size += LengthDelimitedSize(layout.players()[p].name.size());
  }
  task_size += varint_field(AsVarint(task.num_samples)) +
               varint_field(task.vjp) + varint_field(task.jvp);
  for (size_t size : probe_sizes) task_size += LengthDelimitedSize(size);
  task_size += varint_field(AsVarint(task.params_version));
  if (send_params) task_size += LengthDelimitedSize(params_size) + 2;
  task_size += varint_field(task.seed);
  // Field 16's tag takes two bytes.
  task_size += varint_field(task.fused_vjp) + (task.fused_jvp ? 3 : 0);

  SliceWriter w;
  w.VarintField(1, AsVarint(task.worker_id));  // TaskResponse.worker_id
  w.Tag(2, kLengthDelimited);                  // TaskResponse.task
  w.Varint(task_size);
  w.VarintField(1, kind);
  w.VarintField(2, AsVarint(task.step));
  w.VarintField(3, AsVarint(task.phase));
  w.VarintField(4, AsVarint(task.round));
  w.StringField(5, task.phase_label);
  for (int p : task.players) {
    w.StringField(6, layout.players()[p].name, /*always=*/true);
  }
  w.VarintField(7, AsVarint(task.num_samples));
  w.VarintField(8, task.vjp);
  w.VarintField(9, task.jvp);
  for (size_t k = 0; k < task.probes.size(); ++k) {
    w.Tag(10, kLengthDelimited);
    w.Varint(probe_sizes[k]);
    WriteVector(task.probes[k], layout, w);
  }
  w.VarintField(11, AsVarint(task.params_version));
  if (send_params) {
    w.Tag(12, kLengthDelimited);
    w.Varint(params_size);
    WriteVector(task.params, layout, w);
    w.VarintField(13, 1);  // params_included
  }
  w.VarintField(14, task.seed);
  w.VarintField(15, task.fused_vjp);
  w.VarintField(16, task.fused_jvp);
  w.Finish(out);
}

}  // namespace gameopt
