"""Bad input gets a clear message and harms no one: odd usernames, empty and huge fields, a
malformed .env, a missing image, no Docker engine, a disk too full to start a class."""
import os
import socket
import subprocess

import pytest
import requests
from conftest import ROOT
from hubstack import PREFIX, xsrf

RULE = "Choose a username of 1 to 32 letters, digits, dots, dashes or underscores"
CODE = "deep-learning-2026"
PASSWORD = "a-long-password-1"


@pytest.fixture
def class_hub(hub):
    """The test hub with a class code, and a student (vera) whose server runs throughout: none of
    the bad input below may disturb her."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    if hub.api("GET", "/users/vera").status_code == 404:
        hub.api("POST", "/users/vera")
    if hub.server("vera") is None:
        hub.start_server("vera")
    yield hub
    assert hub.run_code("vera", "print('still here')") == ("still here\n", None), "another student was affected"


@pytest.mark.parametrize("name", ["ann lee", "a/b", "..", ".hidden", "_x", "x" * 33, "bob,eve",
                                  "<script>alert(1)</script>", "tab\tname", " "])
def test_a_username_that_cannot_be_used_gets_the_rule(class_hub, name):
    assert class_hub.signup(name, PASSWORD, class_code=CODE).startswith(RULE)
    ok, _ = class_hub.try_login(name, PASSWORD)
    assert not ok


def test_capitals_and_unicode_make_one_account_each(class_hub):
    hub = class_hub
    assert "account is ready" in hub.signup("Wanda", PASSWORD, class_code=CODE)
    assert "already in use" in hub.signup("wANDA", "another-password-2", class_code=CODE)
    for spelling in ("Wanda", "wanda", "WANDA"):  # JupyterHub lowercases: one account
        assert hub.try_login(spelling, PASSWORD)[0], spelling
    assert not hub.try_login("wanda", "another-password-2")[0], "the second sign-up changed the password"
    assert "account is ready" in hub.signup("Zoë-Ωmega", PASSWORD, class_code=CODE)
    assert hub.try_login("zoë-ωmega", PASSWORD)[0]
    assert "account is ready" in hub.signup("w" * 32, PASSWORD, class_code=CODE)  # the longest allowed
    s = hub.session("w" * 32, PASSWORD)
    hub.start_server("w" * 32)
    lab = s.get(f"{hub.user_url('w' * 32)}/lab", timeout=60)
    assert lab.ok and "JupyterLab" in lab.text
    hub.stop_server("w" * 32)


def test_empty_and_huge_fields_get_a_message_not_an_error(class_hub):
    hub = class_hub
    huge = "x" * 200_000  # under the 256 KB bound on a request (a larger one is answered 413: test_hub_doors)
    assert hub.signup("xena", "", class_code=CODE) == "Choose a password of at least 8 characters."
    assert hub.signup("xena", "é" * 40, class_code=CODE).startswith("Choose a password of at most 72 bytes")
    assert hub.signup(huge, PASSWORD, class_code=CODE).startswith(RULE)
    assert "not right" in hub.signup("xena", PASSWORD, class_code=huge)
    assert "not right" in hub.signup("xena", PASSWORD, class_code="")
    assert hub.api("GET", "/users/xena").status_code == 404, "a refused sign-up made a user"
    # The login form: huge and empty fields are a failed login (the form again), never a 5xx.
    for username, password in (("vera", huge), (huge, PASSWORD), ("", ""), ("vera", "é" * 40)):
        s = hub.new_session()
        page = s.get(hub.url + "/hub/login", timeout=10)
        r = s.post(hub.url + "/hub/login", data={"username": username, "password": password,
                                                 "_xsrf": xsrf(page.text)}, timeout=60, allow_redirects=False)
        assert r.status_code < 500 and "jupyterhub-hub-login" not in s.cookies, (username[:10], r.status_code)
    # The spawn options: a huge profile is refused with a short message.
    hub.api("POST", "/users/yuri")
    r = hub.api("POST", "/users/yuri/server", json={"profile": huge})
    assert r.status_code == 400 and len(r.text) < 300 and "choose 'cpu'" in r.text
    # The REST API applies the same rule to names.
    assert hub.api("POST", "/users/" + "y" * 40).status_code == 400


def test_approval_and_deletion_need_the_organizers_post_not_a_link(hub):
    """NativeAuthenticator approved (/hub/authorize/NAME) and deleted (/hub/discard/NAME) accounts on
    a GET, so any link or image the organizer's browser loaded could do either. Browsers send no
    Sec-Fetch-* header over plain HTTP, so none is sent here: a GET must only show a button, and a
    POST must carry the page's XSRF token."""
    hub.restart()
    assert "sent to the admin" in hub.signup("mallory", PASSWORD)
    assert "sent to the admin" in hub.signup("mallet", PASSWORD)
    admin = hub.session(hub.admin, hub.admin_password)
    admin.headers.pop("X-XSRFToken")  # as a page on another site would: no token to echo
    for path in ("/hub/authorize/mallory", "/hub/discard/mallet"):
        page = admin.get(hub.url + path, timeout=30, allow_redirects=False)
        assert page.status_code == 200 and 'method="post"' in page.text, path  # a button, nothing done
        forged = admin.post(hub.url + path, timeout=30, allow_redirects=False)  # a form on another site
        assert forged.status_code == 403, f"{path}: a POST without the XSRF token got {forged.status_code}"
    assert not hub.try_login("mallory", PASSWORD)[0], "a link or a forged form approved an account"
    listing = admin.get(hub.url + "/hub/authorize", timeout=30).text
    assert "mallet" in listing, "a link or a forged form deleted an account"
    assert listing.count('method="post"') >= 3 and 'href="/hub/authorize/' not in listing  # buttons, no links
    # The organizer's own buttons work.
    hub.approve("mallory", admin)
    assert hub.try_login("mallory", PASSWORD)[0]
    page = admin.get(hub.url + "/hub/discard/mallet", timeout=30)
    admin.post(hub.url + "/hub/discard/mallet", data={"_xsrf": xsrf(page.text)}, timeout=30).raise_for_status()
    assert "mallet" not in admin.get(hub.url + "/hub/authorize", timeout=30).text


