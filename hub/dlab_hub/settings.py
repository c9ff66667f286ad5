"""dlab's class-server settings, declared once.

Each setting is one `Setting` below: its name, default, what it allows, what it does and where it
applies. Everything else is made from this list, the way zero-to-jupyterhub makes its configuration,
validation and reference docs from values.schema.yaml:

- `.env.example` and the settings table of docs/class-server.md (`.venv/bin/python -m dlab_hub.settings write`; a test in
  `make check` fails when either is stale);
- the host commands' settings (scripts/lib.sh: `load_settings` runs `... export`, which reads .env
  as data, fills the defaults, and stops with every wrong setting named and what it allows);
- the hub's settings (`export` also writes them as one JSON value, DLAB_HUB_SETTINGS, which
  compose hands to the hub; jupyterhub_config.py reads it back through `load`, and
  dlab_hub.config.configure turns the parsed values into traitlets).

Standard library only: it runs on the host (python3) as well as in dlab/hub.
"""
import json
import os
import pathlib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from dlab_hub.kinds import (DOCKER_NAME, IMAGE, ON_OFF, SIZE, TEXT, VOLUME_OR_PATH, Invalid, Kind, address,
                            auto_or_whole, cpus, gpu_request, home_size, max_servers, path_or_empty, seconds_or_off,
                            pattern, whole)

# Usernames: 1 to 32 letters (any script), digits, dots, dashes or underscores, starting with a
# letter or digit. They become URLs (/user/NAME), container and volume names: no spaces, no
# slashes, no "..". JupyterHub lowercases them first, so "Alice" and "alice" are one account.
USERNAME_PATTERN = r"^[^\W_][\w.-]{0,31}\Z"


def escaped_name(username):
    """The name as Docker objects carry it (DockerSpawner's escape, scripts/lib.sh's home_volume):
    letters and digits as they are, every other byte as -xx."""
    return "".join(c if c.isascii() and c.isalnum() else "".join(f"-{b:02x}" for b in c.encode()) for c in username)


# A home's image is DLAB_HOMES_DIR/<prefix>-handin-<escaped name>.ext4.new, and a file name holds at
# most 255 bytes: 32 CJK characters would make 288 on their own. 200 leaves room for any prefix.
MAX_ESCAPED_NAME = 200


def name_fits(username):
    """Whether a username's Docker objects and home images can be named (22 CJK characters can)."""
    return len(escaped_name(username)) <= MAX_ESCAPED_NAME

