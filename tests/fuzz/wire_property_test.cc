// Property test of the hot path's protobuf reader (server/service/
// wire_format.h): for many random mutations of valid
// SubmitGradientRequest / SubmitJacobianProductsRequest bytes (bit flips,
// byte changes, truncations, deletions, insertions of random bytes and of
// protobuf's corner encodings), cut into random slices, WireSubmission::Parse
// accepts iff protobuf's ParseFromString accepts, and when both accept they
// agree on every field (wire_harness.h's invariants, the fuzzer's own
// check). Plus targeted cases, each with the outcome protobuf gives.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "tests/fuzz/wire_harness.h"

namespace gameopt::fuzz {
namespace {

// Mutants per seed; both outcomes must be common (see the counts below).
constexpr int kMutantsPerSeed = 20000;
// Each outcome (accepted, rejected) in at least this share of mutants, so
// the property is tested on both sides.
constexpr double kMinShare = 0.05;

// Fragments protobuf's reader treats specially, spliced in at random.
const std::vector<std::string>& Corners() {
  static const auto* const corners = new std::vector<std::string>{
      std::string("\x80", 1),  // a truncated varint
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10),
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11),
      std::string("\x90\x80\x80\x80\x00\x01", 6),      // tag in 5 bytes
      std::string("\x90\x80\x80\x80\x80\x00\x01", 7),  // tag in 6 bytes
      std::string("\x0a\x80\x80\x80\x80\x00", 6),      // length in 5 bytes
      std::string("\x0a\x80\x80\x80\x80\x80\x00", 7),  // length in 6
      std::string("\x0a\x02\xc0\x80", 4),              // overlong UTF-8
      std::string("\x0a\x03\xed\xa0\x80", 5),          // a surrogate
      std::string("\x0a\x04\xf4\x90\x80\x80", 6),      // past U+10FFFF
      std::string("\x0a\x02\xc3\xa9", 4),              // valid UTF-8
      std::string("\xa3\x01\xa4\x01", 4),              // empty group 20
      std::string("\xa3\x01\xac\x01", 4),              // unmatched end group
      std::string("\xa4\x01", 2),                      // a lone end group
      std::string("\x0b\x0c", 2),                      // group on field 1
      std::string("\x00", 1),                          // tag 0
      std::string("\x06\x00", 2),                      // wire type 6
      std::string("\x04", 1),                          // field 0, end group
      std::string("\x12\x00", 2),                      // field 2, empty bytes
      std::string("\x35\x00\x00\x00\x00", 5),          // field 6, fixed32
  };
  return *corners;
}

