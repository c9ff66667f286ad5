#!/usr/bin/env bash
# build-images.sh [--arch ARCH] IMAGE...: build dlab images (base, cpu, gpu, hub) in order, tagged
# :latest and :$(cat VERSION), for this machine's architecture; with --arch arm64 (or amd64) on a
# machine of the other one, for that architecture, emulated (scripts/emulation.sh), tagged
# :latest-ARCH and :VERSION-ARCH. dlab/gpu is amd64 only. Detects by itself what this machine needs:
#   - no Docker engine: scripts/install-docker.sh installs one (Debian/Ubuntu, root) or says what to do;
#   - no registry to pull Debian from: scripts/os-base.sh bootstraps it from the Debian archive;
#   - an intercepting HTTPS proxy: the CA bundle that pip is configured with (pip config's `cert`,
#     PIP_CERT, or DLAB_CA_BUNDLE) goes to the build as a BuildKit secret, never into a layer;
#   - a local wheelhouse (pip's find-links, or DLAB_WHEELHOUSE): its wheels are offered to the
#     build, which accepts them only where their hashes match the lock;
#   - PyTorch's CPU index reachable: used for the CPU build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh  # say, native_arch, ca_bundle, wheel_dirs

export DLAB_ARCH DLAB_PLATFORM DLAB_TAG_SUFFIX=""
DLAB_ARCH=$(native_arch)
if [ "${1:-}" = --arch ]; then
  DLAB_ARCH=${2:?usage: $0 --arch arm64|amd64 IMAGE...}; shift 2
  case $DLAB_ARCH in amd64|arm64) ;; *) say "unknown architecture '$DLAB_ARCH' (have: amd64 arm64)"; exit 2 ;; esac
  [ "$DLAB_ARCH" = "$(native_arch)" ] || DLAB_TAG_SUFFIX=-$DLAB_ARCH