@pytest.mark.parametrize("env_text, message", [
    ("DLAB_MEM_LIMIT=4G\nthis line is not a setting\n", "line 2 is not NAME=value: this line is not a setting"),
    ("DLAB_CLASS_CODE=deep learning; touch /tmp/dlab-pwned\nDLAB_ADMIN=Dr Who\n", "DLAB_ADMIN='dr who'"),
    ("DLAB_PREFIX=My Class\n", "DLAB_PREFIX='My Class' is not small letters"),
])
def test_a_malformed_env_file_stops_make_up_with_a_message(hub, tmp_path, env_text, message):
    hub.restart()
    env_file = tmp_path / ".env"
    env_file.write_text(env_text)
    env = hub.env({"DLAB_ENV_FILE": str(env_file)})
    for line in env_text.splitlines():  # the file's settings must count, not the test hub's
        env.pop(line.split("=")[0], None)
    out = subprocess.run(["scripts/hub.sh", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and message.lower() in out.stderr.lower(), out.stderr
    assert not os.path.exists("/tmp/dlab-pwned"), ".env was run as shell code"
    assert hub.request("GET", f"{hub.url}/hub/api/", timeout=10).ok  # caught before the running class is touched
    hub.settings = None
    hub.restart()


def test_a_missing_image_or_a_full_disk_stops_make_up_with_what_to_do(hub):
    hub.restart()
    out = hub.script("up", {"DLAB_IMAGE": "dlab/not-built:latest"}, check=False)
    assert out.returncode == 1 and "dlab/not-built:latest is not built: run `make build`" in out.stderr
    out = hub.script("up", {"DLAB_MIN_FREE_GB": "100000000"}, check=False)
    assert out.returncode == 1 and "GB free on" in out.stderr and "docker system df" in out.stderr, out.stderr
    assert hub.request("GET", f"{hub.url}/hub/api/", timeout=10).ok, "the running class was stopped"


def hidden_docker_socket(replacement):
    """Run scripts/hub.sh up in a mount namespace where /var/run/docker.sock is REPLACEMENT."""
    if os.geteuid() != 0:
        pytest.skip("needs root (unshare --mount) to hide the Docker socket from one command")
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount --bind {replacement} /var/run/docker.sock && exec scripts/hub.sh up"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DLAB_ENV_FILE": "/dev/null", "DLAB_PREFIX": PREFIX})


def test_no_docker_engine_gets_a_message_that_says_what_to_do(hub, tmp_path):
    out = hidden_docker_socket("/dev/null")  # no socket at all
    assert out.returncode == 1 and "no Docker engine at /var/run/docker.sock: run `make docker`" in out.stderr
    dead = tmp_path / "dead.sock"  # a socket nobody answers on: an engine that is not running
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))
        out = hidden_docker_socket(dead)
    assert out.returncode == 1 and "the Docker engine does not answer" in out.stderr, out.stderr
    assert requests.get(f"{hub.url}/hub/api/", timeout=10, verify=hub.verify).ok


FILL = """
with open('big.bin', 'wb') as f:
    try:
        while True:
            f.write(b'0' * 65536)
            f.flush()
    except OSError as error:
        print(error.errno)
"""


def test_a_full_home_still_starts_and_other_students_are_unaffected(class_hub):
    """ursula fills her home (DLAB_HOME_SIZE: 128M in the tests) to the last byte and restarts
    her server: it starts (the labs are not copied, with a warning), she frees space, and vera
    (class_hub) notices nothing."""
    hub = class_hub
    hub.api("POST", "/users/ursula")
    hub.start_server("ursula")
    mounts = {m["Destination"]: m.get("Name") for m in hub.container("ursula")["Mounts"]}
    assert mounts["/home/jovyan"] == f"{PREFIX}-home-ursula"
    out, _ = hub.run_code("ursula", FILL)
    assert out.strip() == "28"  # ENOSPC
    hub.stop_server("ursula")
    hub.start_server("ursula")
    out, error = hub.run_code("ursula", "import os, shutil\nprint(shutil.disk_usage('.').free < 1 << 20)\n"
                                        "os.remove('big.bin')\nprint(shutil.disk_usage('.').free > 32 << 20)")
    assert (out.split(), error) == (["True", "True"], None)
    hub.stop_server("ursula")
