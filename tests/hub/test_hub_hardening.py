"""A curious student tries to break the class, and fails: each test performs the attack and fails if
it works. A name that is the hub's, wrong passwords from one address, a flood of sign-ups, writing
outside the home, filling the home, /tmp and the log."""
import json
import os
import subprocess

import pytest

from conftest import dlab_home, docker, wait_for
from classload import login_flood
from hubstack import HOMES_DIR, PREFIX, on_class_network, xsrf

HUB = f"{PREFIX}-hub"
CODE = "hardening-2026"
PASSWORD = "a-long-password-1"


def approved(hub, name):
    """An account made through the sign-up page with the class code (the hub runs with CODE)."""
    if hub.api("GET", f"/users/{name}").status_code == 404:
        message = hub.signup(name, PASSWORD, class_code=CODE)
        assert "account is ready" in message, message
        hub.session(name, PASSWORD)  # the first login makes the hub's user
    return name


def hub_running():
    return docker("inspect", "-f", "{{.State.Running}}", HUB).stdout.strip() == "true"


LOGIN_FROM_ELSEWHERE = """
import re, requests, sys
s = requests.Session()
page = s.get(url + '/hub/login', timeout=30)
token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
r = s.post(url + '/hub/login', data={{'username': {name!r}, 'password': {password!r}, '_xsrf': token}},
           timeout=60, allow_redirects=False)
print(r.status_code == 302 and 'jupyterhub-hub-login' in s.cookies)
"""


def test_a_student_named_like_the_hub_gets_a_server_and_the_hub_keeps_running(hub):
    """DockerSpawner named containers PREFIX-<user>: a student `hub` got the hub's own name, and the
    clean-up after the failed start stopped the hub."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    for name in ("hub", "hub-state", "proxy"):
        approved(hub, name)
        hub.start_server(name)
        assert hub_running(), f"a student named {name!r} stopped the hub"
        assert hub.container_name(name).startswith(f"{PREFIX}."), hub.container_name(name)
        out, error = hub.run_code(name, "import os; print(os.environ['JUPYTERHUB_USER'])")
        assert (out.strip(), error) == (name, None)
        hub.stop_server(name)
    assert hub_running() and hub.request("GET", hub.url + "/hub/health", timeout=10).ok


def test_the_spawner_never_stops_or_removes_a_container_that_is_not_the_students(hub):
    """A container that merely has a student's name (made by hand, another tool, an old release)
    is left alone: the student is told what is wrong, the container keeps running."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    approved(hub, "squat")
    decoy = f"{PREFIX}.squat"
    docker("rm", "-f", decoy, check=False)
    docker("run", "-d", "--name", decoy, "--network", "none", "--entrypoint", "sleep", "dlab/hub:latest", "600")
    try:
        hub.api("POST", "/users/squat/server")  # refused at once, or a start that fails

        def failed():
            server = hub.server("squat")
            return server is None or (not server["pending"] and not server["ready"])
        wait_for(failed, 120, interval=1, message="squat's start to fail")
        assert "exists and is not this server" in hub.logs()
        assert docker("inspect", "-f", "{{.State.Running}}", decoy).stdout.strip() == "true", \
            "the spawner stopped a container that was not the student's"
    finally:
        docker("rm", "-f", decoy, check=False)
    hub.start_server("squat")  # with the name free again, the student's own server starts
    assert hub.container("squat")["Config"]["Labels"]["org.dlab.user"] == "squat"
    hub.stop_server("squat")


PREVIOUS_RELEASE = """
name: {prefix}
services:
  hub:  # a stand-in for the previous release's hub: it published the class port itself
    image: dlab/hub:latest
    container_name: {prefix}-hub
    entrypoint: ["sleep", "600"]
    ports: ["127.0.0.1:{port}:8000"]
    networks: [dlab]
    volumes: [hub-state:/srv/jupyterhub]
networks:
  dlab: {{name: {prefix}}}
volumes:
  hub-state: {{name: {prefix}-hub-state}}
"""


