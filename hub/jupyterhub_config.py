# dlab's JupyterHub configuration. Every setting comes from the environment (compose.yaml passes
# the DLAB_* variables from .env; .env.example documents each one) and has a safe default.
# Modelled on jupyterhub/jupyterhub-deploy-docker; dlab's own classes live in dlab_hub.py.
import os
import re
import sys

from dlab_hub import (SECRETS_DIR, STATE_DIR, USERNAME_PATTERN, docker_client, docker_gpu_runtime, image_present,
                      memory_total, proxy_token, secret)
from jupyterhub.roles import get_default_roles

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file


def env(name, default):
    """A setting from the environment; an empty value counts as unset."""
    return os.environ.get(name) or default


def number(name, default, kind=int):
    """A numeric setting; a wrong value stops the hub with a message that names it."""
    value = env(name, default)
    try:
        return kind(value)
    except ValueError:
        raise SystemExit(f"dlab hub: {name}={value!r} is not a number: fix it in .env (see .env.example)") from None


PREFIX = env("DLAB_PREFIX", "dlab")  # names: containers PREFIX-<user>, homes PREFIX-home-<user>
NETWORK = env("DLAB_NETWORK", "dlab")  # the Docker network of the hub and the students' containers
ADMIN = env("DLAB_ADMIN", "admin")  # the organizer's account, made on first start
CLASS_CODE = env("DLAB_CLASS_CODE", "")  # empty: the organizer approves each sign-up
CPU_IMAGE = env("DLAB_IMAGE", "dlab/cpu:latest")  # the students' image
GPU_IMAGE = env("DLAB_GPU_IMAGE", "dlab/gpu:latest")  # the GPU profile's image
GPUS = env("DLAB_GPUS", "auto")  # auto | none | all | a count (2) | device=0,1 (as docker --gpus)
DATA_VOLUME = env("DLAB_DATA_VOLUME", "dlab-data")  # shared datasets (make data), read-only
MEM_LIMIT = env("DLAB_MEM_LIMIT", "4G")  # memory per student; the kernel is killed beyond it
CPU_LIMIT = number("DLAB_CPU_LIMIT", "2", float)  # CPU cores per student
PIDS_LIMIT = number("DLAB_PIDS_LIMIT", "1024")  # processes per student: a fork bomb stops here
SHM_SIZE = env("DLAB_SHM_SIZE", "1g")  # /dev/shm per student: PyTorch data loaders need more than 64m
IDLE_TIMEOUT = number("DLAB_IDLE_TIMEOUT", "3600")  # seconds idle before a server is stopped; 0: never
CULL_EVERY = number("DLAB_CULL_EVERY", str(max(IDLE_TIMEOUT // 4, 10)))  # how often the culler looks
START_TIMEOUT = number("DLAB_START_TIMEOUT", "600")  # seconds a server may take to start
SPAWN_LIMIT = number("DLAB_SPAWN_LIMIT", "10")  # servers starting at once; more: "try again in a moment"
MAX_SERVERS = env("DLAB_MAX_SERVERS", "auto")  # servers running at once; more: "try again later"
SIGNUPS_PER_HOUR = number("DLAB_SIGNUPS_PER_HOUR", "100")  # sign-up attempts per address and hour
TMP_SIZE = env("DLAB_TMP_SIZE", "1g")  # /tmp per student (in memory, counted in DLAB_MEM_LIMIT)
EGRESS = env("DLAB_EGRESS", "on")  # on: students reach the internet (pip install); off: the hub only
if EGRESS not in ("on", "off"):
    raise SystemExit(f"dlab hub: DLAB_EGRESS={EGRESS!r} is not on or off: fix it in .env")
HOME_SIZE = env("DLAB_HOME_SIZE", "5G").upper()  # each student's home: a file system of this size; 0: no limit
if not (HOME_SIZE == "0" or re.fullmatch(r"([1-9]\d*)(M|G|T)", HOME_SIZE) and not (
        HOME_SIZE.endswith("M") and int(HOME_SIZE[:-1]) < 64)):
    raise SystemExit(f"dlab hub: DLAB_HOME_SIZE={HOME_SIZE!r} is not a size of at least 64M, like 500M, 5G or "
                     "1T (0: homes without a size limit): fix it in .env")
HOMES_DIR = env("DLAB_HOMES_DIR", "/var/lib/dlab/homes")  # on the host: the homes' images
if not re.fullmatch(r"/[\w./-]*", HOMES_DIR) or ".." in HOMES_DIR:
    raise SystemExit(f"dlab hub: DLAB_HOMES_DIR={HOMES_DIR!r} is not an absolute path: fix it in .env")
HTTPS = bool(env("DLAB_SSL_CERT", ""))  # the organizer's certificate; make up copies it to the proxy
SUBDOMAIN_HOST = env("DLAB_SUBDOMAIN_HOST", "")  # https://class.example.org: each student's server on a subdomain
if SUBDOMAIN_HOST and not re.fullmatch(r"https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?", SUBDOMAIN_HOST):
    raise SystemExit(f"dlab hub: DLAB_SUBDOMAIN_HOST={SUBDOMAIN_HOST!r} is not a URL like https://class.example.org "
                     "(scheme and host, lowercase, no path): fix it in .env")
ORGANIZER_OPENS_SERVERS = env("DLAB_ORGANIZER_OPENS_SERVERS", "off")  # on: the organizer may open students' servers
if ORGANIZER_OPENS_SERVERS not in ("on", "off"):
    raise SystemExit(f"dlab hub: DLAB_ORGANIZER_OPENS_SERVERS={ORGANIZER_OPENS_SERVERS!r} is not on or off: fix it in .env")

# --- The hub and its proxy -------------------------------------------------------------------
# The proxy runs in a container of its own (compose.yaml's `proxy`, images/hub/dlab-proxy), without
# the Docker socket: the hub only talks to its API. Its routes outlive a hub restart.
c.JupyterHub.bind_url = "http://:8000"  # the class's public URL (the proxy publishes DLAB_HUB_PORT)
c.ConfigurableHTTPProxy.should_start = False  # started by compose, not by the hub
if SUBDOMAIN_HOST:
    # Each student's server on a host of its own (alice.class.example.org, a wildcard DNS name and,
    # for HTTPS, a wildcard certificate): a page a student serves cannot read the hub's pages or a
    # classmate's, whatever the student runs. The proxy routes by host (images/hub/dlab-proxy).
    c.JupyterHub.subdomain_host = SUBDOMAIN_HOST
c.ConfigurableHTTPProxy.api_url = "http://proxy:8001"  # the proxy's API, on the class network
c.ConfigurableHTTPProxy.auth_token = proxy_token()  # made by the proxy in its volume, read-only here
c.JupyterHub.last_activity_interval = 60  # also how soon a restarted proxy gets its routes back
if HTTPS:
    # The proxy serves TLS itself (make up copies the certificate into its volume), so every cookie
    # the hub and the students' servers set is Secure, and browsers are told to use HTTPS only.
    c.JupyterHub.bind_url = "https://:8000"
    # Secure on every cookie, the XSRF ones included (the hub's, and the students' servers' through
    # JUPYTERHUB_COOKIE_OPTIONS, which the images' jupyter_server_config.py reads).
    c.JupyterHub.tornado_settings = {"cookie_options": {"secure": True},
                                     "headers": {"Strict-Transport-Security": "max-age=31536000"}}
    c.Spawner.cookie_options = {"secure": True}
# A hub restart (an upgrade, a crash, a new setting) leaves the students' servers and their kernels
# running: the hub finds them again in its database. `make down` stops them (scripts/hub.sh).
c.JupyterHub.cleanup_servers = False
c.JupyterHub.concurrent_spawn_limit = SPAWN_LIMIT  # JupyterHub answers 429 "Try again in N seconds"
c.JupyterHub.spawn_throttle_retry_range = (10, 20)  # N: JupyterHub's 30-60 s leaves a class waiting idle
if MAX_SERVERS == "auto":
    # A leaked class code must not start servers until the machine runs out of memory: one server
    # per 512 MiB of the machine's memory (an idle one uses about 110 MiB, one running a lab several
    # hundred) after 2 GiB kept for the system and the hub. 24 GiB: 44 servers.
    MAX_SERVERS = max(1, (memory_total() - 2 * 1024**3) // (512 * 1024**2))
elif not re.fullmatch(r"\d+", MAX_SERVERS):
    raise SystemExit(f"dlab hub: DLAB_MAX_SERVERS={MAX_SERVERS!r} is not auto or a number (0: no limit): fix it in .env")
c.JupyterHub.active_server_limit = int(MAX_SERVERS)  # JupyterHub answers 429 "Try again in a few minutes"
print(f"dlab hub: at most {int(MAX_SERVERS) or 'unlimited'} servers at once (DLAB_MAX_SERVERS)", file=sys.stderr)
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"  # the hub's API, reached by the students' servers
c.JupyterHub.hub_connect_url = "http://hub:8081"  # `hub` is the compose service's name on NETWORK
c.JupyterHub.db_url = f"sqlite:///{STATE_DIR}/jupyterhub.sqlite"  # on the hub-state volume
c.JupyterHub.cookie_secret_file = str(SECRETS_DIR / "cookie_secret")  # made below, mode 0600
secret("cookie_secret")  # made here so that every secret lives in one folder, one way
c.CryptKeeper.keys = [bytes.fromhex(secret("crypt_key"))]  # encrypts auth state at rest
c.JupyterHub.template_paths = ["/etc/jupyterhub/templates"]  # the sign-up page with a class code field
c.JupyterHub.template_vars = {"class_code_required": bool(CLASS_CODE)}

# --- Accounts --------------------------------------------------------------------------------
if not re.match(USERNAME_PATTERN, ADMIN.lower()):
    raise SystemExit(f"dlab hub: DLAB_ADMIN={ADMIN!r} is not a valid username: 1 to 32 letters, digits, "
                     "dots, dashes or underscores, starting with a letter or digit")
c.JupyterHub.authenticator_class = "dlab_hub.DlabAuthenticator"
c.DlabAuthenticator.organizer = ADMIN  # made on first start, password in secrets/admin-password
c.Authenticator.username_pattern = USERNAME_PATTERN  # sign-up, the REST API and the admin page
c.Authenticator.allow_all = True  # anyone with an approved account; approval is the gate
c.DlabAuthenticator.class_code = CLASS_CODE  # right code at sign-up: approved at once
c.NativeAuthenticator.open_signup = False  # otherwise: the organizer approves at /hub/authorize
c.NativeAuthenticator.minimum_password_length = number("DLAB_MIN_PASSWORD_LENGTH", "8")  # at sign-up
c.NativeAuthenticator.check_common_password = True  # refuse "password123" and its friends
c.NativeAuthenticator.allowed_failed_logins = 5  # per address and name; then that address waits:
c.NativeAuthenticator.seconds_before_next_try = 60  # a minute (the organizer elsewhere is never locked out)
c.DlabAuthenticator.signups_per_hour = SIGNUPS_PER_HOUR  # a leaked class code cannot make accounts without end

# --- One container per student ---------------------------------------------------------------
if not re.fullmatch(r"auto|none|all|[1-9]\d*|device=[\w-]+(,[\w-]+)*", GPUS):
    raise SystemExit(f"dlab hub: DLAB_GPUS={GPUS!r} is not auto, none, all, a count (2) or device=0,1 "
                     "(docker run --gpus syntax)")
client = docker_client()  # exits with what to do if the Docker socket is not there
if GPUS == "auto":
    GPUS = "all" if docker_gpu_runtime(client) and image_present(client, GPU_IMAGE) else "none"
    if docker_gpu_runtime(client) and GPUS == "none":
        print(f"dlab hub: this server has a GPU runtime but no {GPU_IMAGE}: `make build-gpu` "
              "adds the GPU profile", file=sys.stderr)
if not image_present(client, CPU_IMAGE):
    print(f"dlab hub: {CPU_IMAGE} is missing: `make up` builds it", file=sys.stderr)

c.JupyterHub.spawner_class = "dlab_hub.DlabSpawner"
c.DlabSpawner.cpu_image = CPU_IMAGE
c.DlabSpawner.gpu_image = GPU_IMAGE
c.DlabSpawner.gpus = "" if GPUS == "none" else GPUS  # "": no GPU profile, no form
c.DockerSpawner.image = CPU_IMAGE  # the default, before a profile is chosen
c.DockerSpawner.pull_policy = "never"  # images are built here (make build), never pulled
c.DockerSpawner.cmd = ["start-singleuser.sh"]  # copies the labs into the home, then jupyterhub-singleuser
c.DockerSpawner.prefix = PREFIX  # container names: PREFIX-<escaped user name>
c.DockerSpawner.network_name = NETWORK  # the students' servers reach the hub as `hub`
c.DockerSpawner.use_internal_ip = True  # the proxy reaches them on that network, no published ports
c.DockerSpawner.remove = True  # removed on stop: a new image never meets a stale container
c.DockerSpawner.volumes = {
    f"{PREFIX}-home-{{username}}": "/home/jovyan",  # the student's home, kept across stops
    DATA_VOLUME: {"bind": "/srv/data", "mode": "ro"},  # datasets fetched by `make data`
}
# Each home is an ext4 file system of HOME_SIZE (images/hub/dlab-home, run before each start), so a
# student who fills theirs stops there, while the hub's database and the other homes keep their room.
c.DlabSpawner.home_size = "" if HOME_SIZE == "0" else HOME_SIZE
c.DlabSpawner.homes_dir = HOMES_DIR
c.DockerSpawner.extra_create_kwargs = {
    "labels": {"org.dlab.hub": PREFIX, "org.dlab.user": "{raw_username}"},
    # The container starts as root only for start.sh to set up dlab-firewall in its own network
    # namespace; then it drops to jovyan (uid 1000) with no capability left, not even in its bounding set.
    "user": "root",
}
c.DockerSpawner.notebook_dir = "/home/jovyan"
c.DockerSpawner.mem_limit = MEM_LIMIT
c.DockerSpawner.cpu_limit = CPU_LIMIT
c.DockerSpawner.extra_host_config = {
    "pids_limit": PIDS_LIMIT,
    "shm_size": SHM_SIZE,
    "cap_drop": ["ALL"],  # Jupyter runs as jovyan (uid 1000) and needs no capability;
    "cap_add": ["NET_ADMIN", "SETUID", "SETGID", "SETPCAP"],  # start.sh's, as root: firewall, then drop to jovyan
    "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},  # the firewall is IPv4's: no IPv6 at all
    "security_opt": ["no-new-privileges:true"],  # no setuid way back to root (sudo included)
    # Nothing outside the home is writable: the environment that runs the Jupyter server stays as
    # built (pip install goes to ~/.local, PIP_USER below), and a student cannot fill Docker's disk
    # through the container's own layer. /tmp is memory of the student's own, counted in mem_limit.
    "read_only": True,
    "tmpfs": {"/tmp": f"size={TMP_SIZE},mode=1777,nosuid,nodev"},
    # A student printing without end fills no disk: Docker keeps the last 3 x 10 MB of output.
    "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
}
# The Jupyter server reads no configuration, extension or page from the home (JupyterHub's own
# filter; start-singleuser.sh also keeps the home's Python packages out of the server): nothing a
# student writes there is served, or run in the server, when someone else's browser opens a URL.
c.Spawner.disable_user_config = True
c.DockerSpawner.environment = {
    "PIP_USER": "1",  # pip install goes to ~/.local/lib/python3.11/site-packages, kept with the home
    # images/base/dlab-firewall: the hub's API port and, with egress, the internet; nothing else
    # (no classmate, not the host, no private or link-local address).
    "DLAB_FIREWALL": "egress" if EGRESS == "on" else "closed",
}
c.Spawner.default_url = "/lab"  # JupyterLab, with ~/labs in its file browser
c.Spawner.start_timeout = START_TIMEOUT  # a first start of a large image must not trip it
c.Spawner.http_timeout = 120  # from container start until the server answers

# --- Roles -----------------------------------------------------------------------------------
# The organizer runs the class (admin panel, approvals, passwords, starting and stopping servers)
# but does not open students' servers: without subdomains a student's server shares the hub's
# origin, and the student controls what it sends to a browser. DLAB_ORGANIZER_OPENS_SERVERS=on
# makes the organizer JupyterHub's full admin, who may (README: "Opening a student's server").
ADMIN_SCOPES = next(role["scopes"] for role in get_default_roles() if role["name"] == "admin")
c.JupyterHub.load_roles = [
    # An explicit list: an organizer who was admin in an earlier release stops being one.
    {"name": "admin", "users": [ADMIN] if ORGANIZER_OPENS_SERVERS == "on" else [], "services": []},
    {"name": "organizer", "description": "Runs the class; does not open students' servers",
     "scopes": [scope for scope in ADMIN_SCOPES if scope != "access:servers"], "users": [ADMIN]},
]

# --- Idle servers ----------------------------------------------------------------------------
if IDLE_TIMEOUT > 0:
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={IDLE_TIMEOUT}", f"--cull-every={CULL_EVERY}"],
    }]
    c.JupyterHub.load_roles.append({
        "name": "idle-culler",  # only what culling needs
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    })
