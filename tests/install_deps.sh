#!/usr/bin/env bash
# Installs the Debian bookworm packages gameopt needs, only those missing.
# Used by tests/run.sh and client/demo.sh; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler
  libeigen3-dev libabsl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  grpc-proto
  gnuplot-nox
  python3 python3-grpcio python3-protobuf python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
