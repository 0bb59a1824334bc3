// Compressed tensors through DecodeSample (the session's policy, pieces)
// and EncodeVector (the server's side, with its per-tensor fallback).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/layout.h"
#include "server/core/parallel.h"
#include "server/core/submission.h"
#include "server/core/wire_codec.h"
#include "server/core/wire_vector.h"
#include "tests/core/test_util.h"

namespace gameopt {
namespace {

// Two players "a" (tensor "w", 300 values) and "b" (tensor "v", 5 values).
GameLayout TwoPlayers() {
  std::vector<PlayerConfig> players(2);
  players[0].name = "a";
  players[0].tensors.push_back(TensorConfig{});
  players[0].tensors[0].name = "w";
  players[0].tensors[0].shape = {300};
  players[1].name = "b";
  players[1].tensors.push_back(TensorConfig{});
  players[1].tensors[0].name = "v";
  players[1].tensors[0].shape = {5};
  return *GameLayout::Create(players);
}

std::vector<float> Ramp(int n, float scale) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * i + 0.1f);
  return v;
}

std::string EncodeAll(Compression c, const std::vector<float>& v) {
  std::string bytes(CompressedBytes(c, v.size()), '\0');
  EXPECT_TRUE(Encode(c, v.data(), v.size(), Rounding(), bytes.data()));
  return bytes;
}

TEST(WireSubmission, CompressedSamplesDecodeWholeOrInPiecesAlike) {
  const GameLayout layout = TwoPlayers();
  const std::vector<float> a = Ramp(300, 3.0f), b = Ramp(5, 0.01f);
  const std::vector<int64_t> shape_a = {300}, shape_b = {5};
  for (Compression c : {Compression::kBFloat16, Compression::kFloat16,
                        Compression::kInt8Block}) {
    const std::string bytes_a = EncodeAll(c, a), bytes_b = EncodeAll(c, b);
    std::vector<float> want(305);
    ASSERT_EQ(Decode(c, bytes_a.data(), 300, want.data()), -1);
    ASSERT_EQ(Decode(c, bytes_b.data(), 5, want.data() + 300), -1);
    // Pieces cut at odd places: inside values, inside a block's scale.
    std::vector<absl::string_view> pieces;
    for (size_t at = 0, len = 1; at < bytes_a.size(); at += len, len += 7) {
      pieces.push_back(absl::string_view(bytes_a).substr(at, len));
    }
    for (bool split : {false, true}) {
      for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
        SampleView sample(2);
        sample[0].player = "a";
        sample[0].tensors = {
            TensorView{"w", DType::kFloat32, shape_a, bytes_a, {}, c}};
        if (split) sample[0].tensors[0].pieces = pieces;
        sample[1].player = "b";
        sample[1].tensors = {
            TensorView{"v", DType::kFloat32, shape_b, bytes_b, {}, c}};
        FlatVector out;
        ASSERT_TRUE(
            DecodeSample(sample, layout, {0, 1}, dtype, "vjp[0]", out, c).ok());
        for (int i = 0; i < 305; ++i) {
          const double got = dtype == DType::kFloat32 ? out.as<float>()[i]
                                                      : out.as<double>()[i];
          ASSERT_EQ(got, static_cast<double>(want[i]))
              << CompressionName(c) << " " << i << (split ? " split" : "");
        }
        // The decoded values are close to what was encoded (format error).
        const double tolerance = c == Compression::kBFloat16  ? 1.0 / 256
                                 : c == Compression::kFloat16 ? 1.0 / 2048
                                                              : 1.0 / 254;
        for (int i = 0; i < 300; ++i) {
          ASSERT_NEAR(want[i], a[i], tolerance * 3.0f);
        }
      }
    }
  }
}

