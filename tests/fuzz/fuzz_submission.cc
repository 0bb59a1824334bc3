// libFuzzer entry point of the submission harness (submission_harness.h).
// Built only with -DGAMEOPT_FUZZ=ON and clang; tests/fuzz/run.sh builds and
// runs it. With GAMEOPT_FUZZ_WRITE_SEEDS=DIR in the environment it writes
// the seed corpus into DIR and exits instead of fuzzing (fuzz_init.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_init.h"
#include "tests/fuzz/submission_harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  return gameopt::fuzz::InitializeFuzzer(gameopt::fuzz::SubmissionSeeds());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gameopt::fuzz::RunSubmissionInput(data, size);
}
