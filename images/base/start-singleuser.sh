#!/bin/bash
# The single-user server that JupyterHub (DockerSpawner) starts in a student's container.
set -e
# python -s: the server imports nothing from the home's Python packages (~/.local, where the
# student's pip installs go), so no .pth file or module planted there runs in the server. The
# kernels and terminals it starts keep them. JupyterHub's disable_user_config (set by the class
# server) keeps the home's Jupyter configuration and extensions out in the same way.
# shellcheck disable=SC2086
exec python -s "$(command -v jupyterhub-singleuser)" ${NOTEBOOK_ARGS} "$@"
