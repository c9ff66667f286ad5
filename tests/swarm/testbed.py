"""The swarm test bed (tests/swarm/testbed.sh) as the swarm tests use it: four engines in network
namespaces of their own, one manager, a registry on it, a folder they share (the organizer's NFS),
node 3 with a made-up GPU, node 4 as a server fresh from its installation (no no-new-privileges,
no shared folder). tests/conftest.py's `swarm` fixture brings it up once for tests/swarm.
"""
import os
import pathlib
import shutil
import subprocess

import docker
import pytest
from docker.utils import parse_bytes

from conftest import ROOT, wait_for

from dlab_hub.config import Engine, configure
from dlab_hub.settings import load
from dlab_hub.swarm import service_name, service_spec

TESTBED = str(ROOT / "tests" / "swarm" / "testbed.sh")
NAME = "dlabsw"  # the test bed's namespaces, cgroups and folders (tests/swarm/testbed.sh)
SHARED = pathlib.Path(f"/var/lib/{NAME}/shared")  # the shared file system the homes live on
REGISTRY = "10.213.0.11:5000"  # on the manager, node 1
LOCAL_IMAGE = "dlab/base:latest"  # built here; the nodes pull it from the registry
IMAGE = f"{REGISTRY}/{LOCAL_IMAGE}"
NETWORK = "dlab-class"  # the class's attachable overlay network
NODES = 4
GPU_NODE, NO_HOMES_NODE = 3, 4
CLASS = "dlabsw"  # the class's prefix: services dlabsw-u-<name>


