#!/usr/bin/env bash
# os-base.sh [--refresh] [ARCH]: provide the OS image that dlab/base and dlab/hub build FROM,
# tagged dlab/os:bookworm (this machine's architecture) or dlab/os:bookworm-ARCH (another one:
# arm64, amd64; scripts/emulation.sh runs it here), and record where it came from in its
# org.dlab.os.source label (shown by dlab-info in every image).
#
# 1. a registry can be reached: the official debian:bookworm-slim, recorded by its digest;
# 2. it cannot: a bookworm root file system made by debootstrap from the Debian archive and
#    imported, recorded with the archive's Release date (to rebuild it byte for byte, point
#    DEBIAN_MIRROR at http://snapshot.debian.org/archive/debian/<that date>).
set -euo pipefail
OFFICIAL=${DEBIAN_IMAGE:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"  # say, native_arch

refresh=no
if [ "${1:-}" = --refresh ]; then refresh=yes; shift; fi
arch=${1:-$(native_arch)}
TAG=dlab/os:bookworm; [ "$arch" = "$(native_arch)" ] || TAG=dlab/os:bookworm-$arch

if docker image inspect "$TAG" >/dev/null 2>&1 && [ "$refresh" = no ]; then
  exit 0
fi

context=$(mktemp -d /var/tmp/dlab-os.XXXXXX)
trap 'rm -rf "$context"' EXIT
# build_os DOCKERFILE-LINES: build $context for linux/$arch as $TAG, through Compose's BuildKit
# (the docker CLI may have no buildx plugin; its legacy builder cannot pick a platform).
build_os() {
  printf '%s\n' "$@" >"$context/Dockerfile"
  printf 'services:\n  os:\n    image: "%s"\n    platform: linux/%s\n    build: {context: .}\n' "$TAG" "$arch" \
    >"$context/compose.yaml"
  COMPOSE_BAKE=false docker compose -f "$context/compose.yaml" --project-name dlab-os build --quiet >/dev/null
}

# A pull that hangs where no registry answers gives up after DLAB_PULL_TIMEOUT seconds (macOS has no `timeout`).
pull() { if command -v timeout >/dev/null; then timeout "${DLAB_PULL_TIMEOUT:-60}" docker pull "$@"; else docker pull "$@"; fi; }

if pull -q --platform "linux/$arch" "$OFFICIAL" >/dev/null 2>&1; then
  digest=$(docker image inspect -f '{{index .RepoDigests 0}}' "$OFFICIAL")
  say "OS base: $digest (linux/$arch)"
  # A one-line build only to attach the provenance label to the pulled image.
  build_os "FROM $digest" "LABEL org.dlab.os.source=\"$digest (linux/$arch)\""
  exit 0
fi

say "no container registry reachable: bootstrapping Debian bookworm for $arch from $MIRROR (about a minute; more when emulated)"
command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap (or run scripts/install-docker.sh as root)"; exit 1; }
[ "$(id -u)" = 0 ] || { say "debootstrap needs root: run 'sudo make build' once, or make dlab/os:bookworm another way"; exit 1; }
rootfs=$(mktemp -d /var/tmp/dlab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$context"' EXIT
debootstrap --variant=minbase --arch="$arch" bookworm "$rootfs" "$MIRROR" >/var/tmp/dlab-debootstrap.log 2>&1 \
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
source="debootstrap bookworm minbase $arch from $MIRROR, Release date $release_date"
# FROM scratch + ADD rather than `docker import`, which records this machine's architecture
# whatever the files are; a build for linux/$arch records theirs.
tar --numeric-owner -C "$rootfs" -cf "$context/rootfs.tar" .
build_os "FROM scratch" "ADD rootfs.tar /" "ENV LANG=C.UTF-8" "LABEL org.dlab.os.source=\"$source\"" 'CMD ["bash"]'
say "OS base: $source"
