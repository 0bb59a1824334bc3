// Tests that the hand-written wire format (server/service/wire_format.h,
// wire_writer.h) keeps in step with gameopt.proto: the parser reads every
// field of the submit requests and TaskToWire writes every field of the
// TaskResponse, found through the messages' descriptors, so that a field
// added to the proto fails here until the hand-written code handles it.
// (That the bytes equal protobuf's own is wire_bytes_test.cc's and the
// fuzz harnesses' part.)
#include "server/service/wire_format.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gameopt/v1/gameopt.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "server/core/config.h"
#include "server/core/layout.h"
#include "server/service/params_cache.h"
#include "server/service/wire_writer.h"

namespace gameopt {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A field of a nested message: the fields from the top message down, each
// repeated one at its element 0.
using FieldPath = std::vector<const FieldDescriptor*>;

std::string PathName(const Descriptor& top, const FieldPath& path) {
  std::vector<std::string> names = {top.name()};
  for (const FieldDescriptor* field : path) names.push_back(field->name());
  return absl::StrJoin(names, ".");
}

// Sets every field of `message`, nested ones too, to a value other than
// its default: one element of each repeated field, an enum's first value
// after 0 (FLOAT32 for a dtype), 4 bytes for a bytes field (one float32).
void FillEveryField(Message* message) {
  const Reflection& r = *message->GetReflection();
  const Descriptor& d = *message->GetDescriptor();
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor* f = d.field(i);
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        FillEveryField(rep ? r.AddMessage(message, f)
                           : r.MutableMessage(message, f));
        break;
      case FieldDescriptor::CPPTYPE_STRING: {
        const std::string value = f->type() == FieldDescriptor::TYPE_BYTES
                                      ? std::string("\0\0\x80\x3f", 4)
                                      : std::string("x");
        rep ? r.AddString(message, f, value) : r.SetString(message, f, value);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int value = f->enum_type()->value(1)->number();
        rep ? r.AddEnumValue(message, f, value)
            : r.SetEnumValue(message, f, value);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64:
        rep ? r.AddInt64(message, f, 3) : r.SetInt64(message, f, 3);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        rep ? r.AddInt32(message, f, 3) : r.SetInt32(message, f, 3);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        rep ? r.AddDouble(message, f, 1.5) : r.SetDouble(message, f, 1.5);
        break;
      default:
        FAIL() << "FillEveryField does not know the type of " << f->full_name()
               << ": add it";
    }
  }
}

// Every field under `message` (its nested messages' fields too).
void EveryField(const Descriptor& message, FieldPath path,
                std::vector<FieldPath>* out) {
  for (int i = 0; i < message.field_count(); ++i) {
    path.push_back(message.field(i));
    out->push_back(path);
    if (path.back()->message_type() != nullptr) {
      EveryField(*path.back()->message_type(), path, out);
    }
    path.pop_back();
  }
}

// `message` with the field at `path` cleared.
std::string SerializedWithout(const Message& message, const FieldPath& path) {
  std::unique_ptr<Message> copy(message.New());
  copy->CopyFrom(message);
  Message* at = copy.get();
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const Reflection& r = *at->GetReflection();
    at = path[i]->is_repeated() ? r.MutableRepeatedMessage(at, path[i], 0)
                                : r.MutableMessage(at, path[i]);
  }
  at->GetReflection()->ClearField(at, path.back());
  return copy->SerializeAsString();
}

// Everything WireSubmission gives of `bytes`, as text.
std::string ParsedText(const std::string& bytes, WireSubmission::Kind kind) {
  grpc::Slice slice(bytes);
  WireSubmission wire;
  if (absl::Status s = wire.Parse(grpc::ByteBuffer(&slice, 1), kind); !s.ok()) {
    return s.ToString();
  }
  Submission submission;
  if (absl::Status s = wire.ToSubmission(&submission); !s.ok()) {
    return s.ToString();
  }
  std::string text = absl::StrCat(
      wire.session_id(), " ", wire.worker_id(), " ",
      wire.known_params_version(), " ", submission.round, " ", submission.step,
      " ", submission.phase, " ", submission.loss_player);
  for (const auto& [name, samples] :
       {std::pair("gradients", &submission.gradients),
        std::pair("vjp", &submission.vjp), std::pair("jvp", &submission.jvp)}) {
    absl::StrAppend(&text, " ", name, ":");
    for (const SampleView& sample : *samples) {
      for (const PlayerValues& player : sample) {
        absl::StrAppend(&text, " [", player.player);
        for (const TensorView& t : player.tensors) {
          std::string bytes(t.bytes);
          for (absl::string_view piece : t.pieces)
            absl::StrAppend(&bytes, piece);
          absl::StrAppend(&text, " ", t.name, " ", static_cast<int>(t.dtype),
                          " (", absl::StrJoin(t.shape, ","), ") ",
                          absl::CEscape(bytes));
        }
        absl::StrAppend(&text, "]");
      }
    }
  }
  for (const ScalarView& scalar : submission.scalars) {
    absl::StrAppend(&text, " ", scalar.name, "=", scalar.value);
  }
  return text;
}

void ExpectParserReadsEveryField(Message* request, WireSubmission::Kind kind) {
  FillEveryField(request);
  const std::string full = ParsedText(request->SerializeAsString(), kind);
  std::vector<FieldPath> fields;
  EveryField(*request->GetDescriptor(), {}, &fields);
  for (const FieldPath& path : fields) {
    EXPECT_NE(ParsedText(SerializedWithout(*request, path), kind), full)
        << "WireSubmission ignores "
        << PathName(*request->GetDescriptor(), path)
        << ": read it in wire_format.cc";
  }
}

