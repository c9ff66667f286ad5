#!/usr/bin/env bash
# install-locked.sh LOCKFILE: install exactly the hash-pinned packages of LOCKFILE into /opt/venv.
# Bind-mounted into a RUN step by every image (never left in a layer). It reads:
#   /run/secrets/ca_bundle  an extra CA bundle for an intercepting HTTPS proxy (BuildKit secret,
#                           empty when none is needed): used for this step only;
#   /wheelhouse             local wheels (bind mount); accepted only if their hashes match the lock;
#   EXTRA_INDEX_URL         another index, e.g. PyTorch's CPU wheels, where it can be reached.
set -euo pipefail
lock=$1
if [ -s /run/secrets/ca_bundle ]; then
  export SSL_CERT_FILE=/run/secrets/ca_bundle PIP_CERT=/run/secrets/ca_bundle
fi
args=(--no-deps --require-hashes -r "$lock")
if compgen -G "/wheelhouse/*.whl" >/dev/null; then args+=(--find-links /wheelhouse); fi
if [ -n "${EXTRA_INDEX_URL:-}" ]; then args+=(--extra-index-url "$EXTRA_INDEX_URL"); fi
if [ -x /opt/venv/bin/uv ]; then
  # --compile-bytecode: the first `import tensorflow` in a new container is then not a compile.
  UV_NO_CONFIG=1 /opt/venv/bin/uv pip install --python /opt/venv/bin/python --no-cache \
    --compile-bytecode --index-strategy unsafe-best-match "${args[@]}"
else
  PIP_CONFIG_FILE=/dev/null /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check "${args[@]}"
fi
# docker-stacks' fix-permissions: group users (100) may write the venv, so `pip install` works for
# any uid started with --group-add users. Only what is not so yet: in a later image, touching the
# files of the layers below would copy them into this one. (Root's files, such as JupyterLab's
# overrides.json, stay root's.)
find /opt/venv -user "$(id -u)" ! -perm -g+w -exec chmod g+w {} +
