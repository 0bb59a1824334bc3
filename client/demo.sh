#!/usr/bin/env bash
# The gameopt tour: installs what is missing, builds, starts a local
# gameopt_server and plays the sample games (client/README.md) against it:
#   1. the bilinear game, SimGD against ConOpt;
#   2. the Dirac-GAN table: each variant x SimGD, AltGD, ConOpt;
#   3. the mixture of Gaussians, simultaneous RMSProp against ConOpt.
# Prints the tables and where the plots are. A few minutes on 2 cores.
#
# Environment: GAMEOPT_DEMO_OUT (results folder, default results/demo),
# GAMEOPT_DEMO_MOG_STEPS (default 20000), GAMEOPT_BUILD_DIR (default build),
# GAMEOPT_DEMO_MOG=short: section 3 in 6,000 steps with lr 2e-3 decayed to
# 1e-4 along a cosine (else the same; ConOpt covers 8 modes from step
# 3,000 on, simultaneous RMSProp at most 1): a quarter of the time, used by
# the demo test (tests/e2e/demo_test.sh).
# GAMEOPT_DEMO_WIRE=bfloat16 (or float16, int8_block): section 3 over that
# compressed wire, both ways, with stochastic rounding (server/README.md,
# "Compressed wire").
set -euo pipefail
cd "$(dirname "$0")/.."

build=${GAMEOPT_BUILD_DIR:-build}
./tests/install_deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
  --target gameopt_server gameopt_client

out=${GAMEOPT_DEMO_OUT:-results/demo}
mog_steps=${GAMEOPT_DEMO_MOG_STEPS:-20000}
mog_args=(--rmsprop_preset tf1 --steps "$mog_steps" --metrics_every 1000)
mog_title="RMSProp (TF1 preset) lr 1e-4, batch 512, $mog_steps steps"
mog_time="~2 minutes"
if [ "${GAMEOPT_DEMO_MOG:-}" = short ]; then
  mog_args=(--rmsprop_preset tf1 --lr 2e-3 --lr_schedule cosine --lr_eta_min 1e-4
    --steps 6000 --metrics_every 500)
  mog_title="RMSProp (TF1 preset) lr 2e-3 cosine to 1e-4, batch 512, 6000 steps"
  mog_time="~30 s"
fi
if [ -n "${GAMEOPT_DEMO_WIRE:-}" ]; then
  mog_args+=(--wire "$GAMEOPT_DEMO_WIRE" --wire_stochastic)
  mog_title="$mog_title, $GAMEOPT_DEMO_WIRE wire"
fi
mkdir -p "$out"

# A server on a free loopback port; its first line names the port.
"$build"/server/gameopt_server --address 127.0.0.1:0 --quiet >"$out/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$out/server.log" 2>/dev/null && break
  sleep 0.1
done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/server.log" | head -1)
[ -n "$address" ] || { echo "gameopt_server did not start:"; cat "$out/server.log"; exit 1; }
echo "gameopt_server listening on $address (log: $out/server.log)"

# play NAME ARGS...: one session; prints nothing, keeps the RESULT line.
play() {
  local name=$1
  shift
  "$build"/client/gameopt_client play --server "$address" --live=false \
    --out "$out/$name" "$@" >"$out/$name.log" 2>&1 ||
    { echo "gameopt_client failed for $name:"; cat "$out/$name.log"; exit 1; }
}
# metric NAME KEY: a value of NAME's RESULT line.
metric() {
  sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$out/$1.log"
}

echo
echo "== 1. Bilinear game x*y from (1, 1), h = 0.2, 300 steps =="
play bilinear-simgd --game bilinear --algorithm simgd --steps 300
play bilinear-conopt --game bilinear --algorithm conopt --gamma 1 --steps 300
printf '%-10s %16s\n' algorithm "final |(x, y)|"
printf '%-10s %16s\n' simgd "$(metric bilinear-simgd distance)"
printf '%-10s %16s\n' conopt "$(metric bilinear-conopt distance)"

echo
echo "== 2. Dirac-GAN from (1, 1), h = 0.2, 500 steps: distance to (0, 0) =="
echo "   (ConOpt gamma = 1; r1 and wgan-gp penalty weight 0.3; wgan clip 1)"
printf '%-15s %12s %12s %12s\n' variant simgd altgd conopt
for variant in gan nsgan wgan wgan-gp r1 instance-noise; do
  pids=()
  for algorithm in simgd altgd conopt; do
    play "dirac-$variant-$algorithm" --game dirac --variant "$variant" \
      --algorithm "$algorithm" --gamma 1 --penalty 0.3 --steps 500 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  printf '%-15s %12s %12s %12s\n' "$variant" \
    "$(metric "dirac-$variant-simgd" distance)" \
    "$(metric "dirac-$variant-altgd" distance)" \
    "$(metric "dirac-$variant-conopt" distance)"
done

echo
echo "== 3. Mixture of 8 Gaussians, $mog_title =="
echo "   (both sessions run at once; $mog_time on 2 cores)"
play mog-simgd --game mog --algorithm simgd "${mog_args[@]}" &
simgd_pid=$!
play mog-conopt --game mog --algorithm conopt --gamma 10 "${mog_args[@]}" &
conopt_pid=$!
wait "$simgd_pid"
wait "$conopt_pid"
printf '%-22s %14s %16s\n' algorithm "modes covered" "off-mode share"
printf '%-22s %14s %16s\n' "simultaneous RMSProp" \
  "$(metric mog-simgd modes_covered)/8" "$(metric mog-simgd off_mode_share)"
printf '%-22s %14s %16s\n' "ConOpt (gamma 10)" \
  "$(metric mog-conopt modes_covered)/8" "$(metric mog-conopt off_mode_share)"

echo
echo "Plots (PNG) and per-step metrics (metrics.csv, server_metrics.csv) are in $out/:"
for f in bilinear-simgd/trajectory.png bilinear-conopt/trajectory.png \
  dirac-gan-simgd/trajectory.png dirac-gan-conopt/trajectory.png \
  mog-simgd/samples.png mog-conopt/samples.png \
  mog-conopt/server_metrics.png; do
  [ -f "$out/$f" ] && echo "  $out/$f"
done
echo "demo finished"
