"""One policy, three renderers: the class's limits, login rules, culling and posture are made once
(dlab_hub.policy) and the Docker configuration, the swarm service (from the Docker spawner's
settings) and the zero-to-jupyterhub values each draw them from it. A policy changed in one place
changes all three: nothing is restated by hand."""
import dataclasses

import pytest
from docker.utils import parse_bytes

import dlab_hub.config
import dlab_hub.k8s
from dlab_hub.config import Engine, configure
from dlab_hub.k8s import quantity, values
from dlab_hub.policy import ASSIGNMENTS_DIR, EMPTY_FOLDER, SOLUTIONS_DIR, hidden_folders, policy
from dlab_hub.settings import load
from dlab_hub.swarm import service_spec

SETTINGS = {"DLAB_MEM_LIMIT": "3G", "DLAB_CPU_LIMIT": "1.5", "DLAB_PIDS_LIMIT": "300", "DLAB_SHM_SIZE": "128m",
            "DLAB_TMP_SIZE": "32m", "DLAB_IDLE_TIMEOUT": "1800", "DLAB_MIN_PASSWORD_LENGTH": "10", "DLAB_EGRESS": "on"}


def parsed(**settings):
    _, s, problems, _ = load({**SETTINGS, **settings}, applies=("hub", "both"))
    assert problems == []
    return s


def rendered(s):
    """(Docker's config, the swarm service made from its spawner settings, the z2jh values)."""
    c, _ = configure(s, Engine())
    spawner = c.DockerSpawner
    service = service_spec("dlab-u-ann", "dlab/cpu:latest", args=[*spawner.cmd], env=["A=1"], user="root",
                           labels={}, host_config=spawner.extra_host_config, mem_limit=parse_bytes(spawner.mem_limit),
                           cpu_limit=spawner.cpu_limit, binds={}, network="dlab")
    return c, service, values(s, "registry.example.org")


def test_the_three_renderers_say_the_same_limits_logins_culling_and_posture():
    s = parsed()
    p = policy(s)
    c, service, v = rendered(s)
    task, single = service["task_template"], v["singleuser"]
    # limits
    assert parse_bytes(c.DockerSpawner.mem_limit) == task["Resources"]["Limits"]["MemoryBytes"] == 3 * 1024**3
    assert single["memory"]["limit"] == quantity(p.limits.memory) == "3Gi"
    assert c.DockerSpawner.cpu_limit == single["cpu"]["limit"] == p.limits.cpus == 1.5
    assert task["Resources"]["Limits"]["NanoCPUs"] == 1_500_000_000
    assert c.DockerSpawner.extra_host_config["pids_limit"] == task["Resources"]["Limits"]["Pids"] == 300
    volumes = {vol["name"]: vol["emptyDir"]["sizeLimit"] for vol in single["storage"]["extraVolumes"]
               if "emptyDir" in vol and not vol["name"].startswith("hidden-")}
    assert volumes == {"shm": quantity(p.limits.shm), "tmp": quantity(p.limits.tmp)} == {"shm": "128Mi", "tmp": "32Mi"}
    # logins
    native = v["hub"]["config"]["NativeAuthenticator"]
    assert c.NativeAuthenticator.minimum_password_length == native["minimum_password_length"] == 10
    assert c.NativeAuthenticator.allowed_failed_logins == native["allowed_failed_logins"] == p.logins.failed_logins
    # culling
    [culler] = [service for service in c.JupyterHub.services if service["name"] == "idle-culler"]
    assert "--timeout=1800" in culler["command"] and f"--cull-every={p.culling.every}" in culler["command"]
    assert v["cull"]["timeout"] == 1800 and v["cull"]["every"] == p.culling.every
    # posture
    container = task["ContainerSpec"]
    assert c.DockerSpawner.extra_host_config["read_only"] is container["ReadOnly"] is True
    assert v["hub"]["config"]["KubeSpawner"]["container_security_context"]["readOnlyRootFilesystem"] is True
    assert "no-new-privileges:true" in c.DockerSpawner.extra_host_config["security_opt"]
    assert single["allowPrivilegeEscalation"] is False
    assert c.DockerSpawner.environment["PIP_USER"] == single["extraEnv"]["PIP_USER"] == "1"
    assert c.DockerSpawner.environment["DLAB_FIREWALL"] == "egress" and single["networkPolicy"]["egressAllowRules"]["nonPrivateIPs"]
    assert c.Spawner.default_url == single["defaultUrl"] == p.posture.default_url


