#!/usr/bin/env bash
# Builds the benchmarks in Release (build-bench/), runs them and prints
#   RATIO <name> <value> target <target>
# for each figure (tests/bench/README.md), the server's peak memory against
# its lower bound, then a markdown table for tests/README.md. Every ratio compares two
# figures measured in this run, on this machine.
#
#   tests/bench/run.sh [--quick] [--no-huge] [--no-torch]
#
# --quick: shorter measurements (about a minute; noisier).
# --no-huge: skip the end-to-end round with 100M parameters (it needs about
#   4 GiB of memory).
# --no-torch: skip torch_bench.py (PyTorch workers against in-process
#   autograd and gloo; needs Debian's python3-torch and python3-grpcio).
# Environment: BUILD_DIR (default build-bench), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
huge=1
torch=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-huge) huge=0 ;;
    --no-torch) torch=0 ;;
    *) echo "usage: $0 [--quick] [--no-huge] [--no-torch]" >&2; exit 2 ;;
  esac
done

build=${BUILD_DIR:-build-bench}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs" \
  --target gameopt_kernels_bench gameopt_bench gameopt_server >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [[ $quick == 1 ]]; then
  seconds=0.5; repeats=1; min_time=0.1; reps=1
  torch_args=(--steps=50 --repeats=2)
else
  seconds=2; repeats=3; min_time=0.3; reps=5
  torch_args=(--steps=200 --repeats=5)
fi

echo "== kernels (gameopt_kernels_bench)" >&2
# Repetitions interleaved in random order, so that a burst of other load
# does not hit every repetition of one kernel; the best of each counts.
"$build/tests/bench/gameopt_kernels_bench" \
  --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_format=json --benchmark_out="$out/kernels.json" \
  --benchmark_out_format=json >/dev/null

echo "== rounds against the baselines (gameopt_bench)" >&2
"$build/tests/bench/gameopt_bench" --seconds="$seconds" \
  --repeats="$repeats" | tee "$out/rounds.txt" >&2

# Compressed wires against float32 on the payload-bound round: the three
# cases in turn, $repeats times (so that a burst of other load hits all of
# them alike), at least 5 timed steps each; the best of each counts.
echo "== compressed wire (conopt/16M/4: float32, bf16, int8 blocks)" >&2
for _ in $(seq "$repeats"); do
  "$build/tests/bench/gameopt_bench" --seconds="$seconds" --repeats=1 \
    --min_steps=5 --baselines=false \
    --cases=conopt/16M/4,conopt/16M/4/bf16,conopt/16M/4/int8
done | tee "$out/wire.txt" >&2

# The server's peak memory on the 16M ConOpt round with 4 workers, in a
# gameopt_server process of its own (with the malloc settings of
# server/service/malloc_tuning.h, as the in-process runs above).
echo "== peak memory of gameopt_server (conopt/16M/4)" >&2
GLIBC_TUNABLES=glibc.malloc.trim_threshold=2147483647:glibc.malloc.mmap_threshold=33554432:glibc.malloc.arena_max=1 \
  "$build/server/gameopt_server" --address=127.0.0.1:0 --quiet \
  >"$out/server.txt" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q listening "$out/server.txt" && break
  sleep 0.1
done
address=$(awk '/listening on/ {print $4}' "$out/server.txt")
idle_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
"$build/tests/bench/gameopt_bench" --server="$address" \
  --cases=conopt/16M/4 --seconds="$seconds" --baselines=false \
  >"$out/memory.txt"
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
kill -INT "$server_pid"
wait "$server_pid" || true
echo "server VmHWM: idle $idle_kb kB, after conopt/16M/4 $peak_kb kB" >&2

if [[ $huge == 1 ]]; then
  echo "== one round of simgd with 100M parameters" >&2
  "$build/tests/bench/gameopt_bench" --cases= --huge | tee "$out/huge.txt" >&2
else
  : >"$out/huge.txt"
fi

if [[ $torch == 1 ]]; then
  echo "== PyTorch workers on the MoG GAN (torch_bench.py)" >&2
  /usr/bin/python3 tests/bench/torch_bench.py \
    --server_binary="$build/server/gameopt_server" "${torch_args[@]}" \
    | tee "$out/torch.txt" >&2
else
  : >"$out/torch.txt"
fi

python3 - "$out" "$idle_kb" "$peak_kb" <<'EOF'
import json, re, sys

out, idle_kb, peak_kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

# Kernels: the best repetition of each benchmark, bytes per second.
best = {}
for b in json.load(open(f"{out}/kernels.json"))["benchmarks"]:
    if b.get("run_type") == "aggregate":
        continue
    name = b["run_name"]
    best[name] = max(best.get(name, 0.0), b["bytes_per_second"])
mib16 = 1 << 24
memcpy16 = best[f"BM_Memcpy/d:{mib16}"]
kernels = {}
for name, bps in best.items():
    m = re.match(r"BM_(\w+)(?:/(\w+))?/d:(\d+)/threads:(\d+)(?:/real_time)?$",
                 name)
    if m:
        kernel = m.group(1) + ("/" + m.group(2) if m.group(2) else "")
        kernels[(kernel, int(m.group(3)), int(m.group(4)))] = bps
# The kernels' own speed: one thread, CPU time, against memcpy's (the
# pool's wall-time figures are in the table; on a loaded 2-core machine
# the second core is rarely free).
optimizers = {k: v for k, v in kernels.items()
              if k[0].startswith("Step/") and k[1] == mib16 and k[2] == 1}
worst = min(optimizers, key=optimizers.get)
kernel_ratio = optimizers[worst] / memcpy16

cases = {}
for line in open(f"{out}/rounds.txt"):
    if line.startswith("CASE "):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        cases[fields["name"]] = fields
