#!/opt/venv/bin/python -I
"""Start JupyterLab (or, inside JupyterHub, the single-user server): docker-stacks' entry point,
the image's default command, run by start.sh after its hooks. Extra arguments go to Jupyter.
    DOCKER_STACKS_JUPYTER_CMD  lab (default), notebook, nbclassic, server...
    NOTEBOOK_ARGS              more arguments, split as a shell would
    JUPYTER_PORT               port (default 8888), read by /etc/jupyter/jupyter_server_config.py
It says what it runs ("Executing: ..."), as docker-stacks' does."""
import os
import shlex
import sys

if os.environ.get("JUPYTERHUB_API_TOKEN"):
    print("JUPYTERHUB_API_TOKEN is set: starting jupyterhub-singleuser (start-singleuser.py)", file=sys.stderr, flush=True)
    os.execvp("start-singleuser.py", ["start-singleuser.py", *sys.argv[1:]])
command = ["jupyter", os.environ.get("DOCKER_STACKS_JUPYTER_CMD") or "lab",
           *shlex.split(os.environ.get("NOTEBOOK_ARGS", "")), *sys.argv[1:]]
print("Executing: " + shlex.join(command), file=sys.stderr, flush=True)
os.execvp(command[0], command)