@pytest.mark.parametrize("change, docker_sees, kubernetes_sees", [
    (lambda p: dataclasses.replace(p, logins=dataclasses.replace(p.logins, failed_logins=3, wait_seconds=90)),
     lambda c: (c.NativeAuthenticator.allowed_failed_logins, c.NativeAuthenticator.seconds_before_next_try),
     lambda v: (v["hub"]["config"]["NativeAuthenticator"]["allowed_failed_logins"],
                v["hub"]["config"]["NativeAuthenticator"]["seconds_before_next_try"])),
    (lambda p: dataclasses.replace(p, posture=dataclasses.replace(p.posture, read_only_root=False, default_url="/tree")),
     lambda c: (c.DockerSpawner.extra_host_config["read_only"], c.Spawner.default_url),
     lambda v: (v["hub"]["config"]["KubeSpawner"]["container_security_context"]["readOnlyRootFilesystem"],
                v["singleuser"]["defaultUrl"])),
    (lambda p: dataclasses.replace(p, culling=dataclasses.replace(p.culling, every=77)),
     lambda c: [a for s in c.JupyterHub.services if s["name"] == "idle-culler" for a in s["command"] if "every" in a][0],
     lambda v: f"--cull-every={v['cull']['every']}"),
])
def test_a_policy_changed_in_one_place_changes_docker_and_kubernetes_alike(monkeypatch, change, docker_sees, kubernetes_sees):
    s = parsed()
    changed = change(policy(s))
    for module in (dlab_hub.config, dlab_hub.k8s):
        monkeypatch.setattr(module, "policy", lambda _s: changed)
    c, _, v = rendered(s)
    assert docker_sees(c) == kubernetes_sees(v)
    monkeypatch.undo()
    before, _, v_before = rendered(s)
    assert docker_sees(before) != docker_sees(c) and kubernetes_sees(v_before) != kubernetes_sees(v)


def test_the_images_answers_are_out_of_a_students_sight_on_every_platform():
    """The sample assignments' sources (solutions, hidden tests) never in a student's server; the
    exercises' solutions there unless the class withholds them; an instructor's server keeps both.
    (tests/hub/test_hub_doors.py tries it in a real class.)"""
    assert hidden_folders(lab_solutions=True, instructor=False) == (ASSIGNMENTS_DIR,)
    assert hidden_folders(lab_solutions=False, instructor=False) == (ASSIGNMENTS_DIR, SOLUTIONS_DIR)
    assert hidden_folders(lab_solutions=False, instructor=True) == hidden_folders(lab_solutions=True, instructor=True) == ()
    for setting, shown in (("shown", True), ("withheld", False)):
        c, _, v = rendered(parsed(DLAB_LAB_SOLUTIONS=setting))
        assert c.DlabSpawner.lab_solutions is shown  # DlabSpawner.start_in_turn mounts by role
        mounts = {m["mountPath"]: m for m in v["singleuser"]["storage"]["extraVolumeMounts"]}
        assert (SOLUTIONS_DIR in mounts) is not shown and mounts[ASSIGNMENTS_DIR]["readOnly"] is True
    # On a swarm, the spawner's tmpfs becomes a service's tmpfs mount: root's, read-only (0555).
    service = service_spec("dlab-u-ann", "dlab/cpu:latest", args=[], env=[], user="root", labels={},
                           host_config={"tmpfs": dict.fromkeys(hidden_folders(False, False), EMPTY_FOLDER)},
                           mem_limit=parse_bytes("1g"), cpu_limit=1, binds={}, network="dlab")
    mounts = {m["Target"]: m for m in service["task_template"]["ContainerSpec"]["Mounts"]}
    assert {mounts[path]["TmpfsOptions"]["Mode"] for path in (ASSIGNMENTS_DIR, SOLUTIONS_DIR)} == {0o555}
