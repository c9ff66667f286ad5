"""HTTPS by itself (DLAB_DOMAIN): the class gets its certificate from an ACME authority and renews
it, proven against Let's Encrypt's own test authority, pebble (tests/acme), which the test runs in a
container of its own on the test class's network, where the class's name resolves to its front
door (compose.yaml's https service, Caddy; the alias is tests/acme/compose.yaml's). Pebble's certificates live two minutes here, so a
renewal happens within the test; chromium trusts pebble's root through an NSS database of the
test's own. Ports 80 and 443 are this machine's loopback's (DLAB_HUB_BIND=127.0.0.1).

The missteps (ports taken, an authority that does not answer, a name that does not resolve or
resolves elsewhere) each stop `make up` with what to do and leave nothing served in plain HTTP. For
the names, pebble asks a DNS server of the test's own (pebble-challtestsrv): no query leaves the
machine."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError, expect, sync_playwright

from conftest import ROOT, docker, image_exists
from hubstack import PREFIX, address_on_class_network, log_in, network_changed, wait_until

DOMAIN = "class.dlab.test"
PEBBLE = f"{PREFIX}-pebble"  # the authority, on the class network
PEBBLE_WITH_DNS = f"{PREFIX}-pebble-dns"  # another, asking the test's own DNS server
PEBBLE_SLOW = f"{PREFIX}-pebble-slow"  # another, that waits up to 20 s before it validates (as a real one may)
ACME_DNS = f"{PREFIX}-acme-dns"  # that server (pebble-challtestsrv)
HTTPS = f"{PREFIX}-https"
VALIDITY = 120  # seconds a certificate of pebble's lives: Caddy renews it at 80
DIRECTORY = f"https://{PEBBLE}:14000/dir"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def authority(hub, tmp_path_factory):
    """Pebble on the class network (and a second one with a DNS server of the test's own), its
    listener's certificate made here (the root make up is given: DLAB_ACME_CA_ROOT)."""
    if not image_exists("dlab-test/acme:latest"):
        out = subprocess.run(["scripts/build-images.sh", "acme"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    hub.restart()  # the class network exists
    folder = tmp_path_factory.mktemp("pebble")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={PEBBLE}",
            "-addext", f"subjectAltName=DNS:{PEBBLE},DNS:{PEBBLE_WITH_DNS},DNS:{PEBBLE_SLOW}",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"))
    config = {"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
                         "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
                         "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
                         "externalAccountBindingRequired": False, "certificateValidityPeriod": VALIDITY}}
    (folder / "pebble.json").write_text(json.dumps(config))
    for path in folder.iterdir():
        path.chmod(0o644)  # pebble runs as nobody
    folder.chmod(0o755)
    names = (PEBBLE, PEBBLE_WITH_DNS, PEBBLE_SLOW, ACME_DNS)
    docker("rm", "-f", *names, check=False)
    run = ["run", "-d", "--network", PREFIX, "--cap-drop", "ALL", "-v", f"{folder}:/etc/pebble:ro"]
    try:
        docker(*run, "--name", PEBBLE, "dlab-test/acme:latest")
        docker(*run, "--name", PEBBLE_SLOW, "-e", "PEBBLE_VA_NOSLEEP=0", "-e", "PEBBLE_VA_SLEEPTIME=20", "dlab-test/acme:latest")
        docker(*run, "--name", ACME_DNS, "dlab-test/acme:latest", "pebble-challtestsrv", "-defaultIPv4", "",
               "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-dns01", ":8053")
        dns = address_on_class_network(ACME_DNS)
        docker(*run, "--name", PEBBLE_WITH_DNS, "dlab-test/acme:latest", "pebble", "-config", "/etc/pebble/pebble.json",
               "-dnsserver", f"{dns}:8053")
        for name in (PEBBLE, PEBBLE_WITH_DNS, PEBBLE_SLOW):
            wait_until(lambda: "Listening on: 0.0.0.0:14000" in docker("logs", name).stdout, 60, f"{name} listening")
        yield {"root": folder / "cert.pem", "dns": dns}
    finally:
        docker("rm", "-f", *names, check=False)
        hub.restart()  # no DLAB_DOMAIN: Caddy goes


def settings(authority, **more):
    return {"DLAB_DOMAIN": DOMAIN, "DLAB_ACME_DIRECTORY": DIRECTORY, "DLAB_ACME_CA_ROOT": str(authority["root"]),
            "DLAB_ACME_EMAIL": "organizer@dlab.test", **more,
            # The class's name resolves to Caddy on the class network (tests/acme/compose.yaml), as a DNS
            # record names the machine in the world.
            "COMPOSE_FILE": "compose.yaml:tests/acme/compose.yaml"}


def issuing_root():
    """Pebble's root for the certificates it issues (its management API), as PEM."""
    session = requests.Session()
    session.trust_env = False  # (no proxy from the environment: the container is this machine's)
    # Its listener's certificate names the container, not its address: make up checked that one.
    return session.get(f"https://{address_on_class_network(PEBBLE)}:15000/roots/0", verify=False, timeout=10).text


def served_certificate(root_pem):
    """The certificate the class serves on 443 for DOMAIN, verified against pebble's root and the
    name (a failure raises ssl.SSLCertVerificationError)."""
    context = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            return tls.getpeercert()


def http_request(port, path, tls_root=None):
    """GET path from this machine's port as a browser at DOMAIN would: (status line, headers)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls_root:
        raw = ssl.create_default_context(cadata=tls_root).wrap_socket(raw, server_hostname=DOMAIN)
    with raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return head[0], {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}


@pytest.fixture(scope="module")
def browser(authority):
    """Chromium that trusts pebble's root (an NSS database in a home of the test's own, where
    chromium looks on Linux) and finds DOMAIN on this machine."""
    home = authority["root"].parent / "browser-home"
    (home / ".pki" / "nssdb").mkdir(parents=True, exist_ok=True)
    (home / "pebble-root.pem").write_text(issuing_root())
    subprocess.run(["certutil", "-N", "-d", f"sql:{home}/.pki/nssdb", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{home}/.pki/nssdb", "-n", "pebble", "-t", "C,,",
                    "-i", str(home / "pebble-root.pem")], check=True, capture_output=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), env={**os.environ, "HOME": str(home)},
                                             args=["--no-sandbox", f"--host-resolver-rules=MAP {DOMAIN} 127.0.0.1"])
        yield browser
        browser.close()


def started_at(container):
    return docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Running}}", container).stdout.split()


def test_the_class_gets_a_certificate_serves_https_and_renews_it_with_no_server_restarted(hub, authority, browser):
    hub.restart(**settings(authority))
    assert f"the class server is up: https://{DOMAIN}" in hub.up_output, hub.up_output
    assert "Caddy renews it by itself" in hub.up_output
    root = issuing_root()

    # The certificate names the class and chains to pebble's root (verified), and lives VALIDITY s.
    first = served_certificate(root)
    assert ("DNS", DOMAIN) in first["subjectAltName"]
    lifetime = ssl.cert_time_to_seconds(first["notAfter"]) - ssl.cert_time_to_seconds(first["notBefore"])
    assert lifetime <= VALIDITY
    # Port 80 redirects to HTTPS; the hub's pages tell browsers to keep to HTTPS.
    status, headers = http_request(80, "/hub/login")
    assert status.split()[1] in ("301", "308") and headers["location"] == f"https://{DOMAIN}/hub/login", (status, headers)
    status, headers = http_request(443, "/hub/login", tls_root=root)
    assert status.split()[1] == "200" and headers["strict-transport-security"].startswith("max-age="), (status, headers)
    # The class port is this machine's only now (the proxy publishes on 127.0.0.1).
    published = docker("port", f"{PREFIX}-proxy", "8000").stdout.split()
    assert published and all(line.startswith("127.0.0.1:") for line in published), published

    # A login in chromium over HTTPS, pebble's root trusted: no certificate warning, every cookie
    # Secure; the organizer's JupyterLab opens. (Its server started first: a new container's network
    # interface makes chromium drop a page it is loading, net::ERR_NETWORK_CHANGED.)
    if not hub.server(hub.admin):
        hub.start_server(hub.admin)
    context = browser.new_context()
    page = context.new_page()
    lab = f"https://{DOMAIN}/user/{hub.admin}/lab"
    log_in(page, f"https://{DOMAIN}", hub.admin, hub.admin_password)
    for attempt in range(3):  # again where chromium dropped the page (another worker's containers: network_changed)
        page.wait_for_url(lambda url: url.startswith(lab) or url.startswith("chrome-error://"), timeout=300_000)
        if page.url.startswith(lab):
            break
        assert network_changed(page) and attempt < 2, page.content()[:500]
        try:
            page.goto(lab)  # logged in already, or sent to the login page
        except PlaywrightError:
            continue
        if "/hub/login" in page.url:
            log_in(page, f"https://{DOMAIN}", hub.admin, hub.admin_password)
    cookies = context.cookies()
    assert {"jupyterhub-hub-login", f"jupyterhub-user-{hub.admin}"} <= {c["name"] for c in cookies}
    assert [c["name"] for c in cookies if not c["secure"]] == []
    context.close()

    # The renewal, by itself: a new certificate from pebble, and no one's server, nor the hub or
    # the proxy, restarted.
    before = {name: started_at(name) for name in (hub.container_name(hub.admin), f"{PREFIX}-hub", f"{PREFIX}-proxy", HTTPS)}
    wait_until(lambda: served_certificate(root)["serialNumber"] != first["serialNumber"], VALIDITY + 60, "the renewal")
    renewed = served_certificate(root)
    assert ssl.cert_time_to_seconds(renewed["notAfter"]) > ssl.cert_time_to_seconds(first["notAfter"])
    assert {name: started_at(name) for name in before} == before
    out, error = hub.run_code(hub.admin, "print(6 * 7)")
    assert (out.strip(), error) == ("42", None)

    # make down / make up: the certificate and the account are kept (the https volume), none asked for.
    hub.stop_server(hub.admin)
    orders = docker("logs", PEBBLE).stdout.count("Issued certificate serial")
    down = hub.script("down")
    assert docker("volume", "inspect", HTTPS, check=False).returncode == 0, down.stderr
    hub.restart(**settings(authority))
    assert served_certificate(root)["serialNumber"] == renewed["serialNumber"]
    assert docker("logs", PEBBLE).stdout.count("Issued certificate serial") == orders

    # make backup archives the certificate and the ACME account with the homes.
    backups = authority["root"].parent / "backups"
    hub.script(["backup", str(backups)])
    archive = backups / f"{HTTPS}.tar.gz"
    assert oct(archive.stat().st_mode & 0o777) == "0o600"  # private keys: root's alone
    archived = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert f"/{DOMAIN}/{DOMAIN}.crt" in archived and f"/{DOMAIN}/{DOMAIN}.key" in archived and "/acme/" in archived, archived


def test_the_hub_sees_the_browsers_address_through_the_front_door_not_a_forged_one(hub, authority, browser):
    """Caddy sets X-Forwarded-For to the browser's address; the hub's per-address limits (sign-ups,
    failed logins) count that one, never Caddy's own (a whole class as one address) nor a forged one."""
    hub.restart(**settings(authority))
    gateway = json.loads(docker("network", "inspect", PREFIX).stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    caddy = address_on_class_network(HTTPS)
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9", "Forwarded": "for=203.0.113.9"}
    context = browser.new_context(extra_http_headers=forged)
    page = context.new_page()
    for attempt in range(3):  # a sign-up of another name where chromium dropped the page (network_changed)
        name = f"front-door{attempt or ''}"
        page.goto(f"https://{DOMAIN}/hub/signup")
        page.fill("#username_input", name)
        page.fill("#password_input", "a-long-password")
        page.fill("#password_confirmation_input", "a-long-password")
        page.click("#signup_submit")
        page.wait_for_load_state()
        if not network_changed(page):
            break
    expect(page.locator(".alert")).to_contain_text("sent to the admin")
    context.close()
    recorded = [json.loads(line) for line in
                docker("exec", f"{PREFIX}-hub", "cat", "/srv/jupyterhub/signups.jsonl").stdout.splitlines()]
    addresses = [entry["address"] for entry in recorded if entry["username"] == name]
    # From this machine through Docker's published port, the browser's address is the class network's gateway.
    assert addresses == [gateway] and gateway not in (caddy, "203.0.113.9"), (addresses, gateway, caddy)


def test_an_outsider_cannot_make_make_up_give_up_on_the_certificate(hub, authority):
    """While make up waits for a certificate (here from an authority that takes its time, as a real
    one may), anyone on the internet can make Caddy log an error naming a Host of their choosing (a
    challenge's path on port 80): make up neither stops for it nor repeats it to the organizer."""
    domain = "attacked.dlab.test"
    planted = f"urn:ietf:params:acme:error:rateLimited:{domain}"
    done = threading.Event()

    def flood():
        while not done.is_set():
            try:
                with socket.create_connection(("127.0.0.1", 80), timeout=2) as raw:
                    raw.sendall(f"GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: {planted}\r\n"
                                "Connection: close\r\n\r\n".encode())
                    raw.recv(1024)
            except OSError:
                pass  # Caddy not up yet
            done.wait(0.2)

    attacker = threading.Thread(target=flood)
    attacker.start()
    try:
        out = hub.script("up", settings(authority, DLAB_DOMAIN=domain, DLAB_ACME_DIRECTORY=f"https://{PEBBLE_SLOW}:14000/dir"),
                         check=False, timeout=400)
    finally:
        done.set()
        attacker.join()
    assert out.returncode == 0 and f"the certificate of {domain} is from Pebble" in out.stderr, out.stderr
    assert "rate limit" not in out.stderr
    assert planted in docker("logs", HTTPS).stderr  # the attack did reach Caddy's log
    hub.settings = None


@pytest.fixture
def port_80_taken(hub, authority):
    hub.restart()  # no Caddy of the class's own holds the ports
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 80))
        listener.listen()
        yield


