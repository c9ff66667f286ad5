# dlab's JupyterHub configuration: the settings compose passes (DLAB_HUB_SETTINGS, checked by `make
# up` against dlab_hub.settings), checked again here, and what the Docker engine answers, go
# through dlab_hub.config.configure (a pure function, tested by `make check`); then the hub's secrets.
# Modelled on jupyterhub/jupyterhub-deploy-docker; dlab's own classes are in the package dlab_hub (hub/dlab_hub).
import json
import os
import pathlib
import sys

from dlab_hub.config import Engine, configure, student_images
from dlab_hub.engine import discover_oidc, docker_client, docker_gpu_ids, docker_gpu_runtime, image_present, memory_total, swarm_gpus
from dlab_hub.settings import SECRETS_DIR, STATE_DIR, load
from dlab_hub.state import METRICS_DIR, proxy_token, secret
from dlab_hub import classview
from dlab_hub.classview_metrics import prometheus_files

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

try:
    given = json.loads(os.environ.get("DLAB_HUB_SETTINGS") or "{}")
except json.JSONDecodeError:
    raise SystemExit("dlab hub: DLAB_HUB_SETTINGS is not JSON: start the class server with make up") from None
_, settings, problems, _ = load(given, applies=("hub", "both"))
if problems:
    raise SystemExit("dlab hub: " + "; ".join(problems) + ": fix it in .env (.env.example says what each allows)")

client = docker_client()  # exits with what to do if the Docker socket is not there
images = set(student_images(settings))
swarm = bool(settings["DLAB_SWARM_SHARED"])
gpu_runtime = not swarm and docker_gpu_runtime(client)
engine = Engine(gpu_runtime=gpu_runtime, memory=memory_total(), cpus=len(os.sched_getaffinity(0)),
                images=frozenset(image for image in images if image_present(client, image)),
                gpu_ids=docker_gpu_ids(client, "dlab/hub:latest") if gpu_runtime else (),
                oidc=discover_oidc(settings["DLAB_OIDC_ISSUER"]) if settings["DLAB_OIDC_ISSUER"] else {},
                swarm_gpus=swarm_gpus(client) if swarm else 0)
config, notes = configure(settings, engine)
c.merge(config)
for note in notes:
    print(f"dlab hub: {note}", file=sys.stderr)

# The hub's state and secrets, on the hub-state volume; each secret made on first start, mode 0600.
c.JupyterHub.db_url = f"sqlite:///{STATE_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = str(SECRETS_DIR / "cookie_secret")
secret("cookie_secret")  # made here so that every secret lives in one folder, one way
c.CryptKeeper.keys = [bytes.fromhex(secret("crypt_key"))]  # encrypts auth state at rest
c.ConfigurableHTTPProxy.auth_token = proxy_token()
for service in c.JupyterHub.services:
    if service["name"] == "prestart":  # dlab_hub.prestart: make prestart (docker exec) reads it too
        service["api_token"] = secret("prestart_token")  # made by the proxy in its volume, read-only here
    if service["name"] == "prometheus":  # DLAB_PROMETHEUS: its token and login, in the volume it mounts read-only
        service["api_token"] = prometheus_files(METRICS_DIR)

# The class page and the per-student metrics (dlab_hub.classview): its looks start on the hub's loop.
classview.start(c)

# The organizer's own traits (DLAB_HUB_CONFIG_DIR, docs/organizer.md#more-jupyterhub-settings): every
# *.py file of the folder, in name order, after dlab's configuration, as The Littlest JupyterHub's
# jupyterhub_config.d. A folder the hub cannot read stops it saying so, rather than going unread.
EXTRA = pathlib.Path("/etc/jupyterhub/jupyterhub_config.d")
try:
    extra = sorted(name for name in os.listdir(EXTRA) if name.endswith(".py")) if EXTRA.is_dir() else []
    for name in extra:
        (EXTRA / name).read_bytes()  # readable, or the error below names it
except OSError as error:
    raise SystemExit(f"dlab hub: cannot read DLAB_HUB_CONFIG_DIR's {error.filename} ({error.strerror}): make the folder "
                     "and its files readable to all (chmod -R a+rX), then make up") from None
for name in extra:
    print(f"dlab hub: reading {name} from DLAB_HUB_CONFIG_DIR", file=sys.stderr)
    load_subconfig(str(EXTRA / name))  # noqa: F821 - provided by JupyterHub's config loader, like get_config
