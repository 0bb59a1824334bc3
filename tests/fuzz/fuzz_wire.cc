// libFuzzer entry point of the wire-format harness (wire_harness.h). Like
// fuzz_submission, GAMEOPT_FUZZ_WRITE_SEEDS=DIR writes its seeds and exits.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_init.h"
#include "tests/fuzz/wire_harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  return gameopt::fuzz::InitializeFuzzer(gameopt::fuzz::WireSeeds());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gameopt::fuzz::RunWireInput(data, size);
}
