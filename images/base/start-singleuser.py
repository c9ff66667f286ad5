#!/opt/venv/bin/python -I
"""The single-user server that JupyterHub (DockerSpawner) starts in a student's container:
docker-stacks' entry point, run by start.sh after its hooks. NOTEBOOK_ARGS and extra arguments go
to jupyterhub-singleuser. It says what it runs ("Executing: ..."), as docker-stacks' does.

python -s: the server imports nothing from the home's Python packages (~/.local, where the
student's pip installs go), so no .pth file or module planted there runs in the server. The
kernels and terminals it starts keep them. JupyterHub's disable_user_config (set by the class
server) keeps the home's Jupyter configuration and extensions out in the same way."""
import os
import shlex
import shutil
import sys

command = ["python", "-s", shutil.which("jupyterhub-singleuser") or "jupyterhub-singleuser",
           *shlex.split(os.environ.get("NOTEBOOK_ARGS", "")), *sys.argv[1:]]
print("Executing: " + shlex.join(command), file=sys.stderr, flush=True)
os.execvp(command[0], command)
