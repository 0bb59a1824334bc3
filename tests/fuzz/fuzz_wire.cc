// libFuzzer entry point of the wire-format harness (wire_harness.h). Like
// fuzz_submission, GAMEOPT_FUZZ_WRITE_SEEDS=DIR writes its seeds and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/wire_harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Protobuf logs every string field that is not UTF-8: silence.
  google::protobuf::SetLogHandler(nullptr);
  const char* dir = std::getenv("GAMEOPT_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return 0;
  int n = 0;
  for (const std::string& seed : gameopt::fuzz::WireSeeds()) {
    const std::string path = std::string(dir) + "/seed-" + std::to_string(n++);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr ||
        std::fwrite(seed.data(), 1, seed.size(), f) != seed.size()) {
      std::perror(path.c_str());
      std::exit(1);
    }
    std::fclose(f);
  }
  std::printf("wrote %d seeds to %s\n", n, dir);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gameopt::fuzz::RunWireInput(data, size);
}
