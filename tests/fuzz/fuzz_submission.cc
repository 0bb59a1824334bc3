// libFuzzer entry point of the submission harness (submission_harness.h).
// Built only with -DGAMEOPT_FUZZ=ON and clang; tests/fuzz/run.sh builds and
// runs it. With GAMEOPT_FUZZ_WRITE_SEEDS=DIR in the environment it writes
// the seed corpus into DIR and exits instead of fuzzing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/submission_harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Protobuf logs every string field that is not UTF-8: silence.
  google::protobuf::SetLogHandler(nullptr);
  const char* dir = std::getenv("GAMEOPT_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return 0;
  int n = 0;
  for (const std::string& seed : gameopt::fuzz::SubmissionSeeds()) {
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
  return gameopt::fuzz::RunSubmissionInput(data, size);
}
