#!/usr/bin/env bash
# Runs ./client/demo.sh to the end against the build under test and checks
# that its tables show the paper's points. Usage: demo_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
out="$build/demo-results"
rm -rf "$out"
log="$build/demo-test.log"
# The short MoG configuration (client/demo.sh): the same claims, 8 modes
# for ConOpt, in a quarter of the 20,000-step run's time.
GAMEOPT_BUILD_DIR="$build" GAMEOPT_DEMO_OUT="$out" GAMEOPT_DEMO_MOG=short \
  ./client/demo.sh | tee "$log"

fail() { echo "FAIL: $*"; exit 1; }
grep -q '^demo finished' "$log" || fail "the demo did not finish"
value() { sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$out/$1.log"; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
below "$(value bilinear-conopt distance)" 1e-6 || fail "bilinear ConOpt did not converge"
below 10 "$(value bilinear-simgd distance)" || fail "bilinear SimGD did not diverge"
below "$(value dirac-gan-conopt distance)" 1e-3 || fail "Dirac-GAN ConOpt did not converge"
below 0.5 "$(value dirac-gan-simgd distance)" || fail "Dirac-GAN SimGD converged"
[ "$(value mog-conopt modes_covered)" = 8 ] || fail "MoG ConOpt did not cover 8 modes"
below "$(value mog-simgd modes_covered)" 8 || fail "MoG simultaneous RMSProp covered 8 modes"
for f in bilinear-conopt/trajectory.png mog-conopt/samples.png mog-conopt/metrics.csv; do
  [ -s "$out/$f" ] || fail "missing $out/$f"
done
echo "demo test passed"
