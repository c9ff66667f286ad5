#!/opt/venv/bin/python -I
"""Start JupyterLab (or, inside JupyterHub, the single-user server): docker-stacks' entry point,
the image's default command, run by start.sh after its hooks. Extra arguments go to Jupyter.
    DOCKER_STACKS_JUPYTER_CMD  lab (default), notebook, server... (jupyter's subcommand)
    NOTEBOOK_ARGS              more arguments, split as a shell would
    RESTARTABLE                yes: start Jupyter again whenever it ends; the container stops
                               only when it is told to (docker stop, Ctrl-C)
    JUPYTER_PORT, GEN_CERT     read by /etc/jupyter/jupyter_server_config.py
It says what it runs ("Executing: ..."), as docker-stacks' does."""
import os
import shlex
import signal
import subprocess
import sys
import time

if os.environ.get("JUPYTERHUB_API_TOKEN"):
    print("JUPYTERHUB_API_TOKEN is set: starting jupyterhub-singleuser (start-singleuser.py)", file=sys.stderr, flush=True)
    os.execvp("start-singleuser.py", ["start-singleuser.py", *sys.argv[1:]])
command = ["jupyter", os.environ.get("DOCKER_STACKS_JUPYTER_CMD") or "lab",
           *shlex.split(os.environ.get("NOTEBOOK_ARGS", "")), *sys.argv[1:]]
print("Executing: " + shlex.join(command), file=sys.stderr, flush=True)
if os.environ.get("RESTARTABLE") != "yes":
    os.execvp(command[0], command)

# RESTARTABLE=yes: docker-stacks runs Jupyter under Ubuntu's run-one-constantly, which Debian does
# not have; this loop does the same. tini (-g) sends docker stop's SIGTERM and Ctrl-C's SIGINT to
# Jupyter and to this process alike: then Jupyter ends and the loop with it.
stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    rc = subprocess.call(command)
    if stopping:
        sys.exit(rc)
    print(f"Jupyter ended (exit code {rc}); RESTARTABLE=yes: starting it again", file=sys.stderr, flush=True)
    time.sleep(1)
