"""The class server itself on the swarm test bed (issue 17): `make up` (scripts/hub.sh) on the
manager with DLAB_SWARM_SHARED set, so that the hub starts each student's server as a swarm service
(dlab_hub.DlabSwarmSpawner) on any ready node. Everything goes through the hub, as students and the
organizer meet it: sign-up with the class code, servers started from the hub's API, code run in
their kernels through the proxy, a hub restart, a GPU request that must wait, `make down`.

The hub and its proxy run on node 1 (the manager); this machine reaches the proxy over the test
bed's link (10.213.0.1 -> 10.213.0.11), as a browser would. Runs before test_swarm.py, whose last
test kills a node.
"""
import json
import os
import time

import pytest
import requests

from conftest import docker
from testbed import GPU_NODE, LOCAL_IMAGE, NAME, NO_HOMES_NODE, REGISTRY, SHARED, bed_script, swarm_push

from hubstack import HubStack, wait_until

CLASS = "dlabswhub"  # the class's prefix and network: services dlabswhub-u-<name>
CODE = "swarm-class-2026"
PASSWORD = "a-long-password-1"
STUDENTS = ["ada", "bo", "élise.b"]  # the last one's name is not ASCII and has a dot


class SwarmHub(HubStack):
    """The test hub (tests/hub/hubstack.py) run by the swarm's manager, its class on the swarm."""
    prefix = CLASS
    address = "10.213.0.11"  # node 1 on the test bed's link

    def __init__(self):
        self.docker_env = {**os.environ, "DOCKER_HOST": bed_script("host", "1").stdout.strip()}
        super().__init__()

    def env(self, settings):
        env = super().env({
            "DLAB_PREFIX": CLASS, "DLAB_NETWORK": CLASS, "DLAB_HUB_BIND": self.address, "DLAB_HOME_SIZE": "0",
            "DLAB_SWARM_SHARED": str(SHARED), "DLAB_SWARM_REGISTRY": REGISTRY,
            "DLAB_IMAGE": LOCAL_IMAGE, "DLAB_GPU_IMAGE": LOCAL_IMAGE, "DLAB_GPUS": "auto", "DLAB_CLASS_CODE": CODE,
            **settings})
        env["DOCKER_HOST"] = self.docker_env["DOCKER_HOST"]
        return env

    def manager(self, *args, check=True):
        return docker(*args, check=check, env=self.docker_env)

    def service(self, username):
        """docker service inspect of the student's service (None if there is none)."""
        ids = self.manager("service", "ls", "-q", "--filter", f"label=org.dlab.hub={CLASS}",
                           "--filter", f"label=org.dlab.user={username}").stdout.split()
        return json.loads(self.manager("service", "inspect", ids[0]).stdout)[0] if ids else None


@pytest.fixture(scope="module")
def class_hub(swarm):
    loaded = bed_script("load", "1", "dlab/hub:latest")  # the hub's image, built here, on the manager
    assert loaded.returncode == 0, loaded.stderr
    hub = SwarmHub()
    try:
        hub.restart()
        for name in STUDENTS:
            assert "account is ready" in hub.signup(name, PASSWORD, class_code=CODE)
            hub.session(name, PASSWORD)  # the first login makes the hub's user
        yield hub
    finally:
        down = hub.script("down", check=False)
        print(down.stdout, down.stderr)


def node_of(swarm, service):
    """(node number, container) where the student's service runs."""
    return swarm.running(service["Spec"]["Name"])


