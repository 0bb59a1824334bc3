// Runs inputs through the fuzz harnesses without libFuzzer, so that the
// ordinary (gcc) build keeps them compiling and their seeds passing:
//
//   fuzz_replay                          every built-in seed of both (ctest)
//   fuzz_replay submission FILE...       those inputs through one harness,
//   fuzz_replay wire FILE...             e.g. a crash artifact of the fuzz
//                                        build, under gdb
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/submission_harness.h"
#include "tests/fuzz/wire_harness.h"

namespace {

using Harness = int (*)(const uint8_t*, size_t);

void RunAll(Harness harness, const std::vector<std::string>& inputs) {
  for (const std::string& input : inputs) {
    harness(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  google::protobuf::SetLogHandler(nullptr);
  if (argc <= 1) {
    const std::vector<std::string> submission =
        gameopt::fuzz::SubmissionSeeds();
    const std::vector<std::string> wire = gameopt::fuzz::WireSeeds();
    RunAll(gameopt::fuzz::RunSubmissionInput, submission);
    RunAll(gameopt::fuzz::RunWireInput, wire);
    std::printf(
        "%zu submission and %zu wire seeds ran, every invariant "
        "held\n",
        submission.size(), wire.size());
    return 0;
  }
  Harness harness = nullptr;
  if (std::strcmp(argv[1], "submission") == 0) {
    harness = gameopt::fuzz::RunSubmissionInput;
  } else if (std::strcmp(argv[1], "wire") == 0) {
    harness = gameopt::fuzz::RunWireInput;
  } else {
    std::fprintf(stderr, "usage: %s [submission|wire FILE...]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> inputs;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    std::stringstream bytes;
    bytes << in.rdbuf();
    inputs.push_back(bytes.str());
  }
  RunAll(harness, inputs);
  std::printf("%zu input(s) ran, every invariant held\n", inputs.size());
  return 0;
}
