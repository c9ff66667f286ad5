"""The class server under test: the real compose.yaml, started by the real scripts/hub.sh (what
`make up` runs), under its own prefix, network and port so that it never touches a running class."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import uuid
from contextlib import contextmanager

import pytest
import requests
import websocket

from conftest import HUB_RESTARTS, ROOT, dlab_home, docker, image_exists, wait_for

# Side by side (make test runs pytest-xdist's workers gw0, gw1, ...), each worker has a class of its
# own: dlabtest, dlabtest1, ... (its containers, volumes, network and homes' folder).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
PREFIX = "dlabtest" + ("" if _WORKER == "gw0" else _WORKER.removeprefix("gw"))


def homes_dir(prefix):
    """A test class's DLAB_HOMES_DIR."""
    return f"/var/lib/{prefix}/homes"


HOMES_DIR = homes_dir(PREFIX)  # the worker's test hub's


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HubStack:
    """One test hub; restart(**settings) recreates the hub container with other DLAB_* settings
    (its state volume, and so every account, is kept). A subclass with another `prefix` is a class
    of its own: its containers, volumes, network and homes' folder."""

    prefix = PREFIX
    address = "127.0.0.1"  # where the proxy publishes the class port (DLAB_HUB_BIND)
    docker_env = None  # the environment of docker commands: None, this machine's engine

    def __init__(self):
        self.port = free_port()
        self.url = f"http://{self.address}:{self.port}"
        self.verify = True  # or, behind HTTPS, the test certificate (a CA file)
        self.settings = None
        self.admin = "organizer"
        self._admin_password = None
        self._admin_token = None
        self.last_displays = []  # what the last execute() displayed (display_data, execute_result)

    def env(self, settings):
        env = dict(os.environ)
        env.update({
            "DLAB_ENV_FILE": "/dev/null",  # a developer's own .env must not leak in
            "DLAB_PREFIX": self.prefix, "DLAB_NETWORK": self.prefix, "DLAB_DATA_VOLUME": f"{self.prefix}-data",
            "DLAB_HUB_PORT": str(self.port), "DLAB_HUB_BIND": "127.0.0.1", "DLAB_ADMIN": self.admin,
            "DLAB_MEM_LIMIT": "1536M", "DLAB_CPU_LIMIT": "1.5", "DLAB_PIDS_LIMIT": "700",
            "DLAB_SHM_SIZE": "256m", "DLAB_TMP_SIZE": "64m", "DLAB_IDLE_TIMEOUT": "0", "DLAB_GPUS": "auto", "DLAB_GRADE_TIMEOUT": "40",
            "DLAB_CLASS_CODE": "", "DLAB_HOME_SIZE": "128M", "DLAB_HANDIN_SIZE": "64M", "DLAB_COURSE_SIZE": "128M", "DLAB_HOMES_DIR": homes_dir(self.prefix),
            # Every test client comes from this machine, one address: the whole run's sign-ups count
            # against it (test_hub_hardening tests the default's purpose with a small limit).
            "DLAB_SIGNUPS_PER_HOUR": "1000",
        })
        env.update(settings)
        return env

    def script(self, command, settings=None, check=True, timeout=300):
        arguments = [command] if isinstance(command, str) else command  # e.g. ["prestart", "alice"]
        env = self.env(self.settings or {} if settings is None else settings)
        if arguments[0] == "down":
            # The class is down now, whatever the test asserts next: the next restart() makes it up
            # (were it kept, a failed assertion here would fail every later test on this worker).
            self.settings = None
        return subprocess.run(["scripts/hub.sh", *arguments], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def restart(self, **settings):
        """Make sure the hub runs with these settings (beyond the defaults above)."""
        if settings == self.settings:
            return
        began = time.monotonic()
        # With DLAB_DOMAIN the class is https://DOMAIN (tests/hub/test_hub_acme.py), and the class port,
        # plain HTTP on loopback, gets Secure cookies that requests keeps to HTTPS: the organizer's API
        # token is made before (tokens live in the hub's database) and kept.
        token = (self._admin_token or (self.admin_token if self.settings is not None else None)) \
            if settings.get("DLAB_DOMAIN") else None
        out = self.script("up", settings, check=False)
        assert out.returncode == 0, f"scripts/hub.sh up failed:\n{out.stdout}\n{out.stderr}"
        self.settings = settings
        https = bool(settings.get("DLAB_SSL_CERT"))
        # The certificate's name, and the subdomains' parent (alice.localhost), are localhost.
        host = "localhost" if https or settings.get("DLAB_SUBDOMAIN_HOST") else self.address
        self.url = f"{'https' if https else 'http'}://{host}:{self.port}"
        self.verify = settings["DLAB_SSL_CERT"] if https else True
        self.up_output = out.stderr
        self._admin_token = token
        wait_until(lambda: self.request("GET", self.url + "/hub/api/", timeout=5).ok, 60, "the hub's API")
        HUB_RESTARTS.append(time.monotonic() - began)

    def request(self, method, url, **kwargs):
        return requests.request(method, url, verify=self.verify, **kwargs)

    def new_session(self):
        s = requests.Session()
        s.verify = self.verify
        s.trust_env = False  # else REQUESTS_CA_BUNDLE (set for the intercepting proxy) overrides verify
        return s

    def logs(self):
        out = docker("logs", f"{self.prefix}-hub", check=False, env=self.docker_env)
        return out.stdout + out.stderr

    # --- accounts ----------------------------------------------------------------------------
    @property
    def admin_password(self):
        if self._admin_password is None:
            self._admin_password = docker("exec", f"{self.prefix}-hub", "cat", "/srv/jupyterhub/secrets/admin-password",
                                          env=self.docker_env).stdout.strip()
        return self._admin_password

    def try_login(self, username, password):
        """Log in through the login form, as a browser does: (logged in?, session)."""
        s = self.new_session()
        page = s.get(self.url + "/hub/login", timeout=10)
        r = s.post(self.url + "/hub/login", data={"username": username, "password": password,
                                                  "_xsrf": xsrf(page.text)}, timeout=30, allow_redirects=False)
        # Success redirects to the next page with a login cookie; failure shows the form again.
        return r.status_code == 302 and "jupyterhub-hub-login" in s.cookies, s

    def session(self, username, password):
        """A requests session logged in as username (fails the test if it cannot log in)."""
        ok, s = self.try_login(username, password)
        assert ok, f"login as {username} failed"
        # With subdomains, JupyterHub (5.5 on) sets its session cookie for the parent domain
        # (.localhost), and the XSRF token depends on it. Browsers send it back to localhost;
        # cookielib never does (it calls the host localhost.local), so it is sent here by hand.
        for cookie in list(s.cookies):
            if cookie.name == "jupyterhub-session-id" and cookie.domain == ".localhost":
                s.cookies.set(cookie.name, cookie.value, domain="localhost.local", path="/")
        # The XSRF token is tied to the login session: a page seen after login gives the new one,
        # which API calls made with the login cookie must echo (as JupyterHub's own pages do).
        s.get(self.url + "/hub/home", timeout=30).raise_for_status()
        s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", path="/hub/")
        return s

    def signup(self, username, password, class_code=None):
        """Sign up through /hub/signup; returns the page's message."""
        s = self.new_session()
        page = s.get(self.url + "/hub/signup", timeout=10)
        data = {"username": username, "signup_password": password,
                "signup_password_confirmation": password, "_xsrf": xsrf(page.text)}
        if class_code is not None:
            data["class_code"] = class_code
        r = s.post(self.url + "/hub/signup", data=data, timeout=30)
        match = re.search(r'<div class="alert [^"]*" role="alert">\s*<p>\s*(.*?)\s*</p>', r.text, re.S)
        return match.group(1) if match else r.text

    def approve(self, username, session=None):
        """The organizer approves a sign-up as the /hub/authorize page does: a POST with its XSRF token."""
        admin = session or self.session(self.admin, self.admin_password)
        page = admin.get(f"{self.url}/hub/authorize/{username}", timeout=30)
        assert page.ok, f"{page.status_code} {page.text[:300]}"
        r = admin.post(f"{self.url}/hub/authorize/{username}", data={"_xsrf": xsrf(page.text)}, timeout=30)
        assert r.ok, f"{r.status_code} {r.text[:300]}"
        return admin

    def student(self, username, password):
        """An approved account with a password, as a student gets one (sign-up, the organizer's
        approval); one login makes the hub's user (and fails on a name taken elsewhere)."""
        if self.api("GET", f"/users/{username}").status_code == 404:
            self.signup(username, password)
            self.approve(username)
        self.session(username, password)
        return username

    @property
    def admin_token(self):
        if self._admin_token is None:
            s = self.session(self.admin, self.admin_password)
            r = s.post(f"{self.url}/hub/api/users/{self.admin}/tokens", json={"note": "dlab tests"}, timeout=30)
            r.raise_for_status()
            self._admin_token = r.json()["token"]
        return self._admin_token

    def api(self, method, path, token=None, **kwargs):
        return self.request(method, f"{self.url}/hub/api{path}", headers=auth(token or self.admin_token),
                            timeout=60, **kwargs)

    def user_token(self, username):
        r = self.api("POST", f"/users/{username}/tokens", json={"note": "dlab tests"})
        r.raise_for_status()
        return r.json()["token"]

    # --- servers -----------------------------------------------------------------------------
    def start_server(self, username, timeout=300, **user_options):
        r = self.api("POST", f"/users/{username}/server", json=user_options)
        assert r.status_code in (201, 202), f"starting {username}'s server: {r.status_code} {r.text}"
        return self.wait_ready(username, timeout)

    def server(self, username):
        return self.api("GET", f"/users/{username}").json().get("servers", {}).get("")

    def wait_ready(self, username, timeout=300):
        def ready():
            server = self.server(username)
            if server is None:
                pytest.fail(f"{username}'s server stopped while starting; hub log:\n{self.logs()[-3000:]}")
            return server["ready"] and server
        return wait_until(ready, timeout, f"{username}'s server to be ready")

    def stop_server(self, username):
        r = self.api("DELETE", f"/users/{username}/server")
        assert r.status_code in (202, 204), r.text
        wait_until(lambda: self.server(username) is None, 120, f"{username}'s server to stop")

    def stop_all_servers(self):
        """Stop every running server (earlier tests leave some running on purpose)."""
        running = [u["name"] for u in self.api("GET", "/users").json() if u.get("servers")]
        for name in running:
            self.api("DELETE", f"/users/{name}/server")
        for name in running:
            wait_until(lambda: self.server(name) is None, 120, f"{name}'s server to stop")

    def container(self, username):
        """docker inspect of the user's container (None if there is none)."""
        out = docker("ps", "-aq", "--filter", f"label=org.dlab.user={username}",
                     "--filter", f"label=org.dlab.hub={self.prefix}").stdout.split()
        return json.loads(docker("inspect", out[0]).stdout)[0] if out else None

    def new_kernel(self, username, token):
        r = self.request("POST", f"{self.user_url(username)}/api/kernels", headers=auth(token),
                         json={"name": "python3"}, timeout=60)
        assert r.status_code == 201, f"{r.status_code} {r.text}"
        return r.json()["id"]

    def kernels(self, username, token):
        r = self.request("GET", f"{self.user_url(username)}/api/kernels", headers=auth(token), timeout=30)
        r.raise_for_status()
        return [k["id"] for k in r.json()]

    def execute(self, username, kernel_id, code, token, timeout=120):
        """Execute code in one of the user's kernels through the proxy's websocket, as JupyterLab
        does; returns what it printed (stdout) and the kernel's error, if any ("KernelDied: ..." when
        the kernel died under it)."""
        ws_url = self.user_url(username).replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        ssl_options = {"ca_certs": self.verify} if isinstance(self.verify, str) else None
        ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout,
                                         sslopt=ssl_options)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": username,
                           "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            }))
            stdout, error, self.last_displays = "", None, []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                kind = msg["header"]["msg_type"]
                if kind == "status" and msg["content"]["execution_state"] in ("restarting", "dead"):
                    return stdout, f"KernelDied: the kernel is {msg['content']['execution_state']}"
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if kind in ("display_data", "update_display_data", "execute_result"):  # what a notebook shows
                    self.last_displays.append(msg["content"]["data"])
                if kind == "stream" and msg["content"]["name"] == "stdout":
                    stdout += msg["content"]["text"]
                elif kind == "error":
                    error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return stdout, error
            pytest.fail(f"no reply from {username}'s kernel within {timeout} s")
        finally:
            ws.close()

    def run_code(self, username, code, token=None, timeout=120, shutdown=True):
        """Execute code in a new kernel of the user's server (see execute); the kernel is shut
        down afterwards unless shutdown=False."""
        token = token or self.user_token(username)
        kernel_id = self.new_kernel(username, token)
        try:
            return self.execute(username, kernel_id, code, token, timeout)
        finally:
            if shutdown:
                self.request("DELETE", f"{self.user_url(username)}/api/kernels/{kernel_id}",
                             headers=auth(token), timeout=30)

    def container_name(self, username):
        """The name DockerSpawner gives the user's container: PREFIX.<escaped name>."""
        return docker("inspect", "-f", "{{.Name}}", self.container(username)["Id"]).stdout.strip().lstrip("/")

    def user_url(self, username):
        return f"{self.url}/user/{urllib.parse.quote(username)}"  # URL-escaped: zoë -> zo%C3%AB


