#!/usr/bin/env bash
# The live page (server/README.md) in headless Chromium: gameopt_server with
# --metrics_address on loopback, a ConOpt Dirac-GAN session played by gameopt_client
# while the page loads, a spectrum estimate taken on it; the page's DOM must
# show the running session and plotted points on its curves and on the
# complex plane. Writes the screenshot to BUILD/tests/artifacts/live_page.png.
set -euo pipefail
build=$(cd "$1" && pwd)
command -v chromium >/dev/null || { echo "chromium missing (tests/install_deps.sh installs it)"; exit 1; }
artifacts="$build/tests/artifacts"
mkdir -p "$artifacts"
dir=$(mktemp -d)
play_pid=""
trap 'kill "$pid" $play_pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/server/gameopt_server" --address 127.0.0.1:0 \
  --metrics_address 127.0.0.1:0 --quiet >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'metrics on' "$dir/server.log" && break; sleep 0.1; done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/server.log" | head -1)
metrics=$(sed -n 's/^gameopt_server metrics on \([^ ]*\).*/\1/p' "$dir/server.log" | head -1)
[ -n "$address" ] && [ -n "$metrics" ] || { cat "$dir/server.log"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }

# A session that keeps training while the page is loaded.
"$build/client/gameopt_client" play --server "$address" --game dirac \
  --algorithm conopt --gamma 1 --lr 0.02 --workers 2 --steps 1000000 --live=false --plots=false \
  --keep_session --out "$dir/out" >"$dir/play.log" 2>&1 &
play_pid=$!

# Waits until the JSON shows s1 with at least $1 steps and $2 spectra.
wait_for() {
  /usr/bin/python3 - "$metrics" "$1" "$2" <<'PY'
import json, sys, time, urllib.request
url, steps, spectra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(300):
    data = json.load(urllib.request.urlopen(f"http://{url}/api/sessions", timeout=10))
    s = [x for x in data["sessions"] if x["id"] == "s1"]
    if s and s[0]["step"] >= steps and s[0]["spectra"] >= spectra \
       and len(s[0]["history"]["loss"]) >= 2:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(f"s1 did not reach {steps} steps and {spectra} spectra: {data}")
PY
}
wait_for 50 0 || fail "no running session"
"$build/client/gameopt_client" spectrum --server "$address" --session s1 \
  --spectrum_k 2 --spectrum_operator field --spectrum_smallest_real \
  >"$dir/spectrum.log" 2>&1 || { cat "$dir/spectrum.log"; fail "spectrum"; }
wait_for 0 1 || fail "no spectrum in /api/sessions"

# JSON error answers.
/usr/bin/python3 - "$metrics" <<'PY'
import sys, urllib.error, urllib.request
url = sys.argv[1]
for query, code in (("", 400), ("?session=nope", 404)):
    try:
        urllib.request.urlopen(f"http://{url}/api/spectrum{query}", timeout=10)
        sys.exit(f"/api/spectrum{query} answered 200")
    except urllib.error.HTTPError as e:
        assert e.code == code, (query, e.code)
# /metrics is still served next to the page, with the step diagnostics.
text = urllib.request.urlopen(f"http://{url}/metrics", timeout=10).read().decode()
assert 'gameopt_step{session="s1"}' in text, text[:500]
assert 'gameopt_stationarity_ratio{session="s1"}' in text, text
assert 'gameopt_rotation_index{session="s1"}' not in text  # ConOpt: no J xi
assert 'gameopt_cancellation{session="s1"}' in text, text
assert 'gameopt_gamma{session="s1"}' in text, text
import json
s1 = json.load(urllib.request.urlopen(f"http://{url}/api/sessions", timeout=10))["sessions"][0]
d = s1["diagnostics"]
assert d is not None and d["rotation_index"] is None, d
assert d["jt_xi_norm"] >= 0 and d["stationarity_ratio"] >= 0, d
assert d["cancellation"] is not None, d
e = json.load(urllib.request.urlopen(f"http://{url}/api/spectrum?session=s1", timeout=10))
assert e["available"] and e["operator"] == "field", e
assert len(e["smallest_real"]) == 2, e  # J + gamma J^T J of the 2-d Dirac-GAN
PY

chrome=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
        --no-first-run --user-data-dir="$dir/chrome" --virtual-time-budget=5000)
"${chrome[@]}" --dump-dom "http://$metrics/" >"$dir/dom.html" 2>"$dir/chrome.log" ||
  { cat "$dir/chrome.log"; fail "chromium --dump-dom"; }
/usr/bin/python3 - "$dir/dom.html" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
assert 'data-session="s1"' in dom, "no row for s1 in the page"
def points(canvas):
    m = re.search(r'<canvas id="%s"[^>]*data-points="(\d+)"' % canvas, dom)
    assert m, f"{canvas} was not drawn"
    return int(m.group(1))
for canvas in ("plot-xi", "plot-loss", "plot-correction", "plot-gamma",
               "plot-rate", "plot-spectrum", "plot-stationarity",
               "plot-cancellation"):
    n = points(canvas)
    assert n > 0, f"{canvas} plotted no point"
    print(canvas, n, "points")
assert "session s1 (" in dom and "conopt" in dom
PY
"${chrome[@]}" --window-size=1500,1150 --screenshot="$artifacts/live_page.png" \
  "http://$metrics/" >"$dir/chrome.log" 2>&1 || { cat "$dir/chrome.log"; fail "screenshot"; }
[ "$(stat -c %s "$artifacts/live_page.png")" -gt 10000 ] || fail "screenshot too small"
kill -0 "$play_pid" 2>/dev/null || { cat "$dir/play.log"; fail "the session stopped training before the page loaded"; }
echo "live page test passed; screenshot $artifacts/live_page.png"
