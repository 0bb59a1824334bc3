#include "server/service/malloc_tuning.h"

#include <algorithm>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gameopt {

bool TuneMallocForLargeMessages() {
#if defined(__GLIBC__)
  // Setting either threshold also stops glibc from adjusting them
  // dynamically.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int arenas = std::max(1, cores / kCoresPerMallocArena);
  return mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold) == 1 &&
         mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold) == 1 &&
         mallopt(M_ARENA_MAX, arenas) == 1;
#else
  return false;
#endif
}

}  // namespace gameopt
