// gameopt_kernels_bench: the numerical kernels of the server's hot path
// against memcpy, the physical limit of a kernel that streams memory.
//
//   gameopt_kernels_bench [--benchmark_filter=...] [--benchmark_format=json]
//
// Every benchmark reports bytes_per_second = (bytes read + bytes written)
// per second, counting each array the kernel must stream once (an in-place
// update of x reads and writes it: 2 x 4 bytes per float32 coordinate). The
// baseline BM_Memcpy copies 4 bytes per coordinate and so moves 8: a kernel
// at memory bandwidth has the same bytes_per_second as BM_Memcpy of the same
// size. Sizes are 1M and 16M coordinates (float32); the second argument is
// the number of threads the kernel may use: 1 = the calling thread only,
// timed in CPU time as memcpy is (robust to the machine's other load);
// 0 = every thread of the server's pool (one per core), timed in wall
// time.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/core/config.h"
#include "server/core/estimator.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/optimizer.h"
#include "server/core/submission.h"

// The kernels and the thread pool arrived with the lean hot path; the
// benchmark also builds against the code before it (the "before" figures
// of tests/bench/README.md), where it times the same Eigen expressions the
// algorithms used then.
#if __has_include("server/core/kernels.h")
#include "server/core/kernels.h"
#include "server/core/parallel.h"
#define GAMEOPT_HAVE_KERNELS 1
#else
#define GAMEOPT_HAVE_KERNELS 0
#endif

namespace gameopt {
namespace {

constexpr int64_t k1M = int64_t{1} << 20;
constexpr int64_t k16M = int64_t{1} << 24;
constexpr int kSamples = 4;  // K of the aggregation benchmarks

// Sets the kernels' thread count for one benchmark, and the default after.
class Threads {
 public:
  explicit Threads(int64_t threads) {
#if GAMEOPT_HAVE_KERNELS
    // 0: every thread of the pool (one per core).
    SetMaxParallelism(threads > 0 ? static_cast<int>(threads) : 1 << 20);
#endif
  }
  ~Threads() {
#if GAMEOPT_HAVE_KERNELS
    SetMaxParallelism(0);  // the default again
#endif
  }
};

FlatVector Filled(int64_t d, float value) {
  FlatVector v(DType::kFloat32, d);
  v.as<float>().setConstant(value);
  return v;
}

void SetBytes(benchmark::State& state, int64_t bytes_per_iteration) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
}

void BM_Memcpy(benchmark::State& state) {
  const int64_t d = state.range(0);
  std::vector<float> src(d, 1.0f), dst(d, 0.0f);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), d * sizeof(float));
    benchmark::ClobberMemory();
  }
  SetBytes(state, 2 * d * 4);
}
BENCHMARK(BM_Memcpy)->ArgName("d")->Arg(k1M)->Arg(k16M)->Unit(
    benchmark::kMillisecond);  // CPU time, as the 1-thread kernels

// Arrays streamed by one step (reads + writes of float32 coordinates).
int StepArrays(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return 3;  // read g, x; write x
    case OptimizerKind::kMomentum:
    case OptimizerKind::kNesterov:
    case OptimizerKind::kRmsProp:
      return 5;  // read g, x, s; write x, s
    case OptimizerKind::kAdam:
      return 7;  // read g, x, m, v; write x, m, v
  }
  return 0;
}

void BM_Step(benchmark::State& state, OptimizerKind kind) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  OptimizerConfig config;
  config.kind = kind;
  if (kind == OptimizerKind::kRmsProp) {
    config = WithRmsPropPreset(config, RmsPropPreset::kPyTorch);
  }
  config.learning_rate = 1e-4;
  BaseOptimizer<float> optimizer(config, d);
  FlatVector g = Filled(d, 0.5f), x = Filled(d, 1.0f);
  // Untimed first step: the slots' pages are faulted in here, as in the
  // server's first round (with two threads each fault also costs an
  // inter-processor interrupt, which would swamp a one-iteration timing).
  optimizer.Step(g.as<float>(), x.as<float>());
  for (auto _ : state) {
    optimizer.Step(g.as<float>(), x.as<float>());
    benchmark::ClobberMemory();
  }
  SetBytes(state, StepArrays(kind) * d * 4);
}

