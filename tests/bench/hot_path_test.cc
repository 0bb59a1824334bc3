// The lean hot path's guarantees, checked without timing anything:
//   - steady-state rounds allocate no parameter-sized block (this binary
//     counts every malloc of the process);
//   - the kernels split across threads give bit-identical results for any
//     thread count, equal to the whole-vector Eigen formulas they replace.
// (That the service's wire format is the protobuf messages' is
// tests/service/wire_bytes_test.cc's part.)
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/estimator.h"
#include "server/core/kernels.h"
#include "server/core/optimizer.h"
#include "server/core/parallel.h"
#include "server/service/server.h"
#include "tests/bench/null_worker.h"
#include "tests/core/test_util.h"

// ---------------------------------------------------------------- malloc

// Every allocation of the process passes through here (the executable's
// definitions take precedence over libc's for all shared libraries too):
// while counting, blocks of at least `big_bytes` are recorded. Not under
// AddressSanitizer, which owns malloc (tests/sanitize.sh): the allocation
// tests skip themselves there.
#if defined(__SANITIZE_ADDRESS__)
#define GAMEOPT_COUNTS_MALLOC 0
#else
#define GAMEOPT_COUNTS_MALLOC 1
#endif

namespace {
std::atomic<bool> counting{false};
std::atomic<size_t> big_bytes{SIZE_MAX};
std::atomic<int64_t> big_count{0};
std::atomic<size_t> big_sizes[16];

[[maybe_unused]] void Record(size_t size) {
  if (!counting.load(std::memory_order_relaxed) ||
      size < big_bytes.load(std::memory_order_relaxed)) {
    return;
  }
  const int64_t n = big_count.fetch_add(1);
  if (n < 16) big_sizes[n].store(size);
}
}  // namespace

#if GAMEOPT_COUNTS_MALLOC
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t size) {
  Record(size);
  return __libc_malloc(size);
}
void* calloc(size_t n, size_t size) {
  Record(n * size);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) {
  Record(size);
  return __libc_realloc(p, size);
}
void* memalign(size_t alignment, size_t size) {
  Record(size);
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  Record(size);
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  Record(size);
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"
#endif  // GAMEOPT_COUNTS_MALLOC

namespace gameopt {
namespace {

// ---------------------------------------------------------------- rounds

// d = 2M float32 parameters (8 MiB per vector): above every buffer gRPC
// allocates on its own (1 MiB serialization blocks, 4 MiB read chunks), so
// any block this large is a parameter-sized one of ours.
constexpr int64_t kDimension = int64_t{2} << 20;
constexpr int64_t kWarmupSteps = 3;
constexpr int64_t kCountedSteps = 5;
// Copy-on-write copies allowed in the counted steps (CopyOnWriteCopies:
// estimator.h): a loaded machine's late release of the previous call. A
// design that kept a response's vectors across steps would copy each step.
constexpr int64_t kMaxCopyOnWriteCopies = 1;

void ExpectNoParameterSizedAllocations(const std::string& algorithm,
                                       int workers) {
  if (!GAMEOPT_COUNTS_MALLOC) GTEST_SKIP() << "malloc is the sanitizer's";
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  options.log = nullptr;
  GameOptServer server(options);
  ASSERT_TRUE(server.Start().ok());
  bench::Case c;
  c.algorithm = algorithm;
  c.d = kDimension;
  c.workers = workers;
  absl::StatusOr<std::string> session = bench::CreateSession(
      server.address(),
      bench::SessionConfigOf(c, kWarmupSteps + kCountedSteps));
  ASSERT_TRUE(session.ok()) << session.status();
  big_bytes = c.vector_bytes();
  big_count = 0;
  std::atomic<int64_t> copies_before{-1};
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(workers);
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<bench::Window> w = bench::RunNullWorker(
          server.address(), *session, c, 0, [&](int64_t step) {
            if (step != kWarmupSteps) return;
            int64_t unset = -1;
            copies_before.compare_exchange_strong(unset, CopyOnWriteCopies());
            counting = true;
          });
      results[i] = w.status();
    });
  }
  for (std::thread& t : threads) t.join();
  counting = false;
  const int64_t copies = CopyOnWriteCopies() - copies_before.load();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  std::string sizes;
  for (int64_t i = 0; i < std::min<int64_t>(big_count, 16); ++i) {
    sizes += std::to_string(big_sizes[i].load()) + " ";
  }
  EXPECT_EQ(big_count.load(), copies)
      << "blocks of >= " << c.vector_bytes() << " bytes allocated in "
      << kCountedSteps << " steady-state steps: " << sizes << "(" << copies
      << " of them copy-on-write copies)";
  EXPECT_LE(copies, kMaxCopyOnWriteCopies);
  EXPECT_TRUE(bench::DeleteSession(server.address(), *session).ok());
  server.Shutdown();
}