def test_an_upgrade_from_the_previous_release_keeps_every_home_and_account(hub, tmp_path):
    """The previous release named containers PREFIX-<user> and let the hub publish the class port;
    homes keep their names (PREFIX-home-<user>), and `make up` moves the port to the proxy."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    approved(hub, "olga")
    if hub.server("olga"):
        hub.stop_server("olga")
    home = f"{PREFIX}-home-olga"
    docker("volume", "rm", "-f", home, check=False)
    # The earlier release's server wrote this home (dlab/cpu as jovyan, as its containers did).
    docker("run", "--rm", "-v", f"{home}:/home/jovyan", "--entrypoint", "bash", "dlab/cpu:latest", "-c",
           "mkdir -p /home/jovyan/work && echo 'my thesis' > /home/jovyan/work/thesis.txt")
    hub.script("down")
    (tmp_path / "compose.yaml").write_text(PREVIOUS_RELEASE.format(prefix=PREFIX, port=hub.port))
    subprocess.run(["docker", "compose", "-f", str(tmp_path / "compose.yaml"), "up", "-d"], check=True,
                   capture_output=True, timeout=120)
    hub.restart(DLAB_CLASS_CODE=CODE)
    assert "the class port moves from the hub's container to the proxy's" in hub.up_output
    hub.session("olga", PASSWORD)  # the account is there
    hub.start_server("olga")
    # The plain volume's files moved into a home of its own, of DLAB_HOME_SIZE (128M in the tests).
    out, error = hub.run_code("olga", "import os, shutil\nprint(open('/home/jovyan/work/thesis.txt').read().strip(), "
                                      "os.stat('/home/jovyan/work/thesis.txt').st_uid, shutil.disk_usage('/home/jovyan').total >> 20)")
    thesis, owner, size = out.split("\n")[0].rsplit(" ", 2)
    assert (thesis, owner, error) == ("my thesis", "1000", None) and 100 < int(size) <= 128, out
    options = json.loads(docker("volume", "inspect", home).stdout)[0]["Options"]
    assert options["type"] == "ext4" and options["device"].endswith(f"/dev/{home}"), options
    hub.stop_server("olga")


def test_nothing_outside_the_home_is_writable_and_pip_installs_into_the_home(hub):
    """The environment that runs the student's Jupyter server is read-only to the student (nothing
    planted there is served); the container's own layer cannot grow; pip install still works, into
    the home, and the package is there after a restart."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    approved(hub, "pia")
    hub.start_server("pia")
    token = hub.user_token("pia")
    out, error = hub.run_code("pia", """
import os, pathlib, jupyter_server
for folder in (pathlib.Path(jupyter_server.__file__).parent / 'static', '/opt/venv/bin', '/etc/jupyter', '/var/tmp', '/'):
    try:
        pathlib.Path(folder, 'planted.html').write_text('<script>alert(1)</script>')
        print('WROTE', folder)
    except OSError as error:
        print('refused', folder, error.strerror)
""", token)
    assert error is None and "WROTE" not in out and out.count("Read-only file system") == 5, out
    r = hub.request("GET", f"{hub.user_url('pia')}/static/planted.html", timeout=30)
    assert r.status_code == 404

    # A package from a wheel (no network needed), installed the way a student would.
    out, error = hub.run_code("pia", r"""
import base64, hashlib, subprocess, sys, zipfile
def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{name},sha256={digest},{len(data)}'
files = {'dlabdemo.py': b'ANSWER = 42\n',
         'dlabdemo-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: dlabdemo\nVersion: 1.0\n',
         'dlabdemo-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\nGenerator: dlab-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
wheel = '/tmp/dlabdemo-1.0-py3-none-any.whl'
with zipfile.ZipFile(wheel, 'w') as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr('dlabdemo-1.0.dist-info/RECORD', '\n'.join([record_line(n, d) for n, d in files.items()]
                                                       + ['dlabdemo-1.0.dist-info/RECORD,,']) + '\n')
done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', wheel], capture_output=True, text=True)
print(done.returncode, done.stdout[-300:], done.stderr[-500:])
""", token)
    assert error is None and out.startswith("0 "), out
    hub.stop_server("pia")
    hub.start_server("pia")
    out, error = hub.run_code("pia", "import dlabdemo; print(dlabdemo.ANSWER, dlabdemo.__file__)")
    assert error is None and out.split() == ["42", "/home/jovyan/.local/lib/python3.11/site-packages/dlabdemo.py"], out
    hub.stop_server("pia")


