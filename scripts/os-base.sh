#!/usr/bin/env bash
# Provide the OS image that dlab/base builds FROM, tagged dlab/os:bookworm, and record where it
# came from in its org.dlab.os.source label (shown by dlab-info in every image).
#
# 1. a registry can be reached: the official debian:bookworm-slim, recorded by its digest;
# 2. it cannot: a bookworm root file system made by debootstrap from the Debian archive and
#    imported, recorded with the archive's Release date (to rebuild it byte for byte, point
#    DEBIAN_MIRROR at http://snapshot.debian.org/archive/debian/<that date>).
set -euo pipefail
TAG=dlab/os:bookworm
OFFICIAL=${DEBIAN_IMAGE:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"  # say

if docker image inspect "$TAG" >/dev/null 2>&1 && [ "${1:-}" != "--refresh" ]; then
  exit 0
fi

if timeout "${DLAB_PULL_TIMEOUT:-60}" docker pull -q "$OFFICIAL" >/dev/null 2>&1; then
  digest=$(docker image inspect -f '{{index .RepoDigests 0}}' "$OFFICIAL")
  say "OS base: $digest"
  # A one-line build only to attach the provenance label to the pulled image.
  printf 'FROM %s\nLABEL org.dlab.os.source="%s"\n' "$digest" "$digest" | docker build -q -t "$TAG" - >/dev/null
  exit 0
fi

say "no container registry reachable: bootstrapping Debian bookworm from $MIRROR (about a minute)"
command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap (or run scripts/install-docker.sh as root)"; exit 1; }
[ "$(id -u)" = 0 ] || { say "debootstrap needs root: run 'sudo make build' once, or make dlab/os:bookworm another way"; exit 1; }
rootfs=$(mktemp -d /var/tmp/dlab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --arch=amd64 bookworm "$rootfs" "$MIRROR" >/var/tmp/dlab-debootstrap.log 2>&1 \
  || { say "debootstrap failed; see /var/tmp/dlab-debootstrap.log"; exit 1; }
release_date=$(sed -n 's/^Date: //p' "$rootfs"/var/lib/apt/lists/*_dists_bookworm_Release 2>/dev/null | head -n 1)
# Same sources as the official image: the release, its updates and security.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
# Keep the image small, as the official slim image does.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
       "$rootfs"/var/log/*.log "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
source="debootstrap bookworm minbase from $MIRROR, Release date $release_date"
tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.dlab.os.source=\"$source\"" - "$TAG" >/dev/null
say "OS base: $source"
