"""The class server end to end: the real hub image and compose.yaml on the real Docker engine,
accounts through the REST API and the sign-up page, students' servers and what runs in them."""
import json
import os

import requests

from conftest import ROOT, VERSION, docker, wait_for
from curriculum import LABS
from hubstack import PREFIX

HUB = f"{PREFIX}-hub"
PROXY = f"{PREFIX}-proxy"


def test_hub_runs_unprivileged_with_only_the_docker_socket(hub):
    info = json.loads(docker("inspect", HUB).stdout)[0]
    assert docker("exec", HUB, "id", "-u").stdout.strip() == "1001"
    assert info["HostConfig"]["Privileged"] is False
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    assert str(os.stat("/var/run/docker.sock").st_gid) in info["HostConfig"]["GroupAdd"]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert set(mounts) == {"/var/run/docker.sock", "/srv/jupyterhub", "/srv/proxy", "/srv/handin",
                           "/etc/jupyterhub/jupyterhub_config.d", "/srv/metrics", "/host/cgroup"}
    # The class page reads the host's cgroups (read-only); Prometheus' token lives in a volume of its own.
    assert mounts["/host/cgroup"]["Source"] == "/sys/fs/cgroup" and mounts["/host/cgroup"]["RW"] is False
    assert mounts["/srv/metrics"]["Name"] == f"{PREFIX}-metrics-token"
    assert mounts["/srv/jupyterhub"]["Name"] == f"{PREFIX}-hub-state"
    # The hand-in volume of earlier releases: the hub makes a student's folder there (DLAB_HANDIN_SIZE=0,
    # or to read one from before); its own files stay its own.
    assert mounts["/srv/handin"]["Name"] == f"{PREFIX}-handin"
    assert docker("exec", HUB, "stat", "-c", "%u %g %a", "/srv/handin").stdout.split() == ["1001", "100", "2770"]
    assert mounts["/srv/proxy"]["RW"] is False
    assert mounts["/etc/jupyterhub/jupyterhub_config.d"]["RW"] is False  # the organizer's own files (DLAB_HUB_CONFIG_DIR)
    assert not info["HostConfig"]["PortBindings"], "the hub, which holds the Docker socket, publishes a port"
    assert json.loads(docker("inspect", "-f", "{{json .State.Health.Status}}", HUB).stdout) == "healthy"


def test_the_container_facing_the_network_is_the_proxy_alone_with_no_socket_and_no_hub_state(hub):
    """The class port is published by the proxy's container, which has no Docker socket, none of the
    hub's state, no capability and no user but jupyterhub; it answers the class's pages."""
    info = json.loads(docker("inspect", PROXY).stdout)[0]
    assert list(info["HostConfig"]["PortBindings"]) == ["8000/tcp"]
    assert [m["Destination"] for m in info["Mounts"]] == ["/srv/proxy"]
    assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["GroupAdd"]
    assert docker("exec", PROXY, "id", "-u").stdout.strip() == "1001"
    assert docker("exec", PROXY, "test", "-e", "/var/run/docker.sock", check=False).returncode != 0
    assert docker("exec", PROXY, "ls", "/srv/jupyterhub").stdout.strip() == ""  # the image's empty folder
    assert json.loads(docker("inspect", "-f", "{{json .State.Health.Status}}", PROXY).stdout) == "healthy"
    assert requests.get(hub.url + "/hub/health", timeout=10).ok


def test_secrets_are_made_on_first_start_and_readable_only_by_the_hub(hub):
    listing = docker("exec", HUB, "stat", "-c", "%n %a %u", "/srv/jupyterhub/secrets", "/srv/proxy/proxy_token",
                     *[f"/srv/jupyterhub/secrets/{name}" for name in
                       ("cookie_secret", "crypt_key", "admin-password")]).stdout.split("\n")
    modes = dict((line.split()[0], line.split()[1:]) for line in listing if line)
    assert modes.pop("/srv/jupyterhub/secrets") == ["700", "1001"]
    for path, (mode, uid) in modes.items():
        assert (mode, uid) == ("600", "1001"), path
    secrets = [docker("exec", HUB, "cat", path).stdout.strip()
               for path in ("/srv/jupyterhub/secrets/cookie_secret", "/srv/proxy/proxy_token",
                            "/srv/jupyterhub/secrets/crypt_key")]
    assert all(len(s) == 64 and int(s, 16) for s in secrets) and len(set(secrets)) == 3


def test_make_up_prints_the_url_and_the_admins_first_password(hub):
    assert f"http://localhost:{hub.port}" in hub.up_output
    assert f"admin's first password: {hub.admin_password}" in hub.up_output
    assert len(hub.admin_password) >= 16