def test_a_student_filling_home_tmp_and_the_log_stops_at_the_limits_while_the_class_goes_on(hub):
    hub.restart(DLAB_CLASS_CODE=CODE)
    for name in ("fill", "calm"):
        approved(hub, name)
        if not hub.server(name):
            hub.start_server(name)
    out, error = hub.run_code("fill", """
import os
chunk = b'x' * 2**20
for path in ('/tmp/big', '/home/jovyan/big'):
    written = 0
    try:
        with open(path, 'wb') as f:
            for _ in range(400):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as error:
        print(written, error.strerror)
# the container's log: the kernel's own stdout (ipykernel keeps a copy of it), 25 MB
import sys
log = sys.stdout._original_stdstream_copy
for _ in range(25):
    os.write(log, b'y' * (2**20 - 1) + b'\\n')
os.remove('/tmp/big')
""", timeout=300)
    assert error is None
    (tmp_written, tmp_message), (home_written, home_message) = (line.split(" ", 1) for line in out.strip().split("\n"))
    # DLAB_TMP_SIZE=64m and DLAB_HOME_SIZE=128M in the tests
    assert int(tmp_written) <= 64 and tmp_message == "No space left on device", out
    assert 64 < int(home_written) <= 128 and home_message == "No space left on device", out
    info = hub.container("fill")
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    log_config = info["HostConfig"]["LogConfig"]
    assert log_config["Type"] == "json-file" and log_config["Config"] == {"max-size": "10m", "max-file": "3"}
    assert os.path.exists(info["LogPath"] + ".1"), "25 MB of output did not reach the container's log"
    assert os.path.getsize(info["LogPath"]) <= 11 * 2**20, "the container's log grew past its rotation size"
    hub_log = json.loads(docker("inspect", HUB).stdout)[0]["HostConfig"]["LogConfig"]
    assert hub_log["Config"] == {"max-size": "10m", "max-file": "3"}
    # Meanwhile a classmate saves a file, and the hub writes to its database (a new account).
    out, error = hub.run_code("calm", "open('/home/jovyan/saved.txt', 'w').write('ok'); print(open('/home/jovyan/saved.txt').read())")
    assert (out.strip(), error) == ("ok", None)
    assert hub.request("GET", hub.url + "/hub/health", timeout=10).ok
    approved(hub, "after-the-flood")
    hub.stop_server("fill")  # (a full home still starts: test_hub_input.py)


def test_after_a_reboot_each_student_gets_their_own_home_back(hub):
    """A reboot detaches every home's loop device, and the next attach numbers them anew: a link
    left from before could point at a classmate's home. The hub attaches each home again before
    its start, and forgets the links of an earlier boot first."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    for name in ("rita", "sam"):
        approved(hub, name)
        if not hub.server(name):
            hub.start_server(name)
        out, error = hub.run_code(name, f"open('/home/jovyan/whose.txt', 'w').write('{name}'); print('ok')")
        assert (out.strip(), error) == ("ok", None)
        hub.stop_server(name)
    rita, sam = f"{PREFIX}-home-rita", f"{PREFIX}-home-sam"
    # The reboot: rita's device gone, her link left pointing at the device sam's home is on.
    dlab_home(HOMES_DIR, f"losetup --detach $(readlink /homes/dev/{rita}) && "
              f"ln -sfn $(readlink /homes/dev/{sam}) /homes/dev/{rita} && echo an-earlier-boot > /homes/dev/.boot")
    hub.start_server("rita")
    out, error = hub.run_code("rita", "print(open('/home/jovyan/whose.txt').read())")
    assert (out.strip(), error) == ("rita", None)
    hub.stop_server("rita")


def test_wrong_passwords_lock_out_the_guessers_address_never_the_organizer_elsewhere(hub):
    """Five wrong passwords for the organizer's name, from this machine's address, with a forged
    X-Forwarded-For and X-Real-Ip naming another: that address waits a minute, even with the right
    password; the organizer logging in from another address (a container on the class network) is
    not locked out."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    organizer_address = on_class_network("import socket; print(socket.gethostbyname(socket.gethostname()))")
    for _ in range(6):
        s = hub.new_session()
        s.headers.update({"X-Forwarded-For": organizer_address.strip(), "X-Real-Ip": organizer_address.strip()})
        page = s.get(hub.url + "/hub/login", timeout=30)
        r = s.post(hub.url + "/hub/login", timeout=60,
                   data={"username": hub.admin, "password": "guess", "_xsrf": xsrf(page.text)})
        assert r.status_code == 200 and "Invalid username or password" in r.text or "Too many" in r.text, r.text[:300]
    s = hub.new_session()
    page = s.get(hub.url + "/hub/login", timeout=30)
    r = s.post(hub.url + "/hub/login", data={"username": hub.admin, "password": hub.admin_password,
                                             "_xsrf": xsrf(page.text)}, timeout=60, allow_redirects=False)
    assert r.status_code != 302 and "Too many failed logins" in r.text, "the guesser's address was not stopped"
    out = on_class_network(LOGIN_FROM_ELSEWHERE.format(name=hub.admin, password=hub.admin_password))
    assert out.strip() == "True", "the organizer, at another address, was locked out by someone else's guesses"
    hub.restart(DLAB_CLASS_CODE=CODE, DLAB_SIGNUPS_PER_HOUR="3")  # (a restart also ends the lock-out)


