#include "tests/fuzz/fuzz_init.h"

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"

namespace gameopt::fuzz {

int InitializeFuzzer(const std::vector<std::string>& seeds) {
  google::protobuf::SetLogHandler(nullptr);
  const char* dir = std::getenv("GAMEOPT_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return 0;
  int n = 0;
  for (const std::string& seed : seeds) {
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

}  // namespace gameopt::fuzz
