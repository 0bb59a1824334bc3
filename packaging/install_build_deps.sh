#!/usr/bin/env bash
# Installs the Debian bookworm packages that building gameopt_server,
# gameopt_client, gameopt_health_check, the Python stubs and the .deb needs
# (no test packages: tests/install_deps.sh has those), only those missing.
# Used by server/build.sh and packaging/build_deb.sh; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config  # build-essential brings dpkg-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc  # grpc_*_plugin
  libprotobuf-dev protobuf-compiler
  libeigen3-dev libabsl-dev prometheus-cpp-dev
  grpc-proto  # grpc/health/v1/health.proto (gameopt_health_check)
  file        # cpack's dpkg-shlibdeps step finds the ELF files with it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