# A public DNS name: labels of letters, digits and dashes, at least two, the last not all digits (an
# IP address is no name an ACME authority certifies).
DOMAIN_PATTERN = r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+(?!\d+\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"

# Inside dlab/hub: the hub's database and secrets (the hub-state volume), read through dlab_hub/state.py by the hub and
# dlab_hub/prestart.py alike.
STATE_DIR = pathlib.Path(os.environ.get("DLAB_HUB_STATE", "/srv/jupyterhub"))
SECRETS_DIR = STATE_DIR / "secrets"
FIRST_PASSWORD_DIR = STATE_DIR / "first-password"  # an empty file per roster account on its sheet's password
SIGNUPS_FILE = STATE_DIR / "signups.jsonl"  # a line per sign-up: when, who, from where (make signups)


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    kind: Kind
    help: str        # what it does: one paragraph, Markdown (docs/class-server.md's table, .env.example)
    applies: str     # "hub" (the hub reads it), "host" (make's commands), or "both"

    def parse(self, value):
        """The value the code uses, or Invalid with a message that names the setting and what it allows."""
        try:
            return self.kind.parse(value)
        except Invalid:
            raise Invalid(f"{self.name}={value!r} is not {self.kind.allowed}") from None


SETTINGS = [
    Setting("DLAB_HUB_PORT", "8000", whole(1, 65535, "a port number, 1 to 65535"),
            "The port the class opens in the browser (`http://SERVER:PORT`); 443 with your own certificate "
            "(`DLAB_SSL_CERT`). With `DLAB_DOMAIN` the class is on 443, and this port on `127.0.0.1` only.", "host"),
    Setting("DLAB_HUB_BIND", "0.0.0.0", Kind("an IP address of this machine, like 0.0.0.0 or 127.0.0.1", address),
            "The address it listens on: `127.0.0.1` keeps the class to this machine (behind your own "
            "HTTPS reverse proxy). With `DLAB_DOMAIN`: the address of ports 80 and 443.", "host"),
    Setting("DLAB_ADMIN", "admin", pattern(USERNAME_PATTERN[1:-2], "a username: 1 to 32 letters, digits, dots, dashes "
                                          "or underscores, starting with a letter or digit", convert=str.lower),
            "The organizer's account, made on first start with a random password that `make up` prints "
            "until you change it at `/hub/change-password`.", "both"),
    Setting("DLAB_CLASS_CODE", "", TEXT,
            "Empty: students sign up and you approve each one at `/hub/authorize`. Set: a student who "
            "gives this code at sign-up is approved at once (share it with the class only).", "hub"),
    Setting("DLAB_IMAGE", "dlab/cpu:latest", IMAGE, "The students' image (the CPU profile).", "both"),
    Setting("DLAB_GPU_IMAGE", "dlab/gpu:latest", IMAGE, "The GPU profile's image (`make build-gpu`).", "hub"),
    Setting("DLAB_GPUS", "auto", Kind("auto, none, all, a count (2) or device=0,1 (docker run --gpus syntax)",
                                      gpu_request),
            "The GPU profile: `auto` (offered where Docker has the NVIDIA runtime and `DLAB_GPU_IMAGE` "
            "is built; each GPU student gets every card), `none`, `all`, a count (`1`: each GPU student gets "
            "that many cards of `DLAB_GPU_IDS`, the least used ones, so a class spreads over the cards), or "
            "`device=0,1` (these cards for everyone, as `docker run --gpus`).", "hub"),
    Setting("DLAB_GPU_IDS", "auto", pattern(r"auto|[\w-]+(,[\w-]+)*", "auto, or GPU indexes or UUIDs like 0,1,3"),
            "The cards a count in `DLAB_GPUS` spreads the class over: `auto`, every card the NVIDIA runtime "
            "shows; or a list (`0,1,2`: card 3 kept for yourself).", "hub"),
    Setting("DLAB_MEM_LIMIT", "4G", SIZE,
            "Memory per student: beyond it the kernel is killed, the server lives on.", "hub"),
    Setting("DLAB_CPU_LIMIT", "2", Kind("a number of CPU cores above 0, like 2 or 0.5", cpus),
            "CPU cores per student (the frameworks' thread pools inside follow it).", "hub"),
    Setting("DLAB_PIDS_LIMIT", "1024", whole(64, allowed="a whole number, at least 64"),
            "Processes per student: a fork bomb stops here.", "hub"),
    Setting("DLAB_SHM_SIZE", "1g", SIZE, "`/dev/shm` per student (PyTorch's data loaders need more than 64m).", "hub"),
    Setting("DLAB_TMP_SIZE", "1g", SIZE,
            "`/tmp` per student, in memory (counted in `DLAB_MEM_LIMIT`); nothing else outside the "
            "home is writable.", "hub"),
    Setting("DLAB_HOME_SIZE", "5G", Kind("a size of at least 64M, like 500M, 5G or 1T (0: homes without a size "
                                         "limit)", home_size),
            "Each student's home is a file system of its own of this size (an ext4 image on a loop "
            "device, in `DLAB_HOMES_DIR`; it takes on disk only what is written): a student who fills "
            "it stops there. A larger value applies to homes made afterwards. `0`: plain Docker "
            "volumes without a limit (for machines without loop devices).", "both"),
    Setting("DLAB_HANDIN_SIZE", "1G", Kind("a size of at least 64M, like 500M or 1G (0: hand-in folders without "
                                           "a size limit)", home_size),
            "Each student's hand-in folder (`~/handin`) is a file system of its own of this size, "
            "made like the homes, so a student who fills it stops there. Applies where homes have a "
            "size (`DLAB_HOME_SIZE` not 0). `0`: folders of one volume without a limit.", "hub"),
    Setting("DLAB_COURSE_SIZE", "10G", Kind("a size of at least 64M, like 2G or 10G (0: a course folder without "
                                            "a size limit)", home_size),
            "The course folder (`~/course`, which instructors write) is a file system of its own of this "
            "size, made like the homes. Applies where homes have a size (`DLAB_HOME_SIZE` not 0).", "hub"),
    Setting("DLAB_GRADING_SIZE", "10G", Kind("a size of at least 64M, like 2G or 10G (0: a grading folder without "
                                             "a size limit)", home_size),
            "The assignments' grading folder (`~/grading`, instructors only: nbgrader's course with the "
            "solutions, the collected submissions and the gradebook) is a file system of its own of this "
            "size, made like the homes; the exchange (released assignments, feedback) gets "
            "`DLAB_COURSE_SIZE`. Applies where homes have a size (`DLAB_HOME_SIZE` not 0).", "hub"),
    Setting("DLAB_HOMES_DIR", "/var/lib/dlab/homes",
            pattern(r"/(?!.*(^|/)\.\.(/|$))[\w./-]*", "an absolute path on this machine (no ..)"),
            "Where the homes' images (`<volume>.ext4`) live on this machine.", "both"),
    Setting("DLAB_OIDC_ISSUER", "", pattern(r"(https?://[^\s/?#]+(/[^\s?#]*)?)?", "an https:// URL of an OpenID Connect "
                                            "provider (the issuer, without /.well-known/...), or empty"),
            "Sign in with the institution: the OpenID Connect provider's issuer URL (the hub reads "
            "`<issuer>/.well-known/openid-configuration`), e.g. `https://login.uni.example/realms/students`, "
            "`https://accounts.google.com`; `https://github.com` for GitHub's OAuth. Empty: only the class's "
            "own accounts. See [Sign in with the institution](organizer.md#sign-in-with-the-institution).", "hub"),
    Setting("DLAB_OIDC_CLIENT_ID", "", pattern(r"[^\s]{0,200}", "the client id the provider gave (no spaces), or empty"),
            "The class server's client id at the provider (register the redirect URL "
            "`https://<your class server>/hub/oauth_callback` there).", "hub"),
    Setting("DLAB_OIDC_CLIENT_SECRET", "", pattern(r"[^\s]{0,400}", "the client secret the provider gave (no spaces), or empty"),
            "The client secret that goes with it (kept in `.env`, which only you should read).", "hub"),
    Setting("DLAB_OIDC_NAME", "your institution", TEXT,
            "The login page's button: \"Sign in with ...\".", "hub"),
    Setting("DLAB_OIDC_USERNAME_CLAIM", "preferred_username", pattern(r"[\w.:-]{1,100}", "a claim name like preferred_username"),
            "The claim that becomes the username (`login` for GitHub, `email` with `DLAB_OIDC_EMAIL_DOMAIN` for "
            "Google); it must be a valid username, and not one of the class's own accounts.", "hub"),
    Setting("DLAB_OIDC_EMAIL_DOMAIN", "", pattern(r"([a-z0-9-]+\.)+[a-z]{2,}|", "a domain like uni.example, or empty"),
            "With an email as the username claim: only addresses of this domain sign in, and the part "
            "before the @ is the username (`ana@uni.example` is `ana`).", "hub"),
    Setting("DLAB_OIDC_ALLOWED_USERS", "", pattern(r"[\w.@-]+([ ,]+[\w.@-]+)*|", "usernames separated by spaces or "
                                                   "commas, or empty"),
            "Who may sign in with the institution: these names alone (as the provider gives them, after "
            "`DLAB_OIDC_EMAIL_DOMAIN`). Empty: anyone the provider signs in. Needed with GitHub, which "
            "signs in every GitHub user.", "hub"),
    Setting("DLAB_EGRESS", "on", ON_OFF,
            "`on`: students' containers reach the internet (`pip install`, `git clone`); `off`: the "
            "hub only. Either way never a classmate's container, this machine's other ports, or a "
            "private or link-local address.", "hub"),
    Setting("DLAB_LINK_HOSTS", "", pattern(r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?)?([ ,]+[a-z0-9]([a-z0-9.-]*[a-z0-9])?)*",
                                           "host names separated by spaces or commas, like github.com "
                                           "gitlab.uni.example, or empty", re.IGNORECASE),
            "The hosts course links (`make link`) may take repositories from; empty: any https host. "
            "Whatever is set, a link only ever clones an http(s) repository into a visible folder of the "
            "home. See [Course material by link](organizer.md#course-material-by-link-nbgitpuller).", "both"),
    Setting("DLAB_SUBDOMAIN_HOST", "", pattern(r"(https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?)?",
                                               "a URL like https://class.example.org (scheme and host, "
                                               "lowercase, no path), or empty"),
            "`https://class.example.org`: each student's server at `https://<user>.class.example.org`, "
            "an origin of its own (needs a wildcard DNS name and, for HTTPS, a wildcard certificate): "
            "the safest set-up, since a page a student serves then never shares the hub's origin. "
            "See [Students' pages and subdomains](#students-pages-and-subdomains).", "both"),
    Setting("DLAB_ORGANIZER_OPENS_SERVERS", "off", ON_OFF,
            "`on`: the organizer may open students' servers (JupyterHub's full admin). Off by default: "
            "without subdomains a student's server shares the hub's origin, and its pages are the "
            "student's to write.", "hub"),
    Setting("DLAB_LAB_SOLUTIONS", "shown", pattern(r"shown|withheld", "shown or withheld"),
            "`shown`: the solutions of the labs' exercises are in every server, at `/opt/dlab/solutions` "
            "(a student stuck on one `%load`s it); `withheld`: students' servers hold an empty folder "
            "there (a class that grades the exercises). See [Exercises and their solutions](labs.md#exercises).", "hub"),
    Setting("DLAB_IDLE_TIMEOUT", "3600", whole(),
            "Seconds without activity before a student's server is stopped (their files stay); `0`: never.", "hub"),
    Setting("DLAB_PRESTART_AT", "", pattern(r"(([01]\d|2[0-3]):[0-5]\d)?", "a time of day as HH:MM (UTC), or empty"),
            "Every day at this time (UTC) the hub starts the server of every approved account, one after "
            "another, so a class that logs in at once finds JupyterLab running (`make prestart` does it "
            "now); empty: only `make prestart`.", "hub"),
    Setting("DLAB_PRESTART_HOLD", "120", whole(1),
            "Minutes a pre-started server is kept from the idle culler after it starts (the time until "
            "the class, and some).", "hub"),
    Setting("DLAB_CULL_EVERY", "", Kind("a whole number of seconds, at least 1, or empty",
                                        lambda v: whole(1).parse(v) if v else None),
            "How often the idle culler looks, in seconds; empty: a quarter of `DLAB_IDLE_TIMEOUT`.", "hub"),
    Setting("DLAB_GRADE_TIMEOUT", "600", whole(10),
            "Seconds one submission's notebook may run when it is autograded, in a sandbox of its own "
            "(each cell at most 300 of them); past it, the sandbox is stopped and the grade says so.", "hub"),
    Setting("DLAB_CLASS_VIEW_EVERY", "15", Kind("0, or a whole number of seconds from 5 to 300", seconds_or_off),
            "How often the organizer's class page (`/hub/classview`) and the metrics look at every student's "
            "server: its state, memory and CPU (the host's cgroup files); the homes' and hand-ins' use "
            "every fourth look. `0`: no class page, no per-student metrics.", "hub"),
    Setting("DLAB_PROMETHEUS", "off", ON_OFF,
            "`on`: `make up` also runs Prometheus (Debian's, image `dlab/prometheus`), which keeps the hub's "
            "metrics and each student's for 15 days (at most 1 GB), on `127.0.0.1:DLAB_PROMETHEUS_PORT` "
            "([docs/organizer.md](organizer.md#the-class-page-and-metrics)). Needs `DLAB_CLASS_VIEW_EVERY` "
            "for the students' metrics.", "both"),
    Setting("DLAB_PROMETHEUS_PORT", "9090", whole(1, 65535, "a port number, 1 to 65535"),
            "The port of Prometheus' page and API, on `127.0.0.1` only, behind the login `make up` prints: from "
            "another machine, an SSH tunnel.", "host"),
    Setting("DLAB_START_TIMEOUT", "600", whole(10), "Seconds a server may take to start (a large image's first "
            "start can be slow).", "hub"),
    Setting("DLAB_MIN_PASSWORD_LENGTH", "8", whole(1, 72), "The shortest password a student may choose.", "hub"),
    Setting("DLAB_DATA_VOLUME", "dlab-data", VOLUME_OR_PATH,
            "The shared datasets (`make data` fills it; `make lab` mounts it too), read-only at `/srv/data`.", "both"),
    Setting("DLAB_PREFIX", "dlab", pattern(r"[a-z0-9][a-z0-9_-]{0,31}", "small letters, digits, - and _ (at most 32; "
                                           "it names containers and volumes)"),
            "Names: hub container `PREFIX-hub`, students' containers `PREFIX.<user>`, homes "
            "`PREFIX-home-<user>`, hub state `PREFIX-hub-state`. Changing it on a running class starts "
            "everyone with a new home.", "both"),
    Setting("DLAB_NETWORK", "dlab", DOCKER_NAME, "The Docker network of the hub and the students' servers.", "both"),
    Setting("DLAB_SPAWN_LIMIT", "100", whole(1),
            "Server starts under way or waiting their turn at once; the next student sees \"Too many users "
            "trying to log in right now. Try again in N seconds\" (10-20 s).", "hub"),
    Setting("DLAB_STARTS_AT_ONCE", "auto", Kind("auto or a whole number, at least 1", auto_or_whole),
            "Servers that start side by side; the others wait their turn, first come first served. A start "
            "is mostly CPU, so side by side beyond the cores every student of a class waits as long as the "
            "last. `auto`: the machine's cores.", "hub"),
    Setting("DLAB_MAX_SERVERS", "auto", Kind("auto or a whole number (0: no limit)", max_servers),
            "Servers running at once; the next student sees \"Active user limit exceeded. Try again in a "
            "few minutes.\" `auto`: one per 512 MiB of the machine's memory beyond 2 GiB (44 on 24 GiB), "
            "so a leaked class code cannot run the machine out of memory; `0`: no limit.", "hub"),
    Setting("DLAB_PENDING_SIGNUPS", "100", whole(1),
            "Sign-ups that may wait for the organizer's approval at once (without a class code); more are "
            "refused until the organizer approves or clears some (`make signups`).", "hub"),
    Setting("DLAB_SIGNUPS_PER_HOUR", "100", whole(1),
            "Sign-up attempts one address may make in an hour (\"Too many sign-ups from your network\"): "
            "a class behind one router shares an address, so keep it above the class's size.", "hub"),
    Setting("DLAB_SWARM_SHARED", "", Kind("an absolute path, or empty", path_or_empty),
            "More than one machine ([docs/swarm.md](swarm.md)): the class on a Docker Swarm. The folder "
            "mounted at this same path on every node that may run students (an NFS export): the homes "
            "(`homes/<user>`), the course and hand-in folders and the datasets live there. `make "
            "swarm-check` checks each node and labels those that are ready; `make up` on a manager then "
            "starts each student's server as a swarm service. Empty: one machine.", "both"),
    Setting("DLAB_SWARM_REGISTRY", "", pattern(r"|[a-z0-9.-]+(:[0-9]{1,5})?", "a registry's host[:port], or empty"),
            "On a swarm: the registry the nodes pull the students' images from (`make swarm-push` puts "
            "them there); the servers run `REGISTRY/DLAB_IMAGE`. Empty: the images are loaded on every "
            "node by hand.", "both"),
    Setting("DLAB_MIN_FREE_GB", "2", whole(),
            "`make up` refuses to start when Docker's disk, where the homes are, has less free than "
            "this (GB).", "host"),
    Setting("DLAB_HUB_CONFIG_DIR", "./jupyterhub_config.d",
            pattern(r"(\./|/)(?!.*(^|/)\.\.(/|$))[\w./-]*", "a folder: an absolute path, or ./ and a path in this checkout (no ..)"),
            "A folder of your own JupyterHub configuration files (`*.py`, read in name order after dlab's "
            "own configuration, which they may change: dlab does not check them), as The Littlest "
            "JupyterHub's `jupyterhub_config.d`. Mounted read-only into the hub; `make up` after a change. "
            "See [More JupyterHub settings](organizer.md#more-jupyterhub-settings).", "host"),
    Setting("DLAB_DOMAIN", "", pattern(f"({DOMAIN_PATTERN})?", "a DNS name with a dot, like class.example.edu (no scheme, "
                                        "no port), or empty", re.IGNORECASE, convert=str.lower),
            "HTTPS by itself: the class's public name, whose DNS record points to this machine (ports 80 and 443 "
            "open). `make up` then serves the class at `https://DOMAIN` with a certificate from an ACME "
            "authority (Let's Encrypt unless `DLAB_ACME_DIRECTORY` says otherwise), obtained and renewed by "
            "Caddy; the class port is then this machine's only (`127.0.0.1`). Empty: `http://SERVER:PORT`. "
            "See [HTTPS](#https).", "both"),
    Setting("DLAB_ACME_EMAIL", "", pattern(r"([\w.+-]+@[a-z0-9.-]+\.[a-z]{2,})?", "an email address, or empty", re.IGNORECASE),
            "With `DLAB_DOMAIN`: the address the authority writes to about the certificate (a renewal "
            "that keeps failing); empty: none.", "host"),
    Setting("DLAB_ACME_DIRECTORY", LETS_ENCRYPT, pattern(r"https://[^\s/?#{}\"'`\\]+(/[^\s?#{}\"'`\\]*)?", "an https:// URL of "
                                                         "an ACME directory"),
            "With `DLAB_DOMAIN`: the ACME authority's directory URL. Let's Encrypt's by default; its staging "
            "`https://acme-staging-v02.api.letsencrypt.org/directory` for a rehearsal (certificates no "
            "browser trusts, generous rate limits), or an internal authority's (step-ca, a university's).", "host"),
    Setting("DLAB_ACME_CA_ROOT", "", Kind("an absolute path, or empty", path_or_empty),
            "With an internal authority: the root certificate (PEM) its ACME directory is served under, "
            "a path on this machine, when the system does not trust it already.", "host"),
    Setting("DLAB_SSL_CERT", "", Kind("an absolute path, or empty", path_or_empty),
            "HTTPS with your own certificate (instead of `DLAB_DOMAIN`): the certificate (full chain), a "
            "path on this machine; `make up` copies it into the proxy's secrets (run it again after a "
            "renewal). Set `DLAB_HUB_PORT=443`. See [HTTPS](#https).", "both"),
    Setting("DLAB_SSL_KEY", "", Kind("an absolute path, or empty", path_or_empty),
            "HTTPS: the certificate's private key, a path on this machine.", "host"),
]
BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_env_file(path):
    """NAME=value pairs of a settings file, read as data as docker compose reads it (optional
    `export`, quotes, # comments), never run as code. Raises Invalid naming the line to fix."""
    values = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if re.fullmatch(r"\s*(#.*)?", line):
            continue
        match = re.fullmatch(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if not match:
            raise Invalid(f"{path} line {number} is not NAME=value: {line}")
        name, value = match[1], match[2]
        quoted = re.fullmatch(r"\"(.*)\"\s*|'(.*)'\s*", value)
        if quoted:
            value = quoted[1] if quoted[1] is not None else quoted[2]
        else:
            value = re.sub(r"\s+#.*", "", value).strip()
        values[name] = value
    return values


def load(environ, env_file=None, applies=("hub", "host", "both")):
    """Every declared setting's value (a string, defaults filled) from environ, which wins, and
    env_file. Returns (values, parsed, problems, warnings): problems name each wrong setting and what
    it allows; warnings name DLAB_ variables that are no setting (a typo?)."""
    from_file = read_env_file(env_file) if env_file and Path(env_file).is_file() else {}
    values, parsed, problems = {}, {}, []
    for setting in SETTINGS:
        if setting.applies not in applies:
            continue
        value = environ.get(setting.name)
        if value is None:
            value = from_file.get(setting.name, "")
        value = value or setting.default  # empty counts as unset, as compose's ${NAME:-default}
        if "\n" in value:
            problems.append(f"{setting.name} holds a line break: a setting is one line")
            continue
        try:
            parsed[setting.name] = setting.parse(value)
            values[setting.name] = value
        except Invalid as error:
            problems.append(str(error))
    if (re.fullmatch(r"https?://(www\.)?github\.com/?", parsed.get("DLAB_OIDC_ISSUER") or "")
            and not parsed.get("DLAB_OIDC_ALLOWED_USERS")):
        problems.append("DLAB_OIDC_ISSUER is GitHub, which signs in every GitHub user: list the class's GitHub "
                        "logins in DLAB_OIDC_ALLOWED_USERS (like ana-gh, ben-gh), or use the institution's own provider")
    if parsed.get("DLAB_OIDC_ISSUER") and not (parsed.get("DLAB_OIDC_CLIENT_ID") and parsed.get("DLAB_OIDC_CLIENT_SECRET")):
        problems.append("DLAB_OIDC_ISSUER is set but DLAB_OIDC_CLIENT_ID or DLAB_OIDC_CLIENT_SECRET is empty: set "
                        "both (the provider gives them when you register the class server)")
    if parsed.get("DLAB_DOMAIN") and parsed.get("DLAB_SSL_CERT"):
        problems.append("DLAB_DOMAIN and DLAB_SSL_CERT are both set: HTTPS either gets its certificate by itself "
                        "(DLAB_DOMAIN) or uses yours (DLAB_SSL_CERT, DLAB_SSL_KEY); empty one of them")
    if parsed.get("DLAB_DOMAIN") and parsed.get("DLAB_HUB_PORT") in (80, 443):
        problems.append(f"DLAB_HUB_PORT={parsed['DLAB_HUB_PORT']} with DLAB_DOMAIN: Caddy takes ports 80 and 443, and the "
                        "class port is then this machine's own; set DLAB_HUB_PORT=8000 (or any other free port)")
    if parsed.get("DLAB_DOMAIN") and parsed.get("DLAB_SUBDOMAIN_HOST"):
        problems.append("DLAB_DOMAIN cannot serve DLAB_SUBDOMAIN_HOST: students' subdomains need a wildcard "
                        "certificate, which an ACME authority gives only through the DNS challenge, and dlab's "
                        "Caddy (Debian's) has no DNS provider's module. Get the wildcard with certbot's plugin "
                        "for your DNS provider (Debian: python3-certbot-dns-*), set DLAB_SSL_CERT and "
                        "DLAB_SSL_KEY and empty DLAB_DOMAIN; or empty DLAB_SUBDOMAIN_HOST")
    if parsed.get("DLAB_PROMETHEUS") == "on" and parsed.get("DLAB_HUB_PORT") is not None \
            and parsed.get("DLAB_PROMETHEUS_PORT") == parsed["DLAB_HUB_PORT"]:
        problems.append(f"DLAB_PROMETHEUS_PORT and DLAB_HUB_PORT are both {parsed['DLAB_HUB_PORT']}: give Prometheus "
                        "another port (9090 is its usual one)")
    unknown = sorted(name for name in from_file if name.startswith("DLAB_") and name not in BY_NAME)
    warnings = [f"{name} in {env_file} is not a dlab setting (a typo? .env.example lists them all)" for name in unknown]
    return values, parsed, problems, warnings


# --- What is made from the declaration ---------------------------------------------------------

ENV_EXAMPLE_HEADER = """\
# dlab class server settings. Copy to .env (`cp .env.example .env`) and change what you need;
# every make command reads .env (read as data: NAME=value, quotes and # comments allowed). Every
# setting has a safe default: an empty .env is a working class server. `make up` checks each one.
#
# Made by `.venv/bin/python -m dlab_hub.settings write` from hub/dlab_hub/settings.py: edit that file, not this.
"""


TABLE_FILE = "docs/class-server.md"  # the settings' reference, beside the sections their help links to


def env_example():
    blocks = [ENV_EXAMPLE_HEADER]
    for setting in SETTINGS:
        # [Title](#anchor) -> "Title in docs/class-server.md"; [Title](page.md#anchor) -> "Title in docs/page.md".
        text = re.sub(r"\[([^]]+)\]\(#[^)]+\)", rf"\1 in {TABLE_FILE}", setting.help)
        text = re.sub(r"\[([^]]+)\]\(([\w.-]+\.md)#[^)]+\)", r"\1 in docs/\2", text).replace("`", "")
        lines = textwrap.wrap(f"{text} Allowed: {setting.kind.allowed}.", 98)
        blocks.append("\n".join(f"# {line}" for line in lines) + f"\n{setting.name}={setting.default}\n")
    return "\n".join(blocks)


README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"  # in TABLE_FILE
WHERE = {"hub": "hub", "host": "make", "both": "hub, make"}


def readme_table():
    rows = ["| setting | default | allowed | what it does | read by |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "empty"
        rows.append(f"| `{s.name}` | {default} | {s.kind.allowed} | {s.help} | {WHERE[s.applies]} |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme):
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return readme[:start] + "\n" + readme_table() + readme[end:]


def exported(environ, env_file):
    """The environment of the class's commands: every setting (defaults filled) as text, then the
    hub's as one JSON value, DLAB_HUB_SETTINGS, which compose hands to the hub. None when a setting
    is wrong, after saying each one with what it allows."""
    try:
        values, _, problems, warnings = load(environ, env_file)
    except Invalid as error:
        values, problems, warnings = {}, [str(error)], []
    for warning in warnings:
        print(f"dlab: warning: {warning}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"dlab: {problem}", file=sys.stderr)
        print(f"dlab: fix {'that' if len(problems) == 1 else 'those'} in {env_file} (.env.example says what "
              "each setting allows), then run the command again", file=sys.stderr)
        return None
    hub = {name: value for name, value in values.items() if BY_NAME[name].applies != "host"}
    return {**{name: str(value) for name, value in values.items()}, "DLAB_HUB_SETTINGS": json.dumps(hub, separators=(",", ":"))}


def main(argv):
    root = Path(__file__).resolve().parents[2]  # the checkout: write makes its .env.example and table
    command = argv[1] if len(argv) > 1 else ""
    if command == "export":
        # For the host's commands that are shell (scripts/lib.sh's load_settings): the environment
        # as NAME=value lines.
        environment = exported(os.environ, os.environ.get("DLAB_ENV_FILE") or ".env")
        if environment is None:
            return 1
        print("".join(f"{name}={value}\n" for name, value in environment.items()), end="")
        return 0
    if command == "write":
        (root / ".env.example").write_text(env_example())
        reference = root / TABLE_FILE
        reference.write_text(readme_with_table(reference.read_text()))
        return 0
    print(f"usage: {argv[0]} export|write", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
