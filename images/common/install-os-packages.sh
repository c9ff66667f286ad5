#!/usr/bin/env bash
# install-os-packages.sh [PACKAGE...]: Debian packages from the archive, lists and caches removed after.
# Bind-mounted into a RUN step (never left in a layer). Plain HTTP to the Debian archive: no CA
# bundle is needed.
#
# With no argument: the OS layer that dlab/base and dlab/hub share, the archive's updates and
# Python. Both Dockerfiles start with this step, word for word, so BuildKit runs it once for both
# (even as they build side by side): emulated for arm64, Debian's installation of Python is
# minutes (it compiles its standard library). Keep anything image-specific out of it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
shared=(
  # HTTPS for pip, git and dataset downloads; the hub's own HTTPS calls (an OAuth authenticator's)
  ca-certificates
  # /etc/services and /etc/protocols, which Python's socket module reads
  netbase
  # Python 3.11 and venv: the interpreter of /opt/venv
  python3
  python3-venv
  # PID 1: reaps zombies and forwards signals (Ctrl-C, `make down`'s SIGTERM)
  tini
)
apt-get update --yes
if [ $# -eq 0 ]; then
  apt-get upgrade --yes
  set -- "${shared[@]}"
fi
apt-get install --yes --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
