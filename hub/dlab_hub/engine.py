"""What the hub asks of the world around it at start and before a server's start: the Docker
engine (its memory, the NVIDIA runtime, images, a swarm's GPUs), the GPU cards a server gets, and an
OpenID Connect provider's endpoints."""
import json
import urllib.request

import docker

from dlab_hub.kinds import GpuRequest
from dlab_hub.swarm import GPU_RESOURCE

GITHUB = {"authorization_endpoint": "https://github.com/login/oauth/authorize",  # OAuth 2, no discovery
          "token_endpoint": "https://github.com/login/oauth/access_token", "userinfo_endpoint": "https://api.github.com/user"}




def discover_oidc(issuer):
    """The provider's endpoints, from its OpenID Connect discovery document (GitHub's are known)."""
    if issuer.rstrip("/") == "https://github.com":
        return GITHUB
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            found = json.load(response)
        return {key: found[key] for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")}
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"dlab hub: cannot read the sign-in provider's {url} ({error}): check DLAB_OIDC_ISSUER "
                         "in .env (the issuer URL your identity provider gives), or empty it") from error


def docker_client():
    """The Docker engine the hub starts students' containers on; exits with what to do if absent."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing
        raise SystemExit(
            f"dlab hub: cannot reach the Docker engine ({error}). The hub needs /var/run/docker.sock "
            "and the socket's group: start it with `make up`, which sets both (compose.yaml)."
        ) from error


def volume_exists(name):
    try:
        docker.from_env(timeout=30).volumes.get(name)
        return True
    except docker.errors.NotFound:
        return False


def memory_total():
    """The machine's memory in bytes (/proc/meminfo shows the host's inside a container)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("dlab hub: no MemTotal in /proc/meminfo: set DLAB_MAX_SERVERS in .env")


def docker_gpu_runtime(client):
    """True when the engine has the NVIDIA runtime (the NVIDIA container toolkit is installed)."""
    return "nvidia" in (client.info().get("Runtimes") or {})


def image_present(client, image):
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def swarm_gpus(client):
    """The GPUs the swarm's nodes advertise (generic resources NVIDIA-GPU: named ones, or a count)."""
    total = 0
    for node in client.api.nodes():
        for resource in (node.get("Description", {}).get("Resources", {}).get("GenericResources") or []):
            named, counted = resource.get("NamedResourceSpec") or {}, resource.get("DiscreteResourceSpec") or {}
            total += (named.get("Kind") == GPU_RESOURCE) + (counted.get("Value", 0) if counted.get("Kind") == GPU_RESOURCE else 0)
    return total


def gpu_device_requests(request):
    """Docker device requests for a GpuRequest: all the cards, a count, or named ones."""
    if request.kind == "devices":
        return [docker.types.DeviceRequest(device_ids=list(request.devices), capabilities=[["gpu"]])]
    count = -1 if request.kind == "all" else request.count
    return [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]


def docker_gpu_ids(client, image):
    """The indexes of the GPUs the NVIDIA runtime passes to a container (nvidia-smi, which the
    NVIDIA container toolkit mounts, in a throwaway container of `image`); () where it shows none."""
    try:
        out = client.containers.run(image, ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                    entrypoint=[], user="root", network_mode="none", remove=True,
                                    device_requests=gpu_device_requests(GpuRequest("all")))
    except docker.errors.DockerException:
        return ()
    return tuple(out.decode().split())


def pick_gpus(cards, holders, count):
    """The `count` cards of `cards` that the fewest servers hold (`holders`: the cards each running
    server holds), the first listed among equals: a class spreads over the cards one by one."""
    held = {card: sum(card in ids for ids in holders) for card in cards}
    return sorted(cards, key=lambda card: (held[card], cards.index(card)))[:count]
