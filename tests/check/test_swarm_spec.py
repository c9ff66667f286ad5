"""dlab_hub.swarm.service_spec: every container setting the class server gives DockerSpawner
reaches the swarm service (SwarmSpawner drops extra_host_config), or the start stops with a
message; without Docker (tests/swarm starts these services on a real swarm)."""

import pytest
from docker.utils import parse_bytes


from dlab_hub.config import Engine, configure
from dlab_hub.settings import load
from dlab_hub.swarm import GPU_RESOURCE, HOMES_LABEL, MAX_SERVICE_NAME, service_name, service_spec


def class_config(**settings):
    _, parsed, problems, _ = load(settings, applies=("hub", "both"))
    assert problems == []
    return configure(parsed, Engine())[0].DockerSpawner


def spec(host_config=None, **kwargs):
    spawner = class_config()
    args = dict(args=["start-singleuser.sh"], env=["A=1"], user="root", labels={"org.dlab.user": "ann"},
                host_config=spawner.extra_host_config if host_config is None else host_config,
                mem_limit=parse_bytes(spawner.mem_limit), cpu_limit=spawner.cpu_limit,
                binds={"/srv/homes/ann": {"bind": "/home/jovyan", "mode": "rw"},
                       "dlab-data": {"bind": "/srv/data", "mode": "ro"}}, network="dlab")
    return service_spec("dlab-u-ann", "registry:5000/dlab/cpu:latest", **{**args, **kwargs})


