#!/usr/bin/env bash
# Fails when a ctest test of BUILD_DIR carries no label: `ctest -N -LE .`
# lists exactly those (a test with a label matches "." and is left out).
# ctest's "Label Time Summary" (tests/run.sh) then accounts for every test.
# Usage: labels_check.sh BUILD_DIR
set -euo pipefail
listing=$(ctest --test-dir "$1" -N -LE .)
unlabelled=$(grep -E '^ *Test +#[0-9]+:' <<<"$listing" || true)
total=$(ctest --test-dir "$1" -N | sed -n 's/^Total Tests: //p')
if [ -n "$unlabelled" ]; then
  echo "FAIL: tests without a label (set_property(DIRECTORY PROPERTY LABELS ...)"
  echo "in their CMakeLists.txt, or LABELS on the test):"
  echo "$unlabelled"
  exit 1
fi
[ "${total:-0}" -gt 0 ] || { echo "FAIL: ctest lists no tests in $1"; exit 1; }
echo "all $total tests carry a label"
