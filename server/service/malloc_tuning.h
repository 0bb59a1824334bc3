// TuneMallocForLargeMessages: glibc malloc settings for a process that
// moves large gRPC messages.
//
// gRPC reads every message into fresh 64 KiB blocks and frees them once the
// message is consumed. With glibc's defaults the freed top of the heap is
// given back to the kernel as soon as it exceeds 128 KiB (M_TRIM_THRESHOLD),
// so the next message faults every page in again, zeroed: measured on the
// 16M-parameter ConOpt round (tests/bench), a quarter of the server's time
// went to page faults. Keeping freed memory for reuse removes them; the
// price is that the process keeps its peak heap (it would reach it again in
// the next round anyway).
//
// Arenas too: glibc gives new threads new arenas (up to 8 per core), each
// growing to its own peak with fresh pages, and gRPC starts threads as
// load rises; one arena per 8 cores (at least one) lets every thread reuse
// every freed block. Measured on conopt/1M/16 against gameopt_server:
// page faults per round 9K with glibc's defaults, 5K with the thresholds,
// 1.4K with the thresholds and one arena.
//
// Call it once, early in main(), before threads allocate (gameopt_bench
// does); a library must not call it on its own. The environment variable
// GLIBC_TUNABLES=glibc.malloc.trim_threshold=2147483647:
// glibc.malloc.mmap_threshold=33554432:glibc.malloc.arena_max=1 does the
// same for an unmodified binary on up to 15 cores (tests/bench/run.sh
// starts gameopt_server so).
#ifndef GAMEOPT_SERVER_SERVICE_MALLOC_TUNING_H_
#define GAMEOPT_SERVER_SERVICE_MALLOC_TUNING_H_

namespace gameopt {

// Free memory at the top of a heap kept for reuse: up to 2 GiB - 1 (the
// largest value mallopt takes).
inline constexpr int kMallocTrimThreshold = 0x7fffffff;
// Blocks below this size come from the heap (reused) rather than from
// mmap (faulted in every time): glibc's largest, 32 MiB on 64-bit.
inline constexpr int kMallocMmapThreshold = 32 << 20;

// Cores per malloc arena.
inline constexpr int kCoresPerMallocArena = 8;

// Applies all three; false if glibc refused (or it is not glibc).
bool TuneMallocForLargeMessages();

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_MALLOC_TUNING_H_
