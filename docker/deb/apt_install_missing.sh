# docker/deb/apt_install_missing.sh: apt_install_missing PACKAGE... installs
# those of the Debian packages that are not installed yet (apt-get update
# first), as root or through sudo; nothing when all are there. Sourced by
# docker/deb/install_build_deps.sh and tests/install_deps.sh.
apt_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi

  echo "Installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null ||
      { echo "need root or sudo to install ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
