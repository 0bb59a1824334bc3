#!/usr/bin/env bash
# docker/deb/build_deb.sh [BUILD_DIR]: the Debian package, in one command
# from a bare Debian bookworm: installs the build packages
# (docker/deb/install_build_deps.sh), configures BUILD_DIR (default build/;
# without the tests when new), builds only what the package holds and runs
# cpack (the gameopt_deb target, docker/deb/CMakeLists.txt). Prints the path
# of BUILD_DIR/packages/gameopt_VERSION_ARCH.deb on its last line; install
# it with `sudo apt install ./gameopt_*.deb`. GAMEOPT_JOBS: compile jobs
# (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
docker/deb/install_build_deps.sh
docker/deb/configure.sh "$build"
rm -f "$build"/packages/gameopt_*.deb
cmake --build "$build" -j "${GAMEOPT_JOBS:-$(nproc)}" --target gameopt_deb >/dev/null
(cd "$build/packages" && ls -d "$PWD"/gameopt_*.deb)