def log_in(page, url, username, password, next_page=""):
    """Log in through the hub's login page in a browser page (Playwright); then, by default, the
    hub starts the user's server, or next_page (a path under /hub/) opens."""
    page.goto(url + "/hub/login" + (f"?next=%2Fhub%2F{next_page}" if next_page else ""))
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    page.click("input[type=submit]")


class PageRequests:
    """What a browser page's requests came to, said when the page waits in vain: those the network
    dropped (chromium's error), those answered with an HTTP error, those still unanswered."""

    def __init__(self, page):
        self.unanswered, self.dropped, self.refused = [], [], []
        page.on("request", self._sent)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)

    def _sent(self, request):
        self.unanswered.append(request)

    def _finished(self, request):
        if request in self.unanswered:
            self.unanswered.remove(request)

    def _failed(self, request):
        if request.failure != "net::ERR_ABORTED":  # cancelled by the page itself (it went on to another)
            self.dropped.append(f"{request.method} {request.url}: {request.failure}")
        self._finished(request)

    def _answered(self, response):
        if response.status >= 400:
            self.refused.append(f"{response.request.method} {response.url}: {response.status} {response.status_text}")

    def __str__(self):
        unanswered = [f"{request.method} {request.url}" for request in self.unanswered]
        return f"dropped: {self.dropped}; answered with an error: {self.refused}; unanswered: {unanswered}"