TEST(HotPath, TheCounterSeesMallocAndNew) {
  if (!GAMEOPT_COUNTS_MALLOC) GTEST_SKIP() << "malloc is the sanitizer's";
  big_bytes = 1 << 20;
  big_count = 0;
  counting = true;
  void* block = malloc(2 << 20);
  auto* values = new std::vector<float>(1 << 20);
  counting = false;
  free(block);
  delete values;
  EXPECT_EQ(big_count.load(), 2);
}

TEST(HotPath, ConOptRoundsAllocateNoParameterSizedBlock) {
  ExpectNoParameterSizedAllocations("conopt", 2);
}

TEST(HotPath, SimGdRoundsAllocateNoParameterSizedBlock) {
  ExpectNoParameterSizedAllocations("simgd", 1);
}

// ---------------------------------------------------------------- kernels

// Above kParallelMinCoordinates, and not a multiple of any block.
constexpr int64_t kLong = (int64_t{1} << 20) + 12345;

using testing::RandomFloat32;

std::string BytesOf(const Vec<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}
std::string BytesOf(const FlatVector& v) {
  return std::string(static_cast<const char*>(v.data()), v.bytes());
}

// Runs `kernel` with one thread and with every thread of the pool.
template <typename Kernel>
void ExpectSameForAnyThreadCount(Kernel kernel) {
  SetMaxParallelism(1);
  const std::string one = kernel();
  SetMaxParallelism(64);  // every thread of the pool
  const std::string all = kernel();
  SetMaxParallelism(0);  // the default again
  EXPECT_TRUE(one == all);
}

TEST(Kernels, OptimizersAreBitIdenticalToWholeVectorFormulas) {
  const FlatVector g = RandomFloat32(kLong, 1), x0 = RandomFloat32(kLong, 2);
  for (OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
        OptimizerKind::kRmsProp, OptimizerKind::kAdam}) {
    SCOPED_TRACE(static_cast<int>(kind));
    OptimizerConfig config;
    config.kind = kind;
    config.learning_rate = 1e-3;
    config.clip_value = 1.5;
    auto run = [&] {
      BaseOptimizer<float> optimizer(config, kLong);
      Vec<float> x = x0.as<float>();
      for (int step = 0; step < 3; ++step) optimizer.Step(g.as<float>(), x);
      optimizer.Step(g.as<float>(), x, /*advance_state=*/false);
      return BytesOf(x);
    };
    ExpectSameForAnyThreadCount(run);
    if (kind != OptimizerKind::kRmsProp) continue;
    // The formula of config.h, coordinate by coordinate in IEEE arithmetic
    // (std::sqrt is exactly rounded; Eigen's vectorized float sqrt under
    // EIGEN_FAST_MATH is not, which the code before the kernels used).
    const float lr = 1e-3f, a = 0.99f, eps = 1e-8f, c = 1.5f;
    Vec<float> x = x0.as<float>();
    Vec<float> s = Vec<float>::Zero(kLong);
    const float* gv = g.as<float>().data();
    for (int step = 0; step < 4; ++step) {
      for (int64_t i = 0; i < kLong; ++i) {
        float si = a * s[i] + (1.0f - a) * (gv[i] * gv[i]);
        x[i] -= lr * gv[i] / (std::sqrt(si) + eps);
        x[i] = std::min(std::max(x[i], -c), c);
        if (step < 3) s[i] = si;  // the 4th step is a peek
      }
    }
    EXPECT_TRUE(run() == BytesOf(x));
  }
}

