// The submission harness's seed inputs (SubmissionSeeds, submission_harness.h).
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gameopt/v1/gameopt.pb.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/service/config_convert.h"
#include "server/service/proto_convert.h"
#include "tests/fuzz/submission_harness.h"
#include "tests/fuzz/submission_ops.h"

namespace gameopt::fuzz {

namespace {

void Append(std::string& out, uint8_t op, const std::string& payload) {
  out += static_cast<char>(op);
  out += static_cast<char>(payload.size() & 0xff);
  out += static_cast<char>(payload.size() >> 8);
  out += payload;
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out += static_cast<char>(b);
  return out;
}

// `rounds` valid answers from each of `workers` workers, in turn.
void ValidRounds(std::string& out, int workers, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (int w = 0; w < workers; ++w) {
      Append(out, kValid, Bytes({w, r * 7 + w + 1}));
    }
  }
}

// A valid request of the built-in game (zeros), for kGradient / kProducts
// records whose flags fix the ids and the round.
std::string ZeroVectorBytes(bool float64) {
  absl::StatusOr<SessionConfig> config =
      SessionConfigFromProto(BuiltInConfig(Bytes({1, float64 ? 1 : 0})));
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config->players);
  FlatVector zeros(config->dtype, layout->dimension());
  v1::Vector vector;
  VectorToProto(zeros, *layout, &vector);
  return vector.SerializeAsString();
}

}  // namespace

std::vector<std::string> SubmissionSeeds() {
  std::vector<std::string> seeds;
  // Every algorithm, both dtypes, two workers, a few steps.
  for (int algorithm = 1; algorithm <= 6; ++algorithm) {
    for (int flags : {0x00, 0x01, 0x4b, 0x97}) {
      std::string s;
      Append(s, kHeader,
             Bytes({algorithm, flags, 1, 0, 0, 2, algorithm % 6,
                    (flags & 0x80) | 5}));
      ValidRounds(s, 2, 6);
      seeds.push_back(s);
    }
  }
  // Fuzzed requests that start valid: a gradient, then products (ConOpt).
  v1::SubmitGradientRequest gradient;
  gradient.add_gradients()->ParseFromString(ZeroVectorBytes(true));
  v1::SubmitJacobianProductsRequest products;
  products.add_vjp()->ParseFromString(ZeroVectorBytes(true));
  {
    std::string s;
    Append(s, kHeader, Bytes({3, 0x01, 0, 0, 0, 2}));
    Append(s, kGradient,
           static_cast<char>(kFixWorker | kFixRound) +
               gradient.SerializeAsString());
    Append(s, kProducts,
           static_cast<char>(kFixWorker | kFixRound) +
               products.SerializeAsString());
    Append(s, kGradient, Bytes({kFixWorker | kFixRound | kOverValid}));
    Append(s, kProducts, Bytes({kFixWorker | kFixRound | kOverValid}));
    seeds.push_back(s);
  }
  // A fuzzed SessionConfig: AltGD with a stage order, then rounds.
  {
    v1::SessionConfig config = BuiltInConfig(Bytes({2, 0x01, 0, 0, 1}));
    v1::AltGdStage* stage = config.mutable_algorithm()->add_altgd_order();
    stage->set_player("disc");
    stage->set_steps(3);
    config.mutable_algorithm()->add_altgd_order()->set_player("gen");
    std::string s;
    Append(s, kConfig, config.SerializeAsString());
    ValidRounds(s, 1, 6);
    seeds.push_back(s);
  }
  // Quorum and deadlines, leaving, rejoining, cancelling, a full session.
  {
    std::string s;
    Append(s, kHeader, Bytes({1, 0x08, 2, 1}));  // K = 3, quorum 1, 10 s
    Append(s, kValid, Bytes({0, 1}));
    Append(s, kDeadline, "");
    Append(s, kValid, Bytes({0, 2}));
    Append(s, kJoin, Bytes({1}));
    Append(s, kJoin, Bytes({0xff}) + "late");
    Append(s, kJoin, Bytes({0xc0}));
    Append(s, kValid, Bytes({1, 3}));
    Append(s, kCancel, "");
    Append(s, kLeave, Bytes({2}));
    Append(s, kDeadline, "");
    ValidRounds(s, 3, 2);
    seeds.push_back(s);
  }
  // Invalid samples dropped (DROP policy) in a products phase.
  {
    std::string s;
    Append(s, kHeader, Bytes({4, 0x05, 1, 0, 1, 3}));  // SGA, unbiased
    ValidRounds(s, 2, 1);
    Append(s, kProducts, Bytes({kFixWorker | kFixRound}));
    ValidRounds(s, 2, 3);
    seeds.push_back(s);
  }
  return seeds;
}

}  // namespace gameopt::fuzz
