#!/usr/bin/env bash
# Installs the Debian bookworm packages gameopt needs, only those missing.
# Used by tests/run.sh and client/demo.sh; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libssl-dev  # OpenSSL::Crypto: token identities (server/service/auth.cc)
  libprotobuf-dev protobuf-compiler
  libeigen3-dev libabsl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  grpc-proto
  prometheus-cpp-dev  # the /metrics endpoint (--metrics_address)
  gnuplot-nox
  # libFuzzer targets (tests/fuzz) and sanitizer builds (tests/sanitize.sh).
  clang libclang-rt-14-dev
  clang-format  # tests/format_check.sh (ctest clang_format)
  openssl  # test certificates (tests/tls/make_test_certs.sh)
  file  # cpack (the .deb of docker/deb/, tests/docker/deb_test.sh)
  python3 python3-grpcio python3-protobuf python3-numpy
  # Python and Node.js workers (client/python, client/node, tests/python).
  python3-torch python3-matplotlib python3-venv python3-pip
  python3-setuptools python3-wheel python3-pytest nodejs
  chromium  # the live page's test (tests/e2e/live_page_test.sh)
  # The Fashion-MNIST GAN (client/python/gameopt/fashion*.py): the idx
  # files under /usr/share/datasets/fashion-mnist; scipy is not needed.
  dataset-fashion-mnist
)

extra=()
# Debian's nodejs comes without npm (NodeSource's bundles it): add Debian's
# npm package only where no npm answers, since the two conflict.
if ! command -v npm >/dev/null 2>&1; then extra+=(npm); fi

# shellcheck source=docker/deb/apt_install_missing.sh
source "$(dirname "$0")/../docker/deb/apt_install_missing.sh"
apt_install_missing "${packages[@]}" "${extra[@]}"
