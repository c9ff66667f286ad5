#!/usr/bin/env bash
# install-locked.sh: install exactly the hash-pinned packages of lock files into /opt/venv.
# Bind-mounted into a RUN step by every image (never left in a layer).
#
#   install-locked.sh LOCK...
#       into the image's own /opt/venv, with its uv (dlab/gpu, on dlab/base);
#   install-locked.sh --installer BOOTSTRAP_LOCK
#       uv from its lock into /opt/installer, for this machine (the `packages` stage of base, cpu
#       and hub, which runs on the build machine's own platform);
#   install-locked.sh --for ARCH [--students] [--except PARENT_LOCK] LOCK...
#       with that uv, into /opt/venv (or VENV: dlab/legacy's second one) for the image's architecture ARCH (amd64, arm64): uv picks
#       ARCH's wheels (--python-platform) and this machine's Python compiles them (bytecode is the
#       same on every architecture). An arm64 image built on an x86-64 machine so runs no emulated
#       pip, uv or compile: its install takes seconds, not minutes. The image then copies /opt/venv
#       in. --students: the venv of the students' images, which group users may write (below).
#       --except: only what LOCK adds to its parent's lock (make check holds the versions the two
#       share equal), in a venv of its own whose copy the image lays over its parent's venv: its
#       scaffolding (interpreter links, pyvenv.cfg, activate scripts) is removed, and the names
#       of what it holds are written to /opt/new-packages.txt (the image uninstalls them from its
#       parent's venv first: Python seeds every venv with its own setuptools).
#
# It reads:
#   /run/secrets/ca_bundle  an extra CA bundle for an intercepting HTTPS proxy (BuildKit secret,
#                           empty when none is needed): used for this step only;
#   /wheelhouse             local wheels (bind mount); accepted only if their hashes match the lock;
#   EXTRA_INDEX_URL         another index, e.g. PyTorch's CPU wheels, where it can be reached.
set -euo pipefail
if [ -s /run/secrets/ca_bundle ]; then
  export SSL_CERT_FILE=/run/secrets/ca_bundle PIP_CERT=/run/secrets/ca_bundle
fi
export UV_NO_CONFIG=1 PIP_CONFIG_FILE=/dev/null
sources=()
if compgen -G "/wheelhouse/*.whl" >/dev/null; then sources+=(--find-links /wheelhouse); fi
if [ -n "${EXTRA_INDEX_URL:-}" ]; then sources+=(--extra-index-url "$EXTRA_INDEX_URL"); fi
venv=${VENV:-/opt/venv}  # (--for only)
locks() { local lock; for lock in "$@"; do printf -- '-r\n%s\n' "$lock"; done; }

# docker-stacks' fix-permissions: group users (100) may write the venv, so `pip install` works for
# any uid started with --group-add users. Only what is not so yet: in a later image, touching the
# files of the layers below would copy them into this one.
group_writable() { find "$@" -user "$(id -u)" ! -perm -g+w -exec chmod g+w {} +; }

case ${1:-} in
  --installer)
    python3 -m venv /opt/installer
    /opt/installer/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-deps --require-hashes -r "$2"
    ;;
  --for)
    arch=$2; shift 2
    case $arch in
      amd64) platform=x86_64-manylinux_2_36 ;;  # Debian bookworm's glibc
      arm64) platform=aarch64-manylinux_2_36 ;;
      *) echo "install-locked.sh: unknown architecture '$arch' (amd64 or arm64)" >&2; exit 2 ;;
    esac
    students=no new_only=no
    if [ "${1:-}" = --students ]; then students=yes; shift; fi
    if [ "${1:-}" = --except ]; then
      new_only=yes
      # The requirements (name==version, and their hash lines) of LOCK that PARENT_LOCK has not.
      awk 'function pin() { match($0, /^[A-Za-z0-9._-]+==[^ ;\\]+/); return substr($0, RSTART, RLENGTH) }
           NR == FNR { if (/^[A-Za-z0-9._-]+==/) parent[pin()] = 1; next }
           /^[A-Za-z0-9._-]+==/ { skip = (pin() in parent) }
           !skip' "$2" "$3" >/tmp/new.lock
      set -- /tmp/new.lock
    fi
    mapfile -t requirements < <(locks "$@")
    /opt/installer/bin/uv pip install --python "$venv/bin/python" --python-platform "$platform" --no-cache \
      --no-deps --require-hashes --index-strategy unsafe-best-match "${sources[@]}" "${requirements[@]}"
    # Compiled here: the first `import tensorflow` in a new container is then not a compile. Like
    # uv's --compile-bytecode, a file that is not Python 3.11 (some package's test data) is passed over.
    python3 -m compileall -q -j 0 "$venv"/lib/python3.11/site-packages >/dev/null || true
    if [ "$new_only" = yes ]; then
      rm -rf "${venv:?}"/pyvenv.cfg "${venv:?}"/include "${venv:?}"/lib64 "${venv:?}"/bin/python* "${venv:?}"/bin/activate* \
        "${venv:?}"/bin/Activate.ps1
      sed -n 's/^\([A-Za-z0-9._-]*\)==.*/\1/p' /tmp/new.lock | sort -u >/opt/new-packages.txt
    fi
    if [ "$students" = yes ]; then
      find "$venv" -type d -exec chmod g+s {} +  # (setgid: what is made in them keeps the group)
      group_writable "$venv"
    fi
    ;;
  *)
    args=(--no-deps --require-hashes "${sources[@]}")
    mapfile -t -O ${#args[@]} args < <(locks "$@")
    # --compile-bytecode: the first `import tensorflow` in a new container is then not a compile.
    /opt/venv/bin/uv pip install --python /opt/venv/bin/python --no-cache \
      --compile-bytecode --index-strategy unsafe-best-match "${args[@]}"
    group_writable /opt/venv
    ;;
esac
