// The record ops of the submission harness's inputs (submission_harness.h)
// and its built-in small games, shared by the harness and its seeds.
#ifndef GAMEOPT_TESTS_FUZZ_SUBMISSION_OPS_H_
#define GAMEOPT_TESTS_FUZZ_SUBMISSION_OPS_H_

#include <cstdint>
#include <string>

#include "gameopt/v1/gameopt.pb.h"

namespace gameopt::fuzz {

// Record ops.
enum Op : uint8_t {
  kConfig = 'C',    // a serialized v1::SessionConfig (first record only)
  kHeader = 'H',    // bytes that choose a built-in session (first record)
  kValid = 'V',     // [worker][seed...]: the worker answers its task validly
  kGradient = 'G',  // [flags][SubmitGradientRequest bytes]
  kProducts = 'P',  // [flags][SubmitJacobianProductsRequest bytes]
  kJoin = 'J',      // [who][name...]: 0xff new, >= 0x80 a raw id, else rejoin
  kLeave = 'L',     // [worker]
  kCancel = 'X',    // cancels the most recent waiting call
  kDeadline = 'D',  // the clock passes the phase deadline; CheckDeadline
};
// Flags of kGradient / kProducts; bits 4..6 choose the worker.
constexpr uint8_t kFixWorker = 1;  // worker_id := the chosen worker's id
constexpr uint8_t kFixRound = 2;   // round, step, phase := its task's
constexpr uint8_t kOverValid = 4;  // merge the payload over the valid request

// The built-in game (as in tests/service): "gen" owns w [2, 2] and b [2],
// "disc" owns w [3] and s [] (a scalar). d = 10.
v1::SessionConfig BuiltInConfig(const std::string& header);

}  // namespace gameopt::fuzz

#endif  // GAMEOPT_TESTS_FUZZ_SUBMISSION_OPS_H_