// Long tensors are decoded on several threads (DecodeSample's ranges of
// whole int8 blocks): the same values for any thread count, whole or in
// pieces cut anywhere, and the first non-finite value's index, whichever
// range sees it.
TEST(WireSubmission, LongTensorsDecodeAlikeOnAnyNumberOfThreads) {
  constexpr int64_t kLong = (int64_t{1} << 19) + 4321;  // past one range
  const GameLayout layout = testing::OneTensorLayout(kLong);
  const std::vector<int64_t> shape = {kLong};
  std::vector<float> values(kLong);
  for (int64_t i = 0; i < kLong; ++i) {
    values[i] = 2.0f * std::sin(0.37f * static_cast<float>(i) + 0.1f);
  }
  // A late and an earlier non-finite value, in different ranges.
  const int64_t late = kLong - 7, early = 300001;
  for (Compression c : {Compression::kNone, Compression::kBFloat16,
                        Compression::kFloat16, Compression::kInt8Block}) {
    SCOPED_TRACE(CompressionName(c));
    for (bool finite : {true, false}) {
      std::vector<float> sent = values;
      if (!finite) {
        sent[late] = std::numeric_limits<float>::infinity();
        sent[early] = std::numeric_limits<float>::quiet_NaN();
      }
      std::string bytes(
          c == Compression::kNone ? 4 * kLong : CompressedBytes(c, kLong),
          '\0');
      if (c == Compression::kNone) {
        std::memcpy(bytes.data(), sent.data(), bytes.size());
      } else {
        ASSERT_TRUE(Encode(c, sent.data(), kLong, Rounding(), bytes.data()));
      }
      std::vector<float> want(kLong);
      if (c == Compression::kNone) {
        want = sent;
      } else {
        Decode(c, bytes.data(), kLong, want.data());
      }
      std::vector<absl::string_view> pieces;
      for (size_t at = 0, len = 4093; at < bytes.size();
           at += len, len = len * 3 % 65521 + 1) {
        pieces.push_back(absl::string_view(bytes).substr(at, len));
      }
      for (bool split : {false, true}) {
        for (int threads : {1, 64}) {
          SetMaxParallelism(threads);
          SampleView sample(1);
          sample[0].player = "a";
          sample[0].tensors = {
              TensorView{"w", DType::kFloat32, shape, bytes, {}, c}};
          if (split) sample[0].tensors[0].pieces = pieces;
          FlatVector out;
          const absl::Status status = DecodeSample(
              sample, layout, {0}, DType::kFloat32, "gradients[0]", out,
              c == Compression::kNone ? Compression::kBFloat16 : c);
          SetMaxParallelism(0);
          if (!finite) {
            // int8: the block of the first non-finite value.
            const int64_t index = c == Compression::kInt8Block
                                      ? early / kInt8BlockSize * kInt8BlockSize
                                      : early;
            EXPECT_NE(status.message().find(
                          absl::StrCat("value at index ", index, " is")),
                      std::string::npos)
                << status;
            continue;
          }
          ASSERT_TRUE(status.ok()) << status;
          ASSERT_EQ(std::memcmp(out.as<float>().data(), want.data(), 4 * kLong),
                    0)
              << threads << (split ? " split" : "");
        }
      }
    }
  }
}

TEST(WireSubmission, AFormatTheSessionDidNotAskForIsRefusedNamingIt) {
  const GameLayout layout = TwoPlayers();
  const std::vector<float> a = Ramp(300, 1.0f), b = Ramp(5, 1.0f);
  const std::string bf_a = EncodeAll(Compression::kBFloat16, a);
  const std::string bf_b = EncodeAll(Compression::kBFloat16, b);
  const std::vector<int64_t> shape_a = {300}, shape_b = {5};
  SampleView sample(2);
  sample[0].player = "a";
  sample[0].tensors = {TensorView{
      "w", DType::kFloat32, shape_a, bf_a, {}, Compression::kBFloat16}};
  sample[1].player = "b";
  sample[1].tensors = {TensorView{
      "v", DType::kFloat32, shape_b, bf_b, {}, Compression::kBFloat16}};
  FlatVector out;
  for (Compression accepted : {Compression::kNone, Compression::kFloat16}) {
    const absl::Status s = DecodeSample(sample, layout, {0, 1}, DType::kFloat32,
                                        "gradients[0]", out, accepted);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("gradients[0] player 'a' tensor 'w': dtype "
                               "bfloat16 is not accepted"),
              std::string::npos)
        << s;
    EXPECT_NE(s.message().find("wire.from_workers"), std::string::npos) << s;
  }
  // The wrong length for the format: named with the bytes it needs.
  sample[0].tensors[0].bytes = absl::string_view(bf_a).substr(2);
  const absl::Status s =
      DecodeSample(sample, layout, {0, 1}, DType::kFloat32, "gradients[0]", out,
                   Compression::kBFloat16);
  EXPECT_NE(s.message().find("598 bytes of data, but shape [300] of bfloat16 "
                             "needs 600"),
            std::string::npos)
      << s;
  // Non-finite values are refused as for float32, at their index.
  std::vector<float> bad = a;
  bad[17] = std::nanf("");
  const std::string bf_bad = EncodeAll(Compression::kBFloat16, bad);
  sample[0].tensors[0].bytes = bf_bad;
  const absl::Status nan =
      DecodeSample(sample, layout, {0, 1}, DType::kFloat32, "gradients[0]", out,
                   Compression::kBFloat16);
  EXPECT_NE(nan.message().find("value at index 17 is not finite"),
            std::string::npos)
      << nan;
}

TEST(WireSubmission, EncodeVectorFallsBackPerTensorWhenAValueDoesNotFit) {
  const GameLayout layout = TwoPlayers();
  FlatVector values(DType::kFloat32, 305);
  for (int i = 0; i < 305; ++i) values.as<float>()[i] = 0.5f * i;
  values.as<float>()[302] = 1e6f;  // past float16's 65504
  std::shared_ptr<const EncodedVector> e =
      EncodeVector(values, layout, Compression::kFloat16, Rounding());
  ASSERT_EQ(e->tensors.size(), 2u);
  EXPECT_EQ(e->tensors[0].compression, Compression::kFloat16);
  EXPECT_EQ(e->tensors[0].size, 600u);
  EXPECT_EQ(e->tensors[1].compression, Compression::kNone);
  ASSERT_EQ(e->tensors[1].size, 20u);
  EXPECT_EQ(std::memcmp(e->bytes.data() + e->tensors[1].offset,
                        values.as<float>().data() + 300, 20),
            0);
  std::vector<float> decoded(300);
  ASSERT_EQ(Decode(Compression::kFloat16, e->bytes.data(), 300, decoded.data()),
            -1);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(decoded[i], 0.5f * i);  // exact
}

}  // namespace
}  // namespace gameopt
