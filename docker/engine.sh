# docker/engine.sh: the container engine and the debian:bookworm base image,
# shared by docker/test.sh and tests/docker/deb_test.sh. Source it from
# bash with `set -euo pipefail`, after defining say, stage, skip and die
# and setting $state (the folder for the rootfs and containers.conf).
#
# Sets $engine (docker or podman) and defines as_root, apt_install, E (the
# engine with podman's systemd complaints filtered out) and image_exists.
# Engine: a docker daemon that answers, else podman (installed from Debian
# when missing, with runc and the ulimits this kind of machine needs, in a
# CONTAINERS_CONF of our own). Without a registry the debian:bookworm base
# is made once with debootstrap from the apt mirror and kept in the
# engine's store. Calls skip when no engine can be set up.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$@" >/dev/null
}

if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
  engine=docker
else
  podman_packages=(podman podman-compose runc catatonit containernetworking-plugins
    netavark aardvark-dns uidmap slirp4netns fuse-overlayfs iptables python3-yaml)
  missing=()
  for p in "${podman_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "no docker daemon answers; installing ${missing[*]}"
    apt_install "${missing[@]}" || skip "no docker daemon, and podman could not be installed"
  fi
  if [ -z "${CONTAINERS_CONF:-}" ]; then
    # crun rejects hybrid cgroup hierarchies; runc copes. nofile/nproc:
    # the defaults podman derives here are too small for gRPC and apt.
    mkdir -p "$state"
    {
      echo '[containers]'
      echo 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
      if command -v runc >/dev/null; then
        echo '[engine]'
        echo 'runtime = "runc"'
      fi
    } >"$state/containers.conf"
    export CONTAINERS_CONF=$state/containers.conf
  fi
  podman info >/dev/null 2>&1 || skip "podman is installed but cannot run here: $(podman info 2>&1 | tail -1)"
  engine=podman
fi
say "engine: $engine ($($engine --version 2>/dev/null | head -1))"
# Quiet podman's complaints about the missing systemd (healthcheck timers).
E() { "$engine" "$@" 2> >(grep -v -e 'systemd' -e 'syslog' >&2); }


# ------------------------------------------------------------- base image
image_exists() { $engine image inspect "$1" >/dev/null 2>&1; }
if ! image_exists debian:bookworm && ! image_exists docker.io/library/debian:bookworm; then
  stage "base image"
  if ! timeout 120 $engine pull -q docker.io/library/debian:bookworm >/dev/null 2>&1; then
    say "no registry: making debian:bookworm with debootstrap"
    command -v debootstrap >/dev/null || apt_install debootstrap || skip "debootstrap cannot be installed"
    # The first Debian mirror apt uses (one-line or deb822 sources).
    mirror=$({ grep -rhsoE '^(deb|URIs:)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+' \
      /etc/apt/sources.list /etc/apt/sources.list.d/ || true; } |
      awk '{print $NF}' | { grep -i debian || true; } | { grep -v -e security || true; } | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$state/rootfs-bookworm
    as_root rm -rf "$rootfs"
    mkdir -p "$state"
    as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
      { tail -20 "$state/debootstrap.log"; skip "debootstrap from $mirror failed"; }
    as_root tar -C "$rootfs" -c . |
      $engine import - localhost/debian:bookworm >/dev/null 2>"$state/import.log" ||
      { cat "$state/import.log"; die "importing the debootstrap root failed"; }
    as_root rm -rf "$rootfs"
    $engine tag localhost/debian:bookworm docker.io/library/debian:bookworm
  fi
fi
