"""A student's server as a Docker Swarm service, with every guarantee of the one-machine class.

DockerSpawner's SwarmSpawner (dockerspawner 14) starts a service from the image, the environment,
the command and the volumes, and drops the rest of the container settings without a word:
extra_host_config (the process limit, /dev/shm, the capabilities, the read-only root, /tmp in
memory, the log limits) never reaches the service (jupyterhub/dockerspawner#263, #536). Here the
same settings that dlab_hub.config.configure gives DockerSpawner are carried over, one by one, into
the service's task: a setting that has no place in a service stops the start with a message
rather than being lost.

What a service cannot carry in the engine's API (1.41, Docker 20.10, Debian 12's) is asked of each
node instead, and `make swarm-check` (scripts/swarm.sh) checks it and says what is missing:
no-new-privileges (daemon.json), the homes' shared mount (node label dlab.homes), GPUs (generic
resources NVIDIA-GPU in daemon.json).

This module asks no engine: `service_spec` is a pure function, tested by `make check`, and the
swarm tests (tests/swarm) start its services on a real swarm of several engines.
"""
import hashlib

from docker.types import ContainerSpec, EndpointSpec, Mount, Placement, Resources, RestartPolicy, TaskTemplate
from docker.utils import parse_bytes

HOMES_LABEL = "dlab.homes"  # node label: the homes' shared file system is mounted on this node
GPU_RESOURCE = "NVIDIA-GPU"  # the generic resource a GPU node advertises (daemon.json), one per card
NODE_REQUIREMENTS = {
    # what a container asks of its engine, and what a swarm node must have set up instead
    "no-new-privileges:true": '"no-new-privileges": true in the node\'s /etc/docker/daemon.json',
}
MAX_SERVICE_NAME = 63  # a service's name is a DNS label: letters, digits, - and _, at most 63


def service_name(prefix, escaped_user):
    """The service of a student: PREFIX-u-<escaped name> (a service's name may hold no dot, and
    `-u-` keeps it apart from compose's PREFIX-hub and PREFIX-proxy); a name too long for a DNS
    label is cut and given a hash of the whole, so that two students never share one."""
    name = f"{prefix}-u-{escaped_user}"
    if len(name) <= MAX_SERVICE_NAME:
        return name
    digest = hashlib.sha256(escaped_user.encode()).hexdigest()[:10]
    return f"{name[:MAX_SERVICE_NAME - 11]}-{digest}"


def _tmpfs_mount(target, options):
    """`--tmpfs`'s "size=1g,mode=1777,nosuid,nodev" as a tmpfs mount (nosuid and nodev are what
    the engine gives every tmpfs mount of a service)."""
    size = mode = None
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key == "size":
            size = parse_bytes(value)
        elif key == "mode":
            mode = int(value, 8)
        elif key not in ("nosuid", "nodev", "rw"):
            raise ValueError(f"the tmpfs option {option!r} of {target} has no place in a swarm service")
    return Mount(target=target, source=None, type="tmpfs", tmpfs_size=size, tmpfs_mode=mode)


def service_spec(name, image, *, args, env, user, labels, host_config, mem_limit, cpu_limit, binds, network,
                 gpus=0, constraints=(), healthcheck=None):
    """docker-py's create_service arguments for one student's server.

    host_config, binds (host path or volume name: {"bind": target, "mode": "ro"|"rw"}), mem_limit
    (bytes) and cpu_limit (cores) are what DockerSpawner would give a container; gpus is how many
    GPUs (the generic resource GPU_RESOURCE) the server needs. The service runs one task, reached by
    its name on `network` (dnsrr: the engine's virtual IPs need IPVS, which a node may not have),
    only on nodes with the shared folder (label HOMES_LABEL), restarted wherever it can run when its
    node dies. Raises ValueError for a setting a service cannot carry."""
    config = dict(host_config)
    mounts = [Mount(target=bind["bind"], source=source, type="bind" if source.startswith("/") else "volume",
                    read_only=bind.get("mode") == "ro") for source, bind in binds.items()]
    if "shm_size" in config:  # a service has no shm_size: /dev/shm is a tmpfs mount of that size
        mounts.append(Mount(target="/dev/shm", source=None, type="tmpfs",
                            tmpfs_size=parse_bytes(str(config.pop("shm_size")))))
    mounts += [_tmpfs_mount(target, options) for target, options in config.pop("tmpfs", {}).items()]
    for option in config.pop("security_opt", []):
        if option not in NODE_REQUIREMENTS:
            raise ValueError(f"the security option {option!r} has no place in a swarm service")
    container = ContainerSpec(
        image, args=args, env=env, user=user, labels=labels, mounts=mounts, init=config.pop("init", None),
        read_only=config.pop("read_only", None), cap_drop=config.pop("cap_drop", None),
        cap_add=config.pop("cap_add", None), sysctls=config.pop("sysctls", None), healthcheck=healthcheck)
    resources = Resources(cpu_limit=int(cpu_limit * 1e9) if cpu_limit else None, mem_limit=mem_limit or None,
                          generic_resources={GPU_RESOURCE: gpus} if gpus else None)
    if "pids_limit" in config:
        resources.setdefault("Limits", {})["Pids"] = config.pop("pids_limit")
    log = config.pop("log_config", None)
    if "device_requests" in config:
        raise ValueError("a swarm service gets GPUs as generic resources (gpus=N), not device requests")
    if config:
        raise ValueError(f"{', '.join(sorted(config))} has no place in a swarm service: leave it out of "
                         "extra_host_config on a swarm")
    task = TaskTemplate(
        container, resources=resources, networks=[network] if network else None,
        placement=Placement(constraints=[f"node.labels.{HOMES_LABEL} == true", *constraints]),
        # Any end of the task starts it again (on another node if its own is gone); the hub
        # removes the service when the server is stopped.
        restart_policy=RestartPolicy(condition="any", delay=2 * 10**9),
        log_driver={"Name": log["type"], "Options": log.get("config") or {}} if log else None)
    return {"name": name, "labels": labels, "task_template": task, "endpoint_spec": EndpointSpec(mode="dnsrr")}