def test_every_guarantee_of_the_class_reaches_the_service():
    made = spec()
    task = made["task_template"]
    container = task["ContainerSpec"]
    assert container["User"] == "root" and container["ReadOnly"] is True
    assert container["CapabilityDrop"] == ["ALL"]
    assert sorted(container["CapabilityAdd"]) == ["NET_ADMIN", "SETGID", "SETPCAP", "SETUID"]
    assert container["Sysctls"] == {"net.ipv6.conf.all.disable_ipv6": "1"}
    mounts = {m["Target"]: m for m in container["Mounts"]}
    assert mounts["/home/jovyan"]["Type"] == "bind" and mounts["/home/jovyan"]["Source"] == "/srv/homes/ann"
    # a named volume stays a volume (SwarmSpawner makes every volume a bind: dockerspawner#536)
    assert mounts["/srv/data"]["Type"] == "volume" and mounts["/srv/data"]["ReadOnly"] is True
    assert mounts["/dev/shm"]["Type"] == "tmpfs" and mounts["/dev/shm"]["TmpfsOptions"]["SizeBytes"] == parse_bytes("1g")
    assert mounts["/tmp"]["TmpfsOptions"] == {"SizeBytes": parse_bytes("1g"), "Mode": 0o1777}
    limits = task["Resources"]["Limits"]
    assert limits == {"NanoCPUs": 2 * 10**9, "MemoryBytes": 4 * 1024**3, "Pids": 1024}
    assert task["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}}
    assert task["Placement"]["Constraints"] == [f"node.labels.{HOMES_LABEL} == true"]
    assert task["RestartPolicy"]["Condition"] == "any"
    assert task["Networks"] == [{"Target": "dlab"}]
    assert made["endpoint_spec"] == {"Mode": "dnsrr"}  # no virtual IP: it needs IPVS


def test_the_class_settings_carry_over():
    spawner = class_config(DLAB_PIDS_LIMIT="300", DLAB_SHM_SIZE="2g", DLAB_TMP_SIZE="256m", DLAB_MEM_LIMIT="3G",
                           DLAB_CPU_LIMIT="0.5")
    made = spec(spawner.extra_host_config, mem_limit=parse_bytes(spawner.mem_limit), cpu_limit=spawner.cpu_limit)
    limits = made["task_template"]["Resources"]["Limits"]
    assert limits == {"NanoCPUs": 5 * 10**8, "MemoryBytes": 3 * 1024**3, "Pids": 300}
    mounts = {m["Target"]: m for m in made["task_template"]["ContainerSpec"]["Mounts"]}
    assert mounts["/dev/shm"]["TmpfsOptions"]["SizeBytes"] == 2 * 1024**3
    assert mounts["/tmp"]["TmpfsOptions"]["SizeBytes"] == 256 * 1024**2


def test_a_gpu_server_asks_the_swarm_for_cards():
    made = spec(gpus=2, constraints=["node.labels.gpu == true"])
    resources = made["task_template"]["Resources"]
    assert resources["Reservations"]["GenericResources"] == [{"DiscreteResourceSpec": {"Kind": GPU_RESOURCE, "Value": 2}}]
    assert made["task_template"]["Placement"]["Constraints"][1:] == ["node.labels.gpu == true"]
    assert "Reservations" not in spec()["task_template"]["Resources"]


@pytest.mark.parametrize("host_config, said", [
    ({"privileged": True}, "privileged has no place in a swarm service"),
    ({"device_requests": ["all"]}, "generic resources"),
    ({"security_opt": ["apparmor=unconfined"]}, "'apparmor=unconfined' has no place"),
    ({"tmpfs": {"/tmp": "size=1g,exec"}}, "'exec' of /tmp has no place"),
])
def test_a_setting_a_service_cannot_carry_stops_the_start_instead_of_vanishing(host_config, said):
    with pytest.raises(ValueError, match=said):
        spec(host_config)


def test_service_names_are_dns_labels_apart_from_the_class_services():
    assert service_name("dlab", "alice") == "dlab-u-alice"
    long = service_name("dlab", "a-2e" * 31)  # a 32-character name of dots, escaped
    assert len(long) == MAX_SERVICE_NAME and long.startswith("dlab-u-a-2e")
    other = service_name("dlab", "a-2e" * 30 + "b-2e")
    assert other != long and len(other) == MAX_SERVICE_NAME
    assert service_name("dlab", "hub") not in ("dlab-hub", "dlab-proxy")


def swarm_config(engine=Engine(), **settings):
    _, parsed, problems, _ = load({"DLAB_SWARM_SHARED": "/mnt/class", "DLAB_SWARM_REGISTRY": "registry.example.org:5000",
                                   **settings}, applies=("hub", "both"))
    assert problems == []
    return configure(parsed, engine)


def test_with_a_shared_folder_the_hub_spawns_services_whose_files_are_on_it():
    c, notes = swarm_config()
    assert c.JupyterHub.spawner_class == "dlab_hub.swarm_spawner.DlabSwarmSpawner"
    # the images the nodes pull, from the class's registry (make swarm-push)
    assert (c.DlabSpawner.cpu_image, c.DockerSpawner.image) == ("registry.example.org:5000/dlab/cpu:latest",) * 2
    assert c.DlabSpawner.gpu_image == "registry.example.org:5000/dlab/gpu:latest"
    # a home, the datasets and the class's folders are folders of the file system every node mounts
    assert c.DockerSpawner.volumes == {"/mnt/class/homes/{username}": "/home/jovyan",
                                       "/mnt/class/data": {"bind": "/srv/data", "mode": "ro"}}
    assert (c.DlabSpawner.course_volume, c.DlabSpawner.handin_volume) == ("/mnt/class/course", "/mnt/class/handin")
    assert c.DlabSpawner.home_size == ""  # no loop-device homes: the NFS server's quota, not this machine's
    assert any("on a Docker Swarm" in note for note in notes)
    # every container setting still reaches the service (the one-machine class's own)
    assert c.DockerSpawner.extra_host_config == class_config().extra_host_config


def test_without_a_registry_the_images_keep_their_names():
    c, _ = swarm_config(DLAB_SWARM_REGISTRY="")
    assert c.DlabSpawner.cpu_image == "dlab/cpu:latest"


def test_one_machine_is_untouched_by_the_swarm_settings():
    _, parsed, _, _ = load({"DLAB_SWARM_REGISTRY": "registry.example.org:5000"}, applies=("hub", "both"))
    c, _ = configure(parsed, Engine())
    assert c.JupyterHub.spawner_class == "dlab_hub.spawner.DlabSpawner" and c.DlabSpawner.cpu_image == "dlab/cpu:latest"


@pytest.mark.parametrize("gpus, advertised, offered", [
    ("auto", 0, ""),        # no node advertises a GPU: no GPU profile
    ("auto", 2, "1"),       # one card a server, once the GPU image is pushed
    ("all", 2, "1"),
    ("2", 2, "2"),
    ("none", 2, ""),
    ("device=0", 2, ""),    # named cards mean nothing across nodes: said in the log
])
def test_on_a_swarm_the_gpu_profile_asks_for_a_count_of_the_nodes_cards(gpus, advertised, offered):
    engine = Engine(swarm_gpus=advertised, images=frozenset({"registry.example.org:5000/dlab/gpu:latest"}))
    c, notes = swarm_config(engine, DLAB_GPUS=gpus)
    assert c.DlabSpawner.gpus == offered
    assert any("count of cards" in note for note in notes) == gpus.startswith("device=")
