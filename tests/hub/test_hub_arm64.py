"""The class server's own containers on an ARM machine: compose.yaml's proxy and hub from the arm64
build of dlab/hub, emulated here, run a class (on an ARM server `make up` builds and runs them
natively, under the usual names).

The students' servers here are this machine's dlab/cpu: their start sets up dlab-firewall with
iptables, whose netlink calls QEMU's user-mode emulation does not translate ("Failed to initialize
nft: Protocol not supported"), so an arm64 student's server can only start on a real ARM machine
(where every hub test runs on arm64). The arm64 dlab/cpu itself is tested in tests/images and tests/labs."""
import subprocess

import pytest

from conftest import docker, skip_arm64
from hubstack import HubStack

CLASS = "dlabarm"  # its own prefix and network: never the other hub tests' class
ARM64_HUB = "dlab/hub:latest-arm64"
pytestmark = pytest.mark.arm64
PASSWORD = "a-long-password-1"


class ArmHub(HubStack):
    """The test hub (tests/hub/hubstack.py) with both of compose.yaml's services on the arm64 hub image."""
    prefix = CLASS

    def __init__(self, override):
        super().__init__()
        self.override = override

    def script(self, command, settings=None, check=True, timeout=540):
        # Emulated and beside the CPU-bound round of the run, make up took over 300 s in CI once (its
        # 30 s here): give it room, and on a timeout say where each container stood.
        try:
            return super().script(command, settings, check, timeout)
        except subprocess.TimeoutExpired as timed_out:
            pytest.fail(f"scripts/hub.sh {command} took over {timeout} s:\n{timed_out.stderr}\n{where_it_stood()}")

    def env(self, settings):
        env = super().env({"DLAB_HOME_SIZE": "0", **settings})
        env["COMPOSE_FILE"] = f"compose.yaml:{self.override}"  # docker compose reads it; hub.sh passes no -f
        return env


def where_it_stood():
    containers = docker("ps", "-a", "--filter", f"name=^{CLASS}-", "--format", "{{.Names}} {{.Status}}", check=False).stdout
    health = [docker("inspect", "-f", "{{json .State.Health}}", f"{CLASS}-{service}", check=False).stdout for service in ("proxy", "hub")]
    logs = [docker("logs", "--tail", "20", f"{CLASS}-{service}", check=False) for service in ("proxy", "hub")]
    return "\n".join([containers, *health, *(out.stdout + out.stderr for out in logs)])


def remove(hub):
    hub.script("down", check=False)
    volumes = docker("volume", "ls", "-q", "--filter", f"name=^{CLASS}-").stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)


@pytest.fixture(scope="module")
def arm_hub(tmp_path_factory):
    skip_arm64(ARM64_HUB)
    override = tmp_path_factory.mktemp("arm64") / "compose.arm64.yaml"
    # Emulated, JupyterHub takes many times its native start: on a loaded CI machine longer than the
    # health check's 30 s start period, and compose then gave up on an "unhealthy" hub that was starting;
    # the probe itself (an emulated Python) can take longer than its 3 s, and costs a core's second
    # or so: every 5 s, not the hub's 2.
    override.write_text("services:\n" + "".join(f"  {service}:\n    image: {ARM64_HUB}\n    platform: linux/arm64\n"
                                                 "    healthcheck: {start_period: 170s, timeout: 30s, interval: 5s}\n"
                                                 for service in ("proxy", "hub")))
    hub = ArmHub(override)
    remove(hub)
    try:
        hub.restart()
        yield hub
    finally:
        remove(hub)


def test_the_arm64_hub_and_proxy_run_a_class(arm_hub):
    """Sign-up, the organizer's approval, a login, a student's server started through the hub, and code
    run in it through the proxy: all through the arm64 containers."""
    for service in ("proxy", "hub"):
        image = docker("inspect", "-f", "{{.Image}}", f"{CLASS}-{service}").stdout.strip()
        assert docker("image", "inspect", "-f", "{{.Architecture}}", image).stdout.strip() == "arm64", service
        machine = docker("exec", f"{CLASS}-{service}", "uname", "-m").stdout.strip()
        assert machine == "aarch64", service
    arm_hub.signup("ada", PASSWORD)
    arm_hub.approve("ada")
    arm_hub.session("ada", PASSWORD)
    arm_hub.start_server("ada")
    out, error = arm_hub.run_code("ada", "print(6 * 7)")
    assert (out.strip(), error) == ("42", None)
