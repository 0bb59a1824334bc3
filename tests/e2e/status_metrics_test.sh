#!/usr/bin/env bash
# The monitoring surface through the real binaries: gameopt_server with
# --metrics_address, a game played by gameopt_client, then
# `gameopt_client status` (once and with --watch) and a scrape of /metrics.
set -euo pipefail
build=$(cd "$1" && pwd)
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/server/gameopt_server" --address 127.0.0.1:0 \
  --metrics_address 127.0.0.1:0 --quiet >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'metrics on' "$dir/server.log" && break; sleep 0.1; done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/server.log" | head -1)
metrics=$(sed -n 's/^gameopt_server metrics on \([^ ]*\).*/\1/p' "$dir/server.log" | head -1)
[ -n "$address" ] && [ -n "$metrics" ] || { cat "$dir/server.log"; exit 1; }

"$build/client/gameopt_client" play --server "$address" --game bilinear \
  --algorithm conopt --workers 2 --steps 60 --live=false --plots=false \
  --keep_session --out "$dir/out" >"$dir/play.log"

fail() { echo "FAIL: $*"; cat "$dir/status.log" 2>/dev/null || true; exit 1; }
"$build/client/gameopt_client" status --server "$address" | tee "$dir/status.log"
head -1 "$dir/status.log" | grep -q '^session  *name  *algorithm  *step  *phase  *workers' ||
  fail "no header"
grep -Eq '^s1  +bilinear  +conopt  +60/60 done  +-  +2/2  +x=' "$dir/status.log" ||
  fail "no row for the played session"

"$build/client/gameopt_client" status --server "$address" --watch 0.1 \
  --watch_count 2 >"$dir/status.log"
[ "$(grep -o $'\033\\[2J' "$dir/status.log" | wc -l)" -eq 2 ] ||
  fail "--watch --watch_count 2 did not draw 2 tables"

# The scrape agrees with what status printed.
/usr/bin/python3 - "$metrics" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
values = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        key, value = line.rsplit(" ", 1)
        values[key] = float(value)
assert values['gameopt_step{session="s1"}'] == 60, values
assert values['gameopt_done{session="s1"}'] == 1
assert values['gameopt_phase_latency_seconds_count{session="s1",phase="consensus"}'] == 60
assert values['gameopt_bytes_received_total{session="s1"}'] > 0
print("scraped", len(values), "samples")
PY
"$build/client/gameopt_client" status --server 127.0.0.1:1 >/dev/null 2>&1 &&
  fail "status against no server succeeded"
echo "status and metrics test passed"
