#!/usr/bin/env bash
# gameopt_client (2 worker threads) against a gameopt_server process on a
# free loopback port; then SIGTERM stops the server cleanly.
set -euo pipefail
build=$(cd "$1" && pwd)
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/server/gameopt_server" --address 127.0.0.1:0 >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$dir/server.log" && break; sleep 0.1; done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/server.log" | head -1)
[ -n "$address" ] || { cat "$dir/server.log"; exit 1; }
"$build/client/gameopt_client" play --server "$address" --game bilinear \
  --algorithm conopt --workers 2 --steps 200 --live=false --plots=false \
  --out "$dir/out" | tee "$dir/client.log"
distance=$(sed -n 's/^RESULT.* distance=\([^ ]*\).*/\1/p' "$dir/client.log")
awk -v d="$distance" 'BEGIN { exit !(d < 1e-6) }' || { echo "FAIL: distance $distance"; exit 1; }
grep -q 'worker 1 (worker-' "$dir/server.log" || { echo "FAIL: no worker events logged"; cat "$dir/server.log"; exit 1; }
kill -TERM "$pid"
start=$(date +%s%N)
wait "$pid"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "server stopped in ${elapsed_ms} ms"
[ "$elapsed_ms" -lt 1000 ] || { echo "FAIL: shutdown took ${elapsed_ms} ms"; exit 1; }
echo "binaries test passed"
