// PrimeAbseilBeforeConnecting (client/worker/channel.h): the first thread
// of a process that queues behind another on an absl::Mutex must not change
// errno once a channel was made, or gRPC 1.51 may read that errno as its
// connect(2)'s and fail the connection. Each case runs in a fresh process (a
// "threadsafe" death test re-executes this binary), where no thread has
// queued on a Mutex yet.
#include "client/worker/channel.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace gameopt {
namespace {

constexpr char kFrequencyFile[] = "/sys/devices/system/cpu/cpu0/tsc_freq_khz";

// Makes two threads queue on a held Mutex, one after the other, and exits
// with the errno either saw after it got the lock (0 if neither changed).
// The second waiter to queue behind another reads its thread's priority,
// and with it, the first time in a process, the CPU's frequency
// (absl::Mutex's Enqueue).
[[noreturn]] void ExitWithErrnoAfterQueueingOnAMutex() {
  absl::Mutex mu;
  int seen[2] = {-1, -1};
  mu.Lock();
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&mu, &seen, i] {
      errno = 0;
      mu.Lock();
      seen[i] = errno;
      mu.Unlock();
    });
    // Long enough for the waiter to give up spinning and queue.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  mu.Unlock();
  for (std::thread& waiter : waiters) waiter.join();
  std::_Exit(seen[0] != 0 ? seen[0] : seen[1]);
}

bool FrequencyFileMissing() {
  std::FILE* file = std::fopen(kFrequencyFile, "r");
  if (file == nullptr) return true;
  std::fclose(file);
  return false;
}

// What the workaround is for: without it, on a machine without the file,
// the first queueing on a Mutex leaves errno = ENOENT. If this starts to fail,
// Abseil no longer does that, and the workaround may go.
TEST(ChannelDeathTest,
     FirstQueueOnAMutexSetsErrnoWhereTheFrequencyFileIsMissing) {
  if (!FrequencyFileMissing()) GTEST_SKIP() << kFrequencyFile << " exists";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ExitWithErrnoAfterQueueingOnAMutex(),
              ::testing::ExitedWithCode(ENOENT), "");
}

TEST(ChannelDeathTest, MakeChannelLeavesErrnoAloneInTheFirstQueueOnAMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        // A channel connects at its first call, not here.
        std::shared_ptr<grpc::Channel> channel = MakeChannel("127.0.0.1:1");
        ExitWithErrnoAfterQueueingOnAMutex();
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace gameopt
