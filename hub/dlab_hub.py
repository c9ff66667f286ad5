"""dlab's additions to JupyterHub, used by jupyterhub_config.py (installed into the hub image).

- secret(): the hub's secrets, made on first start into files that only the hub can read;
- docker_gpu_runtime() / image_present(): what the Docker engine behind the hub offers;
- DlabSpawner: DockerSpawner with a CPU profile and, where the server has a GPU, a GPU profile;
- DlabSwarmSpawner: the same class on a Docker Swarm, each server a service (dlab_swarm.py);
- DlabAuthenticator: NativeAuthenticator with a class access code, and the organizer's account made
  on first start with a generated password (there is no default password anywhere).
"""
import asyncio
import datetime
import fcntl
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import socket
import time
import unicodedata
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import docker
import tornado.httpserver
from tornado import httputil
from dockerspawner import DockerSpawner, SwarmSpawner
from docker.utils import parse_bytes
from oauthenticator.generic import GenericOAuthenticator
from confusable_homoglyphs.confusables import confusables_data
from jupyterhub import apihandlers, orm
from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from jupyterhub.utils import url_path_join
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import (ChangePasswordHandler, DiscardHandler, LoginHandler, SignUpHandler,
                                         ToggleAuthorizationHandler, admin_users_scope)
from nativeauthenticator.orm import UserInfo
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Any, Integer, List, Set, Unicode, default

from dlab_settings import FIRST_PASSWORD_DIR, SECRETS_DIR, SIGNUPS_FILE, STATE_DIR, GpuRequest, name_fits
from dlab_swarm import GPU_RESOURCE, service_name, service_spec

USERNAME_RULE = ("Choose a username of 1 to 32 letters, digits, dots, dashes or underscores that "
                 "starts with a letter or a digit (no spaces or slashes; capitals count as small letters; "
                 "in other scripts than Latin, at most about 20 letters).")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit: a longer password would be an error, not a login
# Longer than any username can be (USERNAME_PATTERN: 32 characters): refused before any other work,
# so a megabyte "username" is neither normalized, nor looked up, nor remembered.
MAX_NAME_CHARS = 64

PROXY_DIR = pathlib.Path(os.environ.get("DLAB_PROXY_DIR", "/srv/proxy"))  # the proxy's volume, read-only
HANDIN_DIR = pathlib.Path(os.environ.get("DLAB_HANDIN_DIR", "/srv/handin"))  # the hand-in volume (compose.yaml)
INSTITUTION_DIR = STATE_DIR / "institution"  # an empty file per account that signs in with the institution
GITHUB = {"authorization_endpoint": "https://github.com/login/oauth/authorize",  # OAuth 2, no discovery
          "token_endpoint": "https://github.com/login/oauth/access_token", "userinfo_endpoint": "https://api.github.com/user"}


def secret(name, nbytes=32):
    """The hex secret kept in SECRETS_DIR/name: read it, or make it (mode 0600) on first start."""
    SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = SECRETS_DIR / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_hex(nbytes)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def discover_oidc(issuer):
    """The provider's endpoints, from its OpenID Connect discovery document (GitHub's are known)."""
    if issuer.rstrip("/") == "https://github.com":
        return GITHUB
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            found = json.load(response)
        return {key: found[key] for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")}
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"dlab hub: cannot read the sign-in provider's {url} ({error}): check DLAB_OIDC_ISSUER "
                         "in .env (the issuer URL your identity provider gives), or empty it") from error


def proxy_token(wait=60):
    """The token the proxy made in its volume (images/hub/dlab-proxy); compose starts the proxy
    first, so it is there, or soon."""
    path = PROXY_DIR / "proxy_token"
    for _ in range(wait):
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(1)
    raise SystemExit(f"dlab hub: no proxy token in {path}: start the class with `make up` (compose.yaml "
                     "starts the proxy first)")


def docker_client():
    """The Docker engine the hub starts students' containers on; exits with what to do if absent."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing
        raise SystemExit(
            f"dlab hub: cannot reach the Docker engine ({error}). The hub needs /var/run/docker.sock "
            "and the socket's group: start it with `make up`, which sets both (compose.yaml)."
        ) from error


def volume_exists(name):
    try:
        docker.from_env(timeout=30).volumes.get(name)
        return True
    except docker.errors.NotFound:
        return False


def memory_total():
    """The machine's memory in bytes (/proc/meminfo shows the host's inside a container)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("dlab hub: no MemTotal in /proc/meminfo: set DLAB_MAX_SERVERS in .env")


def docker_gpu_runtime(client):
    """True when the engine has the NVIDIA runtime (the NVIDIA container toolkit is installed)."""
    return "nvidia" in (client.info().get("Runtimes") or {})


def image_present(client, image):
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def swarm_gpus(client):
    """The GPUs the swarm's nodes advertise (generic resources NVIDIA-GPU: named ones, or a count)."""
    total = 0
    for node in client.api.nodes():
        for resource in (node.get("Description", {}).get("Resources", {}).get("GenericResources") or []):
            named, counted = resource.get("NamedResourceSpec") or {}, resource.get("DiscreteResourceSpec") or {}
            total += (named.get("Kind") == GPU_RESOURCE) + (counted.get("Value", 0) if counted.get("Kind") == GPU_RESOURCE else 0)
    return total


def gpu_device_requests(request):
    """Docker device requests for a GpuRequest: all the cards, a count, or named ones."""
    if request.kind == "devices":
        return [docker.types.DeviceRequest(device_ids=list(request.devices), capabilities=[["gpu"]])]
    count = -1 if request.kind == "all" else request.count
    return [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]


def docker_gpu_ids(client, image):
    """The indexes of the GPUs the NVIDIA runtime passes to a container (nvidia-smi, which the
    NVIDIA container toolkit mounts, in a throwaway container of `image`); () where it shows none."""
    try:
        out = client.containers.run(image, ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                    entrypoint=[], user="root", network_mode="none", remove=True,
                                    device_requests=gpu_device_requests(GpuRequest("all")))
    except docker.errors.DockerException:
        return ()
    return tuple(out.decode().split())


def pick_gpus(cards, holders, count):
    """The `count` cards of `cards` that the fewest servers hold (`holders`: the cards each running
    server holds), the first listed among equals: a class spreads over the cards one by one."""
    held = {card: sum(card in ids for ids in holders) for card in cards}
    return sorted(cards, key=lambda card: (held[card], cards.index(card)))[:count]


def client_address(handler):
    """The address of the browser behind a request. The proxy appends the address it saw to
    X-Forwarded-For, so for a request from the proxy the last entry is the one to trust; a request
    that reached the hub's port directly (a student's container can) counts as the socket's own
    address. Tornado's remote_ip would believe a client's own X-Real-Ip header."""
    peer = handler.request.connection.context.address
    peer = peer[0] if isinstance(peer, tuple) else str(peer)
    forwarded = handler.request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    return forwarded if forwarded and peer in proxy_addresses() else peer


def proxy_addresses():
    """The addresses the proxy's requests come from: the `proxy` container's on the class network
    (looked up at most every 30 s: a recreated proxy may get a new one)."""
    now = time.monotonic()
    if now - _proxy_lookup["at"] > 30:
        try:
            _proxy_lookup["addresses"] = frozenset(
                a for info in socket.getaddrinfo("proxy", None) for a in (info[4][0], f"::ffff:{info[4][0]}"))
        except OSError:
            _proxy_lookup["addresses"] = frozenset()
        _proxy_lookup["at"] = now
    return _proxy_lookup["addresses"]


_proxy_lookup = {"at": float("-inf"), "addresses": frozenset()}


# --- Names that look alike ---------------------------------------------------------------------
# Unicode's confusables (the data of confusable-homoglyphs): each character joined with those that
# look like it, each group named by its smallest character. Cyrillic "а" and Latin "a" are one
# group, "l" and "1" another; distinct Latin letters and digits stay apart.
_looks_like = {}


