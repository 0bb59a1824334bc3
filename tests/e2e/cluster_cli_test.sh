#!/usr/bin/env bash
# The cluster commands of gameopt_client against real gameopt_server
# processes on loopback: a plaintext health port checked by
# gameopt_health_check; `create` + `work` on an experiment sharded over 3
# servers (one worker process joins by id, one by name) ending where
# `play` on one server ends; a `sweep` of 6 sessions on one server.
set -euo pipefail
build=$(cd "$1" && pwd)
server_bin=$build/server/gameopt_server
client_bin=$build/client/gameopt_client
health_bin=$build/server/gameopt_health_check
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# start_server NAME [flags]: sets $address (and $health with --health_address).
start_server() {
  local name=$1
  shift
  "$server_bin" --address 127.0.0.1:0 --quiet "$@" >"$dir/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -qs 'listening on' "$dir/$name.log" && break; sleep 0.1; done
  address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/$name.log")
  health=$(sed -n 's/.*health checks on \([^ ]*\).*/\1/p' "$dir/$name.log")
  [ -n "$address" ] || { cat "$dir/$name.log"; fail "$name did not start"; }
}

# Health on its own port; the API is not served there.
start_server solo --health_address 127.0.0.1:0
solo=$address
[ -n "$health" ] || fail "no health port announced"
[ "$("$health_bin" --address "$health" --service gameopt.v1.GameOptimizer)" = SERVING ] ||
  fail "health port not SERVING"
if "$health_bin" --address "$health" --service no.such.Service 2>/dev/null; then
  fail "an unknown service reported SERVING"
fi
if "$client_bin" play --server "$health" --game bilinear --steps 1 --live=false \
  --plots=false --out "$dir/x" >"$dir/api-on-health.log" 2>&1; then
  fail "the health port serves the API"
fi
grep -q UNIMPLEMENTED "$dir/api-on-health.log" || { cat "$dir/api-on-health.log"; fail "health port: unexpected error"; }
echo "health port: SERVING, API UNIMPLEMENTED"

# One experiment, sharded over 3 servers: created, then two worker
# processes, one joining by ids, the other by name.
shards=()
for i in 0 1 2; do start_server "shard$i"; shards+=("$address"); done
servers=$(IFS=,; echo "${shards[*]}")
flags=(--game mog --batch 64 --algorithm conopt --gamma 10 --lr 1e-3 --steps 100 --workers 2 --seed 3)
ids=$("$client_bin" create --server "$servers" --name cli-mog "${flags[@]}")
[[ "$ids" == *,*,* ]] || fail "create printed '$ids', not 3 ids"
"$client_bin" work --server "$servers" --session "$ids" --game mog --batch 64 >"$dir/w1.log" 2>&1 &
w1=$!
"$client_bin" work --server "$servers" --session_name cli-mog --game mog --batch 64 >"$dir/w2.log" 2>&1 ||
  { cat "$dir/w2.log"; fail "work --session_name failed"; }
wait "$w1" || { cat "$dir/w1.log"; fail "work --session failed"; }
sharded=$(grep '^RESULT' "$dir/w1.log")
grep -q "^RESULT game=mog session=$ids .* steps=100 " "$dir/w1.log" || fail "worker 1: $sharded"
# The same experiment on one server, by play.
"$client_bin" play --server "$solo" "${flags[@]}" --live=false --plots=false --out "$dir/p" >"$dir/play.log"
metric() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$2"; }
for m in modes_covered off_mode_share; do
  [ "$(metric $m "$dir/w1.log")" = "$(metric $m "$dir/play.log")" ] ||
    fail "$m: sharded $(metric $m "$dir/w1.log"), one server $(metric $m "$dir/play.log")"
done
echo "sharded create + 2 work processes: $sharded"

# A sweep: 6 sessions at once on one server, one table.
"$client_bin" sweep --server "$solo" --game dirac --gamma 0.5,1,2 --algorithm simgd,conopt \
  --steps 300 --plots=false --out "$dir/sweep" >"$dir/sweep.log"
cat "$dir/sweep.log"
[ "$(grep -cE '^(0\.5|1|2) +(simgd|conopt) +300 ' "$dir/sweep.log")" = 6 ] || fail "sweep table"
[ "$(wc -l <"$dir/sweep/sweep.csv")" = 7 ] || fail "sweep.csv"
echo "cluster CLI test passed"