def test_sign_ups_are_limited_per_address(hub):
    """A leaked class code cannot make accounts without end: past DLAB_SIGNUPS_PER_HOUR from one
    address, sign-ups are refused with a message; another address can still sign up."""
    hub.restart(DLAB_CLASS_CODE=CODE, DLAB_SIGNUPS_PER_HOUR="3")
    answers = [hub.signup(f"leak{i}", PASSWORD, class_code=CODE) for i in range(5)]
    assert all("account is ready" in a for a in answers[:3]), answers
    assert all("Too many sign-ups from your network" in a for a in answers[3:]), answers
    assert hub.api("GET", "/users/leak4").status_code == 404
    out = on_class_network(f"""
import re, requests
s = requests.Session()
page = s.get(url + '/hub/signup', timeout=30)
token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
r = s.post(url + '/hub/signup', timeout=60, data={{'username': 'elsewhere', 'signup_password': {PASSWORD!r},
           'signup_password_confirmation': {PASSWORD!r}, 'class_code': {CODE!r}, '_xsrf': token}})
print('account is ready' in r.text)
""")
    assert out.strip() == "True"


@pytest.mark.alone
def test_a_flood_of_wrong_passwords_does_not_stall_the_class(hub):
    """20 clients send wrong passwords in a loop for 20 real accounts (each a bcrypt check until its
    address is locked out for that name); meanwhile students log in and start servers, and the hub's
    health endpoint answers every probe within its timeout. bench measures the latencies."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    for name in ("during1", "during2"):
        approved(hub, name)
        if hub.server(name):
            hub.stop_server(name)
    result = login_flood(hub, [approved(hub, f"target{i}") for i in range(20)], seconds=30,
                         during=lambda: [hub.session(n, PASSWORD) and hub.start_server(n) for n in ("during1", "during2")])
    assert result["probe_failures"] == 0, result
    assert result["guesses"] >= 100, result  # the flood really ran
    for name in ("during1", "during2"):
        out, error = hub.run_code(name, "print(6 * 7)")
        assert (out.strip(), error) == ("42", None)
        hub.stop_server(name)


def test_the_server_limit_follows_the_machines_memory_by_default(hub):
    """A leaked class code cannot start servers until the machine runs out of memory: with no
    DLAB_MAX_SERVERS, the hub allows one server per 512 MiB beyond 2 GiB."""
    hub.restart(DLAB_CLASS_CODE=CODE)
    assert "DLAB_MAX_SERVERS" not in hub.settings
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    expected = max(1, (total - 2 * 1024**3) // (512 * 1024**2))
    assert f"at most {expected} servers at once (DLAB_MAX_SERVERS)" in hub.logs()

