#!/usr/bin/env bash
# server/build.sh [BUILD_DIR]: gameopt_server for Python users, in one
# command from a bare Debian bookworm. Installs only the packages the build
# needs (docker/deb/install_build_deps.sh, as root or through sudo),
# configures BUILD_DIR (default build/; without the tests when new) and
# builds the gameopt_server target alone. gameopt.LocalServer() then finds
# BUILD_DIR/server/gameopt_server by itself when BUILD_DIR is build/ (else
# set GAMEOPT_SERVER). GAMEOPT_JOBS: compile jobs (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
docker/deb/install_build_deps.sh
docker/deb/configure.sh "$build"
cmake --build "$build" -j "${GAMEOPT_JOBS:-$(nproc)}" --target gameopt_server
echo "built $build/server/gameopt_server"
