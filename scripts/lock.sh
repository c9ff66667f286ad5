#!/usr/bin/env bash
# make lock: resolve each image's short requirements.in into a hash-pinned requirements.lock.
# The base is resolved first; the images built FROM it are constrained by its lock so that
# the packages they share keep the base's versions (its layer is reused, never changed).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
export UV_NO_CONFIG=1

# Wheels that come from a local folder here (pip's find-links, e.g. the PyTorch CPU build
# where PyTorch's own index cannot be reached) or from PyTorch's CPU index elsewhere.
# shellcheck source=scripts/lib.sh
. scripts/lib.sh  # wheel_dirs
find_links=()
for dir in $(wheel_dirs); do find_links+=(--find-links "$dir"); done
if [ ${#find_links[@]} -eq 0 ]; then
  find_links+=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

# Left out of every lock: rfc3987-syntax (and its lark), an optional extra of jsonschema that
# jupyter-events pulls in. Importing it builds dozens of parsers, about 1 s of CPU in every
# student's server start (python-jsonschema/jsonschema#1428); jsonschema only skips the "iri"
# format checks without it.
LEFT_OUT=(--no-emit-package rfc3987-syntax --no-emit-package lark)

# The platforms: dlab/base, dlab/cpu and dlab/hub are built for amd64 and arm64, dlab/gpu for amd64.
AMD64=(--python-platform x86_64-manylinux_2_36)
ARM64=(--python-platform aarch64-manylinux_2_36)

compile() { # compile IN LOCK PLATFORM-ARGS... [extra uv args]
  local in=$1 lock=$2; shift 2
  echo "locking $lock"
  "$UV" pip compile --quiet ${UPGRADE---upgrade} --generate-hashes "${LEFT_OUT[@]}" \
    --python-version 3.11 --custom-compile-command "make lock" "$@" "$in" -o "$lock"
}

# same_on_arm64 IN LOCK [extra uv args]: a lock resolved for amd64 must hold exactly the same pins
# on arm64 (its hashes cover both: uv records every file of a pinned version), or make lock stops.
same_on_arm64() {
  local in=$1 lock=$2 tmp; shift 2
  tmp=$(mktemp); cp "$lock" "$tmp"
  UPGRADE="" compile "$in" "$tmp" "${ARM64[@]}" "$@" >/dev/null
  if ! diff -q "$lock" "$tmp" >/dev/null; then
    echo "$lock resolves differently on arm64; give $in platform markers (as images/cpu/requirements.in does):" >&2
    diff "$lock" "$tmp" | grep '^[<>] [a-z]' >&2 || true
    rm -f "$tmp"; exit 1
  fi
  rm -f "$tmp"
}

targets=${*:-base cpu gpu hub legacy tests oidc}
for image in $targets; do
  case $image in
    base) compile images/base/bootstrap.in images/base/bootstrap.lock "${AMD64[@]}"
          same_on_arm64 images/base/bootstrap.in images/base/bootstrap.lock
          compile images/base/requirements.in images/base/requirements.lock "${AMD64[@]}"
          same_on_arm64 images/base/requirements.in images/base/requirements.lock ;;
    # The frameworks differ by platform (requirements.in's markers): one lock for both, resolved
    # for every platform at once (uv's universal mode); each image installs its platform's lines.
    cpu)  compile images/cpu/requirements.in images/cpu/requirements.lock --universal \
            -c images/base/requirements.lock "${find_links[@]}" ;;
    # dlab/legacy's second environment, on its own (numpy 1.x): no constraint from the base's lock.
    # Universal like cpu's (PaddlePaddle is amd64 only); dlib's source release and its build's tools.
    legacy) compile images/legacy/requirements.in images/legacy/requirements.lock --universal
            compile images/legacy/dlib.in images/legacy/dlib.lock "${AMD64[@]}"
            same_on_arm64 images/legacy/dlib.in images/legacy/dlib.lock ;;
    gpu)  compile images/gpu/requirements.in images/gpu/requirements.lock "${AMD64[@]}" -c images/base/requirements.lock ;;
    hub)  compile images/hub/requirements.in images/hub/requirements.lock "${AMD64[@]}"
          same_on_arm64 images/hub/requirements.in images/hub/requirements.lock
          # configurable-http-proxy and its npm dependencies, with their integrity hashes.
          command -v npm >/dev/null || { echo "make lock needs npm for images/hub/package-lock.json (apt-get install npm)" >&2; exit 1; }
          (cd images/hub && npm install --package-lock-only --omit-lockfile-registry-resolved=false \
             --no-audit --no-fund --loglevel=error) ;;
    oidc) # the tests' identity provider (tests/oidc), pinned like the proxy
          (cd tests/oidc && npm install --package-lock-only --omit-lockfile-registry-resolved=false \
             --no-audit --no-fund --loglevel=error) ;;
    tests) "$UV" pip compile --quiet ${UPGRADE---upgrade} --generate-hashes --python-version 3.11 \
            --custom-compile-command "make lock" -c images/hub/requirements.lock -c images/cpu/requirements.lock \
            tests/requirements.in -o tests/requirements.lock ;;
    *)    [ -f "images/$image/requirements.in" ] || { echo "no images/$image/requirements.in" >&2; exit 2; }
          compile "images/$image/requirements.in" "images/$image/requirements.lock" "${AMD64[@]}" ;;
  esac
done
