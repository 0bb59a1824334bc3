#!/usr/bin/env bash
# Runs inside a fresh debian:bookworm container (tests/docker/deb_test.sh):
# installs /deb/gameopt_*.deb with apt, as a user would, then checks that
# it works without anything else: the server starts, gameopt_health_check
# passes, gameopt_client plays against it, /usr/bin/python3 imports the
# installed gameopt (shipped stubs, no protoc) and plays a session through
# LocalServer() found on PATH, SIGTERM exits 0, and removal leaves nothing.
set -euo pipefail
say() { echo "[in container] $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends /deb/gameopt_*.deb >/tmp/apt.log 2>&1 ||
  { cat /tmp/apt.log; die "apt install of the .deb failed"; }
say "installed: $(dpkg-query -W -f='${Package} ${Version}' gameopt)"
say "Depends: $(dpkg-query -W -f='${Depends}' gameopt)"
! command -v protoc >/dev/null || die "protoc is installed: the stub check would prove nothing"

gameopt_server --address=127.0.0.1:50051 --health_address=127.0.0.1:50052 \
  >/tmp/server.log 2>&1 &
server=$!
healthy=""
for _ in $(seq 50); do
  gameopt_health_check --address=127.0.0.1:50052 --service=gameopt.v1.GameOptimizer \
    >/dev/null 2>&1 && { healthy=1; break; }
  sleep 0.2
done
[ -n "$healthy" ] || { cat /tmp/server.log; die "gameopt_health_check never passed"; }
say "gameopt_server is up, gameopt_health_check: $(gameopt_health_check \
  --address=127.0.0.1:50052 --service=gameopt.v1.GameOptimizer)"

gameopt_client play --server=127.0.0.1:50051 --game=dirac --algorithm=conopt \
  --gamma=1 --steps=300 --live=false --plots=false --out=/tmp/play >/tmp/play.log 2>&1 ||
  { cat /tmp/play.log; die "gameopt_client play failed"; }
say "gameopt_client: $(grep '^RESULT' /tmp/play.log)"

cd /tmp  # nowhere near a checkout
/usr/bin/python3 - <<'PY' || die "the Python session failed"
import gameopt
import gameopt.v1.gameopt_pb2 as pb

prefix = "/usr/lib/python3/dist-packages/gameopt/"
assert gameopt.__file__.startswith(prefix), gameopt.__file__
assert pb.__file__.startswith(prefix), pb.__file__  # shipped, not generated

with gameopt.Client("127.0.0.1:50051") as client:  # the server started above
    client.list_sessions()  # answers through the installed stubs

with gameopt.LocalServer() as server:  # finds /usr/bin/gameopt_server
    assert server.binary == "/usr/bin/gameopt_server", server.binary
    game = gameopt.BilinearGame()
    with gameopt.Client(server.address) as client:
        sid = client.create_session(gameopt.build_session_config(
            game, algorithm="conopt", gamma=1.0, learning_rate=0.2,
            max_steps=50))
        gameopt.Worker(server.address, sid, game).run()
        x = client.get_parameters(sid, game.players()).flat
        assert abs(x).max() < 1e-2, x
print(f"[in container] python3: LocalServer() ran {server.binary}; bilinear "
      f"ConOpt, 50 steps, max |x| = {abs(x).max():.2e}")
PY

kill -TERM "$server"
code=0
wait "$server" || code=$?
[ "$code" = 0 ] || { cat /tmp/server.log; die "gameopt_server exited $code on SIGTERM"; }
say "SIGTERM: gameopt_server exited 0"

apt-get remove -y -qq gameopt >/tmp/remove.log 2>&1 || { cat /tmp/remove.log; die "apt remove failed"; }
[ ! -e /usr/lib/python3/dist-packages/gameopt ] ||
  die "removal left $(find /usr/lib/python3/dist-packages/gameopt)"
say "apt remove gameopt left nothing behind"
echo "DEB_TEST_PASSED"