// The finiteness check that precedes every step (StepStaysFinite: the
// update on block-sized copies, nothing written), to set against BM_Step.
void BM_StepStaysFinite(benchmark::State& state, OptimizerKind kind) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  OptimizerConfig config;
  config.kind = kind;
  if (kind == OptimizerKind::kRmsProp) {
    config = WithRmsPropPreset(config, RmsPropPreset::kPyTorch);
  }
  config.learning_rate = 1e-4;
  BaseOptimizer<float> optimizer(config, d);
  FlatVector g = Filled(d, 0.5f), x = Filled(d, 1.0f);
  optimizer.Step(g.as<float>(), x.as<float>());
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        optimizer.StepStaysFinite(g.as<float>(), x.as<float>()));
  }
  SetBytes(state, StepArrays(kind) * d * 4);
}

// g = xi + gamma * mean_k(vjp_k): ConOpt's direction from the products.
void BM_Consensus(benchmark::State& state) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  const float gamma = 10.0f;
  FlatVector xi = Filled(d, 0.25f);
  std::vector<FlatVector> vjp;
  for (int k = 0; k < kSamples; ++k) vjp.push_back(Filled(d, 0.1f * k));
  std::vector<const FlatVector*> views;
  for (const FlatVector& v : vjp) views.push_back(&v);
  Vec<float> direction = Vec<float>::Zero(d);
#if !GAMEOPT_HAVE_KERNELS
  Vec<float> jt_xi = Vec<float>::Zero(d), correction = Vec<float>::Zero(d);
#endif
  for (auto _ : state) {
#if GAMEOPT_HAVE_KERNELS
    benchmark::DoNotOptimize(
        ConsensusDirection<float>(xi.as<float>(), views, gamma, direction));
#else
    MeanOf<float>(views, jt_xi);
    correction = gamma * jt_xi;
    direction = xi.as<float>() + correction;
#endif
    benchmark::ClobberMemory();
  }
  SetBytes(state, (kSamples + 2) * d * 4);  // read xi, K vjp; write g
}

void BM_MeanOf(benchmark::State& state) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  std::vector<FlatVector> samples;
  for (int k = 0; k < kSamples; ++k) samples.push_back(Filled(d, 0.5f + k));
  std::vector<const FlatVector*> views;
  for (const FlatVector& v : samples) views.push_back(&v);
  Vec<float> mean = Vec<float>::Zero(d);  // touched: no page faults timed
  for (auto _ : state) {
    MeanOf<float>(views, mean);
    benchmark::ClobberMemory();
  }
  SetBytes(state, (kSamples + 1) * d * 4);  // read K; write 1
}

// The unbiased estimator's K probes (S - xi_k) / (K - 1).
void BM_ComputeProbes(benchmark::State& state) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  std::vector<FlatVector> samples;
  for (int k = 0; k < kSamples; ++k) samples.push_back(Filled(d, 0.5f + k));
  std::vector<const FlatVector*> views;
  for (const FlatVector& v : samples) views.push_back(&v);
  std::vector<std::shared_ptr<FlatVector>> probes;
  // The first call allocates the probes (and faults their pages in); the
  // server's steady state reuses them.
  if (!ComputeProbes<float>(EstimatorKind::kUnbiased, views, probes).ok()) {
    return state.SkipWithError("ComputeProbes");
  }
  for (auto _ : state) {
    absl::Status status =
        ComputeProbes<float>(EstimatorKind::kUnbiased, views, probes);
    if (!status.ok()) state.SkipWithError(status.ToString().c_str());
    benchmark::ClobberMemory();
  }
  SetBytes(state, 2 * kSamples * d * 4);  // read K; write K
}