std::string Mutate(const std::string& message, std::mt19937_64& rng) {
  std::string m = message;
  auto pick = [&rng](size_t n) {
    return n == 0 ? size_t{0}
                  : std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  const int edits = 1 + static_cast<int>(pick(3));
  for (int e = 0; e < edits; ++e) {
    switch (pick(7)) {
      case 0:  // flip a bit
        if (!m.empty()) m[pick(m.size())] ^= static_cast<char>(1 << pick(8));
        break;
      case 1:  // a random byte
        if (!m.empty()) m[pick(m.size())] = static_cast<char>(pick(256));
        break;
      case 2:  // truncate
        m.resize(pick(m.size() + 1));
        break;
      case 3: {  // delete a range
        const size_t at = pick(m.size() + 1);
        m.erase(at, 1 + pick(8));
        break;
      }
      case 4: {  // insert random bytes
        std::string bytes(1 + pick(4), '\0');
        for (char& c : bytes) c = static_cast<char>(pick(256));
        m.insert(pick(m.size() + 1), bytes);
        break;
      }
      case 5:  // a corner, anywhere (often inside a nested message)
        m.insert(pick(m.size() + 1), Corners()[pick(Corners().size())]);
        break;
      case 6:  // a corner at the top level: before or after the fields
        m = pick(2) == 0 ? Corners()[pick(Corners().size())] + m
                         : m + Corners()[pick(Corners().size())];
        break;
    }
  }
  return m;
}

// An input of the harness: kind, cuts, message.
std::string Input(bool products, const std::vector<uint16_t>& cuts,
                  const std::string& message) {
  std::string out;
  out += static_cast<char>((products ? 1 : 0) | (cuts.size() << 1));
  for (uint16_t c : cuts) {
    out += static_cast<char>(c & 0xff);
    out += static_cast<char>(c >> 8);
  }
  return out + message;
}

struct Outcome {
  std::string violation;
  bool accepted = false;
};

Outcome Check(const std::string& input) {
  Outcome out;
  out.violation = CheckWireInput(reinterpret_cast<const uint8_t*>(input.data()),
                                 input.size(), &out.accepted);
  return out;
}

class WirePropertyTest : public ::testing::Test {
 protected:
  // Protobuf logs every string that is not UTF-8; thousands of lines.
  void SetUp() override { google::protobuf::SetLogHandler(nullptr); }
};

TEST_F(WirePropertyTest, RandomMutantsAreAcceptedIffProtobufAcceptsThem) {
  std::mt19937_64 rng(20261206);
  int accepted = 0, total = 0;
  for (const std::string& seed : WireSeeds()) {
    const bool products = seed[0] & 1;
    const size_t header = 1 + 2 * ((seed[0] >> 1) & 7);
    const std::string message = seed.substr(header);
    for (int i = 0; i < kMutantsPerSeed; ++i) {
      const std::string mutant = Mutate(message, rng);
      std::vector<uint16_t> cuts(rng() % 8);
      for (uint16_t& c : cuts) c = static_cast<uint16_t>(rng());
      const Outcome outcome = Check(Input(products, cuts, mutant));
      ASSERT_EQ(outcome.violation, "")
          << "mutant " << i
          << " of a seed, bytes (escaped): " << absl::CHexEscape(mutant);
      accepted += outcome.accepted;
      ++total;
    }
  }
  EXPECT_GE(accepted, kMinShare * total);
  EXPECT_GE(total - accepted, kMinShare * total);
}

// Bytes after a valid request (its serialization from the seeds).
std::string Valid(bool products) {
  for (const std::string& seed : WireSeeds()) {
    if (static_cast<bool>(seed[0] & 1) == products && (seed[0] >> 1) == 0) {
      return seed.substr(1);
    }
  }
  return "";
}

TEST_F(WirePropertyTest, CornersGiveProtobufsOutcome) {
  const std::string valid = Valid(false);
  ASSERT_FALSE(valid.empty());
  struct Case {
    const char* what;
    std::string message;
    bool accepted;  // what protobuf 3 does
  };
  const Case cases[] = {
      {"valid", valid, true},
      {"truncated by one byte", valid.substr(0, valid.size() - 1), false},
      {"a trailing truncated varint", valid + std::string("\x10\x80", 2),
       false},
      {"a trailing lone byte 0x80", valid + std::string("\x80", 1), false},
      {"a trailing tag without value", valid + std::string("\x10", 1), false},
      {"a length past the end", valid + std::string("\x0a\x05\x61", 3), false},
      {"a varint in 10 bytes",
       valid + std::string("\x10\x81\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11),
       true},
      {"a varint in 11 bytes",
       valid +
           std::string("\x10\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 12),
       false},
      {"a tag in 5 bytes", valid + std::string("\x90\x80\x80\x80\x00\x01", 6),
       true},
      {"a tag in 6 bytes",
       valid + std::string("\x90\x80\x80\x80\x80\x00\x01", 7), false},
      {"a length in 5 bytes",
       valid + std::string("\x0a\x80\x80\x80\x80\x00", 6), true},
      {"a length in 6 bytes",
       valid + std::string("\x0a\x80\x80\x80\x80\x80\x00", 7), false},
      {"session_id as a varint (unknown)", valid + std::string("\x08\x05", 2),
       true},
      {"an unknown group", valid + std::string("\xa3\x01\x08\x01\xa4\x01", 6),
       true},
      {"an unmatched end group", valid + std::string("\xa3\x01\xac\x01", 4),
       false},
      {"an unterminated group", valid + std::string("\xa3\x01\x08\x01", 4),
       false},
      {"a lone end group", valid + std::string("\xa4\x01", 2), false},
      {"tag 0", valid + std::string("\x00", 1), false},
      {"field 0", valid + std::string("\x02\x00", 2), false},
      {"wire type 7", valid + std::string("\x0f", 1), false},
      {"session_id overlong UTF-8", std::string("\x0a\x02\xc0\x80", 4) + valid,
       false},
      {"session_id a surrogate", std::string("\x0a\x03\xed\xa0\x80", 5) + valid,
       false},
      {"session_id UTF-8", std::string("\x0a\x02\xc3\xa9", 4) + valid, true},
      {"session_id UTF-8 later overwritten",
       std::string("\x0a\x01\xff", 3) + valid, false},
  };
  for (const Case& c : cases) {
    const Outcome outcome = Check(Input(false, {3, 17}, c.message));
    EXPECT_EQ(outcome.violation, "") << c.what;
    EXPECT_EQ(outcome.accepted, c.accepted) << c.what;
  }
}

TEST_F(WirePropertyTest, GroupsNestUpToProtobufsRecursionLimit) {
  // At the top level, groups nest 100 deep; 101 is refused.
  for (int depth : {99, 100, 101}) {
    std::string groups;
    for (int i = 0; i < depth; ++i) groups += std::string("\xa3\x01", 2);
    for (int i = 0; i < depth; ++i) groups += std::string("\xa4\x01", 2);
    const Outcome outcome = Check(Input(false, {}, groups + Valid(false)));
    EXPECT_EQ(outcome.violation, "") << depth;
    EXPECT_EQ(outcome.accepted, depth <= 100) << depth;
  }
}

}  // namespace
}  // namespace gameopt::fuzz
