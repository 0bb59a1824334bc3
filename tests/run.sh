#!/usr/bin/env bash
# Installs what is missing, builds everything into build/ and runs every
# test (ctest), printing ctest's summary. Exit status: 0 when all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

./tests/install_deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# GAMEOPT_BUILD_TESTS=ON: build/ may have been configured by server/build.sh.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGAMEOPT_BUILD_TESTS=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

# Bounded fuzzing (60 s, plus one to two minutes to build from scratch):
# tests/fuzz/run.sh builds the libFuzzer targets with clang in build-fuzz/
# and fails on a finding; it skips itself without clang and libFuzzer.
# GAMEOPT_FUZZ_SECONDS=0 skips it, a larger value fuzzes longer.
./tests/fuzz/run.sh
