"""The class server's JupyterHub configuration, as a pure function (after The Littlest JupyterHub's
configurer.py): `configure(settings, engine)` turns the checked settings (hub/dlab_hub/settings.py) and
what the Docker engine answered (an `Engine`) into a traitlets Config, plus lines for the hub's
log. It reads no file, asks no engine and writes nothing, so `make check` tests it without Docker;
jupyterhub_config.py gathers the real answers and the secrets around it.
"""
import re
import sys
from dataclasses import dataclass, field

from jupyterhub.roles import get_default_roles
from jupyterhub.scopes import expand_scopes, scope_definitions
from traitlets.config import Config

from dlab_hub.classview import CLASSVIEW_SCOPE
from dlab_hub.sandbox import GRADE_SCOPE, Sandbox
from dlab_hub.policy import policy
from dlab_hub.kinds import NO_GPUS, GpuRequest
from dlab_hub.settings import USERNAME_PATTERN
from dlab_hub.state import class_message

INSTRUCTOR_GROUP = "instructors"  # its members write the course folder and read the hand-ins
ADMIN_SCOPES = next(role["scopes"] for role in get_default_roles() if role["name"] == "admin")


def opens_servers(scope):
    """Does the scope, as JupyterHub expands it, let its holder into students' servers?"""
    return any(s.split("!")[0] == "access:servers" for s in expand_scopes(frozenset([scope])))


def without_server_access(scopes):
    """The scopes, each one that opens servers replaced by those of its subscopes that do not: the
    admin's `shares` holds `access:servers` (to share a server is to open it), so dropping
    `access:servers` alone from the list left the organizer a consent page away from every server."""
    kept = []
    for scope in scopes:
        if not opens_servers(scope):
            kept.append(scope)
        elif scope != "access:servers":
            kept += without_server_access(scope_definitions.get(scope, {}).get("subscopes", []))
    return list(dict.fromkeys(kept))


ORGANIZER_SCOPES = without_server_access(ADMIN_SCOPES)


@dataclass(frozen=True)
class Engine:
    """What the Docker engine behind the hub offers."""
    gpu_runtime: bool = False                     # Docker has the NVIDIA runtime
    images: frozenset = field(default_factory=frozenset)  # the images that are built here
    memory: int = 24 * 1024**3                    # bytes of memory on this machine
    cpus: int = 2                                 # cores the hub may use (the machine's)
    gpu_ids: tuple = ()                           # the cards the NVIDIA runtime shows ("0", "1", ...)
    oidc: dict = field(default_factory=dict)      # the sign-in provider's endpoints (DLAB_OIDC_ISSUER)
    swarm_gpus: int = 0                           # on a swarm: the GPUs its nodes advertise (NVIDIA-GPU)