def network_changed(page):
    """Did chromium drop the page it was loading because a network interface came or went on this
    machine (net::ERR_NETWORK_CHANGED: another worker's container starting, its veth appearing)?
    Nothing of the class's doing: the step is tried again."""
    return "ERR_NETWORK_CHANGED" in page.content()


def on_class_network(code, *args, timeout=120):
    """Run Python in a container on the test hub's network, without dlab's firewall: a browser or a
    machine at another address than the test's own. `url` is the proxy as it reaches it."""
    out = docker("run", "--rm", "--network", PREFIX, "--entrypoint", "/opt/venv/bin/python", "dlab/hub:latest",
                 "-c", f"url = 'http://{PREFIX}-proxy:8000'\n" + code, *args, check=False, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def address_on_class_network(container):
    """A container's address on the test hub's network."""
    info = json.loads(docker("inspect", container).stdout)[0]
    return info["NetworkSettings"]["Networks"][PREFIX]["IPAddress"]


def auth(token):
    return {"Authorization": f"token {token}"}


def xsrf(html):
    match = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert match, "no _xsrf field in the page"
    return match.group(1)


def wait_until(condition, timeout, message):
    """conftest.wait_for, counting a hub that does not answer yet as "not yet"."""
    def answered():
        try:
            return condition()
        except (requests.ConnectionError, requests.Timeout):
            return False
    return wait_for(answered, timeout, interval=1, message=message)


def remove_test_stack(prefix=PREFIX):
    # The students' servers first, at once: `down` gives each 30 s to save, which after a class of fifty
    # under a loaded CI machine took minutes (make down itself is tested in test_hub_faults.py).
    servers = docker("ps", "-aq", "--filter", f"label=org.dlab.hub={prefix}").stdout.split()
    if servers:
        docker("rm", "-f", *servers, check=False)
    subprocess.run(["scripts/hub.sh", "down"], cwd=ROOT, capture_output=True, timeout=300,
                   env={**os.environ, "DLAB_ENV_FILE": "/dev/null", "DLAB_PREFIX": prefix, "DLAB_NETWORK": prefix})
    volumes = docker("volume", "ls", "-q", "--filter", f"name=^{prefix}-").stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)
    # The homes' images and their loop devices (images/hub/dlab-home).
    dlab_home(homes_dir(prefix), 'for image in /homes/*.ext4; do [ -e "$image" ] && dlab-home forget "$(basename "$image" .ext4)"; done; true')


