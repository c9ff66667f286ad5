#!/bin/bash
# The single-user server that JupyterHub (DockerSpawner) starts in a student's container.
set -e
# shellcheck disable=SC2086
exec jupyterhub-singleuser ${NOTEBOOK_ARGS} "$@"