def test_make_up_on_a_manager_runs_the_class_on_the_swarm(class_hub, swarm):
    assert "on a Docker Swarm" in class_hub.logs()
    # the class network is an attachable overlay across the nodes, anchored on every ready node
    network = json.loads(class_hub.manager("network", "inspect", CLASS).stdout)[0]
    assert (network["Driver"], network["Scope"], network["Attachable"]) == ("overlay", "swarm", True)
    def anchored():
        tasks = class_hub.manager("service", "ps", f"{CLASS}-anchor", "--filter", "desired-state=running",
                                  "--format", "{{.Node}} {{.CurrentState}}").stdout.split("\n")
        return sorted(task.split()[0] for task in tasks if " Running" in task)
    assert wait_until(lambda: len(anchored()) == 3 and anchored(), 120, "the anchor on the ready nodes") == \
        [f"{NAME}-{n}" for n in (1, 2, 3)]
    # the class's folders on the shared file system, with the owners the hub and students need
    for folder, owner in (("homes", (0, 0, 0o755)), ("course", (1001, 100, 0o2775)), ("handin", (1001, 100, 0o2770)),
                          ("data", (1001, 100, 0o2775))):
        stat = (SHARED / folder).stat()
        assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777) == owner, folder


def test_make_swarm_push_and_make_up_say_what_is_missing(class_hub):
    no_registry = swarm_push(DLAB_SWARM_REGISTRY="")
    assert no_registry.returncode == 2 and "set DLAB_SWARM_REGISTRY in .env" in no_registry.stderr
    not_built = swarm_push(DLAB_IMAGE="dlab/not-built-here:latest")
    assert not_built.returncode == 1
    assert "dlab/not-built-here:latest is not built: run make build, then make swarm-push" in not_built.stderr
    # an image never pushed: make up stops before it touches the running class
    up = class_hub.script("up", {"DLAB_IMAGE": "dlab/not-built-here:latest"}, check=False)
    assert up.returncode == 1
    assert (f"{REGISTRY}/dlab/not-built-here:latest is not in the class's registry: run make build, then make swarm-push"
            in up.stderr), up.stderr
    assert class_hub.request("GET", class_hub.url + "/hub/api/", timeout=5).ok


def test_students_servers_start_on_the_nodes_and_run_code_through_the_hub(class_hub, swarm):
    nodes = {}
    for name in STUDENTS:
        class_hub.start_server(name, profile="cpu")
        service = class_hub.service(name)
        assert service is not None, f"{name} has no service"
        # the service's name is a DNS label made from the escaped user name
        assert service["Spec"]["Name"].startswith(f"{CLASS}-u-") and "." not in service["Spec"]["Name"]
        limits = service["Spec"]["TaskTemplate"]["Resources"]["Limits"]
        assert (limits["MemoryBytes"], limits["Pids"], limits["NanoCPUs"]) == (1536 * 1024**2, 700, int(1.5e9))
        nodes[name], _ = node_of(swarm, service)
    assert NO_HOMES_NODE not in nodes.values(), nodes
    assert set(nodes.values()) - {1}, f"every server is on the manager: {nodes}"
    for name in STUDENTS:
        # In the student's kernel, reached through the proxy on the manager, wherever it runs
        out, error = class_hub.run_code(name, (
            "import os, pathlib\n"
            "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
            "pathlib.Path('/home/jovyan/where.txt').write_text(os.uname().nodename)\n"
            "try:\n    open('/opt/planted', 'w')\nexcept OSError as e:\n    print('read-only', e.errno)\n"
            "print(os.getuid(), os.getgid(), status['NoNewPrivs'].strip(), status['CapEff'].strip(),\n"
            "      open('/sys/fs/cgroup/pids/pids.max').read().strip())\n"
            "print(os.path.exists('/var/run/docker.sock'), sorted(os.listdir('/srv')))"))
        assert error is None, error
        assert out.split("\n")[:3] == ["read-only 30", "1000 100 1 0000000000000000 700", "False ['course', 'data', 'handin', 'nbgrader']"], out
    # Their homes are on the shared file system, each the student's own and closed to the others
    homes = sorted((SHARED / "homes").glob("*/where.txt"))
    assert len(homes) == len(STUDENTS), homes
    for where in homes:
        folder = where.parent.stat()
        assert (folder.st_uid, folder.st_gid, folder.st_mode & 0o777) == (1000, 100, 0o700)
    # a student's hand-in folder is made by the hub on the shared file system
    assert {path.name for path in (SHARED / "handin").iterdir()} >= set(STUDENTS)