def _group(c):
    while _looks_like.get(c, c) != c:
        c = _looks_like[c]
    return c


_pairs = [(c, h["c"]) for c, homoglyphs in confusables_data.items() for h in homoglyphs]
for _c, _h in [*_pairs, ("0", "o")]:  # the table pairs "0" with a capital "O"; names are small letters
    if len(_c) == 1 and len(_h) == 1:
        _a, _b = _group(_c), _group(_h)
        if _a != _b:
            _looks_like[max(_a, _b)] = min(_a, _b)
# Letters that look like two ("m" like "rn"; UTS #39's skeleton writes them so): each group's
# pair of small Latin letters, and two the table leaves out.
_AS_TWO = {"w": "vv", "d": "cl"}
for _c, _h in _pairs:
    if len(_c) == 1 and len(_h) > 1 and _h.isascii() and _h.isalpha() and _h.islower():
        _AS_TWO[_group(_c)] = min(_AS_TWO.get(_group(_c), _h), _h)
# Letters that show nothing (Hangul fillers): a name with one looks like the name without it.
INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0"}


def skeleton(name):
    """What a name looks like: its Unicode compatibility form (fullwidth "ａ" is "a"), small
    letters, each character as its group's, letters that show nothing left out, and letters that
    look like two as those two ("mary" is "rnary")."""
    groups = (_group(c) for c in unicodedata.normalize("NFKC", name).casefold() if c not in INVISIBLE)
    return "".join(_group(c) for g in groups for c in _AS_TWO.get(g, g))


# --- Bounds on what one request may leave behind ----------------------------------------------
SIGNUPS_KEPT = 10_000  # lines of SIGNUPS_FILE: past them, the oldest half goes


