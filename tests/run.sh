#!/usr/bin/env bash
# Installs what is missing, builds everything into build/ and runs every
# test (ctest, with its summary and time per label), then fuzzes for a
# bounded time, and prints the time of each phase last. Exit status: 0 when
# all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
phase_started=$started
phases=()
# phase NAME: records the time since the previous phase ended.
phase() {
  local now
  now=$(date +%s)
  phases+=("$(printf '%-10s %5d s' "$1" $((now - phase_started)))")
  phase_started=$now
}
summary() {
  echo
  echo "Phase time summary (tests/run.sh):"
  for p in "${phases[@]}"; do echo "  $p"; done
  printf '  %-10s %5d s\n' total $(($(date +%s) - started))
}
trap summary EXIT

./tests/install_deps.sh
phase install
jobs=$(nproc 2>/dev/null || echo 2)
# GAMEOPT_BUILD_TESTS=ON: build/ may have been configured by server/build.sh.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGAMEOPT_BUILD_TESTS=ON >/dev/null
cmake --build build -j "$jobs"
phase build

# Bounded fuzzing (60 s, after a clang build in build-fuzz/): tests/fuzz/run.sh
# fails on a finding and skips itself without clang and libFuzzer;
# GAMEOPT_FUZZ_SECONDS=0 skips it, a larger value fuzzes longer. Its build
# (one compile job) runs alongside ctest, whose container and end-to-end
# tests leave a core waiting for long stretches; the fuzzing runs after
# ctest, on cores of its own.
fuzz_build_log=build/fuzz-build.log
GAMEOPT_FUZZ_BUILD_ONLY=1 GAMEOPT_FUZZ_JOBS=1 ./tests/fuzz/run.sh \
  >"$fuzz_build_log" 2>&1 &
fuzz_build_pid=$!

# ctest starts the longest tests first (their times from the last run, in
# build/Testing/Temporary/CTestCostData.txt, or the COST they declare).
status=0
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 || status=$?
phase ctest
fuzz_build_status=0
wait "$fuzz_build_pid" || fuzz_build_status=$?
cat "$fuzz_build_log"
phase fuzz-build  # the part of the fuzz build that outlasted ctest
[ $status -eq 0 ] || exit $status
[ $fuzz_build_status -eq 0 ] || exit $fuzz_build_status

./tests/fuzz/run.sh || status=$?
phase fuzz
exit $status
