#!/usr/bin/env bash
# docker/deb/configure.sh BUILD_DIR: configures BUILD_DIR (Release, ccache
# when installed) without the tests when it is new; an existing build
# folder (tests/run.sh's build/, say) keeps its settings. Used by
# server/build.sh and docker/deb/build_deb.sh, from the repository root.
set -euo pipefail
build=$1
if [ -f "$build/CMakeCache.txt" ]; then exit 0; fi
args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGAMEOPT_BUILD_TESTS=OFF)
if command -v ccache >/dev/null; then
  args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake "${args[@]}" >/dev/null
