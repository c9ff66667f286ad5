"""HTTPS with the organizer's certificate (here a self-signed one made for localhost): the hub's
proxy serves TLS on the class port, every cookie is Secure, kernels talk over wss://, and a wrong
certificate or key stops `make up` with a message before the hub is touched."""
import os
import ssl
import subprocess

import pytest
import requests

from conftest import docker
from hubstack import PREFIX


def make_certificate(folder, name):
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)  # readable by its owner only, as certbot leaves its keys
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return make_certificate(folder, "class"), make_certificate(folder, "other")


@pytest.fixture
def https_hub(hub, certificates):
    (cert, key), _ = certificates
    hub.restart(DLAB_SSL_CERT=str(cert), DLAB_SSL_KEY=str(key))
    yield hub
    hub.restart()


def test_the_class_is_served_over_https_with_secure_cookies(https_hub, certificates):
    hub = https_hub
    (cert, key), _ = certificates
    assert hub.url.startswith("https://") and f"https://localhost:{hub.port}" in hub.up_output
    served = ssl.get_server_certificate(("127.0.0.1", hub.port))
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(cert.read_text())
    with pytest.raises(requests.ConnectionError):  # no plain HTTP on the class port
        requests.get(f"http://127.0.0.1:{hub.port}/hub/login", timeout=10)
    assert docker("inspect", "-f", "{{.State.Health.Status}}", f"{PREFIX}-hub").stdout.strip() == "healthy"

    # The organizer logs in and opens JupyterLab: the hub's cookies and those of the single-user
    # server (set after the OAuth round trip through the hub) are all Secure.
    s = hub.session(hub.admin, hub.admin_password)
    if hub.server(hub.admin):  # left running by an earlier test (the pages' tests open the organizer's)
        hub.stop_server(hub.admin)
    hub.start_server(hub.admin)
    lab = s.get(f"{hub.user_url(hub.admin)}/lab", timeout=60)
    assert lab.ok and lab.url.startswith("https://") and "JupyterLab" in lab.text
    names = {cookie.name for cookie in s.cookies}
    assert {"jupyterhub-hub-login", f"jupyterhub-user-{hub.admin}"} <= names, names
    assert [c.name for c in s.cookies if not c.secure] == [], "cookies without the Secure flag"
    out, error = hub.run_code(hub.admin, "print(6 * 7)")  # over wss://
    assert (out.strip(), error) == ("42", None)
    hub.stop_server(hub.admin)


def test_the_key_is_kept_for_the_proxy_alone_and_never_logged(https_hub, certificates):
    (_, key), _ = certificates
    hub = https_hub
    listing = docker("exec", f"{PREFIX}-proxy", "stat", "-c", "%a %u", "/srv/proxy/ssl-key.pem").stdout
    assert listing.split() == ["600", "1001"]
    body = "".join(key.read_text().splitlines()[1:-1])
    proxy_log = docker("logs", f"{PREFIX}-proxy", check=False)
    assert body[:40] not in (hub.logs() + proxy_log.stdout + proxy_log.stderr).replace("\n", "")


@pytest.mark.parametrize("problem, message", [
    ("key of another certificate", "not a PEM certificate with its own private key"),
    ("no key", "DLAB_SSL_KEY is not"),
    ("missing file", "cannot read"),
])
def test_a_wrong_certificate_stops_make_up_with_a_message(hub, certificates, problem, message):
    (cert, key), (_, other_key) = certificates
    settings = {"DLAB_SSL_CERT": str(cert), "DLAB_SSL_KEY": {
        "key of another certificate": str(other_key), "no key": "", "missing file": "/nonexistent/key.pem"}[problem]}
    hub.restart()
    out = hub.script("up", settings, check=False)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    # The running class was not touched: still plain HTTP with the old settings.
    assert hub.request("GET", f"{hub.url}/hub/api/", timeout=10).ok
