#!/usr/bin/env bash
# Builds the libFuzzer targets fuzz_submission (submission_harness.h) and
# fuzz_wire (wire_harness.h) with clang, AddressSanitizer and UBSan in
# build-fuzz/ and fuzzes them for a bounded time. Exit status 0 when
# nothing was found, 1 on a finding (the input is left in
# build-fuzz/tests/fuzz/runs/TARGET/artifacts/), 0 with a "skipped" line when
# clang with libFuzzer is not installed (Debian: clang libclang-rt-14-dev).
#
#   tests/fuzz/run.sh                       60 s in all (GAMEOPT_FUZZ_SECONDS)
#   GAMEOPT_FUZZ_SECONDS=3600 tests/fuzz/run.sh
#   GAMEOPT_FUZZ_BUILD_ONLY=1 tests/fuzz/run.sh   builds, fuzzes nothing
#   build-fuzz/tests/fuzz/fuzz_wire ARTIFACT      replays one input
#
# The targets get two thirds and one third of the time; with two cores or
# more they fuzz at the same time (each on a core of its own, as long as
# when run one after the other), so the run takes two thirds of the time.
# GAMEOPT_FUZZ_JOBS: compile jobs (default: the number of cores).
#
# Each target's corpus grows in build-fuzz/tests/fuzz/runs/TARGET/corpus/ from
# run to run, starting from the harness's seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${GAMEOPT_FUZZ_SECONDS:-60}
if [ "$seconds" -le 0 ]; then  # libFuzzer reads 0 as "forever"
  echo "fuzz: skipped (GAMEOPT_FUZZ_SECONDS=$seconds)"
  exit 0
fi
build=${GAMEOPT_FUZZ_BUILD_DIR:-build-fuzz}
cxx=${GAMEOPT_FUZZ_CXX:-clang++}
cores=$(nproc 2>/dev/null || echo 2)
jobs=${GAMEOPT_FUZZ_JOBS:-$cores}

# Is libFuzzer there? (clang without libclang-rt-*-dev links no fuzzer.)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$probe/probe.cc"
if ! command -v "$cxx" >/dev/null 2>&1 ||
   ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cc" \
       -o "$probe/probe" >/dev/null 2>&1; then
  echo "fuzz: skipped ($cxx with libFuzzer not found; apt-get install clang libclang-rt-14-dev)"
  exit 0
fi

# -O1 keeps the build quick and assert() on (no NDEBUG).
start=$(date +%s)
top="$build/tests/fuzz"
mkdir -p "$top"
if ! { cmake -S . -B "$build" \
         -DCMAKE_CXX_COMPILER="$cxx" \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
         -DGAMEOPT_FUZZ=ON &&
       cmake --build "$build" -j "$jobs" --target fuzz_submission fuzz_wire; } \
     >"$top/build.log" 2>&1; then
  tail -n 40 "$top/build.log"
  echo "fuzz: the build failed (log: $top/build.log)" >&2
  exit 1
fi
echo "fuzz: built in $(( $(date +%s) - start )) s"
[ "${GAMEOPT_FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# Fuzzes $1 for $2 seconds; its corpus, artifacts and log live in
# $top/runs/$1/.
fuzz() {
  local target=$1 time=$2
  local dir="$top/runs/$target"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  GAMEOPT_FUZZ_WRITE_SEEDS="$dir/corpus" "$top/$target" >/dev/null
  # -rss_limit_mb: a 10-coordinate session never needs much; more is a
  # finding. -timeout: one input is at most a few dozen calls.
  local status=0
  "$top/$target" "$dir/corpus" \
    -max_total_time="$time" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    >"$dir/last_run.log" 2>&1 || status=$?
  local done_line
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/last_run.log" | tail -n 1 || true)
  echo "fuzz: $target: ${done_line:-no DONE line}"
  if [ $status -ne 0 ]; then
    tail -n 60 "$dir/last_run.log"
    echo "fuzz: $target FOUND A PROBLEM (exit $status); the input is in" \
      "$dir/artifacts/; replay: $top/$target ARTIFACT" >&2
    return 1
  fi
}

# Two thirds of the time to the session harness, the rest to the wire
# reader (a smaller state space); at the same time on two cores.
failed=0
submission_time=$(( seconds * 2 / 3 > 0 ? seconds * 2 / 3 : 1 ))
wire_time=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
if [ "$cores" -ge 2 ]; then
  fuzz fuzz_wire "$wire_time" >"$top/wire.out" 2>&1 &
  wire_pid=$!
  fuzz fuzz_submission "$submission_time" || failed=1
  wait "$wire_pid" || failed=1
  cat "$top/wire.out"
else
  fuzz fuzz_submission "$submission_time" || failed=1
  fuzz fuzz_wire "$wire_time" || failed=1
fi
if [ $failed -ne 0 ]; then exit 1; fi
echo "fuzz: nothing found in ${seconds} s (logs: $top/runs/*/last_run.log)"