def no_plain_http_outside(hub):
    """After a failed make up with DLAB_DOMAIN: nothing on 80 and 443, the class port on loopback only."""
    assert docker("ps", "-q", "--filter", f"name=^{HTTPS}$").stdout.strip() == ""
    published = docker("port", f"{PREFIX}-proxy", "8000").stdout.split()
    assert published and all(line.startswith("127.0.0.1:") for line in published), published
    assert hub.request("GET", f"http://127.0.0.1:{hub.port}/hub/api/", timeout=10).ok  # the class itself runs on


def test_ports_80_or_443_taken_stop_make_up_before_anything_is_touched(hub, authority, port_80_taken):
    # Without DLAB_DOMAIN the class is plain HTTP, and make up says in one line how to turn HTTPS on.
    assert "plain HTTP: for HTTPS set DLAB_DOMAIN" in hub.script("up", {}).stderr
    out = hub.script("up", settings(authority), check=False)
    assert out.returncode == 1 and "port 80 is taken by another program" in out.stderr, out.stderr
    assert "ss -ltnp" in out.stderr
    assert hub.request("GET", f"{hub.url}/hub/api/", timeout=10).ok  # the running class untouched


@pytest.mark.parametrize("case, more, said, to_do", [
    ("the authority does not answer", {"DLAB_ACME_DIRECTORY": f"https://{PEBBLE}:14999/dir"},
     "cannot reach the ACME authority", "check DLAB_ACME_DIRECTORY"),
    ("the name does not resolve", {"DLAB_ACME_DIRECTORY": f"https://{PEBBLE_WITH_DNS}:14000/dir",
                                   "DLAB_DOMAIN": "nowhere.dlab.test"},
     "finds no address for nowhere.dlab.test in DNS", "make an A record (and AAAA, for IPv6) for nowhere.dlab.test"),
    ("the name resolves elsewhere", {"DLAB_ACME_DIRECTORY": f"https://{PEBBLE_WITH_DNS}:14000/dir",
                                     "DLAB_DOMAIN": "elsewhere.dlab.test"},
     "could not reach this server as elsewhere.dlab.test", "elsewhere.dlab.test's DNS record (A, and AAAA if it has one) must "
     "name this machine's public address"),
])
def test_a_certificate_that_cannot_be_had_stops_https_with_what_to_do(hub, authority, case, more, said, to_do):
    if case == "the name resolves elsewhere":  # to the DNS server's own container, where no port 80 answers
        requests.post(f"http://{authority['dns']}:8055/add-a", json={"host": "elsewhere.dlab.test",
                                                                    "addresses": [authority["dns"]]}, timeout=10).raise_for_status()
    out = hub.script("up", settings(authority, **more), check=False, timeout=400)
    assert out.returncode == 1, out.stderr
    assert said in out.stderr and f"to do: {to_do}" in out.stderr.replace("`", ""), out.stderr
    assert "never in plain HTTP outside" in out.stderr
    no_plain_http_outside(hub)
    hub.settings = None  # the hub runs with these settings now: the next restart makes its own