TEST(WireFormat, ParserReadsEveryFieldOfTheSubmitRequests) {
  v1::SubmitGradientRequest gradient;
  ExpectParserReadsEveryField(&gradient, WireSubmission::Kind::kGradient);
  v1::SubmitJacobianProductsRequest products;
  ExpectParserReadsEveryField(&products, WireSubmission::Kind::kProducts);
}

// The fields under `message` that are absent (a repeated one empty), each
// repeated message checked at its first element.
void MissingFields(const Message& message, FieldPath path,
                   std::vector<std::string>* out, const Descriptor& top) {
  const Reflection& r = *message.GetReflection();
  const Descriptor& d = *message.GetDescriptor();
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor* f = d.field(i);
    path.push_back(f);
    const bool present =
        f->is_repeated() ? r.FieldSize(message, f) > 0 : r.HasField(message, f);
    if (!present) {
      out->push_back(PathName(top, path));
    } else if (f->message_type() != nullptr) {
      MissingFields(f->is_repeated() ? r.GetRepeatedMessage(message, f, 0)
                                     : r.GetMessage(message, f),
                    path, out, top);
    }
    path.pop_back();
  }
}

TEST(WireFormat, TaskToWireWritesEveryFieldOfTheTaskResponse) {
  PlayerConfig player;
  player.name = "gen";
  player.tensors = {{"w", {2, 3}, "", DType::kFloat32}};
  absl::StatusOr<GameLayout> layout = GameLayout::Create({player});
  ASSERT_TRUE(layout.ok()) << layout.status();
  auto values = std::make_shared<const FlatVector>(
      FlatVector(DType::kFloat32, layout->dimension()));
  // Every field of the core's Task set, so every proto field has a value
  // to carry.
  Task task;
  task.kind = Task::Kind::kProducts;
  task.worker_id = 4;
  task.step = 5;
  task.phase = 1;
  task.round = 6;
  task.phase_label = "consensus";
  task.players = {0};
  task.num_samples = 2;
  task.vjp = task.jvp = task.fused_vjp = task.fused_jvp = true;
  task.full_shard = true;
  task.probes = {values};
  task.params_version = 7;
  task.params = values;
  task.seed = 8;
  task.loss = 0;  // Task.loss_player
  grpc::ByteBuffer wire;
  TaskToWire(task, *layout, /*known_params_version=*/0, &wire);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(wire.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  v1::TaskResponse response;
  ASSERT_TRUE(response.ParseFromString(bytes));
  std::vector<std::string> missing;
  MissingFields(response, {}, &missing, *response.GetDescriptor());
  EXPECT_TRUE(missing.empty())
      << "TaskToWire never writes " << absl::StrJoin(missing, ", ")
      << ": write it in wire_format.cc (as TaskToProto does)";
}

// A session writes its parameters in place when nothing else holds them:
// the encoding of the version before is then dead weight, and the cache
// keeps one encoding per parameter vector, of its latest version.
TEST(ParamsCache, KeepsOnlyTheLatestVersionOfAVector) {
  PlayerConfig player;
  player.name = "gen";
  player.tensors = {{"w", {1000}, "", DType::kFloat32}};
  absl::StatusOr<GameLayout> layout = GameLayout::Create({player});
  ASSERT_TRUE(layout.ok()) << layout.status();
  auto params = std::make_shared<FlatVector>(DType::kFloat32, 1000);
  params->as<float>().setConstant(1.0f);
  ParamsCache cache;
  const auto v1 = cache.Get(params, 1, Compression::kBFloat16, *layout);
  EXPECT_EQ(cache.Get(params, 1, Compression::kBFloat16, *layout), v1);
  EXPECT_EQ(cache.EncodingsOf(params.get()), 1);

  params->as<float>().setConstant(2.0f);  // in place: version 2
  const auto v2 = cache.Get(params, 2, Compression::kBFloat16, *layout);
  EXPECT_NE(v2, v1);
  EXPECT_EQ(v2->bytes,
            EncodeVector(*params, *layout, Compression::kBFloat16, Rounding())
                ->bytes);
  EXPECT_EQ(cache.EncodingsOf(params.get()), 1)
      << "version 1's encoding is still held";

  // Another session's vector has an entry of its own.
  auto other = std::make_shared<FlatVector>(*params);
  cache.Get(other, 1, Compression::kBFloat16, *layout);
  EXPECT_EQ(cache.EncodingsOf(other.get()), 1);
  EXPECT_EQ(cache.EncodingsOf(params.get()), 1);
}

TEST(WireWriter, SizesAreProtobufsOwn) {
  using google::protobuf::io::CodedOutputStream;
  for (int field : {1, 15, 16, 2047, 2048, (1 << 29) - 1}) {
    const uint32_t tag = static_cast<uint32_t>(field) << 3;
    EXPECT_EQ(TagSize(field), CodedOutputStream::VarintSize32(tag)) << field;
    for (uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{127},
                           uint64_t{128}, AsVarint(-1)}) {
      EXPECT_EQ(VarintFieldSize(field, value),
                value == 0 ? 0
                           : CodedOutputStream::VarintSize32(tag) +
                                 CodedOutputStream::VarintSize64(value))
          << field << " " << value;
    }
    for (size_t length :
         {size_t{0}, size_t{127}, size_t{128}, size_t{1} << 20}) {
      EXPECT_EQ(LengthDelimitedSize(field, length),
                CodedOutputStream::VarintSize32(tag) +
                    CodedOutputStream::VarintSize64(length) + length)
          << field << " " << length;
    }
  }
}

}  // namespace
}  // namespace gameopt