def test_a_hub_restart_leaves_the_servers_and_their_kernels_running(class_hub, swarm):
    name = STUDENTS[0]
    before = class_hub.service(name)
    token = class_hub.user_token(name)
    kernel = class_hub.new_kernel(name, token)
    assert class_hub.execute(name, kernel, "x = 42", token) == ("", None)
    class_hub.manager("restart", f"{CLASS}-hub")
    wait_until(lambda: class_hub.request("GET", class_hub.url + "/hub/api/", timeout=5).ok, 120, "the hub again")
    assert class_hub.server(name)["ready"]
    assert class_hub.execute(name, kernel, "print(x)", token) == ("42\n", None)
    after = class_hub.service(name)
    assert (after["ID"], after["Version"]) == (before["ID"], before["Version"])


def progress_messages(hub, name, until, timeout=120):
    """The start page's messages for name's server (the hub's event stream), until one contains `until`."""
    seen = []
    with requests.get(f"{hub.url}/hub/api/users/{name}/server/progress", stream=True, timeout=timeout,
                      headers={"Authorization": f"token {hub.admin_token}"}) as stream:
        deadline = time.monotonic() + timeout
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                seen.append(json.loads(line[5:]).get("message", ""))
                if until in seen[-1]:
                    return seen
            if time.monotonic() > deadline:
                break
    pytest.fail(f"no message with {until!r} for {name}: {seen}")


def test_a_gpu_request_waits_for_a_card_with_a_message_and_gets_it_when_one_is_free(class_hub, swarm):
    for name in ("gus", "hal"):
        assert "account is ready" in class_hub.signup(name, PASSWORD, class_code=CODE)
        class_hub.session(name, PASSWORD)
    class_hub.start_server("gus", profile="gpu")
    node, container = node_of(swarm, class_hub.service("gus"))
    assert node == GPU_NODE
    assert "DOCKER_RESOURCE_NVIDIA-GPU=GPU-fake-0" in container.attrs["Config"]["Env"]
    # the class has one card: hal's server waits, and the start page says why
    r = class_hub.api("POST", "/users/hal/server", json={"profile": "gpu"})
    assert r.status_code == 202, r.text
    said = progress_messages(class_hub, "hal", "Waiting for a GPU")
    assert "every GPU of the class is in use" in said[-1]
    assert not class_hub.server("hal")["ready"]
    class_hub.stop_server("gus")  # gus stops: the hub removes the service, and hal gets the card
    assert class_hub.service("gus") is None
    class_hub.wait_ready("hal")
    assert node_of(swarm, class_hub.service("hal"))[0] == GPU_NODE
    class_hub.stop_server("hal")


def test_idle_servers_are_culled_on_the_swarm(class_hub, swarm):
    class_hub.restart(DLAB_IDLE_TIMEOUT="20", DLAB_CULL_EVERY="5")  # a new hub; the servers go on meanwhile
    for name in STUDENTS:  # idle since the earlier tests
        wait_until(lambda: class_hub.server(name) is None, 180, f"{name}'s idle server to be culled")
        assert class_hub.service(name) is None
    assert len(list((SHARED / "homes").glob("*/where.txt"))) == len(STUDENTS)  # their files stay


def test_make_down_removes_the_class_services_and_keeps_the_homes(class_hub, swarm):
    class_hub.start_server(STUDENTS[1], profile="cpu")
    down = class_hub.script("down", check=False)
    assert down.returncode == 0, down.stderr
    assert class_hub.manager("service", "ls", "-q", "--filter", f"label=org.dlab.hub={CLASS}").stdout.split() == []
    assert class_hub.manager("network", "inspect", CLASS, check=False).returncode != 0
    assert len(list((SHARED / "homes").glob("*/where.txt"))) == len(STUDENTS)