def record_signup(username, address, approved):
    """A line for `make signups` (when, who, from which address, approved by the class code); the
    file keeps at most SIGNUPS_KEPT lines."""
    line = json.dumps({"time": int(time.time()), "username": username, "address": address, "approved": approved})
    with open(SIGNUPS_FILE, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")
        if f.tell() > SIGNUPS_KEPT * 120:  # about SIGNUPS_KEPT lines: keep the newest half
            f.seek(0)
            lines = f.readlines()[-SIGNUPS_KEPT // 2:]
            f.seek(0)
            f.truncate()
            f.writelines(lines)


TOKENS_PER_HOUR = 20  # API tokens a user may make in an hour (the token page, the REST API)
TOKENS_KEPT = 100  # a user's unexpired tokens (their server's and their logins' included)


class RecentEvents:
    """Events per key within a sliding window (failed logins, sign-ups), kept in memory: a hub
    restart forgets them, which only ever unblocks someone. Bounded whatever a flood sends: each
    key is a 16-byte digest of what it stands for (a megabyte username costs 16 bytes), each keeps
    at most `most` times (the largest count anyone asks about), keys whose window has passed are
    dropped once a window, and past `keys` keys the oldest go."""

    def __init__(self, window, most, keys=50_000):
        self.window, self.most, self.keys = window, most, keys
        self.events = {}  # digest: [times], oldest key first
        self.pruned = time.monotonic()

    @staticmethod
    def digest(key):
        return hashlib.blake2b(repr(key).encode(errors="replace"), digest_size=16).digest()

    def recent(self, digest, now):
        return [t for t in self.events.get(digest, ()) if t > now - self.window]

    def count(self, key):
        return len(self.recent(self.digest(key), time.monotonic()))

    def add(self, key):
        digest, now = self.digest(key), time.monotonic()
        times = self.recent(digest, now)[-(self.most - 1):] if self.most > 1 else []
        self.events.pop(digest, None)  # re-inserted last: the dict's order is the keys' age
        self.events[digest] = times + [now]
        if now - self.pruned > self.window:
            self.events = {d: ts for d, ts in self.events.items() if ts[-1] > now - self.window}
            self.pruned = now
        while len(self.events) > self.keys:
            del self.events[next(iter(self.events))]

    def forget(self, key):
        self.events.pop(self.digest(key), None)


LEGACY_HOLD_KEY = "dlab_held_until"  # an earlier release's prestart hold; dlab_prestart keeps holds itself now


recent_tokens = RecentEvents(3600, most=TOKENS_PER_HOUR)


class BoundedTokensHandler(UserTokenListAPIHandler):
    """POST /hub/api/users/NAME/tokens (and the token page, which calls it): at most
    TOKENS_PER_HOUR new tokens an hour and TOKENS_KEPT unexpired ones a user; JupyterHub's own has
    no bound, and each token is a row of the hub's database."""

    async def post(self, user_name):
        # Only tokens made count (a stranger's refused requests must not use up a student's hour),
        # so no name reaches the bound without tokens of its own.
        user = self.find_user(user_name)
        if user is not None:
            if recent_tokens.count(user.name) >= TOKENS_PER_HOUR:
                raise web.HTTPError(429, f"{user.name} made {TOKENS_PER_HOUR} tokens in the last hour: try again later.")
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            if sum(1 for t in user.api_tokens if not t.expires_at or t.expires_at > now) >= TOKENS_KEPT:
                raise web.HTTPError(403, f"{user.name} holds {TOKENS_KEPT} tokens: revoke some on the token page "
                                         "(/hub/token) first.")
        result = await super().post(user_name)
        if user is not None and self.get_status() == 201:
            recent_tokens.add(user.name)
        return result


# Request bodies: JupyterHub's server holds a request's body in memory until the handler runs, up to
# tornado's default 100 MB; no page or API call of the hub takes more than a few kilobytes (uploads
# go to the students' servers, not through the hub). A larger body is read and dropped as it comes,
# and answered 413 with a message: closing the connection instead (tornado's max_body_size) makes
# the proxy, still sending, answer 503. JupyterHub makes its HTTPServer after reading its
# configuration, which imports this module.
MAX_BODY_BYTES = 256 * 1024
TOO_LARGE = (f"This class server takes requests of at most {MAX_BODY_BYTES // 1024} KB: this one was larger, "
             "and was not read. (Files go to your own server: upload them in JupyterLab.)\n").encode()


class BoundedBody(httputil.HTTPMessageDelegate):
    """One request's delegate, wrapped: past MAX_BODY_BYTES its body goes nowhere, and the
    answer is 413 without the request reaching JupyterHub."""

    def __init__(self, delegate, connection):
        self.delegate, self.connection, self.received, self.too_large = delegate, connection, 0, False

    def headers_received(self, start_line, headers):
        length = headers.get("Content-Length", "0")
        if not re.fullmatch(r"[0-9]{1,20}", length) or int(length) > MAX_BODY_BYTES:
            self.too_large = True
            return None
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        self.received += len(chunk)
        self.too_large = self.too_large or self.received > MAX_BODY_BYTES  # a chunked body
        return None if self.too_large else self.delegate.data_received(chunk)

    def finish(self):
        if not self.too_large:
            return self.delegate.finish()
        self.connection.write_headers(httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
                                      httputil.HTTPHeaders({"Content-Type": "text/plain; charset=UTF-8",
                                                            "Content-Length": str(len(TOO_LARGE))}), TOO_LARGE)
        self.connection.finish()
        return None

    def on_connection_close(self):
        if not self.too_large:
            self.delegate.on_connection_close()


class BoundedBodyHTTPServer(tornado.httpserver.HTTPServer):
    def start_request(self, server_conn, request_conn):
        return BoundedBody(super().start_request(server_conn, request_conn), request_conn)


# Read and dropped up to 64 GB; a larger Content-Length, which nothing honest sends, closes the
# connection, and so does a body that takes more than a minute (a slow sender holds no buffer).
tornado.httpserver.HTTPServer.configure(BoundedBodyHTTPServer, max_body_size=64 * 1024**3, body_timeout=60)

# JupyterHub reads its API's routes from this list when it starts (after its configuration, which
# imports this module): the bounded handler takes the tokens' route.
apihandlers.default_handlers[:] = [(route[0], BoundedTokensHandler, *route[2:]) if route[1] is UserTokenListAPIHandler
                                   else route for route in apihandlers.default_handlers]


def checked_options(spawner, options):
    """The options dlab offers, checked: {"profile": "cpu" or "gpu"}, the GPU one where offered.
    Anything else is a 400 that says what to choose (a start through the REST API sends any JSON)."""
    if not isinstance(options, dict):
        raise web.HTTPError(400, 'The server\'s options are a JSON object, such as {"profile": "cpu"}.')
    unknown = [key for key in options if key not in ("profile", LEGACY_HOLD_KEY)]
    if unknown:
        raise web.HTTPError(400, f"Unknown option {str(unknown[0])[:40]!r}: the only one is 'profile' ('cpu' or 'gpu').")
    profile = options.get("profile", "cpu")
    if profile not in ("cpu", "gpu"):
        raise web.HTTPError(400, f"Unknown profile {str(profile)[:40]!r}: choose 'cpu' or 'gpu'.")
    if profile == "gpu" and not spawner.gpus:
        raise web.HTTPError(400, "This server offers no GPU profile (it has no GPU for Docker): choose 'cpu'.")
    return {"profile": profile}


def apply_checked_options(spawner, options):
    """Spawner.apply_user_options. JupyterHub has stored the options as they were sent before this
    runs, and keeps them for the next start and in every user listing: only the checked ones stay
    stored (none when refused), so megabytes or a made-up key are neither kept nor trusted later."""
    clean = {}
    try:
        clean = checked_options(spawner, options)
    finally:
        spawner.user_options = clean
        spawner.orm_spawner.user_options = clean
        spawner.db.commit()


PROFILE_FORM = """
<fieldset>
  <legend>Choose your server</legend>
  <div class="radio"><label><input type="radio" name="profile" value="cpu" checked>
    <strong>CPU</strong>: every lab runs here</label></div>
  <div class="radio"><label><input type="radio" name="profile" value="gpu">
    <strong>GPU</strong>: {gpu_image}, with the server's NVIDIA GPU ({gpus})</label></div>
</fieldset>
"""


# What dlab-home needs, and no more: mount and losetup (CAP_SYS_ADMIN, no AppArmor profile in the
# way), the loop devices (block major 7) and /dev/loop-control (char 10:237). scripts/lib.sh's
# home_helper (make backup, restore, delete-home; the tests) runs it the same way.
HOME_HELPER_PRIVILEGES = {"cap_add": ["SYS_ADMIN"], "security_opt": ["apparmor=unconfined"],
                          "device_cgroup_rules": ["b 7:* rwm", "c 10:237 rwm"]}


DOCKER_THREADS = 8  # Docker calls the hub makes at once (DlabSpawner.executor)


class DlabSpawner(DockerSpawner):
    """One container per student. The profile (cpu or gpu) picks the image; the GPU profile passes
    the GPUs through with device_requests and exists only where the hub offers it (gpus != "").

    Students' containers are named PREFIX.<escaped name>: DLAB_PREFIX has no dot and compose names
    its containers PREFIX-SERVICE, so no account can take the hub's name, another class's or a test
    hub's. And the spawner acts only on a container labelled as this student's of this class: one
    that merely has the name is never stopped or removed."""

    # DockerSpawner sends every Docker call of every student through one thread, so a class that
    # starts at once queues behind each container's start, each home's helper and each poll.
    # Docker's API serves calls side by side, and docker-py's client may be shared by threads
    # (its connection pool holds 10): 8 threads here.
    _dlab_executor = None

    @property
    def executor(self):
        if DlabSpawner._dlab_executor is None:
            DlabSpawner._dlab_executor = ThreadPoolExecutor(DOCKER_THREADS, thread_name_prefix="dlab-docker")
        return DlabSpawner._dlab_executor

    @default("name_template")
    def _default_name_template(self):
        return "{prefix}.{username}"

    def owns(self, obj):
        """Is this container (docker inspect), or service, the server of this student of this class?"""
        labels = (obj.get("Config") or obj.get("Spec") or {}).get("Labels") or {}
        return labels.get("org.dlab.hub") == self.prefix and labels.get("org.dlab.user") == self.user.name

    async def get_object(self):
        obj = await super().get_object()
        if obj is not None and not self.owns(obj):
            self.log.warning("dlab: the container %s is not %s's server (its labels say otherwise): "
                             "leaving it alone", self.object_name, self.user.name)
            self.object_id = ""
            return None
        return obj

    async def _owned_id(self):
        """The container's (or service's) id to stop or remove, or "" when there is none that is ours."""
        if not self.object_id:
            return ""
        try:
            obj = await self.docker(f"inspect_{self.object_type}", self.object_id)
        except docker.errors.NotFound:
            return ""
        if not self.owns(obj):
            self.log.warning("dlab: not touching the %s %s (%s): it is not %s's server", self.object_type,
                             self.object_id[:12], obj.get("Name") or obj.get("Spec", {}).get("Name"), self.user.name)
            return ""
        return self.object_id

    async def stop_object(self):
        if await self._owned_id():
            await super().stop_object()

    async def remove_object(self):
        if await self._owned_id():
            await super().remove_object()

    home_size = Unicode("", config=True, help='Size of each home, as "5G" (dlab-home); "": plain volumes, no limit.')
    homes_dir = Unicode("/var/lib/dlab/homes", config=True, help="Where the homes' images live, on the host.")
    helper_image = Unicode("dlab/hub:latest", config=True, help="The image that runs dlab-home.")

    async def prepare_home(self):
        """Before a start, before the class folders: nothing here (ensure_sized_volumes makes the
        homes of a size); on a swarm, the home's folder."""

    async def run_helper(self, command, **host_config):
        """Run command as root in a throwaway helper container (helper_image) on the hub's engine;
        (exit status, what it said on stderr)."""
        host_config = await self.docker("create_host_config", **host_config)
        helper = await self.docker("create_container", self.helper_image, command, user="root",
                                   labels={"org.dlab.home-helper": self.prefix}, host_config=host_config)
        try:
            await self.docker("start", helper["Id"])
            status = (await self.docker("wait", helper["Id"], timeout=300))["StatusCode"]
            said = (await self.docker("logs", helper["Id"], stdout=False, stderr=True)).decode(errors="replace").strip()
        finally:
            await self.docker("remove_container", helper["Id"], force=True)
        return status, said

    _shared_locks = {}  # volume: asyncio.Lock, for the volumes every student mounts (the course)

    async def ensure_sized_volumes(self, wanted):
        """Before a start, in one run of the root helper: each (volume, size, folder from before,
        labels) in `wanted` a file system of its own of that size (images/hub/dlab-home), made on
        first use, with the files of a plain volume of that name or, for a new one, of the folder
        from before (a host path) copied in; attached again after a reboot. The home, the hand-in
        folder and the course folder: a student who fills one stops there, and the hub's database,
        the other homes and folders keep their room."""
        device = f"{self.homes_dir}/dev/"
        found, later = {}, []
        for name, *_ in wanted:
            try:
                found[name] = await self.docker("inspect_volume", name)
            except docker.errors.NotFound:
                found[name] = None
        for item in wanted:
            name = item[0]
            shared = name == self.course_volume  # every student's server mounts it
            volume = found[name]
            if shared and (volume is None or (volume.get("Options") or {}).get("device") != device + name):
                later.append(item)  # made or moved once, by one start at a time (below)
        now = [item for item in wanted if item not in later]
        if now:
            await self.run_dlab_home(now, found)
        for item in later:
            name = item[0]
            lock = DlabSpawner._shared_locks.setdefault(name, asyncio.Lock())
            async with lock:
                try:
                    found[name] = await self.docker("inspect_volume", name)
                except docker.errors.NotFound:
                    found[name] = None
                volume = found[name]
                if volume is not None and (volume.get("Options") or {}).get("device") != device + name:
                    users = await self.docker("containers", filters={"volume": name})
                    if users:  # moved when no running server holds it: each start would copy it again
                        self.log.info("dlab: %s is in use by %d servers; it moves into its own file system "
                                      "at a start when none is", name, len(users))
                        continue
                await self.run_dlab_home([item], found)

    async def run_dlab_home(self, wanted, found):
        device = f"{self.homes_dir}/dev/"
        binds = {self.homes_dir: {"bind": "/homes", "mode": "rw"}, "/dev": {"bind": "/dev", "mode": "rw"}}
        script, plain = ["set -e"], {}
        for number, (name, size, before, _) in enumerate(wanted):
            volume = found[name]
            plain[name] = volume is not None and (volume.get("Options") or {}).get("device") != device + name
            old = f"/old/{number}"
            if plain[name]:
                binds[name] = {"bind": old, "mode": "ro"}
            elif volume is None and before:
                binds[before] = {"bind": old, "mode": "ro"}
            script.append(f"dlab-home ensure {name} {size} {old}")  # names and sizes are [A-Za-z0-9._-]
        status, said = await self.run_helper(["sh", "-c", "\n".join(script)], binds=binds, network_mode="none",
                                             **HOME_HELPER_PRIVILEGES)
        if status != 0:
            self.log.error("dlab: %s's volumes %s could not be prepared: %s", self.user.name,
                           ", ".join(name for name, *_ in wanted), said)
            raise web.HTTPError(503, "Your home could not be prepared; the organizer finds why in the hub's log"
                                f" ({said.splitlines()[-1] if said else f'dlab-home exited with {status}'}).")
        if said:
            self.log.info("%s", said)
        for name, _, _, labels in wanted:
            if plain[name]:
                await self.docker("remove_volume", name)
                self.log.info("dlab: %s moved from a plain volume into its own file system", name)
            if found[name] is None or plain[name]:
                await self.docker("create_volume", name=name, driver="local",
                                  labels={"org.dlab.hub": self.prefix, **labels},
                                  driver_opts={"type": "ext4", "device": device + name, "o": "nosuid,nodev"})

    # --- The course folder and the hand-in folders -------------------------------------------
    course_volume = Unicode("", config=True, help="The course folder's volume: /srv/course (~/course), read-only to students.")
    handin_volume = Unicode("", config=True, help="The hand-in folders' volume: each student's /srv/handin (~/handin) is one folder of it.")
    organizer = Unicode("admin", config=True, help="The organizer's account: an instructor.")
    instructor_group = Unicode("instructors", config=True, help="Members of this JupyterHub group are instructors.")

    def is_instructor(self):
        return (self.user.admin or self.user.name == self.organizer
                or any(group.name == self.instructor_group for group in self.user.groups))

    handin_size = Unicode("", config=True, help='Size of each student\'s hand-in folder, as "1G" (dlab-home); '
                          '"": folders of the one hand-in volume, no limit.')
    course_size = Unicode("", config=True, help='Size of the course folder, as "10G" (dlab-home); "": a plain volume.')

    async def class_folders(self):
        """The folders the class shares, as DockerSpawner volumes for this user, and those of them
        that are file systems of a size (for ensure_sized_volumes). An instructor writes
        /srv/course and reads every hand-in at /srv/handins; a student reads /srv/course and writes
        /srv/handin, their own hand-in folder and the only one their container holds. Mounted
        outside the home (a full home must still start: Docker would have to make the mount points
        in it); the image's start-up hook links them into the home (~/course...)."""
        folders, sized = {}, []
        if self.course_volume:
            folders[self.course_volume] = {"bind": "/srv/course", "mode": "rw" if self.is_instructor() else "ro"}
            if self.course_size and not self.course_volume.startswith("/"):
                # A file system of course_size: an instructor who fills it stops there.
                sized.append((self.course_volume, self.course_size, None, {}))
            elif not self.course_volume.startswith("/"):
                await self.ensure_plain_course()
        if not self.handin_volume:
            return folders, sized
        shared_folders = self.handin_volume.startswith("/")  # on a swarm: on the shared file system
        if shared_folders:
            mountpoint = self.handin_volume
        else:
            mountpoint = (await self.docker("inspect_volume", self.handin_volume))["Mountpoint"]
        if self.is_instructor() and self.handin_size and not shared_folders:
            # Each student's hand-in is a volume of its own (below), at /srv/handins/<name>; a
            # folder of the shared volume from an earlier release until its student's next start.
            folders.update(await self.every_handin(mountpoint))
        elif self.is_instructor():
            folders[self.handin_volume] = {"bind": "/srv/handins", "mode": "ro"}
        elif self.handin_size and not shared_folders:
            # A file system of handin_size, like the home; its files came from the student's folder
            # of an earlier release's shared volume, if any.
            volume = f"{self.handin_volume}-{self.escaped_name}"
            before = f"{mountpoint}/{self.user.name}" if (HANDIN_DIR / self.user.name).is_dir() else None
            sized.append((volume, self.handin_size, before, {"org.dlab.handin": self.user.name}))
            folders[volume] = {"bind": "/srv/handin", "mode": "rw"}
        else:
            # The hub holds the same volume at HANDIN_DIR (compose.yaml): it makes the folder,
            # group `users` (the students' gid 100) and setgid, so the student's files keep it.
            # Named after the account, as the instructor knows it (a name has no slash and no "..").
            folder = HANDIN_DIR / self.user.name
            folder.mkdir(exist_ok=True)
            folder.chmod(0o2770)
            folders[f"{mountpoint}/{self.user.name}"] = {"bind": "/srv/handin", "mode": "rw"}
        return folders, sized

    async def ensure_plain_course(self):
        """The course folder as a plain volume (course_size ""), made once, writable by the
        instructors (uid 1000) and the group users, as compose made it in earlier releases."""
        try:
            await self.docker("inspect_volume", self.course_volume)
            return
        except docker.errors.NotFound:
            pass
        await self.docker("create_volume", name=self.course_volume, driver="local", labels={"org.dlab.hub": self.prefix})
        status, said = await self.run_helper(["install", "-d", "-o", "1000", "-g", "100", "-m", "2775", "/course"],
                                             binds={self.course_volume: {"bind": "/course", "mode": "rw"}},
                                             network_mode="none", cap_drop=["ALL"], cap_add=["CHOWN", "FOWNER"])
        if status != 0:
            raise web.HTTPError(503, f"The course folder could not be made: {said[-200:]}")

    async def every_handin(self, mountpoint):
        """Every student's hand-in volume, read-only at /srv/handins/<name>, attached first (a
        reboot detaches them): made at each student's first start, so one that starts for the first
        time after the instructor shows at the instructor's next start. A folder of an earlier
        release's shared volume shows until its student's next start moves it."""
        found = await self.docker("volumes", filters={"label": [f"org.dlab.hub={self.prefix}", "org.dlab.handin"]})
        volumes = {v["Labels"]["org.dlab.handin"]: v["Name"] for v in (found or {}).get("Volumes") or []}
        if volumes:
            status, said = await self.run_helper(["dlab-home", "attach", *volumes.values()], network_mode="none",
                                                 binds={self.homes_dir: {"bind": "/homes", "mode": "rw"},
                                                        "/dev": {"bind": "/dev", "mode": "rw"}}, **HOME_HELPER_PRIVILEGES)
            if status != 0:  # the others still show; the organizer finds which in the log
                self.log.error("dlab: some hand-in folders could not be attached for %s: %s", self.user.name, said)
                missing = {line.split("/homes/", 1)[1].split(".ext4", 1)[0] for line in said.splitlines() if "no /homes/" in line}
                volumes = {name: volume for name, volume in volumes.items() if volume not in missing}
        folders = {volume: {"bind": f"/srv/handins/{name}", "mode": "ro"} for name, volume in volumes.items()}
        before = {folder.name for folder in HANDIN_DIR.iterdir() if folder.is_dir()} if HANDIN_DIR.is_dir() else set()
        for name in sorted(before - set(volumes)):
            folders[f"{mountpoint}/{name}"] = {"bind": f"/srv/handins/{name}", "mode": "ro"}
        return folders

    cpu_image = Unicode("dlab/cpu:latest", config=True, help="The image of the CPU profile.")
    gpu_image = Unicode("dlab/gpu:latest", config=True, help="The image of the GPU profile.")
    gpus = Unicode("", config=True, help='GPUs of the GPU profile ("all", "2", "device=0,1"); "" offers none.')

    @property
    def gpu_request(self):
        return GpuRequest.parse(self.gpus)
    gpu_ids = List(Unicode(), config=True, help="The cards a count in `gpus` spreads the students over.")
    _gpu_claims = {}  # user: cards, for the GPU starts under way (their containers may not exist yet)
    _chosen_gpus = ()

    async def choose_gpus(self):
        """With a count of GPUs and known cards: the least used ones, as `docker run --gpus`
        device=... (each GPU server's container carries its cards in the label org.dlab.gpus)."""
        request = self.gpu_request
        if not (request.kind == "count" and self.gpu_ids):
            return request
        running = await self.docker("containers", all=True, filters={"label": [f"org.dlab.hub={self.prefix}", "org.dlab.gpus"]})
        holders = [c["Labels"]["org.dlab.gpus"].split(",") for c in running
                   if c["State"] in ("created", "running", "restarting") and c["Labels"].get("org.dlab.user") != self.user.name]
        holders += [cards for name, cards in DlabSpawner._gpu_claims.items() if name != self.user.name]
        self._chosen_gpus = pick_gpus(list(self.gpu_ids), holders, request.count)
        DlabSpawner._gpu_claims[self.user.name] = self._chosen_gpus
        self.log.info("dlab: %s's GPU server gets card %s of %s (the least used)", self.user.name,
                      ",".join(self._chosen_gpus), ",".join(self.gpu_ids))
        return GpuRequest("devices", devices=tuple(self._chosen_gpus))

    def get_env(self):
        env = super().get_env()
        if self._chosen_gpus:  # dlab-info shows it to the student
            env["DLAB_GPU_CARDS"] = ",".join(self._chosen_gpus)
        return env

    @default("options_form")
    def _default_options_form(self):
        # No form without a GPU: the student's server starts at once.
        return PROFILE_FORM.format(gpu_image=self.gpu_image, gpus=self.gpus) if self.gpus else ""

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return apply_checked_options

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: {"profile": formdata.get("profile", ["cpu"])[0]}

    _class_volumes = None
    _class_create_kwargs = None
    build_advice = "make build"  # what the organizer runs when the image is missing

    starts_at_once = Integer(2, config=True, help="Servers that start side by side; the others wait their turn.")
    _turns = None  # the semaphore the starts share (made in the hub's event loop)

    async def wait_answering(self, ip, port):
        """Until the new server answers its API (every 0.1 s, up to http_timeout), or its container
        has stopped: the next start's turn comes when this one's CPU is spent, and the hub, which
        looks with growing pauses (up to seconds), finds it up at its first look."""
        url = url_path_join(f"http://{ip}:{port}", self.server.base_url, "api")
        client, deadline, next_poll = AsyncHTTPClient(), time.monotonic() + self.http_timeout, time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if (await client.fetch(url, request_timeout=2, raise_error=False)).code == 200:
                    return
            except (OSError, HTTPClientError):
                pass  # not listening yet, or too busy to answer within 2 s: look again
            if time.monotonic() > next_poll:
                if await self.poll() is not None:
                    return  # it stopped: the hub reports why
                next_poll = time.monotonic() + 2
            await asyncio.sleep(0.1)

    async def start(self):
        if DlabSpawner._turns is None:
            DlabSpawner._turns = asyncio.Semaphore(self.starts_at_once)
        async with DlabSpawner._turns:  # first come, first served
            try:
                ip, port = await self.start_in_turn()
            finally:
                DlabSpawner._gpu_claims.pop(self.user.name, None)  # its container holds the label now
            await self.wait_answering(ip, port)
        return ip, port

    async def start_in_turn(self):
        profile = checked_options(self, self.user_options)["profile"]
        self.image = self.gpu_image if profile == "gpu" else self.cpu_image
        host_config = dict(self.extra_host_config)
        host_config.pop("device_requests", None)
        if self._class_create_kwargs is None:
            self._class_create_kwargs = dict(self.extra_create_kwargs)
        create_kwargs = {**self._class_create_kwargs, "labels": dict(self._class_create_kwargs.get("labels", {}))}
        self._chosen_gpus = ()
        if profile == "gpu":
            host_config["device_requests"] = gpu_device_requests(await self.choose_gpus())
            if self._chosen_gpus:
                create_kwargs["labels"]["org.dlab.gpus"] = ",".join(self._chosen_gpus)
        self.extra_host_config = host_config
        self.extra_create_kwargs = create_kwargs
        self.log.info("dlab: starting %s's %s server from %s", self.user.name, profile, self.image)
        await self.prepare_home()
        if self._class_volumes is None:
            self._class_volumes = dict(self.volumes)  # as configured: the home and the datasets
        folders, sized = await self.class_folders()
        if self.home_size:
            home = next(host for host, bind in self.volume_binds.items() if bind["bind"] == self.notebook_dir)
            sized.insert(0, (home, self.home_size, None, {}))
        if sized:
            await self.ensure_sized_volumes(sized)
        self.volumes = {**self._class_volumes, **folders}
        try:
            return await super().start()
        except docker.errors.ImageNotFound as error:
            raise web.HTTPError(
                503, f"The image {self.image} is not on this server: the organizer builds it with "
                f"`{self.build_advice.replace('build', 'build-gpu', 1) if profile == 'gpu' else self.build_advice}`.") from error
        except docker.errors.APIError as error:
            if error.status_code == 409 and "already in use" in str(error):
                raise web.HTTPError(
                    409, f"A container named {self.object_name} exists and is not this server: the "
                    "organizer removes it (docker rm) or checks what made it.") from error
            if "device driver" in str(error) or "nvidia" in str(error).lower():
                raise web.HTTPError(
                    503, "The GPU profile could not get a GPU from Docker: the server needs an NVIDIA "
                    f"driver and the NVIDIA container toolkit. Choose 'cpu' meanwhile. ({error.explanation})"
                ) from error
            raise



class DlabSwarmSpawner(DlabSpawner, SwarmSpawner):
    """The class on a Docker Swarm (DLAB_SWARM_SHARED): each student's server is a one-task service
    that may run on any node labelled ready (make swarm-check), its home a folder of the file system
    every node mounts (the organizer's NFS). DlabSpawner's profiles, turns, ownership checks and class
    folders hold as they are; the service itself comes from dlab_swarm.service_spec, which carries
    every container setting that SwarmSpawner would drop. Names: PREFIX-u-<escaped name>."""

    _waiting_for = ""  # why the start waits, for the student (progress) and the hub's log
    _cards = 0  # GPUs the server asks the swarm for
    build_advice = "make build, then make swarm-push"

    @default("object_name")
    def _object_name_default(self):
        return service_name(self.prefix, self.escaped_name)

    async def prepare_home(self):
        """The student's home folder on the shared file system, made on first use by root in a
        throwaway dlab/hub container on this manager (the hub itself may not chown), owned by
        jovyan (1000:100) and closed to others."""
        source = next(host for host, bind in self.volume_binds.items() if bind["bind"] == self.notebook_dir)
        homes, name = source.rsplit("/", 1)
        status, said = await self.run_helper(
            ["sh", "-c", 'test -d "/homes/$1" || install -d -o 1000 -g 100 -m 0700 "/homes/$1"', "sh", name],
            binds={homes: {"bind": "/homes", "mode": "rw"}}, network_mode="none", cap_drop=["ALL"], cap_add=["CHOWN"],
            security_opt=["no-new-privileges:true"])
        if status != 0:
            self.log.error("dlab: %s's home %s could not be made: %s", self.user.name, source, said)
            raise web.HTTPError(503, "Your home could not be prepared; the organizer finds why in the hub's log "
                                f"(make swarm-check checks the shared folder): {said[-200:]}")

    async def create_object(self):
        host_config = dict(self.extra_host_config)
        # The GPU profile: its count of cards as the generic resource (start_in_turn asked for them
        # as device requests, which a service has not).
        self._cards = 0
        if host_config.pop("device_requests", None) is not None:
            self._cards = self.gpu_request.cards
        create = self._render_templates(self.extra_create_kwargs)
        healthcheck = create.get("healthcheck")
        spec = service_spec(
            self.object_name, self.image, args=await self.get_command(),
            env=[f"{key}={value}" for key, value in self.get_env().items()], user=create.get("user"),
            labels=create.get("labels", {}), host_config=host_config,
            mem_limit=parse_bytes(str(self.mem_limit)) if self.mem_limit else None, cpu_limit=self.cpu_limit,
            binds=self.volume_binds, network=self.network_name, gpus=self._cards,
            healthcheck=docker.types.Healthcheck(**healthcheck) if healthcheck else None)
        return await self.docker("create_service", **spec)

    def explain(self, task):
        """A task's state, as the student waiting for it reads it."""
        state, said = task["Status"]["State"], f'{task["Status"].get("Err", "")} {task["Status"].get("Message", "")}'
        if "insufficient resources" in said and self._cards:
            return ("Waiting for a GPU: every GPU of the class is in use. Your server starts as soon as one is "
                    "free; or stop this start and choose the CPU profile.")
        if "insufficient resources" in said:
            return "Waiting for room: every machine of the class is full. Your server starts as soon as room is free."
        if "no suitable node" in said:
            return ("Waiting for a machine that can run your server: none is ready for students now. The organizer "
                    "checks the machines (make swarm-check).")
        if any(word in said for word in ("No such image", "manifest unknown", "pull access denied")):
            return (f"A machine of the class could not get the image {self.image}; trying another. The organizer "
                    "pushes it to the class's registry (make swarm-push).")
        return f"Your server is being set up ({state})."

    async def start_object(self):
        """Until the service's task runs, saying why it waits (pending for a GPU, no node ready...)."""
        delay = 0.5
        while True:
            tasks = await self.docker("tasks", filters={"service": self.object_id})
            live = [task for task in tasks if task["DesiredState"] == "running"]
            if any(task["Status"]["State"] == "running" for task in live):
                self._waiting_for = ""
                return
            if tasks:
                reason = self.explain(max(tasks, key=lambda task: task["UpdatedAt"]))
                if reason != self._waiting_for:
                    self.log.info("dlab: %s's server: %s", self.user.name, reason)
                    self._waiting_for = reason
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 3)

    async def progress(self):
        """The start page's messages: why the server waits, as start_object found it."""
        said = ""
        while True:  # JupyterHub stops reading when the start ends
            if self._waiting_for and self._waiting_for != said:
                said = self._waiting_for
                yield {"progress": 50, "message": said}
            await asyncio.sleep(1)

    async def poll(self):
        """Running while the swarm means to run it: a task moving to another node (its node died or
        was drained) is not a stopped server, whose stop would remove the service."""
        service = await self.get_object()
        if service is None:
            return 0
        tasks = await self.docker("tasks", filters={"service": self.object_id})
        if any(task["DesiredState"] == "running" for task in tasks):
            return None
        return "the swarm runs no task of it"

    async def choose_gpus(self):
        return self.gpu_request  # the swarm's scheduler gives each server its cards (generic resources)

class ClassCodeSignUpHandler(SignUpHandler):
    """/hub/signup: the class code (when one is set), the username and the password are checked
    first, each with a message that says what to change; then NativeAuthenticator makes the account."""

    async def refuse(self, message, status=400):
        html = await self.render_template(
            "signup.html", ask_email=self.authenticator.ask_email_on_signup, alert="alert-danger",
            result_message=message, two_factor_auth=self.authenticator.allow_2fa,
            recaptcha_key=self.authenticator.recaptcha_key, tos=self.authenticator.tos)
        self.set_status(status)
        return self.finish(html)

    async def post(self):
        signups, address = self.authenticator.recent_signups, client_address(self)
        if signups.count(address) >= self.authenticator.signups_per_hour:
            self.log.warning("dlab: sign-up refused: %s made %d in the last hour", address, signups.count(address))
            return await self.refuse("Too many sign-ups from your network in the last hour: try again later, "
                                     "or ask your organizer to make your account.", 429)
        signups.add(address)
        code = self.authenticator.class_code
        if code and not hmac.compare_digest(self.get_body_argument("class_code", "").strip().encode(),
                                            code.encode()):
            return await self.refuse("That class code is not right: ask your organizer for it.", 403)
        username = self.get_body_argument("username", "")
        if len(username) > MAX_NAME_CHARS:
            return await self.refuse(USERNAME_RULE)
        username = self.authenticator.normalize_username(username)
        if not self.authenticator.validate_username(username):
            return await self.refuse(USERNAME_RULE)
        if self.find_user(username) is None and not self.authenticator.user_exists(username):
            if self.authenticator.looks_like_an_account(username):
                return await self.refuse(f"The name {username} looks like the name of an account that exists already "
                                         "(a letter of another alphabet, or another form of one): choose another.", 409)
            if not code and self.authenticator.pending() >= self.authenticator.pending_signups:
                self.log.warning("dlab: sign-up as %s refused: %d sign-ups wait for approval", username,
                                 self.authenticator.pending())
                return await self.refuse("Too many sign-ups are waiting for the organizer's approval: ask your "
                                         "organizer to approve yours, or try again later.", 429)
            kept = await self.authenticator.kept_files(username)
            if kept:  # a removed account's files: whoever signs up next under its name would get them
                self.log.warning("dlab: sign-up as %s refused: %s of a removed account", username, " and ".join(kept))
                return await self.refuse(f"The name {username} is taken: choose another, or ask your organizer "
                                         "if it is yours.", 409)
        if (INSTITUTION_DIR / username).exists():  # a password here would open their server to whoever set it
            return await self.refuse(f"{username} signs in with {self.authenticator.institution.login_service}: "
                                     "use that button on the login page.")
        password = self.get_body_argument("signup_password", "")
        if len(password) < self.authenticator.minimum_password_length:
            return await self.refuse(f"Choose a password of at least {self.authenticator.minimum_password_length} characters.")
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            return await self.refuse(f"Choose a password of at most {MAX_PASSWORD_BYTES} bytes (about as many letters).")
        return await self.sign_up(username, password)

    async def sign_up(self, username, password):
        """NativeAuthenticator's sign-up, with bcrypt in the hashing thread (its own hashes on the
        event loop, which every student's request goes through)."""
        authenticator = self.authenticator
        matches = password == self.get_body_argument("signup_password_confirmation", "")
        taken = authenticator.user_exists(username)
        user = None
        if matches and not taken and authenticator.is_password_strong(password):
            hashed = await authenticator.in_hashing_thread(self, bcrypt.hashpw, password.encode(), bcrypt.gensalt())
            if hashed is None:
                return await self.refuse(self.dlab_login_error, 503)
            taken = authenticator.user_exists(username)  # another sign-up may have taken it meanwhile
            if not authenticator.class_code and authenticator.pending() >= authenticator.pending_signups:
                return await self.refuse("Too many sign-ups are waiting for the organizer's approval: ask your "
                                         "organizer to approve yours, or try again later.", 429)  # counted again: others hashed meanwhile
            if not taken:
                user = authenticator.create_user(username, password, hashed=hashed)
                record_signup(username, client_address(self), bool(authenticator.class_code))
        alert, message = self.get_result_message(user, True, taken, matches, username in authenticator.admin_users)
        html = await self.render_template(
            "signup.html", ask_email=authenticator.ask_email_on_signup, result_message=message, alert=alert,
            two_factor_auth=authenticator.allow_2fa, two_factor_auth_user=user.has_2fa if user else "",
            two_factor_auth_value=user.otp_secret if user else "", recaptcha_key=authenticator.recaptcha_key,
            tos=authenticator.tos)
        self.finish(html)

    def get_result_message(self, user, *args):
        if user is not None and self.authenticator.class_code:
            return "alert-success", "Your account is ready: go to the login page and log in."
        return super().get_result_message(user, *args)


class DlabLoginHandler(LoginHandler):
    """NativeAuthenticator's login page checked a wrong password a second time, with bcrypt on the
    event loop, to word its message; here authenticate() leaves the message on the handler."""

    async def post(self):
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            if (FIRST_PASSWORD_DIR / user.name).exists():  # a roster account (make accounts)
                return self.redirect(url_path_join(self.hub.base_url, "change-password"))
            return self.redirect(self.get_next_url(user))
        error = getattr(self, "dlab_login_error", None) or "Invalid username or password."
        self.finish(await self._render(login_error=error, username=data.get("username", "")))


class DlabChangePasswordHandler(ChangePasswordHandler):
    """/hub/change-password: NativeAuthenticator checks the old password and hashes the new one
    with bcrypt on the event loop, so a logged-in student posting in a loop stalled the hub. Here
    both run in the hashing thread, and wrong old passwords count like failed logins."""

    @web.authenticated
    async def post(self):
        user, authenticator = await self.get_current_user(), self.authenticator
        old = self.get_body_argument("old_password", "", strip=False)
        new = self.get_body_argument("new_password", "", strip=False)
        key = ("change-password", client_address(self), user.name)
        info = authenticator.get_user(user.name)
        if info is None:  # signed in another way (the institution): no password here to change
            alert, message = "alert-danger", f"{user.name} has no password on this server to change."
        elif authenticator.allowed_failed_logins and authenticator.failed_logins.count(key) >= authenticator.allowed_failed_logins:
            alert, message = "alert-danger", (f"Too many wrong current passwords: wait {authenticator.seconds_before_next_try} "
                                              "seconds, then try again.")
        elif not await authenticator.counted_check(key, old, info, self):
            alert, message = "alert-danger", getattr(self, "dlab_login_error", None) or "Your current password was incorrect. Please try again."
        elif new != self.get_body_argument("new_password_confirmation", "", strip=False):
            alert, message = "alert-danger", "Your new password didn't match the confirmation. Please try again."
        elif not authenticator.acceptable_password(new):
            alert, message = "alert-danger", (f"Choose a password of at least {authenticator.minimum_password_length} characters "
                                              f"and at most {MAX_PASSWORD_BYTES} bytes, not a common one.")
        else:
            hashed = await authenticator.in_hashing_thread(self, bcrypt.hashpw, new.encode(), bcrypt.gensalt())
            if hashed is not None and authenticator.change_password(user.name, new, hashed=hashed):
                alert, message = "alert-success", "Your password has been changed successfully!"
            else:
                alert, message = "alert-danger", getattr(self, "dlab_login_error", None) or "Your password could not be changed: try again."
        self.finish(await self.render_template("change-password.html", user_name=user.name, result_message=message, alert=alert))


class ConfirmedAction:
    """NativeAuthenticator approves (/hub/authorize/NAME) and deletes (/hub/discard/NAME) accounts
    on a GET, so a link or an image on any page the organizer opens could do either. Here a GET
    only shows what would happen, with a button; the button POSTs with the page's XSRF token, which
    JupyterHub checks on every POST (plain HTTP included: no Sec-Fetch-* header is needed)."""

    @admin_users_scope
    async def get(self, name):
        info = self.authenticator.get_user(name)
        if info is None:
            raise web.HTTPError(404, f"No account {name!r} has signed up.")
        html = await self.render_template("dlab-confirm.html", account=info.username, action=self.describe(info))
        self.finish(html)

    @admin_users_scope
    async def post(self, name):
        return await super().get(name)  # NativeAuthenticator's action, now behind a POST


class ConfirmedToggleAuthorizationHandler(ConfirmedAction, ToggleAuthorizationHandler):
    def describe(self, info):
        return "Withdraw the approval of" if info.is_authorized else "Approve"


class ConfirmedDiscardHandler(ConfirmedAction, DiscardHandler):
    def describe(self, info):
        return "Delete the (not yet approved) account"


class InstitutionAuthenticator(GenericOAuthenticator):
    """Sign-in with the institution (OpenID Connect, or GitHub's OAuth), beside the class's own
    accounts: DlabAuthenticator adds its /hub/oauth_login and /hub/oauth_callback. The name the
    provider gives is checked like any other username, and never one of the class's own accounts
    (the organizer's, a roster's, a sign-up's), whose servers it would open."""

    email_domain = Unicode("", config=True, help="With an email as the username: the only domain, dropped.")
    native = Any(help="The DlabAuthenticator whose accounts are the class's own.")
    allowed_names = Set(config=True, help="The names that may sign in (DLAB_OIDC_ALLOWED_USERS); empty: all.")

    def user_info_to_username(self, user_info):
        name = str(super().user_info_to_username(user_info))
        if self.email_domain:
            local, _, domain = name.rpartition("@")
            if domain.lower() != self.email_domain:
                raise web.HTTPError(403, f"Only accounts of {self.email_domain} sign in here, and {name} is not one.")
            name = local
        name = self.normalize_username(name)
        if not self.validate_username(name):
            raise web.HTTPError(403, f"{self.login_service} calls you {name[:40]!r}, which cannot be a username here: "
                                "ask the organizer for a class account.")
        if self.allowed_names and name not in self.allowed_names:
            raise web.HTTPError(403, f"{name} is not on this class's list for {self.login_service}: ask the organizer "
                                "to add you (DLAB_OIDC_ALLOWED_USERS), or for a class account.")
        if self.native.user_exists(name):
            raise web.HTTPError(403, f"{name} is an account of this class server: log in with its password, "
                                f"not with {self.login_service} (or ask the organizer).")
        INSTITUTION_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        (INSTITUTION_DIR / name).touch()  # so that no one can sign up under this name later
        return name


def institution_handler(handler, authenticator):
    """OAuthenticator's handler, acting for the institution's authenticator (JupyterHub gives every
    handler the hub's one authenticator, here the class's own accounts)."""
    return type(f"Institution{handler.__name__}", (handler,), {"authenticator": property(lambda self: authenticator)})


class DlabAuthenticator(NativeAuthenticator):
    """Sign-up for a class: either the organizer approves each account (/hub/authorize), or a
    class access code approves it at once. The organizer's account is made on first start with a
    random password kept in SECRETS_DIR/admin-password until the organizer changes it."""

    organizer = Unicode("admin", config=True, help="The organizer's account (its role: jupyterhub_config.py).")
    class_code = Unicode("", config=True, help="Class access code; empty: the organizer approves each sign-up.")
    signups_per_hour = Integer(100, config=True, help="Sign-up attempts one address may make in an hour.")
    password_checks = Integer(1, config=True, help="bcrypt checks that run at once, off the event loop.")
    password_queue = Integer(64, config=True, help="Logins that may wait for a check; more are refused.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Failed logins count per (address, username): a stranger's guesses lock out the stranger's
        # address for that name, never the organizer logging in from elsewhere.
        self.failed_logins = RecentEvents(self.seconds_before_next_try, most=self.allowed_failed_logins or 1)
        self.recent_signups = RecentEvents(3600, most=self.signups_per_hour)
        # bcrypt costs about a quarter of a second of CPU: run it in a thread (it releases the GIL),
        # one at a time, so that guesses never stall the event loop every student's request goes through.
        self.hashing = ThreadPoolExecutor(max_workers=self.password_checks, thread_name_prefix="dlab-bcrypt")
        self.waiting = 0

    ours = {LoginHandler: DlabLoginHandler, SignUpHandler: ClassCodeSignUpHandler, ChangePasswordHandler: DlabChangePasswordHandler,
            ToggleAuthorizationHandler: ConfirmedToggleAuthorizationHandler, DiscardHandler: ConfirmedDiscardHandler}

    institution_issuer = Unicode("", config=True, help="DLAB_OIDC_ISSUER: sign-in with the institution too; \"\": not.")
    home_volume = Unicode("", config=True, help="Each home's volume (or folder), as DockerSpawner.volumes names it: {username}.")
    handin_volume = Unicode("", config=True, help="The hand-in volume; each student's own is named after it (DlabSpawner).")

    pending_signups = Integer(100, config=True, help="Sign-ups that may wait for approval at once; more are refused.")

    def pending(self):
        """Sign-ups waiting for the organizer's approval."""
        return self.db.query(UserInfo).filter(UserInfo.is_authorized == False).count()  # noqa: E712 (SQL)

    def looks_like_an_account(self, username):
        """Whether another account's name looks like this one (Cyrillic "а" for Latin "a",
        fullwidth letters, "1" for "l"): the organizer would see two names that read the same."""
        names = {name for (name,) in self.db.query(UserInfo.username)} | {name for (name,) in self.db.query(orm.User.name)}
        looks = skeleton(username)
        return any(name != username and skeleton(name) == looks for name in names)

    def validate_username(self, username):
        """The pattern (sign-up, the REST API, the admin page), a name its home can be named after,
        and no letter that shows nothing."""
        return super().validate_username(username) and name_fits(username) and not INVISIBLE & set(username)

    async def kept_files(self, username):
        """What a removed account left under this name: ["home", "hand-in folder"], either or none.
        Removing an account keeps its files (make remove-accounts HOMES=keep, the admin panel's
        delete, a restore onto a new machine), so its name is taken until the organizer gives the
        account back (make accounts) or deletes them (make delete-home)."""
        kept = []
        if self.home_volume:
            home = self.home_volume.format(username=DockerSpawner._escape(username))
            if home.startswith("/"):
                exists = os.path.exists(home)
            else:
                exists = await asyncio.to_thread(volume_exists, home)
            if exists:
                kept.append("home")
        handin = f"{self.handin_volume}-{DockerSpawner._escape(username)}" if self.handin_volume else ""
        if (HANDIN_DIR / username).exists() or (handin and await asyncio.to_thread(volume_exists, handin)):
            kept.append("hand-in folder")
        return kept

    @property
    def institution(self):
        if getattr(self, "_institution", None) is None:
            self._institution = InstitutionAuthenticator(parent=self, native=self)
        return self._institution

    def get_handlers(self, app):
        handlers = [(path, self.ours.get(handler, handler)) for path, handler in super().get_handlers(app)]
        if self.institution_issuer:
            handlers += [(path, institution_handler(handler, self.institution))
                         for path, handler in self.institution.get_handlers(app) if path != r"/logout"]
        return handlers

    async def authenticate(self, handler, data):
        username, password = data.get("username", ""), data.get("password", "")
        if len(username) > MAX_NAME_CHARS:
            return None  # no account has such a name: nothing to look up or to remember
        username = self.normalize_username(username)
        key = (client_address(handler), username)
        if self.allowed_failed_logins and self.failed_logins.count(key) >= self.allowed_failed_logins:
            self.log.warning("dlab: login as %r from %s refused: %d failed logins in the last %d s",
                             username, key[0], self.failed_logins.count(key), self.seconds_before_next_try)
            handler.dlab_login_error = (f"Too many failed logins as {username} from your address: wait "
                                        f"{self.seconds_before_next_try} seconds, then try again.")
            return None
        info = self.get_user(username)
        if info is None:
            return None  # failures are counted for accounts alone: made-up names fill no memory
        if not await self.counted_check(key, password, info, handler):
            return None
        if not info.is_authorized:
            handler.dlab_login_error = f"User {username} has not been approved by the organizer yet."
            return None
        return username

    async def counted_check(self, key, password, info, handler):
        """Is password the account's? Counted as a failure under `key` before bcrypt runs and
        forgotten when right: thirty tabs posting at once get no more checks than one would."""
        self.failed_logins.add(key)
        # A password over bcrypt's 72 bytes is no account's password (bcrypt would raise, not say no).
        if len(password.encode()) > MAX_PASSWORD_BYTES or not await self.check_password(password, bytes(info.password), handler):
            return False
        self.failed_logins.forget(key)
        return True

    async def in_hashing_thread(self, handler, function, *args):
        """function(*args) (bcrypt's) in the hashing thread; None, with handler.dlab_login_error
        saying so, when password_queue requests already wait for it."""
        if self.waiting >= self.password_queue:
            self.log.warning("dlab: a request refused: %d already wait for a password check", self.waiting)
            handler.dlab_login_error = "The class server is busy: try again in a minute."
            return None
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.hashing, function, *args)
        finally:
            self.waiting -= 1

    async def check_password(self, password, hashed, handler):
        """bcrypt.checkpw in the hashing thread; False when too many requests already wait for it."""
        return bool(await self.in_hashing_thread(handler, bcrypt.checkpw, password.encode(), hashed))

    def acceptable_password(self, password):
        return len(password.encode()) <= MAX_PASSWORD_BYTES and self.is_password_strong(password)

    def create_user(self, username, password, hashed=None, **kwargs):
        """NativeAuthenticator's, with the bcrypt hash made beforehand (in the hashing thread) where
        `hashed` is given; without, it hashes here (the organizer's account at the hub's start)."""
        # With a class code, sign-ups reach this only after ClassCodeSignUpHandler checked the code.
        if self.class_code:
            kwargs["is_authorized"] = True
        if hashed is None:
            return super().create_user(username, password, **kwargs)
        username = self.normalize_username(username)
        if (self.user_exists(username) or not self.validate_username(username) or not self.enable_signup
                or not self.acceptable_password(password)):
            return None
        if self.open_signup or username in self.allowed_users | self.admin_users:  # get_authed_users, less its query per account
            kwargs["is_authorized"] = True
        info = UserInfo(username=username, password=hashed, **kwargs)
        self.db.add(info)
        self.db.commit()
        return info

    def add_user(self, user):
        # Called at every start for each user in the database, the organizer included.
        super().add_user(user)
        if user.name == self.normalize_username(self.organizer) and not self.user_exists(user.name):
            password = secrets.token_urlsafe(12)
            if self.create_user(user.name, password, is_authorized=True) is None:
                raise SystemExit(f"dlab hub: could not create the organizer's account {user.name!r}")
            SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = SECRETS_DIR / "admin-password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            self.log.info("dlab: created the organizer's account %r; its first password is in %s "
                          "(`make up` prints it) until it is changed at /hub/change-password", user.name, path)

    def change_password(self, username, new_password, hashed=None):
        """NativeAuthenticator's, with the hash made beforehand where `hashed` is given (the
        organizer's page for another account still hashes here)."""
        info = self.get_user(username)
        if info is None or not self.acceptable_password(new_password):
            return False  # the page then asks for another password
        info.password = hashed or bcrypt.hashpw(new_password.encode(), bcrypt.gensalt())
        self.db.commit()
        (FIRST_PASSWORD_DIR / username).unlink(missing_ok=True)  # their own password now
        if username == self.normalize_username(self.organizer):
            (SECRETS_DIR / "admin-password").unlink(missing_ok=True)
        return True