def hub_stack(stack_class=HubStack):
    """A test hub (the worker's, or STACK_CLASS's class), from a clean slate (no volumes of an
    earlier run); removed afterwards."""
    for image in ("dlab/hub:latest", "dlab/cpu:latest"):
        if not image_exists(image):
            pytest.fail(f"{image} is not built: run `make build` (make test builds it)")
    remove_test_stack(stack_class.prefix)
    stack = stack_class()
    stack.restart()
    yield stack
    remove_test_stack(stack_class.prefix)


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@contextmanager
def outside_namespace(name, veth, link, addresses, command):
    """A network namespace of the test's own, joined to this machine by a veth pair (this machine
    LINK.1/24, the namespace LINK.2/24); the namespace also holds `addresses` (/32), which this
    machine routes into it, and runs `command` there (a listener). Yields the Popen; all removed after."""
    ip("netns", "del", name, check=False)
    ip("link", "del", veth, check=False)
    ip("netns", "add", name)
    inside, process = ["ip", "netns", "exec", name], None
    try:
        ip("link", "add", veth, "type", "veth", "peer", "name", veth[:-1] + "1")
        ip("link", "set", veth[:-1] + "1", "netns", name)
        ip("addr", "add", f"{link}.1/24", "dev", veth)
        ip("link", "set", veth, "up")
        for address in (f"{link}.2/24", *(f"{a}/32" for a in addresses)):
            subprocess.run([*inside, "ip", "addr", "add", address, "dev", veth[:-1] + "1"], check=True)
        subprocess.run([*inside, "ip", "link", "set", veth[:-1] + "1", "up"], check=True)
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, "ip", "route", "add", "default", "via", f"{link}.1"], check=True)
        for address in addresses:
            ip("route", "add", f"{address}/32", "via", f"{link}.2", "dev", veth)
        process = subprocess.Popen([*inside, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield process
    finally:
        if process:
            process.kill()
            process.wait()
        ip("link", "del", veth, check=False)  # its routes go with it
        ip("netns", "del", name, check=False)
