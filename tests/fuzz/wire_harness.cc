#include "tests/fuzz/wire_harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gameopt/v1/gameopt.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/submission.h"
#include "server/service/proto_convert.h"
#include "server/service/wire_format.h"

namespace gameopt::fuzz {
namespace {

constexpr int kMaxCuts = 7;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gameopt wire fuzz invariant violated: %s\n",
               what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define WIRE_CHECK(condition, what)                                  \
  do {                                                               \
    if (!(condition)) Die(absl::StrCat(#condition, " -- ", (what))); \
  } while (0)

// In Compare: a violation is returned, not aborted on.
#define WIRE_EXPECT(condition, what)                                   \
  do {                                                                 \
    if (!(condition)) return absl::StrCat(#condition, " -- ", (what)); \
  } while (0)

// The game of the seeds (and of fuzz_submission's built-in session): "gen"
// owns w [2, 2] and b [2], "disc" owns w [3] and s [].
const GameLayout& Layout() {
  static const GameLayout* const layout = [] {
    std::vector<PlayerConfig> players(2);
    players[0].name = "gen";
    players[0].tensors = {{"w", {2, 2}, "", DType::kFloat32},
                          {"b", {2}, "", DType::kFloat32}};
    players[1].name = "disc";
    players[1].tensors = {{"w", {3}, "", DType::kFloat32},
                          {"s", {}, "", DType::kFloat32}};
    return new GameLayout(*GameLayout::Create(players));
  }();
  return *layout;
}

// Everything a Submission says, with tensor bytes joined from their pieces.
std::string Describe(const Submission& s) {
  std::string out = absl::StrCat("round ", s.round, " step ", s.step, " phase ",
                                 s.phase, "\n");
  for (const ScalarView& scalar : s.scalars) {
    uint64_t bits;
    std::memcpy(&bits, &scalar.value, sizeof(bits));
    absl::StrAppend(&out, "scalar '", scalar.name, "' ", bits, "\n");
  }
  const std::pair<const char*, const std::vector<SampleView>*> fields[] = {
      {"gradients", &s.gradients}, {"vjp", &s.vjp}, {"jvp", &s.jvp}};
  for (const auto& [name, samples] : fields) {
    for (size_t k = 0; k < samples->size(); ++k) {
      absl::StrAppend(&out, name, "[", k, "]\n");
      for (const PlayerValues& p : (*samples)[k]) {
        absl::StrAppend(&out, " player '", p.player, "'\n");
        for (const TensorView& t : p.tensors) {
          std::string bytes;
          if (t.pieces.empty()) {
            bytes = std::string(t.bytes);
          } else {
            for (absl::string_view piece : t.pieces) {
              bytes.append(piece.data(), piece.size());
            }
          }
          WIRE_CHECK(bytes.size() == t.size_bytes(), "size_bytes");
          absl::StrAppend(&out, "  tensor '", t.name, "' ",
                          static_cast<int>(t.dtype), " [");
          for (int64_t d : t.shape) absl::StrAppend(&out, d, ",");
          absl::StrAppend(&out, "] ", bytes.size(), " bytes: ");
          out += bytes;
          out += "\n";
        }
      }
    }
  }
  return out;
}

grpc::ByteBuffer Buffer(const std::string& message,
                        const std::vector<size_t>& cuts) {
  std::vector<size_t> offsets = {0, message.size()};
  for (size_t at : cuts) offsets.push_back(std::min(at, message.size()));
  std::sort(offsets.begin(), offsets.end());
  // Empty slices included: gRPC may hand them over too.
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    slices.emplace_back(message.data() + offsets[i],
                        offsets[i + 1] - offsets[i]);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

template <typename Request>
std::string Compare(const std::string& message, const std::vector<size_t>& cuts,
                    WireSubmission::Kind kind) {
  WireSubmission wire;
  const absl::Status parsed = wire.Parse(Buffer(message, cuts), kind);
  WIRE_EXPECT(
      parsed.ok() || parsed.code() == absl::StatusCode::kInvalidArgument,
      parsed.ToString());
  Request request;
  const bool accepted = request.ParseFromString(message);
  WIRE_EXPECT(parsed.ok() == accepted,
              absl::StrCat("protobuf ", accepted ? "accepts" : "rejects",
                           ", the wire reader says ", parsed.ToString()));
  if (!accepted) return "";
  const WireSubmission* checked = &wire;
  WIRE_EXPECT(checked->session_id() == request.session_id(), "session_id");
  WIRE_EXPECT(checked->worker_id() == request.worker_id(), "worker_id");
  WIRE_EXPECT(checked->known_params_version() == request.known_params_version(),
              "known_params_version");
  Submission from_wire, from_proto;
  const absl::Status wire_status = checked->ToSubmission(&from_wire);
  const absl::Status proto_status = SubmissionFromProto(request, &from_proto);
  WIRE_EXPECT(wire_status == proto_status,
              absl::StrCat("wire: ", wire_status.ToString(),
                           " protobuf: ", proto_status.ToString()));
  if (!proto_status.ok()) return "";
  const std::string a = Describe(from_wire), b = Describe(from_proto);
  WIRE_EXPECT(a == b, absl::StrCat("the submissions differ:\nwire:\n", a,
                                   "protobuf:\n", b));
  // Decoding values split across slices (TensorView::pieces, a value may
  // straddle two) must give what decoding them in one piece gives.
  const std::vector<SampleView>* wire_fields[] = {
      &from_wire.gradients, &from_wire.vjp, &from_wire.jvp};
  const std::vector<SampleView>* proto_fields[] = {
      &from_proto.gradients, &from_proto.vjp, &from_proto.jvp};
  for (int f = 0; f < 3; ++f) {
    for (size_t k = 0; k < wire_fields[f]->size(); ++k) {
      for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
        FlatVector x, y;
        const absl::Status sx = DecodeSample((*wire_fields[f])[k], Layout(),
                                             {0, 1}, dtype, "sample", x);
        const absl::Status sy = DecodeSample((*proto_fields[f])[k], Layout(),
                                             {0, 1}, dtype, "sample", y);
        WIRE_EXPECT(sx == sy,
                    absl::StrCat("DecodeSample: pieces ", sx.ToString(),
                                 ", one piece ", sy.ToString()));
        if (!sx.ok()) continue;
        WIRE_EXPECT(x.bytes() == y.bytes() &&
                        std::memcmp(x.data(), y.data(), x.bytes()) == 0,
                    "DecodeSample of pieces differs");
      }
      // A sample kept packed (referencing the pieces: compressed, or raw
      // values of the session's dtype) passes and fails as DecodeSample
      // does, and decodes to its values.
      const SampleView& sample = (*wire_fields[f])[k];
      for (Compression c : {Compression::kNone, Compression::kBFloat16,
                            Compression::kFloat16, Compression::kInt8Block}) {
        for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
          if (PackFormat(sample, c, dtype) != c) continue;
          FlatVector x;
          PackedVector packed;
          const absl::Status sx =
              DecodeSample(sample, Layout(), {0, 1}, dtype, "sample", x, c);
          const absl::Status sp =
              PackSample(sample, Layout(), {0, 1}, "sample", packed, c, dtype,
                         std::make_shared<int>(0));
          WIRE_EXPECT(sx == sp, absl::StrCat("PackSample ", sp.ToString(),
                                             ", DecodeSample ", sx.ToString()));
          if (!sx.ok()) continue;
          std::vector<char> values(x.bytes());
          if (dtype == DType::kFloat32) {
            packed.Decode(0, x.size(), reinterpret_cast<float*>(values.data()));
          } else {
            packed.Decode(0, x.size(),
                          reinterpret_cast<double*>(values.data()));
          }
          WIRE_EXPECT(std::memcmp(values.data(), x.data(), x.bytes()) == 0,
                      "a packed sample decodes to other values");
        }
      }
    }
  }
  return "";
}

}  // namespace

int RunWireInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  const std::string violation = CheckWireInput(data, size);
  if (!violation.empty()) Die(violation);
  return 0;
}

std::string CheckWireInput(const uint8_t* data, size_t size, bool* accepted) {
  if (accepted != nullptr) *accepted = false;
  if (size == 0) return "";
  const bool products = data[0] & 1;
  const int cuts = std::min((data[0] >> 1) & 7, kMaxCuts);
  size_t header = 1 + 2 * static_cast<size_t>(cuts);
  if (size < header) return "";
  const std::string message(reinterpret_cast<const char*>(data + header),
                            size - header);
  std::vector<size_t> offsets;
  for (int c = 0; c < cuts; ++c) {
    const size_t at = data[1 + 2 * c] | (data[2 + 2 * c] << 8);
    offsets.push_back(at % (message.size() + 1));
  }
  if (accepted != nullptr) {
    *accepted =
        products ? v1::SubmitJacobianProductsRequest().ParseFromString(message)
                 : v1::SubmitGradientRequest().ParseFromString(message);
  }
  return products ? Compare<v1::SubmitJacobianProductsRequest>(
                        message, offsets, WireSubmission::Kind::kProducts)
                  : Compare<v1::SubmitGradientRequest>(
                        message, offsets, WireSubmission::Kind::kGradient);
}

// ---- Seeds
// ----------------------------------------------------------------------

namespace {

v1::Vector SmallVector(v1::DType dtype) {
  v1::Vector v;
  const std::pair<const char*,
                  std::vector<std::pair<const char*, std::vector<int64_t>>>>
      players[] = {{"gen", {{"w", {2, 2}}, {"b", {2}}}},
                   {"disc", {{"w", {3}}, {"s", {}}}}};
  double x = 0.25;
  for (const auto& [name, tensors] : players) {
    v1::PlayerTensors* p = v.add_players();
    p->set_player(name);
    for (const auto& [tensor_name, shape] : tensors) {
      v1::Tensor* t = p->add_tensors();
      t->set_name(tensor_name);
      t->set_dtype(dtype);
      int64_t n = 1;
      for (int64_t d : shape) {
        t->add_shape(d);
        n *= d;
      }
      for (int64_t i = 0; i < n; ++i, x += 0.5) {
        if (dtype == v1::FLOAT32) {
          const float f = static_cast<float>(x);
          t->mutable_data()->append(reinterpret_cast<const char*>(&f), 4);
        } else {
          t->mutable_data()->append(reinterpret_cast<const char*>(&x), 8);
        }
      }
    }
  }
  return v;
}

std::string Seed(bool products, std::initializer_list<uint16_t> cuts,
                 const std::string& message) {
  std::string out;
  out += static_cast<char>((products ? 1 : 0) | (cuts.size() << 1));
  for (uint16_t c : cuts) {
    out += static_cast<char>(c & 0xff);
    out += static_cast<char>(c >> 8);
  }
  return out + message;
}

// `message` with the packed shapes of its tensors written unpacked (one
// varint field per dimension), as older or hand-written encoders do.
std::string Unpacked(const v1::Tensor& t) {
  std::string out;
  auto varint = [&out](uint64_t v) {
    while (v >= 0x80) {
      out += static_cast<char>(v | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
  };
  out += static_cast<char>(0x0a);
  varint(t.name().size());
  out += t.name();
  out += static_cast<char>(0x10);
  varint(t.dtype());
  for (int64_t d : t.shape()) {
    out += static_cast<char>(0x18);
    varint(static_cast<uint64_t>(d));
  }
  out += static_cast<char>(0x22);
  varint(t.data().size());
  out += t.data();
  return out;
}

}  // namespace

std::vector<std::string> WireSeeds() {
  std::vector<std::string> seeds;
  v1::SubmitGradientRequest g;
  g.set_session_id("s1");
  g.set_worker_id(2);
  g.set_round(7);
  g.set_step(3);
  g.set_phase(1);
  g.set_known_params_version(4);
  *g.add_gradients() = SmallVector(v1::FLOAT64);
  const std::string gradient = g.SerializeAsString();
  seeds.push_back(Seed(false, {}, gradient));
  seeds.push_back(Seed(false, {5, 40, 41, 120}, gradient));
  *g.add_gradients() = SmallVector(v1::FLOAT32);
  g.mutable_gradients(1)->mutable_players(0)->mutable_tensors(0)->set_dtype(
      static_cast<v1::DType>(0));
  g.set_phase(-1);
  seeds.push_back(Seed(false, {100}, g.SerializeAsString()));
  // A fused gradient round's products and reported scalars.
  v1::SubmitGradientRequest fused = g;
  *fused.add_vjp() = SmallVector(v1::FLOAT64);
  *fused.add_jvp() = SmallVector(v1::FLOAT32);
  v1::Scalar* scalar = fused.add_scalars();
  scalar->set_name("loss/gen");
  scalar->set_value(-0.5);
  seeds.push_back(Seed(false, {7, 90}, fused.SerializeAsString()));

  v1::SubmitJacobianProductsRequest p;
  p.set_session_id("s2");
  p.set_worker_id(1);
  p.set_round(1);
  p.set_known_params_version(9);
  *p.add_vjp() = SmallVector(v1::FLOAT32);
  *p.add_jvp() = SmallVector(v1::FLOAT64);
  seeds.push_back(Seed(true, {3, 3, 64}, p.SerializeAsString()));

  // Unpacked shapes and an unknown field, spliced in by hand.
  const v1::Tensor& t = g.gradients(0).players(0).tensors(0);
  std::string player;
  player += static_cast<char>(0x0a);
  player += static_cast<char>(3);
  player += "gen";
  const std::string tensor = Unpacked(t);
  player += static_cast<char>(0x12);
  player += static_cast<char>(tensor.size());
  player += tensor;
  player += std::string("\x98\x06\x2a", 3);  // field 99, varint 42
  std::string vector;
  vector += static_cast<char>(0x0a);
  vector += static_cast<char>(player.size());
  vector += player;
  std::string request = std::string("\x0a\x02s1\x10\x01", 6);
  request += static_cast<char>(0x32);
  request += static_cast<char>(vector.size());
  request += vector;
  seeds.push_back(Seed(false, {9}, request));
  // Corners of protobuf's reader: an unknown group holding a nested group
  // (field 20, then 21) before the fields, and a tag in 5 bytes (field 2,
  // overlong) and a varint in 10.
  seeds.push_back(Seed(false, {2},
                       std::string("\xa3\x01\xab\x01\x08\x01\xac\x01"
                                   "\xa4\x01",
                                   10) +
                           gradient));
  seeds.push_back(Seed(true, {},
                       std::string("\x90\x80\x80\x80\x00\x81\x80\x80"
                                   "\x80\x80\x80\x80\x80\x80\x00",
                                   15) +
                           p.SerializeAsString()));
  return seeds;
}

}  // namespace gameopt::fuzz