// One worker's float32 gradient as it arrives (one tensor per player), into
// the session's reusable float32 buffer, with the finiteness check.
// `piece_bytes` > 0 splits each tensor's bytes into pieces of that size, as
// a transport's receive buffers do.
void DecodeBench(benchmark::State& state, int64_t piece_bytes) {
  const int64_t d = state.range(0);
  Threads threads(state.range(1));
  SessionConfig config;
  for (const char* name : {"gen", "disc"}) {
    PlayerConfig player;
    player.name = name;
    player.tensors.push_back(TensorConfig{"w", {d / 2}, "", DType::kFloat32});
    config.players.push_back(player);
  }
  absl::StatusOr<GameLayout> layout = GameLayout::Create(config.players);
  if (!layout.ok()) return state.SkipWithError("layout");
  std::string wire(d / 2 * 4, '\0');
  std::vector<float> values(d / 2, 0.125f);
  std::memcpy(wire.data(), values.data(), wire.size());
  std::vector<absl::string_view> pieces;
  for (size_t at = 0; piece_bytes > 0 && at < wire.size(); at += piece_bytes) {
    pieces.push_back(absl::string_view(wire).substr(at, piece_bytes));
  }
  SampleView sample;
  for (const PlayerLayout& player : layout->players()) {
    PlayerValues values_of_player;
    values_of_player.player = player.name;
    TensorView view{"w", DType::kFloat32,
                    absl::MakeConstSpan(player.tensors[0].shape), wire};
#if GAMEOPT_HAVE_KERNELS
    if (piece_bytes > 0) {
      view.bytes = absl::string_view();
      view.pieces = absl::MakeConstSpan(pieces);
    }
#endif
    values_of_player.tensors.push_back(view);
    sample.push_back(values_of_player);
  }
  FlatVector out(DType::kFloat32, d);
  const std::vector<int> players = {0, 1};
  for (auto _ : state) {
    absl::Status status = DecodeSample(sample, *layout, players,
                                       DType::kFloat32, "gradients[0]", out);
    if (!status.ok()) state.SkipWithError(status.ToString().c_str());
    benchmark::ClobberMemory();
  }
  SetBytes(state, 2 * d * 4);  // read the wire bytes; write the buffer
}

void BM_DecodeSample(benchmark::State& state) { DecodeBench(state, 0); }
#if GAMEOPT_HAVE_KERNELS
void BM_DecodeSamplePieces(benchmark::State& state) {
  DecodeBench(state, 16 << 10);
}
#endif

// One thread: CPU time, so that the figure is the kernel's own, whatever
// else the machine runs. The pool: wall time (its helpers' CPU time does
// not show in the caller's).
void OneThread(benchmark::internal::Benchmark* b) {
  b->ArgNames({"d", "threads"});
  for (int64_t d : {k1M, k16M}) b->Args({d, 1});
  b->Unit(benchmark::kMillisecond);
}
void Pool(benchmark::internal::Benchmark* b) {
  b->ArgNames({"d", "threads"});
  for (int64_t d : {k1M, k16M}) b->Args({d, 0});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_Step, sgd, OptimizerKind::kSgd)->Apply(OneThread);
BENCHMARK_CAPTURE(BM_Step, sgd, OptimizerKind::kSgd)->Apply(Pool);
BENCHMARK_CAPTURE(BM_Step, momentum, OptimizerKind::kMomentum)
    ->Apply(OneThread);
BENCHMARK_CAPTURE(BM_Step, momentum, OptimizerKind::kMomentum)->Apply(Pool);
BENCHMARK_CAPTURE(BM_Step, nesterov, OptimizerKind::kNesterov)
    ->Apply(OneThread);
BENCHMARK_CAPTURE(BM_Step, nesterov, OptimizerKind::kNesterov)->Apply(Pool);
BENCHMARK_CAPTURE(BM_Step, rmsprop, OptimizerKind::kRmsProp)->Apply(OneThread);
BENCHMARK_CAPTURE(BM_Step, rmsprop, OptimizerKind::kRmsProp)->Apply(Pool);
BENCHMARK_CAPTURE(BM_Step, adam, OptimizerKind::kAdam)->Apply(OneThread);
BENCHMARK_CAPTURE(BM_Step, adam, OptimizerKind::kAdam)->Apply(Pool);
BENCHMARK_CAPTURE(BM_StepStaysFinite, sgd, OptimizerKind::kSgd)
    ->Apply(OneThread);
BENCHMARK_CAPTURE(BM_StepStaysFinite, adam, OptimizerKind::kAdam)
    ->Apply(OneThread);
BENCHMARK(BM_Consensus)->Apply(OneThread);
BENCHMARK(BM_Consensus)->Apply(Pool);
BENCHMARK(BM_MeanOf)->Apply(OneThread);
BENCHMARK(BM_MeanOf)->Apply(Pool);
BENCHMARK(BM_ComputeProbes)->Apply(OneThread);
BENCHMARK(BM_ComputeProbes)->Apply(Pool);
BENCHMARK(BM_DecodeSample)->Apply(OneThread);
BENCHMARK(BM_DecodeSample)->Apply(Pool);
#if GAMEOPT_HAVE_KERNELS
BENCHMARK(BM_DecodeSamplePieces)->Apply(OneThread);
BENCHMARK(BM_DecodeSamplePieces)->Apply(Pool);
#endif

}  // namespace
}  // namespace gameopt

BENCHMARK_MAIN();