fi
DLAB_PLATFORM=linux/$DLAB_ARCH
[ $# -gt 0 ] || { echo "usage: $0 [--arch arm64|amd64] base|cpu|gpu|hub..." >&2; exit 2; }
# images/hierarchy.txt: each image's parent and inputs.
parent_of() { awk -v image="$1" '$1 == image { print $2 }' images/hierarchy.txt; }
inputs_of() { awk -v image="$1" '$1 == image { for (i = 3; i <= NF; i++) print $i }' images/hierarchy.txt; }
# The images asked for, each after the images it is built on (`cpu` builds base, then cpu).
wanted=()
add_with_parents() {
  local parent; parent=$(parent_of "$1")
  if [ -n "$parent" ] && [ "$parent" != os ]; then add_with_parents "$parent"; fi
  [[ " ${wanted[*]-} " == *" $1 "* ]] || wanted+=("$1")  # (-: bash 3.2, macOS's, calls an empty array unset)
}
for image in "$@"; do
  # stock: make bench's hand-made image to compare with (bench/stock); oidc and acme: the tests'
  # identity provider (tests/oidc) and ACME authority (tests/acme); prometheus: DLAB_PROMETHEUS's
  # (images/prometheus). None is part of make build.
  [ -n "$(parent_of "$image")" ] || [[ " stock oidc acme prometheus " == *" $image "* ]] || \
    { say "unknown image '$image' (have: $(awk '!/^#/ && NF { printf "%s%s", sep, $1; sep = " " }' images/hierarchy.txt))"; exit 2; }
  if [ "$image" = gpu ] && [ "$DLAB_ARCH" != amd64 ]; then
    say "dlab/gpu is built for amd64 only (CUDA builds of the frameworks); on $DLAB_ARCH, use dlab/cpu"; exit 2
  fi
  if [ -n "$DLAB_TAG_SUFFIX" ] && [[ " stock oidc acme prometheus " == *" $image "* ]]; then
    say "$image is built for this machine's architecture only"; exit 2
  fi
  add_with_parents "$image"
done
set -- "${wanted[@]}"

scripts/install-docker.sh
[ -z "$DLAB_TAG_SUFFIX" ] || scripts/emulation.sh "$DLAB_ARCH"
# The image's OS, and this machine's (dlab/os:bookworm), where its Python packages are installed.
scripts/os-base.sh "$DLAB_ARCH"
[ -z "$DLAB_TAG_SUFFIX" ] || scripts/os-base.sh

mkdir -p .build/wheelhouse
# The CA bundle: explicit, else the one pip trusts here (only worth passing if it is not the default).
ca=$(ca_bundle)
# Written aside and renamed into place: another build running beside this one (make test's) never
# reads half a file.
bundle=$(mktemp .build/ca-bundle.XXXXXX)
if [ -n "$ca" ]; then
  cat "$ca" >"$bundle"
  say "passing the CA bundle $ca to the build as a secret"
fi
chmod 0600 "$bundle" && mv -f "$bundle" .build/ca-bundle.pem
# Local wheels, hard-linked (or copied) into the build context's ignored .build/wheelhouse; the
# wheels no longer offered are removed, the others stay in place.
offered=()
for dir in $(wheel_dirs); do
  for whl in "$dir"/*.whl; do
    [ -e "$whl" ] || continue
    offered+=("$(basename "$whl")")
    if ! [ "$whl" -ef ".build/wheelhouse/$(basename "$whl")" ]; then
      ln -f "$whl" .build/wheelhouse/ 2>/dev/null || cp "$whl" .build/wheelhouse/
    fi
  done
done
for whl in .build/wheelhouse/*.whl; do
  if [ -e "$whl" ] && [[ " ${offered[*]-} " != *" $(basename "$whl") "* ]]; then rm -f "$whl"; fi
done
if compgen -G ".build/wheelhouse/*.whl" >/dev/null; then
  say "offering local wheels: $(cd .build/wheelhouse && ls | tr '\n' ' ')"
fi
export DLAB_EXTRA_INDEX_URL=""
if curl -fsS --max-time 10 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
  DLAB_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
fi

# Provenance. revision and created come from the last commit that touched the image's inputs, so a
# rebuild at another commit that changed nothing of an image leaves it (and its cache) as it was.
export DLAB_VERSION; DLAB_VERSION=$(cat VERSION)
export DLAB_OS_SOURCE; DLAB_OS_SOURCE=$(docker image inspect -f '{{index .Config.Labels "org.dlab.os.source"}}' "dlab/os:bookworm$DLAB_TAG_SUFFIX")
inputs() {
  case $1 in
    stock) echo bench/stock images/cpu/requirements.lock ;;
    oidc) echo tests/oidc ;;
    acme) echo tests/acme ;;
    prometheus) echo images/prometheus images/common ;;
    *) inputs_of "$1" ;;
  esac
}
provenance() { # provenance IMAGE: the last commit that touched its inputs, and that commit's date
  local paths rev=unknown created=1970-01-01T00:00:00Z
  paths=$(for p in $(inputs "$1"); do if [ -e "$p" ]; then echo "$p"; fi; done)
  if git rev-parse --git-dir >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    rev=$(git log -1 --format=%H -- $paths 2>/dev/null || true)
    # shellcheck disable=SC2086
    created=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd -- $paths 2>/dev/null || true)
    # shellcheck disable=SC2086
    if [ -n "$(git status --porcelain -- $paths 2>/dev/null)" ]; then rev="${rev:-uncommitted}-dirty"; fi
  fi
  export DLAB_BUILD_IMAGE="dlab/$1" DLAB_REVISION="${rev:-unknown}" DLAB_CREATED="${created:-1970-01-01T00:00:00Z}"
  local parent; parent=$(parent_of "$1")
  case ${parent:-os} in
    os) export DLAB_BASE_IMAGE="dlab/os:bookworm$DLAB_TAG_SUFFIX" ;;
    *) export DLAB_BASE_IMAGE="dlab/$parent:$DLAB_VERSION$DLAB_TAG_SUFFIX" ;;
  esac
}

build() { # build IMAGE: one image, with its provenance; says how long it took and its size
  local image=$1 start tag no_cache=()
  say "building dlab/$image:$DLAB_VERSION$DLAB_TAG_SUFFIX ($DLAB_PLATFORM)"
  provenance "$image"
  # DLAB_NO_CACHE="IMAGE...": those images' own steps from cold, their parents' from the cache (make bench)
  [[ " ${DLAB_NO_CACHE:-} " != *" $image "* ]] || no_cache=(--no-cache)
  start=$(date +%s)
  docker compose -f images/build.yaml build ${no_cache[@]+"${no_cache[@]}"} "$image"
  tag=dlab/$image:latest$DLAB_TAG_SUFFIX; [ "$image" = stock ] && tag=dlab-bench/stock:latest; case $image in oidc|acme) tag=dlab-test/$image:latest ;; esac
  say "built $tag in $(( $(date +%s) - start )) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')"
}

# dlab/hub shares no layer with the others: it builds beside them (its output follows theirs). An
# emulated build runs mostly on one core, so this saves minutes there.
images=() hub_pid=""
for image in "$@"; do
  if [ "$image" = hub ] && [ $# -gt 1 ]; then
    build hub >.build/hub-build.log 2>&1 & hub_pid=$!
  else
    images+=("$image")
  fi
done
for image in "${images[@]}"; do build "$image"; done
if [ -n "$hub_pid" ]; then
  if wait "$hub_pid"; then tail -n 1 .build/hub-build.log >&2
  else cat .build/hub-build.log >&2; say "building dlab/hub failed (its output is above)"; exit 1; fi
fi