def test_login_needs_the_right_password(hub):
    for wrong in ("admin", "", hub.admin_password.upper()):
        assert not hub.try_login(hub.admin, wrong)[0], f"logged in with {wrong!r}"
    assert not hub.try_login("nobody", hub.admin_password)[0]
    assert hub.session(hub.admin, hub.admin_password).get(hub.url + "/hub/admin", timeout=10).ok


def test_signup_waits_for_the_organizers_approval(hub):
    message = hub.signup("alice", "correct-horse-battery")
    assert "sent to the admin" in message
    assert not hub.try_login("alice", "correct-horse-battery")[0], "an account nobody approved could log in"
    admin = hub.session(hub.admin, hub.admin_password)
    assert "alice" in admin.get(hub.url + "/hub/authorize", timeout=10).text
    hub.approve("alice", admin)
    assert hub.session("alice", "correct-horse-battery")


def test_signup_refuses_weak_passwords_and_taken_names(hub):
    assert "at least 8 characters" in hub.signup("bea", "short")
    assert "at least 8 characters" in hub.signup("bea", "password123")  # too common
    assert "already in use" in hub.signup(hub.admin, "another-long-password")


def test_admin_lists_users_and_starts_and_stops_servers(hub):
    assert hub.api("POST", "/users/carol").status_code == 201
    users = {u["name"] for u in hub.api("GET", "/users").json()}
    assert {hub.admin, "carol"} <= users
    hub.start_server("carol")
    assert hub.container("carol")["State"]["Running"]
    hub.stop_server("carol")
    assert hub.container("carol") is None, "the container must be removed on stop"


def test_student_container_runs_dlab_cpu_as_jovyan_with_limits_and_home(hub):
    hub.api("POST", "/users/dave")
    hub.start_server("dave")
    out, error = hub.run_code("dave", "import json, os, sys; print(os.getuid(), os.getgid(), sys.prefix);"
                                      "print(json.dumps(sorted(f for f in os.listdir(os.path.expanduser('~/labs')) if f.endswith('.ipynb'))))")
    assert error is None
    uid_line, labs_line = out.splitlines()
    assert uid_line == "1000 100 /opt/venv"
    assert json.loads(labs_line) == [f"{lab}.ipynb" for lab in LABS]  # every lab of the curriculum, in the home
    info = hub.container("dave")
    assert info["Config"]["Image"] == "dlab/cpu:latest"
    assert info["Name"] == f"/{PREFIX}.dave"
    host = info["HostConfig"]
    assert host["Memory"] == 1536 * 2**20
    assert host["CpuQuota"] / host["CpuPeriod"] == 1.5  # DockerSpawner's cpu_limit: a CFS quota
    assert host["PidsLimit"] == 700
    assert host["ShmSize"] == 256 * 2**20
    assert not host.get("DeviceRequests")
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    # The class server turns the image's periodic healthcheck off (the hub tracks its servers), but the
    # check itself works for jupyterhub-singleuser under the real hub, behind the firewall, run as
    # root with the few capabilities the class server leaves (docker-stacks' recipes, issue 16).
    assert info["Config"]["Healthcheck"]["Test"] == ["NONE"]
    wait_for(lambda: docker("exec", f"{PREFIX}.dave", "dlab-healthcheck", check=False).returncode == 0, 60,
             message="the image's healthcheck to pass in dave's container")
    assert list(info["NetworkSettings"]["Networks"]) == [PREFIX]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert set(mounts) == {"/home/jovyan", "/srv/data", "/srv/course", "/srv/handin", f"/srv/nbgrader/exchange/{PREFIX}",
                           f"/srv/nbgrader/exchange/{PREFIX}/inbound"}, "no Docker socket, nothing else"
    # The course folder read-only; the hand-in folder the student's own volume (each a file system
    # of its own size, like the home).
    assert mounts["/srv/course"]["Name"] == f"{PREFIX}-course" and not mounts["/srv/course"]["RW"]
    assert mounts["/srv/handin"]["Name"] == f"{PREFIX}-handin-dave" and mounts["/srv/handin"]["RW"]
    for volume in (f"{PREFIX}-course", f"{PREFIX}-handin-dave", f"{PREFIX}-home-dave"):
        device = json.loads(docker("volume", "inspect", volume).stdout)[0]["Options"]["device"]
        assert device.endswith(f"/dev/{volume}"), (volume, device)
    assert mounts["/home/jovyan"]["Name"] == f"{PREFIX}-home-dave" and mounts["/home/jovyan"]["RW"]
    assert mounts["/srv/data"]["Name"] == f"{PREFIX}-data" and not mounts["/srv/data"]["RW"]


def test_a_students_processes_have_no_capabilities_and_no_way_to_root(hub):
    if hub.server("dave") is None:
        hub.start_server("dave")
    out, error = hub.run_code("dave", (
        "import os, subprocess\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(status['CapEff'].strip(), status['NoNewPrivs'].strip(), os.path.exists('/var/run/docker.sock'))\n"
        "print(subprocess.run(['sudo', '-n', 'true'], capture_output=True).returncode)"))
    assert error is None
    caps, no_new_privs, socket = out.splitlines()[0].split()
    assert (caps, no_new_privs, socket) == ("0000000000000000", "1", "False")
    assert out.splitlines()[1] != "0", "sudo worked inside a student's container"