// ConsensusDirection against the whole-vector formula g = xi + 10 * mean.
void ExpectConsensusDirection(const FlatVector& xi,
                              const std::vector<const FlatVector*>& views,
                              const Vec<float>& mean, bool in_place) {
  {
    ExpectSameForAnyThreadCount([&] {
      Vec<float> direction;
      if (in_place) direction = xi.as<float>();
      const ConsensusNorms norms = ConsensusDirection<float>(
          in_place ? Eigen::Ref<const Vec<float>>(direction)
                   : Eigen::Ref<const Vec<float>>(xi.as<float>()),
          views, 10.0f, direction);
      const Vec<float> correction = 10.0f * mean;
      const Vec<float> expected = xi.as<float>() + correction;
      EXPECT_TRUE(BytesOf(direction) == BytesOf(expected));
      // Norms summed in double over blocks: float32 rounding per block.
      constexpr double kRelative = 1e-6;
      const double c = correction.cast<double>().norm();
      const double x = xi.as<float>().cast<double>().norm();
      const double g = expected.cast<double>().norm();
      EXPECT_NEAR(norms.correction, c, kRelative * c);
      EXPECT_NEAR(norms.xi, x, kRelative * x);
      EXPECT_NEAR(norms.direction, g, kRelative * g);
      // The maximum is exact.
      EXPECT_EQ(norms.direction_max_abs,
                static_cast<double>(expected.cwiseAbs().maxCoeff()));
      std::string all = BytesOf(direction);
      for (double v : {norms.correction, norms.xi, norms.direction,
                       norms.direction_max_abs}) {
        all.append(reinterpret_cast<const char*>(&v), sizeof(v));
      }
      return all;
    });
  }
}

TEST(Kernels, AggregationIsBitIdenticalToWholeVectorFormulas) {
  std::vector<FlatVector> samples;
  for (int k = 0; k < 5; ++k) samples.push_back(RandomFloat32(kLong, 10 + k));
  std::vector<const FlatVector*> views;
  for (const FlatVector& v : samples) views.push_back(&v);
  const FlatVector xi = RandomFloat32(kLong, 3);
  Vec<float> sum = samples[0].as<float>();
  for (int k = 1; k < 5; ++k) sum += samples[k].as<float>();
  const Vec<float> mean = sum / 5.0f;

  ExpectSameForAnyThreadCount([&] {
    Vec<float> out;
    MeanOf<float>(views, out);
    EXPECT_TRUE(BytesOf(out) == BytesOf(mean));
    return BytesOf(out);
  });
  for (EstimatorKind estimator : {EstimatorKind::kLocal, EstimatorKind::kPooled,
                                  EstimatorKind::kUnbiased}) {
    SCOPED_TRACE(static_cast<int>(estimator));
    ExpectSameForAnyThreadCount([&] {
      std::vector<std::shared_ptr<FlatVector>> probes;
      Vec<float> fused_mean;
      EXPECT_TRUE(
          ComputeProbes<float>(estimator, views, probes, &fused_mean).ok());
      EXPECT_TRUE(BytesOf(fused_mean) == BytesOf(mean));
      std::string all;
      for (int k = 0; k < 5; ++k) {
        Vec<float> expected =
            estimator == EstimatorKind::kLocal ? samples[k].as<float>()
            : estimator == EstimatorKind::kPooled
                ? Vec<float>(sum / 5.0f)
                : Vec<float>((sum - samples[k].as<float>()) / 4.0f);
        EXPECT_TRUE(BytesOf(*probes[k]) == BytesOf(expected)) << k;
        all += BytesOf(*probes[k]);
      }
      return all;
    });
  }
  // In place too (OnProducts writes g over xi); every count of products
  // (1 to 4 have loops of their own).
  for (int num = 1; num <= 5; ++num) {
    for (bool in_place : {false, true}) {
      SCOPED_TRACE(absl::StrCat(num, " products, in place: ", in_place));
      const std::vector<const FlatVector*> some(views.begin(),
                                                views.begin() + num);
      Vec<float> some_sum = samples[0].as<float>();
      for (int k = 1; k < num; ++k) some_sum += samples[k].as<float>();
      const Vec<float> some_mean =
          num == 1 ? some_sum : Vec<float>(some_sum / static_cast<float>(num));
      ExpectConsensusDirection(xi, some, some_mean, in_place);
    }
  }
}

}  // namespace
}  // namespace gameopt
