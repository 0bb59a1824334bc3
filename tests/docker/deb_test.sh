#!/usr/bin/env bash
# tests/docker/deb_test.sh: the Debian package on a fresh bookworm. Makes
# the .deb (the gameopt_deb target of $GAMEOPT_BUILD_DIR, default build/;
# or takes $GAMEOPT_DEB), then runs tests/docker/deb_in_container.sh in a
# throw-away container of the plain debian:bookworm base image (made once
# by docker/engine.sh, as docker/test.sh does): `apt install ./gameopt_*.deb`
# from the apt mirror, the server and its health check, gameopt_client, and
# a Python session through the installed gameopt.LocalServer.
# ctest label "docker" (tests/docker/CMakeLists.txt). Prints "SKIP: why"
# and exits 0 when no engine can be set up or GAMEOPT_SKIP_DOCKER=1.
# GAMEOPT_DOCKER_STATE: as in docker/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

log_tag=deb_test
# shellcheck source=docker/script_log.sh
source docker/script_log.sh

[ "${GAMEOPT_SKIP_DOCKER:-0}" = 1 ] && skip "GAMEOPT_SKIP_DOCKER=1"
state=${GAMEOPT_DOCKER_STATE:-/var/tmp/gameopt-docker}
engine=""
container=gameopt-deb-test-$$
work=$(mktemp -d)
cleanup() {
  set +e
  [ -n "$engine" ] && $engine rm -f "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

stage "the .deb"
deb=${GAMEOPT_DEB:-}
if [ -z "$deb" ]; then
  build=${GAMEOPT_BUILD_DIR:-build}
  rm -f "$build"/packages/gameopt_*.deb
  cmake --build "$build" --target gameopt_deb >"$work/deb.log" 2>&1 ||
    { cat "$work/deb.log"; die "building the .deb failed"; }
  deb=$(ls "$build"/packages/gameopt_*.deb)
fi
[ -f "$deb" ] || die "no .deb at $deb"
say "$deb ($(du -h "$deb" | cut -f1))"
cp "$deb" "$work/"

# shellcheck source=docker/engine.sh
source docker/engine.sh
base=localhost/debian:bookworm
image_exists "$base" || base=docker.io/library/debian:bookworm

stage "apt install ./$(basename "$deb") in a fresh $base container"
E run --rm --name "$container" -v "$work:/deb:ro" \
  -v "$PWD/tests/docker/deb_in_container.sh:/deb_in_container.sh:ro" \
  "$base" bash /deb_in_container.sh 2>&1 | tee "$work/container.log" || true
grep -q '^DEB_TEST_PASSED$' "$work/container.log" || die "the container checks failed"
stage "done"
say "deb_test.sh passed in $(($(date +%s) - started)) s"