def max_servers(setting, memory):
    """DLAB_MAX_SERVERS: auto is one server per 512 MiB of the machine's memory (an idle one uses
    about 110 MiB, one running a lab several hundred) after 2 GiB kept for the system and the hub,
    so a leaked class code cannot start servers until the machine runs out of memory. 24 GiB: 44."""
    if setting == "auto":
        return max(1, (memory - 2 * 1024**3) // (512 * 1024**2))
    return setting


def student_images(s):
    """The images of the CPU and the GPU profile as the servers run them: on a swarm with a
    registry, REGISTRY/IMAGE (make swarm-push tags and pushes them so)."""
    registry = s["DLAB_SWARM_REGISTRY"] if s["DLAB_SWARM_SHARED"] else ""
    return tuple(f"{registry}/{image}" if registry else image for image in (s["DLAB_IMAGE"], s["DLAB_GPU_IMAGE"]))


def gpus(request, engine, gpu_image, swarm=False):
    """DLAB_GPUS (a GpuRequest) as the spawner takes it: NO_GPUS (no GPU profile) or what docker run
    --gpus is given; on a swarm, a count of the nodes' generic resources (auto and all: one card a
    server)."""
    if swarm:
        if request.kind in ("auto", "all"):
            offered = engine.swarm_gpus and (request.kind == "all" or gpu_image in engine.images)
            return GpuRequest("count", count=1) if offered else NO_GPUS
        return request if request.kind == "count" else NO_GPUS
    if request.kind == "auto":
        return GpuRequest("all") if engine.gpu_runtime and gpu_image in engine.images else NO_GPUS
    return request


def configure(s, engine):
    """The Config for settings `s` (name: parsed value, as dlab_hub.settings.load gives them) on `engine`;
    returns (config, notes), notes being what the hub says in its log at start. Each update_*
    function sets its own traits once (The Littlest JupyterHub's rule: none appends to or changes
    what another set) and returns its notes."""
    c, notes = Config(), []
    for update in (update_hub_and_proxy, update_accounts, update_institution_sign_in, update_student_images,
                   update_student_volumes, update_student_containers, update_roles_and_services, update_grading,
                   update_class_view):
        notes += update(c, s, engine)
    return c, notes


def update_hub_and_proxy(c, s, engine):
    # The proxy runs in a container of its own (compose.yaml's `proxy`, images/hub/dlab-proxy),
    # without the Docker socket: the hub only talks to its API. Its routes outlive a hub restart.
    https = bool(s["DLAB_SSL_CERT"]) or bool(s["DLAB_DOMAIN"])  # the proxy's TLS, or Caddy's in front (dlab_hub.https)
    # The class's public URL (the proxy publishes DLAB_HUB_PORT), over TLS where the proxy serves it.
    c.JupyterHub.bind_url = "https://:8000" if s["DLAB_SSL_CERT"] else "http://:8000"
    c.ConfigurableHTTPProxy.should_start = False  # started by compose, not by the hub
    c.ConfigurableHTTPProxy.api_url = "http://proxy:8001"  # the proxy's API, on the class network
    if s["DLAB_SUBDOMAIN_HOST"]:
        # Each student's server on a host of its own (alice.class.example.org, a wildcard DNS name
        # and, for HTTPS, a wildcard certificate): a page a student serves cannot read the hub's
        # pages or a classmate's, whatever the student runs. The proxy routes by host (dlab-proxy).
        c.JupyterHub.subdomain_host = s["DLAB_SUBDOMAIN_HOST"]
    c.JupyterHub.last_activity_interval = 60  # also how soon a restarted proxy gets its routes back
    c.JupyterHub.tornado_settings = {"compress_response": True}  # the hub's pages, gzipped
    if https:
        # The proxy serves TLS itself (make up copies the certificate into its volume), or Caddy does
        # in front of it (DLAB_DOMAIN), so every cookie the hub and the students' servers set is
        # Secure (the XSRF ones too: the images' jupyter_server_config.py reads
        # JUPYTERHUB_COOKIE_OPTIONS), and browsers use HTTPS only for the host (HSTS on the hub's pages).
        c.JupyterHub.tornado_settings = {"compress_response": True, "cookie_options": {"secure": True},
                                         "headers": {"Strict-Transport-Security": "max-age=31536000"}}
        c.Spawner.cookie_options = {"secure": True}
    # A hub restart (an upgrade, a crash, a new setting) leaves the students' servers and their
    # kernels running: the hub finds them again in its database. `make down` stops them.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.concurrent_spawn_limit = policy(s).spawn_limit  # JupyterHub's 429 "Try again in N seconds"
    c.JupyterHub.spawn_throttle_retry_range = (10, 20)  # N: JupyterHub's 30-60 s leaves a class waiting idle
    limit = max_servers(policy(s).max_servers, engine.memory)
    c.JupyterHub.active_server_limit = limit  # JupyterHub's 429 "Try again in a few minutes"
    # The starts themselves take turns (DlabSpawner.start): a class that clicks at once gets its
    # servers one after another at full speed, not all of them at the speed of the last.
    at_once = engine.cpus if s["DLAB_STARTS_AT_ONCE"] == "auto" else s["DLAB_STARTS_AT_ONCE"]
    c.DlabSpawner.starts_at_once = at_once
    c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"  # the hub's API, reached by the students' servers
    c.JupyterHub.hub_connect_url = "http://hub:8081"  # `hub` is the compose service's name on the network
    c.JupyterHub.template_paths = ["/etc/jupyterhub/templates"]  # the sign-up page with a class code field
    # The organizer's message to the class (make message), on every hub page, read at each page;
    # the login page's button of the sign-in with the institution.
    c.JupyterHub.template_vars = {"class_code_required": bool(s["DLAB_CLASS_CODE"]), "announcement": class_message,
                                  **({"institution_login": s["DLAB_OIDC_NAME"]} if s["DLAB_OIDC_ISSUER"] else {})}
    return [f"at most {limit or 'unlimited'} servers at once (DLAB_MAX_SERVERS)",
            f"{at_once} server starts side by side, the others wait their turn (DLAB_STARTS_AT_ONCE)"]


def update_accounts(c, s, engine):
    logins = policy(s).logins  # its comments say what each rule is for
    c.JupyterHub.authenticator_class = "dlab_hub.auth.DlabAuthenticator"
    c.DlabAuthenticator.organizer = logins.organizer  # made on first start, password in secrets/admin-password
    c.Authenticator.username_pattern = USERNAME_PATTERN  # sign-up, the REST API and the admin page
    c.Authenticator.allow_all = True  # anyone with an approved account; approval is the gate
    c.DlabAuthenticator.class_code = s["DLAB_CLASS_CODE"]  # right code at sign-up: approved at once
    c.NativeAuthenticator.open_signup = logins.open_signup  # closed: the organizer approves at /hub/authorize
    c.NativeAuthenticator.minimum_password_length = logins.min_password_length
    c.NativeAuthenticator.check_common_password = logins.check_common_password
    c.NativeAuthenticator.allowed_failed_logins = logins.failed_logins
    c.NativeAuthenticator.seconds_before_next_try = logins.wait_seconds
    c.DlabAuthenticator.signups_per_hour = logins.signups_per_hour  # a leaked class code cannot make accounts without end
    c.DlabAuthenticator.pending_signups = logins.pending_signups  # sign-ups waiting for approval, at most
    # bcrypt (about 0.3 s of CPU a login) runs off the event loop, one check per core at once: a
    # class logging in together waits half as long on 2 cores, and guesses still queue (password_queue).
    c.DlabAuthenticator.password_checks = engine.cpus
    # A name whose home or hand-in folder outlived its account is not free for a sign-up: the
    # files are a former student's (DlabAuthenticator.kept_files).
    c.DlabAuthenticator.home_volume = home_volumes(s)[0]
    c.DlabAuthenticator.handin_volume = "" if s["DLAB_SWARM_SHARED"] else f"{s['DLAB_PREFIX']}-handin"
    return []


def update_institution_sign_in(c, s, engine):
    """Sign in with the institution (dlab_hub.auth.InstitutionAuthenticator), beside the class's accounts."""
    if not s["DLAB_OIDC_ISSUER"]:
        return []
    endpoints = engine.oidc  # what the provider's discovery document said (jupyterhub_config.py)
    c.DlabAuthenticator.institution_issuer = s["DLAB_OIDC_ISSUER"]
    c.InstitutionAuthenticator.client_id = s["DLAB_OIDC_CLIENT_ID"]
    c.InstitutionAuthenticator.client_secret = s["DLAB_OIDC_CLIENT_SECRET"]
    c.InstitutionAuthenticator.authorize_url = endpoints.get("authorization_endpoint", "")
    c.InstitutionAuthenticator.token_url = endpoints.get("token_endpoint", "")
    c.InstitutionAuthenticator.userdata_url = endpoints.get("userinfo_endpoint", "")
    c.InstitutionAuthenticator.scope = ["openid", "profile", "email"]
    c.InstitutionAuthenticator.username_claim = s["DLAB_OIDC_USERNAME_CLAIM"]
    c.InstitutionAuthenticator.email_domain = s["DLAB_OIDC_EMAIL_DOMAIN"]
    # Names the provider may sign in (empty: all of them); GitHub's sign-in needs them (dlab_hub.settings).
    c.InstitutionAuthenticator.allowed_names = {name.lower() for name in re.split(r"[\s,]+", s["DLAB_OIDC_ALLOWED_USERS"]) if name}
    c.InstitutionAuthenticator.login_service = s["DLAB_OIDC_NAME"]
    c.InstitutionAuthenticator.allow_all = True  # whoever the institution signs in (the provider decides)
    return [f"students may also sign in with {s['DLAB_OIDC_NAME']} ({s['DLAB_OIDC_ISSUER']})"]


def update_student_images(c, s, engine):
    """One container per student, of the CPU or the GPU profile's image."""
    shared = s["DLAB_SWARM_SHARED"]
    cpu_image, gpu_image = student_images(s)
    notes = []
    gpu_profile = gpus(s["DLAB_GPUS"], engine, gpu_image, swarm=bool(shared))
    if shared and s["DLAB_GPUS"].kind == "devices":
        notes.append("on a swarm the GPU profile asks for a count of cards (DLAB_GPUS=1), not for named ones: no GPU profile")
    if s["DLAB_GPUS"].kind == "auto" and engine.gpu_runtime and gpu_profile == NO_GPUS:
        notes.append(f"this server has a GPU runtime but no {gpu_image}: `make build-gpu` adds the GPU profile")
    if cpu_image not in engine.images:
        notes.append(f"{cpu_image} is missing: `make up` builds it" + (", `make swarm-push` pushes it" if shared else ""))
    c.JupyterHub.spawner_class = "dlab_hub.swarm_spawner.DlabSwarmSpawner" if shared else "dlab_hub.spawner.DlabSpawner"
    c.DlabSpawner.cpu_image = cpu_image
    c.DlabSpawner.gpu_image = gpu_image
    c.DlabSpawner.gpus = str(gpu_profile)  # "": no GPU profile, no form
    # A count spreads the class over these cards (DlabSpawner.choose_gpus); where none is known,
    # Docker picks (always the first cards).
    gpu_ids = list(engine.gpu_ids) if s["DLAB_GPU_IDS"] == "auto" else s["DLAB_GPU_IDS"].split(",")
    c.DlabSpawner.gpu_ids = gpu_ids
    c.DlabSpawner.lab_solutions = policy(s).posture.lab_solutions
    if gpu_profile.kind == "count":
        notes.append(f"each GPU server gets {gpu_profile.count} of the cards {','.join(gpu_ids) or '(none found)'}, "
                     "the least used (DLAB_GPUS, DLAB_GPU_IDS)")
    c.DockerSpawner.image = cpu_image  # the default, before a profile is chosen
    c.DockerSpawner.pull_policy = "never"  # images are built here (make build), never pulled
    c.DockerSpawner.cmd = [policy(s).posture.command]  # the image's start-up hooks, then jupyterhub-singleuser
    return notes


def home_volumes(s):
    """The student's home and the datasets, as DockerSpawner mounts them: named volumes, or on a
    swarm (docs/swarm.md) folders of the file system every node mounts at DLAB_SWARM_SHARED, since
    a server may start on any ready node."""
    shared = s["DLAB_SWARM_SHARED"]
    if shared:
        return (f"{shared}/homes/{{username}}", f"{shared}/data")
    return (f"{s['DLAB_PREFIX']}-home-{{username}}", s["DLAB_DATA_VOLUME"])


def assignment_volumes(s):
    """The assignments' exchange and grading folder (dlab_hub.assignments)."""
    return f"{s['DLAB_PREFIX']}-exchange", f"{s['DLAB_PREFIX']}-grading"


def update_student_volumes(c, s, engine):
    prefix, shared, limits = s["DLAB_PREFIX"], s["DLAB_SWARM_SHARED"], policy(s).limits
    home, data = home_volumes(s)
    c.DockerSpawner.volumes = {
        home: "/home/jovyan",  # the student's home, kept across stops
        data: {"bind": "/srv/data", "mode": "ro"},  # datasets fetched by `make data`
    }
    # Each home is an ext4 file system of DLAB_HOME_SIZE (images/hub/dlab-home, run before each
    # start), so a student who fills theirs stops there, while the hub's database and the other
    # homes keep their room. "": plain volumes; on a swarm, a folder of the shared file system,
    # whose quota is the NFS server's.
    c.DlabSpawner.home_size = "" if shared else limits.home
    c.DlabSpawner.homes_dir = s["DLAB_HOMES_DIR"]
    # The course folder (~/course: instructors write, students read) and the hand-in folders
    # (~/handin: the student's own; instructors read them all at ~/handins). Instructors: the
    # organizer, JupyterHub admins, and the members of the group INSTRUCTOR_GROUP (the admin
    # page's Groups).
    c.DlabSpawner.course_volume = f"{shared}/course" if shared else f"{prefix}-course"
    c.DlabSpawner.handin_volume = f"{shared}/handin" if shared else f"{prefix}-handin"
    # Each student's hand-in folder is a file system of its own (PREFIX-handin-<name>), made like
    # the homes; on a swarm, a folder of the shared file system (its quota is the NFS server's).
    c.DlabSpawner.handin_size = limits.handin if limits.home and not shared else ""
    c.DlabSpawner.course_size = limits.course if limits.home and not shared else ""
    c.DlabSpawner.organizer = policy(s).logins.organizer
    c.DlabSpawner.instructor_group = INSTRUCTOR_GROUP
    # Graded assignments (nbgrader, dlab_hub.assignments): one course a class, named by its prefix;
    # the exchange (released assignments, feedback) and the instructors' grading folder. Not on a
    # swarm yet: its servers' folders are the shared file system's (docs/assignments.md).
    if not shared:
        c.DlabSpawner.course_id = prefix
        c.DlabSpawner.exchange_volume, c.DlabSpawner.grading_volume = assignment_volumes(s)
        c.DlabSpawner.exchange_size = limits.course if limits.home else ""
        c.DlabSpawner.grading_size = limits.grading if limits.home else ""
    c.DockerSpawner.notebook_dir = "/home/jovyan"
    if shared:
        return [f"on a Docker Swarm: students' servers are services on the nodes labelled ready (make swarm-check), "
                f"homes in {shared}/homes"]
    return []


def update_student_containers(c, s, engine):
    """Each student's container: its limits, its network and what it may not do (the policy's
    limits and posture, in Docker's words)."""
    p = policy(s)
    limits, posture = p.limits, p.posture
    c.DockerSpawner.prefix = s["DLAB_PREFIX"]  # container names: PREFIX.<escaped user name>
    c.DockerSpawner.network_name = s["DLAB_NETWORK"]  # the students' servers reach the hub as `hub`
    c.DockerSpawner.use_internal_ip = True  # the proxy reaches them on that network, no published ports
    c.DockerSpawner.remove = True  # removed on stop: a new image never meets a stale container
    c.DockerSpawner.extra_create_kwargs = {
        "labels": {"org.dlab.hub": s["DLAB_PREFIX"], "org.dlab.user": "{raw_username}"},
        # The container starts as root only for start.sh to set up dlab-firewall in its own network
        # namespace; then it drops to jovyan (uid 1000) with no capability left, not even bounding.
        "user": "root",
        # The image's HEALTHCHECK runs a Python every 5 s in each container: the hub tracks its
        # servers itself, and a class of 60 would spend a core on the checks alone.
        "healthcheck": {"test": ["NONE"]},
    }
    c.DockerSpawner.mem_limit = limits.memory
    c.DockerSpawner.cpu_limit = limits.cpus
    c.DockerSpawner.extra_host_config = {
        "pids_limit": limits.processes,
        "shm_size": limits.shm,
        "cap_drop": ["ALL"],  # Jupyter runs as jovyan (uid 1000) and needs no capability (posture.capabilities);
        "cap_add": ["NET_ADMIN", "SETUID", "SETGID", "SETPCAP", *posture.capabilities],  # start.sh's, as root: firewall, then drop to jovyan
        "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},  # the firewall is IPv4's: no IPv6 at all
        "security_opt": ["no-new-privileges:true"] if posture.no_new_privileges else [],
        # Nothing outside the home is writable: the environment that runs the Jupyter server stays
        # as built (pip install goes to ~/.local, PIP_USER below), and a student cannot fill
        # Docker's disk through the container's own layer. /tmp is memory, counted in mem_limit.
        "read_only": posture.read_only_root,
        "tmpfs": {"/tmp": f"size={limits.tmp},mode=1777,nosuid,nodev"},
        "log_config": {"type": "json-file", "config": {"max-size": posture.log_size, "max-file": str(posture.log_files)}},
    }
    # The Jupyter server reads no configuration, extension or page from the home (JupyterHub's own
    # filter; start-singleuser.sh also keeps the home's Python packages out of the server): nothing
    # a student writes there is served, or run in the server, when someone else's browser opens a URL.
    c.Spawner.disable_user_config = not posture.user_config
    c.DockerSpawner.environment = {
        **dict(posture.environment),
        # images/base/dlab-firewall: the hub's API port and, with egress, the internet; nothing
        # else (no classmate, not the host, no private or link-local address).
        "DLAB_FIREWALL": "egress" if posture.egress else "closed",
        # images/base/dlab_links.py: the hosts course links may clone from (empty: any).
        "DLAB_LINK_HOSTS": s["DLAB_LINK_HOSTS"],
    }
    c.Spawner.default_url = posture.default_url
    c.Spawner.start_timeout = p.start_timeout  # a first start of a large image must not trip it
    c.Spawner.http_timeout = 120  # from container start until the server answers
    return []


def update_roles_and_services(c, s, engine):
    """The organizer's role, and the hub's services (prestart, the idle culler) with theirs."""
    p = policy(s)
    admin, timeout = p.logins.organizer, p.culling.idle_timeout
    # The organizer runs the class (admin panel, approvals, passwords, starting and stopping
    # servers) but does not open students' servers: without subdomains a student's server shares
    # the hub's origin, and the student controls what it sends to a browser.
    # DLAB_ORGANIZER_OPENS_SERVERS=on makes the organizer JupyterHub's full admin, who may.
    roles = [
        # An explicit list: an organizer who was admin in an earlier release stops being one.
        {"name": "admin", "users": [admin] if s["DLAB_ORGANIZER_OPENS_SERVERS"] == "on" else [], "services": []},
        {"name": "organizer", "description": "Runs the class; does not open students' servers",
         "scopes": ORGANIZER_SCOPES, "users": [admin]},
    ]
    # Servers ready before the class (hub/dlab_hub/prestart.py): `make prestart`, or every day at
    # DLAB_PRESTART_AT, every approved account's server, one after another; each held from the
    # idle culler for DLAB_PRESTART_HOLD minutes. Its token (added by jupyterhub_config.py) lives
    # in the hub's secrets, for make prestart's docker exec.
    hold_every = max(5, min(60, timeout // 3)) if timeout else 60  # activity well within the timeout
    services = [{
        "name": "prestart",
        "command": [sys.executable, "-m", "dlab_hub.prestart", "serve", f"--at={s['DLAB_PRESTART_AT']}",
                    f"--hold={s['DLAB_PRESTART_HOLD']}", f"--every={hold_every}", f"--organizer={admin}"],
    }]
    roles.append({
        "name": "prestart",  # the accounts, their servers' start, and their activity
        "scopes": ["list:users", "read:users", "read:servers", "admin:users", "servers", "users:activity"],
        "services": ["prestart"],
    })
    # Idle servers stopped after DLAB_IDLE_TIMEOUT seconds (0: never).
    if timeout > 0:
        services.append({
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={timeout}",
                        f"--cull-every={p.culling.every}"],
        })
        roles.append({
            "name": "idle-culler",  # only what culling needs
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        })
    roles.append({
        "name": "grader",  # dlab_hub.grading: submissions run in a sandbox
        "scopes": [GRADE_SCOPE], "users": [admin], "groups": [INSTRUCTOR_GROUP],
    })
    roles.append({
        "name": "class-viewer",  # the class page (dlab_hub.classview): every student's use, no file
        "scopes": [CLASSVIEW_SCOPE], "users": [admin], "groups": [INSTRUCTOR_GROUP],
    })
    # DLAB_PROMETHEUS: Prometheus scrapes /hub/metrics with a token of this service (in the
    # metrics-token volume, added by jupyterhub_config.py), which may read the metrics and nothing else.
    if s["DLAB_PROMETHEUS"] == "on":
        services.append({"name": "prometheus"})
        roles.append({"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]})
    c.JupyterHub.custom_scopes = {
        GRADE_SCOPE: {"description": "Run an autograded submission in a sandbox"},
        CLASSVIEW_SCOPE: {"description": "See the class page: every student's server, its use of memory, CPU and disk"},
    }
    c.JupyterHub.authenticate_prometheus = True  # /hub/metrics names every student: a token with read:metrics
    c.JupyterHub.load_roles = roles
    c.JupyterHub.services = services
    return []


def update_grading(c, s, engine):
    """Grading in a sandbox (dlab_hub.grading): the hub's API runs an autograded submission in a
    throwaway container of the students' image, within the class's limits, for the organizer and
    the instructors group alone (a scope of their own, which their servers' tokens carry too)."""
    limits = policy(s).limits
    # JupyterHub gives a server's token the subset of these its owner holds: a student's, none of dlab's.
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", GRADE_SCOPE]
    c.DlabGrading.sandbox = Sandbox(
        image=student_images(s)[0], grading_volume=assignment_volumes(s)[1], memory=limits.memory,
        cpus=limits.cpus, processes=limits.processes, tmp=limits.tmp, timeout=s["DLAB_GRADE_TIMEOUT"],
        cell_timeout=min(s["DLAB_GRADE_TIMEOUT"], 300), at_once=max(1, engine.cpus // 2))
    return []


def update_class_view(c, s, engine):
    """The class page and the per-student metrics (dlab_hub.classview), looking every
    DLAB_CLASS_VIEW_EVERY seconds; started by jupyterhub_config.py."""
    c.ClassView.every = s["DLAB_CLASS_VIEW_EVERY"]
    c.ClassView.prefix = s["DLAB_PREFIX"]
    c.ClassView.max_servers = max_servers(policy(s).max_servers, engine.memory)
    c.ClassView.machine_memory = engine.memory
    limits, shared = policy(s).limits, s["DLAB_SWARM_SHARED"]
    c.ClassView.sized_homes = bool(limits.home) and not shared  # as update_student_volumes makes them
    c.ClassView.sized_handins = bool(limits.handin and limits.home) and not shared
    c.ClassView.gpu_image = student_images(s)[1]
    c.ClassView.gpus = engine.gpu_runtime
    if not s["DLAB_CLASS_VIEW_EVERY"]:
        return ["no class page and no per-student metrics (DLAB_CLASS_VIEW_EVERY=0)"]
    return [f"the class page /hub/classview looks at every server each {s['DLAB_CLASS_VIEW_EVERY']} s"]
