#!/bin/bash
# The single-user server that JupyterHub (DockerSpawner) starts in a student's container.
set -e
if [ -z "${DLAB_HOME_READY}" ]; then dlab-home-init || true; export DLAB_HOME_READY=1; fi
# shellcheck disable=SC2086
exec jupyterhub-singleuser ${NOTEBOOK_ARGS} "$@"
