#!/usr/bin/env bash
# Installs the Debian bookworm packages that building gameopt_server,
# gameopt_client, gameopt_health_check, the Python stubs and the .deb needs
# (no test packages: tests/install_deps.sh has those), only those missing.
# Used by server/build.sh and docker/deb/build_deb.sh; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config  # build-essential brings dpkg-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc  # grpc_*_plugin
  libssl-dev  # OpenSSL::Crypto: token identities (server/service/auth.cc)
  libprotobuf-dev protobuf-compiler
  libeigen3-dev libabsl-dev prometheus-cpp-dev
  grpc-proto  # grpc/health/v1/health.proto (gameopt_health_check)
  file        # cpack's dpkg-shlibdeps step finds the ELF files with it
)

# shellcheck source=docker/deb/apt_install_missing.sh
source "$(dirname "$0")/apt_install_missing.sh"
apt_install_missing "${packages[@]}"