def f(name, key):
    return float(cases[name][key])

small = f("conopt/2/1", "time_vs_echo")
round16 = f("conopt/16M/4", "ratio_echo")
# K = 16 against the payload-bound expectation from K = 1: rounds/s(16) /
# (rounds/s(1) * payload(1) / payload(16)) = payload rate(16) / rate(1).
scale = f("conopt/1M/16", "payload_GBps") / f("conopt/1M/1", "payload_GBps")

wire = {}
for line in open(f"{out}/wire.txt"):
    if line.startswith("CASE "):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        wire[fields["name"]] = max(wire.get(fields["name"], 0.0),
                                   float(fields["steps_per_s"]))
wire_bf16 = wire["conopt/16M/4/bf16"] / wire["conopt/16M/4"]
wire_int8 = wire["conopt/16M/4/int8"] / wire["conopt/16M/4"]

mem = dict(kv.split("=", 1) for kv in
           [l for l in open(f"{out}/memory.txt") if l.startswith("CASE")][0]
           .split()[1:])
d, k = int(mem["d"]), int(mem["workers"])
# Parameters, RMSProp's one slot, one buffer per worker: float32.
lower = (1 + 1 + k) * 4 * d
peak = peak_kb * 1024

ratios = [
    ("small_step", small, "<= 1.2",
     "ConOpt step, scalar bilinear game, 1 worker / 2 echo round trips"),
    ("round_16m", round16, ">= 0.8",
     "payload rate of conopt/16M/4 / echo's on the same bytes"),
    ("kernel", kernel_ratio, ">= 0.7",
     f"slowest optimizer step at 16M ({worst[0]}, 1 thread) / memcpy"),
    ("scale", scale, ">= 0.8",
     "conopt/1M/16 rounds/s / payload-bound expectation from conopt/1M/1"),
    ("wire_bf16", wire_bf16, ">= 1.8",
     "conopt/16M/4 steps/s, bfloat16 wire / float32 wire"),
    ("wire_int8", wire_int8, ">= 3",
     "conopt/16M/4 steps/s, int8-block wire / float32 wire"),
]
def met(value, target):
    op, bound = target.split()
    return value <= float(bound) if op == "<=" else value >= float(bound)
for name, value, target, _ in ratios:
    print(f"RATIO {name} {value:.3f} target {target.replace(' ', '')}")
# torch_bench.py's ratios, as it printed them.
torch_lines = open(f"{out}/torch.txt").read().splitlines()
for line in torch_lines:
    if line.startswith(("RATIO ", "BEST ")):
        print(line)
print(f"MEMORY server_peak_MiB {peak / 2**20:.0f} lower_bound_MiB "
      f"{lower / 2**20:.0f} ratio {peak / lower:.2f} idle_MiB "
      f"{idle_kb / 1024:.0f}")
for line in open(f"{out}/huge.txt"):
    if line.startswith("CASE"):
        h = dict(kv.split("=", 1) for kv in line.split()[1:])
        print(f"HUGE {h['name']} ok step_ms {float(h['step_ms']):.0f} "
              f"payload_GBps {float(h['payload_GBps']):.2f}")

print()
print("| figure | measured | target | met | what |")
print("|---|---|---|---|---|")
for name, value, target, what in ratios:
    print(f"| {name} | {value:.2f} | {target} | "
          f"{'yes' if met(value, target) else 'no'} | {what} |")
for line in torch_lines:
    if line.startswith("RATIO "):
        _, name, value, target = line.split()
        print(f"| {name} | {float(value):.2f} | {target[6:8]} {target[8:]} | "
              f"{'yes' if met(float(value), target[6:8] + ' ' + target[8:]) else 'no'}"
              f" | MoG GAN ms/step (torch_bench.py) |")
print(f"| memory | {peak / 2**20:.0f} MiB | lower bound "
      f"{lower / 2**20:.0f} MiB | {peak / lower:.2f} x | gameopt_server "
      f"VmHWM, conopt/16M/4 (idle {idle_kb / 1024:.0f} MiB) |")
print()
print("| case | steps/s | step ms | payload GB/s | echo GB/s | TCP GB/s "
      "| vs echo | vs TCP |")
print("|---|---|---|---|---|---|---|---|")
for name, c in cases.items():
    print(f"| {name} | {float(c['steps_per_s']):.1f} | "
          f"{float(c['step_ms']):.2f} | {float(c['payload_GBps']):.3f} | "
          f"{float(c['echo_GBps']):.3f} | {float(c['tcp_GBps']):.3f} | "
          f"{float(c['ratio_echo']):.2f} | {float(c['ratio_tcp']):.2f} |")
print()
print("| kernel (16M float32) | GB/s, 1 thread | vs memcpy | GB/s, pool "
      "(wall) |")
print("|---|---|---|---|")
print(f"| memcpy | {memcpy16 / 1e9:.1f} | 1.00 | - |")
for kernel in sorted({k[0] for k in kernels}):
    one = kernels.get((kernel, mib16, 1), 0.0)
    pool = kernels.get((kernel, mib16, 0), 0.0)
    print(f"| {kernel} | {one / 1e9:.1f} | {one / memcpy16:.2f} | "
          f"{pool / 1e9:.1f} |")
torch_cases = [dict(kv.split("=", 1) for kv in line.split()[1:])
               for line in torch_lines if line.startswith("CASE ")]
if torch_cases:
    print()
    print("| MoG GAN case (torch_bench.py) | ms/step, median | min | max | runs |")
    print("|---|---|---|---|---|")
    for c in torch_cases:
        print(f"| {c['name']} | {float(c['ms']):.2f} | {float(c['min']):.2f} "
              f"| {float(c['max']):.2f} | {c['runs']} |")
EOF
