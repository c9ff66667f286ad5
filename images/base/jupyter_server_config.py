# Jupyter server settings for every dlab image (read from /etc/jupyter).
import json
import os

c = get_config()  # noqa: F821  (provided by Jupyter)

# Listen on all interfaces inside the container; the port comes from JUPYTER_PORT (docker-stacks).
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT", "8888"))
# There is no browser in the container.
c.ServerApp.open_browser = False
# One Ctrl-C stops the server (no "Shutdown this Jupyter server (y/[n])?" prompt under `docker run -it`).
c.ServerApp.answer_yes = True
# Terminals start bash (login shell, so ~/.bashrc and the prompt work).
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
# Behind HTTPS the class server passes JUPYTERHUB_COOKIE_OPTIONS={"secure": true} (its
# Spawner.cookie_options): the login cookie honours it already; the XSRF cookie must too.
if json.loads(os.environ.get("JUPYTERHUB_COOKIE_OPTIONS") or "{}").get("secure"):
    c.ServerApp.tornado_settings = {"xsrf_cookie_kwargs": {"secure": True}}
