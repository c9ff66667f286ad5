"""The class server as the organizer's command drives it from the host (dlab_hub.cli): its
settings in this process's environment (where compose reads them), the Docker engine make up talks
to, and each command's work: up (with the database upgrade and the certificate, alone or on a
swarm), down, status. The organizer's tools that run in the hub's container are dlab_hub.classtools'.
Standard library only.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from dlab_hub import https


# The checkout (compose.yaml, scripts/): where this file is, run from it or installed editable; else
# the folder the command runs in.
ROOT = next((folder for folder in (Path(__file__).resolve().parents[2], Path.cwd()) if (folder / "compose.yaml").exists()),
            Path.cwd())
HUB_IMAGE = "dlab/hub:latest"
HUB_UID = "1001"
NEEDS_UPGRADE = 10  # dlab_hub.upgrade's "check" answer
CERTIFICATE_WAIT = 180  # seconds make up waits for a first certificate (an authority answers in seconds)


def build_command(image):
    """The make target that builds IMAGE: the images `make build` leaves out have their own."""
    name = image.rsplit("/", 1)[-1].split(":")[0]
    return {"gpu": "make build-gpu", "legacy": "make build-legacy"}.get(name, "make build")


class Stop(Exception):
    """A command ends here, having said why; its exit status."""

    def __init__(self, status=1):
        super().__init__(status)
        self.status = status


def say(*words):
    print("dlab:", *words, file=sys.stderr)


def docker(*args, check=False, capture=True, input=None, **kwargs):
    return subprocess.run(["docker", *args], text=True, capture_output=capture, input=input, check=check, **kwargs)


def quiet_ok(*args):
    return docker(*args).returncode == 0


class ClassServer:
    """One class: its settings (in this process's environment, where compose reads them) and the
    Docker engine make up talks to."""

    def __init__(self, env):
        self.env = env
        self.prefix = env["DLAB_PREFIX"]
        self.shared = env["DLAB_SWARM_SHARED"]  # set: the class on a Docker Swarm (docs/swarm.md)
        # (The https service, Caddy, and Prometheus are in profiles: only `up` with DLAB_DOMAIN,
        # DLAB_PROMETHEUS starts each; down, status see them.)
        self.compose = ["docker", "compose", "--profile", "https", "--profile", "prometheus"] + (
            ["-f", "compose.yaml", "-f", "compose.swarm.yaml"] if self.shared else [])
        self.port = env["DLAB_HUB_PORT"]
        self.hub, self.proxy, self.caddy = f"{self.prefix}-hub", f"{self.prefix}-proxy", f"{self.prefix}-https"
        self.prometheus = f"{self.prefix}-prometheus" if env["DLAB_PROMETHEUS"] == "on" else ""
        self.env_file = os.environ.get("DLAB_ENV_FILE") or ".env"
        # HTTPS by itself (DLAB_DOMAIN): Caddy takes ports 80 and 443 and the proxy's port stays on
        # this machine (compose.yaml's values that make up derives).
        self.domain = env["DLAB_DOMAIN"]
        os.environ["DLAB_PROXY_BIND"] = "127.0.0.1" if self.domain else env["DLAB_HUB_BIND"]
        os.environ["DLAB_ACME_ROOT_MOUNT"] = env["DLAB_ACME_CA_ROOT"] or "/dev/null"
        # The class's address, as students type it (printed by up, on the password sheets, in links).
        self.host = this_host()
        self.scheme = "https" if env["DLAB_SSL_CERT"] or self.domain else "http"
        self.class_url = (env["DLAB_SUBDOMAIN_HOST"] or (f"https://{self.domain}" if self.domain else "")
                          or f"{self.scheme}://{self.host}:{self.port}")
        # compose recreates the hub when the organizer's own configuration files change.
        os.environ["HUB_CONFIG_DIGEST"] = config_digest(env["DLAB_HUB_CONFIG_DIR"])
        # On a swarm with a registry: the students' image is REGISTRY/IMAGE (make swarm-push).
        registry = env["DLAB_SWARM_REGISTRY"] if self.shared else ""
        self.student_image = f"{registry}/{env['DLAB_IMAGE']}" if registry else env["DLAB_IMAGE"]

    # --- the engine -----------------------------------------------------------------------------
    def check_engine(self):
        """The engine this command talks to (DOCKER_HOST, or the default socket) is the one the hub gets."""
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            say(f"DOCKER_HOST={host}: run make up on the machine of the engine (its unix socket), not over the network")
            raise Stop
        socket_path = host.removeprefix("unix://") or "/var/run/docker.sock"
        os.environ["DLAB_DOCKER_SOCKET"] = socket_path
        if not Path(socket_path).is_socket():
            say(f"no Docker engine at {socket_path}: run `make docker` (as root), then `make up` again")
            raise Stop
        if not quiet_ok("version"):
            say(f"the Docker engine does not answer at {socket_path}: start it (systemctl start docker, or `make docker` as root)")
            say("(as a user other than root: be in the docker group, then log in again)")
            raise Stop
        # The hub joins the socket's group: its only privilege.
        os.environ["DOCKER_GID"] = str(os.stat(socket_path).st_gid)

    def hub_running(self):
        if not docker("ps", "-q", "--filter", f"name=^{self.hub}$").stdout.strip():
            say("the hub is not running: make up first")
            raise Stop

    def hub_exec(self, *command, input=None, capture=False):
        return docker("exec", *(["-i"] if input is not None else []), self.hub, *command, input=input, capture=capture)

    def compose_run(self, *args, capture=False):
        return subprocess.run([*self.compose, *args], text=True, capture_output=capture)

    # --- up ---------------------------------------------------------------------------------------
    def up(self):
        for image in (HUB_IMAGE, self.student_image):
            if not quiet_ok("image", "inspect", image):
                if image == self.student_image and image != self.env["DLAB_IMAGE"]:
                    say(f"{image} is not in the class's registry: run {build_command(self.env['DLAB_IMAGE'])}, then make swarm-push")
                else:
                    say(f"{image} is not built: run `{build_command(image)}`")
                raise Stop
        if self.shared:
            self.swarm_up()
        self.check_disk()
        # Homes of a fixed size are file systems on loop devices (images/hub/dlab-home): say so now
        # where there are none, rather than at each student's start.
        if not self.shared and self.env["DLAB_HOME_SIZE"] != "0":
            if not Path("/dev/loop-control").exists():
                say("this machine has no loop devices (/dev/loop-control), which homes of a fixed size (DLAB_HOME_SIZE) need")
                say(f"set DLAB_HOME_SIZE=0 in {self.env_file} for homes without a size limit (plain Docker volumes), then make up again")
                raise Stop
            self.warn_if_homes_outgrow_disk()
        # Upgrading from a release whose hub published the class port itself: stop that hub, so that
        # the proxy's container can take the port (students' servers keep running; compose recreates it).
        if quiet_ok("port", self.hub, "8000"):
            say("upgrading: the class port moves from the hub's container to the proxy's")
            docker("stop", "--time", "30", self.hub)
        if self.port_taken_by_another(self.port, self.proxy):
            say(f"port {self.port} is taken by another program: set DLAB_HUB_PORT in .env (see .env.example)")
            raise Stop
        if self.domain:
            self.check_https()
        elif quiet_ok("container", "inspect", self.caddy):
            self.compose_run("rm", "--stop", "--force", "https", capture=True)  # DLAB_DOMAIN emptied: no Caddy
        if self.prometheus:
            self.check_prometheus()
        elif quiet_ok("container", "inspect", f"{self.prefix}-prometheus"):
            self.compose_run("rm", "--stop", "--force", "prometheus", capture=True)  # DLAB_PROMETHEUS turned off
        recreate = self.install_certificate() if self.env["DLAB_SSL_CERT"] else []
        self.upgrade_database()
        began = time.time()
        services = ["proxy", "hub", *(["https"] if self.domain else []), *(["prometheus"] if self.prometheus else [])]
        up = self.compose_run("up", "-d", *recreate, "--wait", "--wait-timeout", "180", *services)
        if up.returncode != 0:
            say("the class server did not become healthy; the last log lines of its proxy and hub:")
            for name, lines in ((self.proxy, "10"), (self.hub, "30"), *([(self.caddy, "10")] if self.domain else []),
                                *([(self.prometheus, "10")] if self.prometheus else [])):
                logs = docker("logs", "--tail", lines, name, stderr=subprocess.STDOUT, capture=False, stdout=subprocess.PIPE)
                said = (logs.stdout or "").splitlines()
                print("\n".join(line for i, line in enumerate(said) if i == 0 or line != said[i - 1]), file=sys.stderr)
            self.compose_run("stop", *services, capture=True)  # no restart loop; volumes are kept
            say(f"stopped it: fix what the log says (settings: {self.env_file}, see .env.example), then make up again")
            raise Stop
        if self.shared:
            self.swarm_anchor()
        local = f"{'http' if self.domain else self.scheme}://localhost:{self.port}"  # (Caddy serves the domain)
        if self.domain:
            self.wait_for_certificate(began)
            say(f"the class server is up: {self.class_url} (on this machine also {local})")
        elif self.env["DLAB_SUBDOMAIN_HOST"]:
            say(f"the class server is up: {self.env['DLAB_SUBDOMAIN_HOST']} (students' servers on its subdomains; proxy on port {self.port})")
        else:
            say(f"the class server is up: {self.class_url} (on this machine: {local})")
        if self.scheme == "http":
            say("plain HTTP: for HTTPS set DLAB_DOMAIN to this machine's DNS name in .env (ports 80 and 443 open), "
                "then make up (docs/class-server.md#https)")
        if self.env["DLAB_CLASS_VIEW_EVERY"] != "0":
            say(f"the class page (each student's server, memory, CPU, disk): {self.class_url if self.domain else local}/hub/classview")
        if self.prometheus:
            login = docker("exec", self.hub, "cat", "/srv/metrics/password").stdout.strip()
            say(f"Prometheus keeps the class's metrics: http://127.0.0.1:{self.env['DLAB_PROMETHEUS_PORT']} "
                f"(this machine only; user dlab, password {login})")
        say(f"admin account: {self.env['DLAB_ADMIN']}; approve sign-ups at {self.class_url if self.domain else local}/hub/authorize")
        password = docker("exec", self.hub, "cat", "/srv/jupyterhub/secrets/admin-password")
        if password.returncode == 0:
            say(f"admin's first password: {password.stdout.strip()} (change it at /hub/change-password; then this line goes away)")

    def check_disk(self):
        """Students' servers write to Docker's disk (their homes are volumes there): refuse to start a
        class on a nearly full one, rather than let each student meet a failed start."""
        root = docker("info", "-f", "{{.DockerRootDir}}").stdout.strip() or "/var/lib/docker"
        try:
            free_gb = shutil.disk_usage(root).free // 1024**3
        except OSError:
            return
        if free_gb < int(self.env["DLAB_MIN_FREE_GB"]):
            say(f"only {free_gb} GB free on {root} (Docker's disk, where the students' homes are); dlab wants "
                f"{self.env['DLAB_MIN_FREE_GB']} GB (DLAB_MIN_FREE_GB)")
            say("free some space (docker system df shows what uses it; docker image prune removes old images), then make up again")
            raise Stop

    def port_taken_by_another(self, port, container):
        """Something listens on PORT, and it is not CONTAINER (the class's own, running)."""
        if not shutil.which("ss"):
            return False
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.strip()
        return bool(listening) and not docker("ps", "-q", "--filter", f"name=^{container}$").stdout.strip()

    def check_prometheus(self):
        """DLAB_PROMETHEUS: its image (built now if it is not: Debian's package, a minute), and its port."""
        if not quiet_ok("image", "inspect", "dlab/prometheus:latest"):
            say("DLAB_PROMETHEUS=on: building dlab/prometheus (Debian's Prometheus; once)")
            if subprocess.run([str(ROOT / "scripts" / "build-images.sh"), "prometheus"], cwd=ROOT).returncode != 0:
                say("could not build dlab/prometheus: see the lines above, or set DLAB_PROMETHEUS=off")
                raise Stop
        port = self.env["DLAB_PROMETHEUS_PORT"]
        if self.port_taken_by_another(port, self.prometheus):
            say(f"port {port} (DLAB_PROMETHEUS_PORT) is taken by another program: choose another in {self.env_file}")
            raise Stop

    # --- HTTPS by itself (DLAB_DOMAIN) ----------------------------------------------------------
    def check_https(self):
        """Before anything is touched: ports 80 and 443 free (or Caddy's already), the authority's root readable."""
        for port in (80, 443):
            if self.port_taken_by_another(port, self.caddy):
                say(f"port {port} is taken by another program (`ss -ltnp 'sport = :{port}'` names it), and DLAB_DOMAIN "
                    "needs ports 80 and 443: stop that program (a web server?), or, to keep it, empty DLAB_DOMAIN, "
                    "set DLAB_HUB_BIND=127.0.0.1 and let that program forward to the class port")
                raise Stop
        root = self.env["DLAB_ACME_CA_ROOT"]
        if root and not (os.access(root, os.R_OK) and "BEGIN CERTIFICATE" in Path(root).read_text(errors="replace")):
            say(f"DLAB_ACME_CA_ROOT={root} is not a readable PEM certificate: give the root certificate of your ACME "
                f"authority (or empty it for a public one), in {self.env_file}")
            raise Stop

    def wait_for_certificate(self, began):
        """Caddy's certificate for DLAB_DOMAIN: kept from before (a make down/up asks for none), or
        obtained now. On a failure Caddy is stopped (the class is then on this machine's own port
        only, never plain HTTP outside), and what went wrong is said with what to do."""
        deadline = time.monotonic() + CERTIFICATE_WAIT
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began - 1))  # this make up's lines of Caddy's log
        while True:
            stored = docker("exec", self.caddy, "python", "-m", "dlab_hub.https", "certificate")
            certificate = json.loads(stored.stdout or "{}") if stored.returncode == 0 else {}
            if self.domain in certificate.get("names", ()) and ssl.cert_time_to_seconds(certificate["not_after"]) > time.time():
                say(f"HTTPS: the certificate of {self.domain} is from {certificate['issuer'].get('commonName', self.env['DLAB_ACME_DIRECTORY'])}, "
                    f"valid until {certificate['not_after']}; Caddy renews it by itself")
                return certificate
            logs = docker("logs", "--since", since, self.caddy)
            found = https.errors(logs.stdout + logs.stderr)
            if https.failed(found) or time.monotonic() > deadline:
                break
            time.sleep(2)
        self.compose_run("stop", "https", capture=True)
        if https.failed(found):
            error = https.reason(found)
            summary, advice = https.diagnosis(error, self.domain, self.env["DLAB_ACME_DIRECTORY"], self.env["DLAB_ACME_CA_ROOT"])
            say(f"no certificate for {self.domain}: {summary}. Caddy said: {error[:600]}")
        else:
            summary, advice = "no answer", (f"see `docker logs {self.caddy}`; check DLAB_ACME_DIRECTORY "
                                            f"({self.env['DLAB_ACME_DIRECTORY']}), then make up again")
            say(f"no certificate for {self.domain} after {CERTIFICATE_WAIT} s")
        say(f"to do: {advice}")
        say(f"HTTPS is stopped: the class answers on this machine only (http://localhost:{self.port}), never in plain "
            f"HTTP outside; or empty DLAB_DOMAIN for http://{self.host}:{self.port} as before")
        raise Stop

    def warn_if_homes_outgrow_disk(self):
        """The homes' images are sparse and may promise more than the disk has: scripts/lib.sh's
        warn_if_homes_outgrow_disk says so (through its home_helper, which homes.sh shares)."""
        subprocess.run(["bash", "-c", '. scripts/lib.sh && warn_if_homes_outgrow_disk "$1"', "warn", self.env["DLAB_HOMES_DIR"]])

    def tls_files(self, action, cert, key):
        """dlab_hub.tls in the hub image, the two files on its standard input."""
        volume = ["-v", f"{self.prefix}-proxy-secrets:/srv/proxy"] if action == "install" else []
        files = "".join(base64.b64encode(Path(path).read_bytes()).decode() + "\n" for path in (cert, key))
        return docker("run", "--rm", "-i", "--network", "none", "--user", HUB_UID, *volume, "--entrypoint", "python",
                      HUB_IMAGE, "-m", "dlab_hub.tls", action, input=files)

    def install_certificate(self):
        """HTTPS: the organizer's certificate (DLAB_SSL_CERT, full chain) and key (DLAB_SSL_KEY), read
        here by whoever runs make up and written into the proxy's volume, readable by the proxy (and,
        read-only, the hub) alone. Checked first in a scratch folder: a wrong pair stops here with the
        running class untouched. Returns compose's flags (a renewed certificate recreates both)."""
        cert, key = self.env["DLAB_SSL_CERT"], self.env["DLAB_SSL_KEY"]
        if not key:
            say(f"DLAB_SSL_CERT is set but DLAB_SSL_KEY is not: set both in {self.env_file}")
            raise Stop
        for path in (cert, key):
            if not os.access(path, os.R_OK):
                say(f"cannot read {path} (DLAB_SSL_CERT/DLAB_SSL_KEY in {self.env_file}): check the path, or run make up as a user who can read it")
                raise Stop
        checked = self.tls_files("check", cert, key)
        if checked.returncode != 0:
            print(checked.stderr, end="", file=sys.stderr)
            say(f"DLAB_SSL_CERT={cert} and DLAB_SSL_KEY={key}: fix them in {self.env_file}, then make up again")
            raise Stop
        if not quiet_ok("volume", "inspect", f"{self.prefix}-proxy-secrets"):
            self.compose_run("create", "proxy", capture=True)  # first start: its volume, made by compose as always
        installed = self.tls_files("install", cert, key)
        if installed.returncode != 0:
            print(installed.stderr, end="", file=sys.stderr)
            raise Stop
        # A renewed certificate needs a proxy restart, then a hub restart that gives the new proxy its
        # routes back (students' servers keep running through both).
        return ["--force-recreate"] if installed.stdout.strip() == "changed" else []

    def hub_upgrade(self, command):
        return docker("run", "--rm", "--network", "none", "--user", HUB_UID, "--cap-drop", "ALL", "--security-opt",
                      "no-new-privileges", "-v", f"{self.prefix}-hub-state:/srv/jupyterhub", "--entrypoint", "python",
                      HUB_IMAGE, "-m", "dlab_hub.upgrade", command, capture=False).returncode

    def hub_serves_this_release(self):
        """The class's hub runs this release's image and is healthy: its JupyterHub opened the
        database (it refuses one of another schema), so there is nothing to check."""
        running = docker("inspect", "-f", "{{.Image}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", self.hub).stdout.split()
        image = docker("image", "inspect", "-f", "{{.Id}}", HUB_IMAGE).stdout.strip()
        return bool(image) and running == [image, "healthy"]

    def upgrade_database(self):
        """A class an earlier release made: its database to this release's JupyterHub schema, in a
        one-off container of the new hub image (dlab_hub.upgrade) while no hub runs on it. The copy it
        keeps goes back on any failure, and the hub that ran starts again, as it was."""
        if not quiet_ok("volume", "inspect", f"{self.prefix}-hub-state"):
            return  # the class's first start
        if self.hub_serves_this_release():
            return  # a setting changed: the database is this JupyterHub's already
        status = self.hub_upgrade("check")
        if status == 0:
            return
        if status != NEEDS_UPGRADE:
            say("could not read the hub's database (above): the class is left as it was")
            raise Stop
        running = docker("ps", "-q", "--filter", f"name=^{self.hub}$").stdout.strip()
        say("this release's JupyterHub needs the hub's database upgraded: the hub stops meanwhile (students' servers keep running)")
        if running:
            docker("stop", "--time", "30", self.hub)
        if self.hub_upgrade("run") == 0:
            return
        if running and quiet_ok("start", self.hub):
            say("the hub that ran is started again")
        raise Stop

    # --- on a swarm ---------------------------------------------------------------------------------
    def swarm_up(self):
        """This engine is a swarm manager, and the shared folder holds the class's folders, made by root
        (the hub may not chown): homes/ (each student's made at their first start), course/ and handin/
        owned by the hub (uid 1001) and the students' group, data/ for make data."""
        state = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").stdout.strip()
        if state != "active true":
            say("DLAB_SWARM_SHARED is set but this Docker engine is not a swarm manager: run make up on a manager "
                "(docs/swarm.md), or empty DLAB_SWARM_SHARED for one machine")
            raise Stop
        if not Path(self.shared).is_dir():
            say(f"DLAB_SWARM_SHARED={self.shared} is not a folder here: mount the class's NFS export there (docs/swarm.md)")
            raise Stop
        made = docker("run", "--rm", "--user", "root", "--network", "none", "--cap-drop", "ALL", "--cap-add", "CHOWN",
                      "--cap-add", "FOWNER", "--cap-add", "FSETID", "--security-opt", "no-new-privileges",
                      "-v", f"{self.shared}:/shared", "--entrypoint", "sh", HUB_IMAGE, "-c",
                      "install -d -m 0755 /shared/homes\n"
                      "install -d -o 1001 -g 100 /shared/course /shared/data /shared/handin\n"
                      "chmod 2775 /shared/course /shared/data && chmod 2770 /shared/handin", capture=False)
        if made.returncode != 0:
            say(f"could not make the class's folders in {self.shared}: root on this manager must own files there (no_root_squash)")
            raise Stop

    def swarm_anchor(self):
        """Docker 20.10 drops a node's attachment to the class network with its last task on it, and then
        rejects the next task placed there ("node is missing network attachments"): a small service on
        every ready node keeps each attached (docs/swarm.md)."""
        if quiet_ok("service", "inspect", f"{self.prefix}-anchor"):
            return
        docker("service", "create", "--detach", "--quiet", "--name", f"{self.prefix}-anchor", "--mode", "global",
               "--label", f"org.dlab.hub={self.prefix}", "--network", self.env["DLAB_NETWORK"],
               "--constraint", "node.labels.dlab.homes==true", "--limit-memory", "64M", "--user", "1000",
               "--read-only", "--cap-drop", "ALL", "--no-healthcheck", "--log-driver", "json-file",
               "--log-opt", "max-size=1m", "--entrypoint", "sleep", self.student_image, "infinity", check=True)

    def swarm_services(self):
        return docker("service", "ls", "-q", "--filter", f"label=org.dlab.hub={self.prefix}").stdout.split()

    # --- down, status -------------------------------------------------------------------------------
    def down(self):
        if self.shared:
            # The students' services (and the anchor) first: the class network goes only once they have left it.
            services = self.swarm_services()
            if services:
                docker("service", "rm", *services)
            self.compose_run("down", "--timeout", "60", capture=True)
            # Until it is gone: a swarm's `network rm` can answer before the network leaves, while the
            # last tasks let go of it (each student's server is given 30 s to save and stop).
            for _ in range(120):
                if not quiet_ok("network", "inspect", self.env["DLAB_NETWORK"]):
                    break
                if not quiet_ok("network", "rm", self.env["DLAB_NETWORK"]):
                    time.sleep(1)
            say(f"stopped; every home is kept (in {self.shared}/homes)")
            return
        if self.compose_run("down", "--timeout", "60").returncode != 0:
            raise Stop
        # The students' servers outlive a hub restart (cleanup_servers = False): stop them now, with
        # the time Jupyter needs to save and shut its kernels down; then remove the containers. Never a volume.
        # Each removed whatever `stop` said of the others: under load Docker 20.10 can answer a stop
        # with an error ("did not receive an exit event") or meet a container the hub was removing.
        left = self.servers()
        for attempt in range(3):
            if not left:
                break
            if attempt:
                time.sleep(2)  # (a removal the hub began may still be under way)
            docker("stop", "--time", "30", *left)
            removed = docker("rm", "-f", *left)  # (one gone meanwhile: an error for it alone)
            left = self.servers()
        if left:
            say(f"stopped the class, but these students' servers are left: {' '.join(left)} "
                f"({removed.stderr.strip() or 'no error said'}); remove them with `docker rm -f NAME` "
                "(each home is a volume of its own, kept), then make down again")
            raise Stop
        say(f"stopped; every volume is kept (students' homes: docker volume ls --filter name={self.prefix}-home-)")

    def servers(self):
        """The names of the class's students' servers' containers, running or not."""
        return docker("ps", "-a", "--filter", f"label=org.dlab.hub={self.prefix}", "--format", "{{.Names}}").stdout.split()

    def status(self):
        self.compose_run("ps")
        if self.shared:
            docker("service", "ls", "--filter", f"label=org.dlab.hub={self.prefix}", capture=False)
        docker("ps", "--filter", f"label=org.dlab.hub={self.prefix}", "--format",
               "table {{.Names}}\t{{.Status}}\t{{.Image}}", capture=False)


def config_digest(folder):
    """A digest of the *.py files of DLAB_HUB_CONFIG_DIR (names and contents); "unreadable" where
    this command cannot read them (the hub then says what to do)."""
    digest = hashlib.sha256()
    try:
        for path in sorted(Path(folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return "unreadable"
    return digest.hexdigest()[:16]


def this_host():
    """This machine's name as `hostname -f` says it (else `hostname`)."""
    for command in (["hostname", "-f"], ["hostname"]):
        try:
            name = subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            continue
        if name:
            return name
    return socket.gethostname()