FORK_BOMB = """
import os, signal, time
children, stopped = [], 0
try:
    while len(children) < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as error:
    stopped = error.errno
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(len(children), stopped)
"""


def test_a_fork_bomb_stays_inside_its_container(hub):
    """The process limit stops it; the hub and another student's server go on answering."""
    hub.api("POST", "/users/hal")
    hub.start_server("hal")
    out, error = hub.run_code("hal", FORK_BOMB, timeout=180)
    assert error is None, error
    forked, errno = map(int, out.split())
    assert forked < 700 and errno == 11, out  # EAGAIN at DLAB_PIDS_LIMIT (700 in these tests)
    assert requests.get(f"{hub.url}/hub/api/", timeout=10).ok
    if hub.server("dave") is None:
        hub.start_server("dave")
    assert hub.run_code("dave", "print(1 + 1)") == ("2\n", None)
    hub.stop_server("hal")


def test_a_student_cannot_pick_an_image_that_is_not_offered(hub):
    hub.api("POST", "/users/gus")
    for options in ({"image": "dlab/hub:latest"}, {"profile": "../hub"}):
        r = hub.api("POST", "/users/gus/server", json=options)
        assert r.status_code == 400, (options, r.status_code, r.text)
        assert hub.container("gus") is None


def test_the_hub_api_refuses_requests_without_a_valid_token(hub):
    assert requests.get(f"{hub.url}/hub/api/users", timeout=10).status_code == 403
    r = requests.get(f"{hub.url}/hub/api/users", headers={"Authorization": "token not-a-token"}, timeout=10)
    assert r.status_code == 403
    student = hub.user_token("gus")
    assert hub.api("GET", "/users", token=student).status_code == 403, "a student listed every user"
    assert hub.api("POST", "/users/mallory", token=student).status_code == 403


def test_files_survive_a_server_stop_and_start(hub):
    hub.api("POST", "/users/erin")
    hub.start_server("erin")
    token = hub.user_token("erin")
    _, error = hub.run_code("erin", "open('/home/jovyan/notes.txt', 'w').write('kept')", token=token)
    assert error is None
    hub.stop_server("erin")
    assert hub.container("erin") is None
    assert docker("volume", "inspect", f"{PREFIX}-home-erin").returncode == 0
    hub.start_server("erin")
    out, error = hub.run_code("erin", "print(open('/home/jovyan/notes.txt').read())", token=token)
    assert (out.strip(), error) == ("kept", None)


def test_a_student_cannot_reach_another_students_server(hub):
    hub.api("POST", "/users/frank")
    frank = hub.user_token("frank")
    if hub.server("dave") is None:
        hub.start_server("dave")
    r = requests.get(f"{hub.url}/user/dave/api/contents", headers={"Authorization": f"token {frank}"},
                     timeout=30, allow_redirects=False)
    assert r.status_code == 403


def test_odd_usernames_get_their_own_container_and_home(hub):
    name = "zoë.o-neil"
    assert hub.api("POST", f"/users/{name}").status_code == 201
    hub.start_server(name)
    out, error = hub.run_code(name, "import os; print(os.environ['JUPYTERHUB_USER'])")
    assert (out.strip(), error) == (name, None)
    info = hub.container(name)
    home = next(m for m in info["Mounts"] if m["Destination"] == "/home/jovyan")["Name"]
    assert home.startswith(f"{PREFIX}-home-z") and home.isascii()
    hub.stop_server(name)


def test_hub_image_holds_its_lock_and_the_students_jupyterhub():
    from conftest import read_lock
    manifest = json.loads(docker("run", "--rm", "--entrypoint", "dlab-info", "dlab/hub:latest", "--json").stdout)
    locked = {**read_lock(ROOT / "images" / "base" / "bootstrap.lock"), **read_lock(ROOT / "images" / "hub" / "requirements.lock")}
    installed = manifest["python_packages"]
    for name, version in locked.items():
        assert installed.get(name) == version, name
    # Nothing else but the hub's own package and what Python seeds into every venv.
    assert set(installed) - set(locked) - {"pip", "setuptools"} == {"dlab-hub"}
    assert installed["dlab-hub"] == VERSION
    assert locked["jupyterhub"] == read_lock(ROOT / "images" / "base" / "requirements.lock")["jupyterhub"]
    proxy = docker("run", "--rm", "--entrypoint", "configurable-http-proxy", "dlab/hub:latest", "--version").stdout
    lock = json.loads((ROOT / "images" / "hub" / "package-lock.json").read_text())
    assert proxy.strip() == lock["packages"]["node_modules/configurable-http-proxy"]["version"]
