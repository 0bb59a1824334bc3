#!/usr/bin/env bash
# Builds everything with AddressSanitizer (+ LeakSanitizer) and UBSan (gcc)
# in build-asan/ and runs the C++ tests under them: ctest without the
# python_* tests, the demo and the docker packaging test, whose
# interpreters, long tour and images are not instrumented. Any sanitizer
# report fails its test (no recovery).
#
#   tests/sanitize.sh                 everything (time: server/README.md)
#   tests/sanitize.sh -R service      extra arguments go to ctest
#
# Not part of tests/run.sh or CI: the instrumented build takes several
# times longer than the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${GAMEOPT_ASAN_BUILD_DIR:-build-asan}
jobs=$(nproc 2>/dev/null || echo 2)
sanitizers="-fsanitize=address,undefined"

start=$(date +%s)
# -O1 -g without NDEBUG: readable reports, and assert() stays on.
cmake -S . -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_CXX_FLAGS="$sanitizers -fno-omit-frame-pointer -fno-sanitize-recover=all" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitizers" \
  -DCMAKE_SHARED_LINKER_FLAGS="$sanitizers" >/dev/null
# Keep going past a target that fails to build (e.g. a test that replaces
# malloc, which AddressSanitizer does not allow): the rest still runs, and
# the failure still fails this script.
keep_going=(-k)
if grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$build/CMakeCache.txt"; then
  keep_going=(-k 0)
fi
build_status=0
cmake --build "$build" -j "$jobs" -- "${keep_going[@]}" || build_status=$?
built=$(date +%s)
echo "sanitize: built in $(( built - start )) s (exit $build_status)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The 4M-parameter load test: a few rounds are enough under the sanitizers.
export GAMEOPT_LOAD_ROUNDS="${GAMEOPT_LOAD_ROUNDS:-5}"
status=0
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 1800 \
  -E '^(python_|demo)' -LE '^docker$' "$@" || status=$?
echo "sanitize: tests ran in $(( $(date +%s) - built )) s (exit $status)"
if [ $build_status -ne 0 ]; then
  echo "sanitize: some targets did not build (see above)" >&2
  exit 1
fi
exit $status