def bed_script(*args, **env):
    return subprocess.run([TESTBED, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


class Swarm:
    """The test bed: a client per node, and students' services started from the class's settings."""

    def __init__(self):
        self.clients = {n: docker.DockerClient(base_url=bed_script("host", str(n)).stdout.strip(), timeout=60)
                        for n in range(1, NODES + 1)}
        self.manager = self.clients[1]
        _, settings, problems, _ = load({}, applies=("hub", "both"))
        assert not problems
        self.settings = settings
        self.config, _ = configure(settings, Engine())

    def node_of(self, n):
        return next(node for node in self.manager.nodes.list() if node.attrs["Description"]["Hostname"] == f"{NAME}-{n}")

    def start_student(self, user, command=("sleep", "infinity"), gpus=0, constraints=()):
        """A student's server as the class server would start it on the swarm; its service's name."""
        home = SHARED / "homes" / user
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, 1000, 100)
        spawner = self.config.DockerSpawner
        name = service_name(CLASS, user)
        spec = service_spec(
            name, IMAGE, args=["start.sh", *command],
            env=[f"{k}={v}" for k, v in spawner.environment.items()] + ["JUPYTERHUB_API_URL=http://hub:8081/hub/api"],
            user=spawner.extra_create_kwargs["user"],
            labels={"org.dlab.hub": CLASS, "org.dlab.user": user},
            host_config=spawner.extra_host_config, mem_limit=parse_bytes(spawner.mem_limit),
            cpu_limit=float(spawner.cpu_limit), binds={str(home): {"bind": "/home/jovyan", "mode": "rw"}},
            network=NETWORK, gpus=gpus, constraints=constraints, healthcheck={"Test": ["NONE"]})
        self.manager.api.create_service(**spec)
        return name

    def tasks(self, service):
        return self.manager.api.tasks(filters={"service": service})

    def running(self, service, timeout=180, not_on=()):
        """(node number, container) of the service's running task, on none of the nodes not_on."""
        def find():
            for task in self.tasks(service):
                if task["Status"]["State"] == "running" and task["DesiredState"] == "running":
                    n = self.node_number(task["NodeID"])
                    if n not in not_on:
                        return n, self.clients[n].containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
            return None

        try:
            return wait_for(find, timeout, interval=1, message=f"{service} running"
                            + (f" on a node other than {not_on}" if not_on else ""))
        except BaseException:
            print("tasks:", self.errors(service), "nodes:", self.nodes(), sep="\n")
            raise

    def nodes(self):
        return [(node.attrs["Description"]["Hostname"], node.attrs["Status"]["State"], node.attrs["Spec"]["Availability"],
                 node.attrs["Spec"].get("Labels")) for node in self.manager.nodes.list()]

    def errors(self, service):
        return [(t["Status"]["State"], t["Status"].get("Err", ""), t["Status"].get("Message", "")) for t in self.tasks(service)]

    def node_number(self, node_id):
        return int(self.manager.nodes.get(node_id).attrs["Description"]["Hostname"].rsplit("-", 1)[1])


def helper_spec(name, args, mem_limit=None):
    """A service of the tests' own on the class network (not a student's: no limits, no home), as uid 1000."""
    return service_spec(name, IMAGE, args=args, env=[], user="1000", labels={}, host_config={}, mem_limit=mem_limit,
                        cpu_limit=None, binds={}, network=NETWORK, healthcheck={"Test": ["NONE"]})


def anchor_spec():
    spec = helper_spec(f"{CLASS}-anchor", ["sleep", "infinity"], mem_limit=64 * 1024**2)
    spec["mode"] = docker.types.ServiceMode("global")
    spec["task_template"]["Placement"]["Constraints"] = []  # every node, labelled or not
    return spec


def manager_script(script, *args, **settings):
    """A dlab script (make swarm-check, make swarm-push...) run on the manager, with the test bed's settings."""
    return subprocess.run([str(ROOT / "scripts" / script), *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "DOCKER_HOST": bed_script("host", "1").stdout.strip(), "DLAB_ENV_FILE": "/dev/null",
                               "DLAB_SWARM_SHARED": str(SHARED), "DLAB_SWARM_REGISTRY": REGISTRY, "DLAB_IMAGE": LOCAL_IMAGE,
                               "DLAB_GPU_IMAGE": "dlab/not-built-here:latest", **settings})


def swarm_push(**settings):
    return manager_script("swarm.sh", "push", **settings)


def node_check(image=LOCAL_IMAGE):
    """make swarm-check on the manager, with the test bed's homes and image."""
    return manager_script("swarm.sh", "check", DLAB_IMAGE=image)


def run(container, command, user="1000:100"):
    """Run a shell command in a container; (exit code, output)."""
    code, out = container.exec_run(["bash", "-c", command], user=user)
    return code, out.decode(errors="replace")


def swarm_bed():
    """The test bed for the whole run (tests/conftest.py's `swarm` fixture): up, the image pushed,
    the nodes checked and labelled, the class network and its anchor; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the swarm test bed needs root (network namespaces and engines of its own)")
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is missing: run scripts/install-test-tools.sh (make test does)")
    bed_script("down")  # what an interrupted run left, by name
    # node 4 as a server fresh from its installation: no no-new-privileges, no shared folder
    up = bed_script("up", str(NODES), DLAB_SWARM_GPUS=f"{GPU_NODE}:GPU-fake-0", DLAB_SWARM_PLAIN=str(NO_HOMES_NODE))
    assert up.returncode == 0, up.stderr
    try:
        # the organizer's route: the image on the manager, then make swarm-push into the registry
        loaded = bed_script("load", "1", LOCAL_IMAGE)
        assert loaded.returncode == 0, loaded.stderr
        pushed = swarm_push()
        assert pushed.returncode == 0 and f"pushed {IMAGE} ({REGISTRY}/dlab/base@sha256:" in pushed.stderr, pushed.stderr
        bed = Swarm()
        (SHARED / "homes").mkdir()
        bed.checked = node_check()  # the organizer's make swarm-check labels the nodes that are ready
        bed.manager.networks.create(NETWORK, driver="overlay", attachable=True)
        # The class network's anchor on every node (docs/swarm.md): Docker 20.10 drops a node's
        # attachment to an overlay network with its last task there, and may reject the next task
        # placed on that node meanwhile ("node is missing network attachments").
        bed.manager.api.create_service(**anchor_spec())
        yield bed
    finally:
        down = bed_script("down")
        assert down.returncode == 0, down.stderr
