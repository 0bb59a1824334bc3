// The service's hand-written wire format (server/service/wire_format.h)
// is the protobuf messages', byte for byte: TaskToWire writes
// TaskToProto's bytes, WireSubmission reads what SubmissionFromProto
// reads, from any split into slices. (That it handles every field of the
// proto is wire_format_test.cc's part.)
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/submission.h"
#include "server/service/proto_convert.h"
#include "server/service/wire_format.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

using testing::RandomFloat32;

std::string BytesOf(const FlatVector& v) {
  return std::string(static_cast<const char*>(v.data()), v.bytes());
}

// A layout with a scalar, a small and a large tensor (above
// kAliasMinBytes, so its values are referenced, not copied).
SessionConfig WireConfig() {
  SessionConfig config;
  config.dtype = DType::kFloat32;
  PlayerConfig gen;
  gen.name = "gen";
  gen.tensors = {{"w", {64, 100}, "", DType::kFloat32},
                 {"b", {3}, "", DType::kFloat32}};
  PlayerConfig disc;
  disc.name = "disc";
  disc.tensors = {{"s", {}, "", DType::kFloat32}};
  config.players = {gen, disc};
  return config;
}

std::string Joined(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// `bytes` cut into slices of `size` bytes (the last shorter).
grpc::ByteBuffer Sliced(const std::string& bytes, size_t size) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += size) {
    slices.emplace_back(bytes.data() + at, std::min(size, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(WireFormat, TaskToWireWritesTaskToProtosBytes) {
  absl::StatusOr<GameLayout> layout = GameLayout::Create(WireConfig().players);
  ASSERT_TRUE(layout.ok());
  auto vector = [&](uint64_t seed) {
    return std::make_shared<const FlatVector>(
        RandomFloat32(layout->dimension(), seed));
  };
  Task gradient;
  gradient.kind = Task::Kind::kGradient;
  gradient.worker_id = 3;
  gradient.step = 7;
  gradient.phase = 0;
  gradient.round = 15;
  gradient.phase_label = "gradient";
  gradient.players = {0, 1};
  gradient.num_samples = 2;
  gradient.params = vector(1);
  gradient.params_version = 9;
  gradient.seed = ~uint64_t{0};
  Task products = gradient;
  products.kind = Task::Kind::kProducts;
  products.phase = 1;
  products.players.clear();
  products.num_samples = 0;
  products.vjp = products.jvp = true;
  products.probes = {vector(2), vector(3)};
  Task done;
  done.kind = Task::Kind::kDone;
  done.step = -1;  // negative numbers take 10 bytes
  done.params = vector(4);
  Task fused = gradient;  // field 16 has a two-byte tag
  fused.fused_vjp = fused.fused_jvp = true;
  Task fused_vjp = gradient;
  fused_vjp.fused_vjp = true;
  // A probe that float16 cannot hold (its tensor "w" goes as float32).
  Task big = products;
  auto wide =
      std::make_shared<FlatVector>(RandomFloat32(layout->dimension(), 5));
  wide->as<float>()[17] = 1e6f;
  big.probes = {wide, vector(6)};
  // Compressed wires: each format, nearest-even and stochastic.
  std::vector<gameopt::WireConfig> wires(1);
  for (Compression c : {Compression::kBFloat16, Compression::kFloat16,
                        Compression::kInt8Block}) {
    for (bool stochastic : {false, true}) {
      wires.push_back({c, Compression::kNone, stochastic});
    }
  }
  for (const gameopt::WireConfig& w : wires) {
    for (const Task* task :
         {&gradient, &products, &done, &fused, &fused_vjp, &big}) {
      for (int64_t known : {int64_t{0}, int64_t{9}}) {
        v1::TaskResponse proto;
        TaskToProto(*task, *layout, known, &proto, w);
        grpc::ByteBuffer wire;
        TaskToWire(*task, *layout, known, &wire, w);
        EXPECT_TRUE(Joined(wire) == proto.SerializeAsString())
            << static_cast<int>(task->kind) << " known " << known << " "
            << CompressionName(w.to_workers) << " " << w.stochastic_rounding;
        if (w.to_workers == Compression::kNone || task != &big) continue;
        // The compressed tensors are in the wire's dtype, but "w" of the
        // probe past float16's range.
        const v1::Tensor& t = proto.task().probes(0).players(0).tensors(0);
        EXPECT_EQ(t.dtype(), w.to_workers == Compression::kFloat16
                                 ? v1::FLOAT32
                                 : CompressionToProto(w.to_workers));
        EXPECT_EQ(proto.task().probes(1).players(0).tensors(0).dtype(),
                  CompressionToProto(w.to_workers));
      }
    }
  }
}

TEST(WireFormat, WireSubmissionReadsWhatSubmissionFromProtoReads) {
  const SessionConfig config = WireConfig();
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config.players);
  ASSERT_TRUE(layout.ok());
  v1::SubmitJacobianProductsRequest request;
  request.set_session_id("s12");
  request.set_worker_id(5);
  request.set_round(-3);
  request.set_step(40);
  request.set_phase(1);
  request.set_known_params_version(77);
  for (int k = 0; k < 2; ++k) {
    for (v1::Vector* v : {request.add_vjp(), request.add_jvp()}) {
      const FlatVector values = RandomFloat32(layout->dimension(), 20 + k);
      VectorToProto(values, *layout, v);
      // float64 on the wire for one tensor: converted on the way in.
      v1::Tensor* b = v->mutable_players(0)->mutable_tensors(1);
      b->set_dtype(v1::FLOAT64);
      std::string doubles;
      for (int i = 0; i < 3; ++i) {
        const double d = 0.25 * i + k;
        doubles.append(reinterpret_cast<const char*>(&d), 8);
      }
      b->set_data(doubles);
    }
  }
  const std::string bytes = request.SerializeAsString();
  Submission expected;
  ASSERT_TRUE(SubmissionFromProto(request, &expected).ok());
  const std::vector<int> all = {0, 1};
  for (size_t slice : {size_t{1}, size_t{7}, size_t{4096}, bytes.size()}) {
    SCOPED_TRACE(slice);
    WireSubmission wire;
    ASSERT_TRUE(
        wire.Parse(Sliced(bytes, slice), WireSubmission::Kind::kProducts).ok());
    EXPECT_EQ(wire.session_id(), "s12");
    EXPECT_EQ(wire.worker_id(), 5);
    EXPECT_EQ(wire.known_params_version(), 77);
    Submission got;
    ASSERT_TRUE(wire.ToSubmission(&got).ok());
    EXPECT_EQ(got.round, -3);
    EXPECT_EQ(got.step, 40);
    EXPECT_EQ(got.phase, 1);
    ASSERT_EQ(got.vjp.size(), 2u);
    ASSERT_EQ(got.jvp.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      for (auto [a, b] : {std::pair(&got.vjp[k], &expected.vjp[k]),
                          std::pair(&got.jvp[k], &expected.jvp[k])}) {
        FlatVector x, y;
        ASSERT_TRUE(
            DecodeSample(*a, *layout, all, DType::kFloat32, "v", x).ok());
        ASSERT_TRUE(
            DecodeSample(*b, *layout, all, DType::kFloat32, "v", y).ok());
        EXPECT_TRUE(BytesOf(x) == BytesOf(y));
      }
    }
  }
}

TEST(WireFormat, WireSubmissionReadsFusedProductsAndScalarsOfAGradient) {
  const SessionConfig config = WireConfig();
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config.players);
  ASSERT_TRUE(layout.ok());
  v1::SubmitGradientRequest request;
  request.set_session_id("s3");
  request.set_worker_id(2);
  request.set_known_params_version(12);
  VectorToProto(RandomFloat32(layout->dimension(), 30), *layout,
                request.add_gradients());
  VectorToProto(RandomFloat32(layout->dimension(), 31), *layout,
                request.add_vjp());
  VectorToProto(RandomFloat32(layout->dimension(), 32), *layout,
                request.add_jvp());
  for (const auto& [name, value] :
       {std::pair<std::string, double>("loss/gen", -1.25),
        std::pair<std::string, double>("a:b.c-d_e", 1e300)}) {
    v1::Scalar* scalar = request.add_scalars();
    scalar->set_name(name);
    scalar->set_value(value);
  }
  const std::string bytes = request.SerializeAsString();
  Submission expected;
  ASSERT_TRUE(SubmissionFromProto(request, &expected).ok());
  const std::vector<int> all = {0, 1};
  for (size_t slice : {size_t{1}, size_t{5}, bytes.size()}) {
    SCOPED_TRACE(slice);
    WireSubmission wire;
    ASSERT_TRUE(
        wire.Parse(Sliced(bytes, slice), WireSubmission::Kind::kGradient).ok());
    EXPECT_EQ(wire.known_params_version(), 12);
    Submission got;
    ASSERT_TRUE(wire.ToSubmission(&got).ok());
    ASSERT_EQ(got.gradients.size(), 1u);
    ASSERT_EQ(got.vjp.size(), 1u);
    ASSERT_EQ(got.jvp.size(), 1u);
    ASSERT_EQ(got.scalars.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(got.scalars[i].name, expected.scalars[i].name);
      EXPECT_EQ(got.scalars[i].value, expected.scalars[i].value);
    }
    for (auto [a, b] : {std::pair(&got.gradients[0], &expected.gradients[0]),
                        std::pair(&got.vjp[0], &expected.vjp[0]),
                        std::pair(&got.jvp[0], &expected.jvp[0])}) {
      FlatVector x, y;
      ASSERT_TRUE(DecodeSample(*a, *layout, all, DType::kFloat32, "v", x).ok());
      ASSERT_TRUE(DecodeSample(*b, *layout, all, DType::kFloat32, "v", y).ok());
      EXPECT_TRUE(BytesOf(x) == BytesOf(y));
    }
  }
}

TEST(WireFormat, WireSubmissionFindsNonFiniteValuesAcrossSlices) {
  absl::StatusOr<GameLayout> layout = GameLayout::Create(WireConfig().players);
  ASSERT_TRUE(layout.ok());
  v1::SubmitGradientRequest request;
  FlatVector values = RandomFloat32(layout->dimension(), 5);
  values.as<float>()[4321] = std::numeric_limits<float>::infinity();
  VectorToProto(values, *layout, request.add_gradients());
  WireSubmission wire;
  ASSERT_TRUE(wire.Parse(Sliced(request.SerializeAsString(), 5),
                         WireSubmission::Kind::kGradient)
                  .ok());
  Submission submission;
  ASSERT_TRUE(wire.ToSubmission(&submission).ok());
  FlatVector out;
  absl::Status status = DecodeSample(submission.gradients[0], *layout, {0, 1},
                                     DType::kFloat32, "gradients[0]", out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("tensor 'w': value at index 4321"),
            absl::string_view::npos)
      << status;
}

TEST(WireFormat, AcceptsUnpackedShapesAndUnknownFieldsRejectsGarbage) {
  // Tensor{name "s", dtype FLOAT32, shape 1 (unpacked), field 9 (unknown),
  // data 4 bytes} in PlayerTensors "disc" in gradients[0].
  std::string tensor = std::string("\x0a\x01s\x10\x01\x18\x01\x48\x05", 9) +
                       std::string("\x22\x04\0\0\x80\x3f", 6);
  std::string player = std::string("\x0a\x04") + "disc" + "\x12" +
                       static_cast<char>(tensor.size()) + tensor;
  std::string vector =
      std::string("\x0a") + static_cast<char>(player.size()) + player;
  std::string request = std::string("\x32") + static_cast<char>(vector.size()) +
                        vector + std::string("\x0a\x02s1", 4);
  WireSubmission wire;
  ASSERT_TRUE(
      wire.Parse(Sliced(request, 3), WireSubmission::Kind::kGradient).ok());
  Submission submission;
  ASSERT_TRUE(wire.ToSubmission(&submission).ok());
  ASSERT_EQ(submission.gradients.size(), 1u);
  const TensorView& view = submission.gradients[0][0].tensors[0];
  EXPECT_EQ(view.name, "s");
  EXPECT_EQ(std::vector<int64_t>(view.shape.begin(), view.shape.end()),
            std::vector<int64_t>{1});
  EXPECT_EQ(view.size_bytes(), 4u);
  EXPECT_EQ(wire.session_id(), "s1");
  for (const std::string& bad :
       {std::string("\x32\x05\x0a"), std::string("\x0b"),
        std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")}) {
    WireSubmission garbage;
    EXPECT_EQ(
        garbage.Parse(Sliced(bad, 2), WireSubmission::Kind::kGradient).code(),
        absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace gameopt
