#!/bin/bash
# Start JupyterLab (or, inside JupyterHub, the single-user server). Extra arguments go to Jupyter.
#   DOCKER_STACKS_JUPYTER_CMD  lab (default), notebook, nbclassic, server...
#   NOTEBOOK_ARGS              more arguments, as in docker-stacks
#   JUPYTER_PORT               port (default 8888), read by /etc/jupyter/jupyter_server_config.py
set -e
if [ -n "${JUPYTERHUB_API_TOKEN}" ]; then
  echo "JUPYTERHUB_API_TOKEN is set: starting jupyterhub-singleuser" >&2
  exec start-singleuser.sh "$@"
fi
# shellcheck disable=SC2086
exec jupyter "${DOCKER_STACKS_JUPYTER_CMD:-lab}" ${NOTEBOOK_ARGS} "$@"
