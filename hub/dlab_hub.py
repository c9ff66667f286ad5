"""dlab's additions to JupyterHub, as jupyterhub_config.py and the configuration (dlab_config.py)
name them: one module per concern, gathered here.

- dlab_state: the hub's secrets, the proxy's token, sign-ups, the message, the accounts table;
- dlab_engine: what the Docker engine behind the hub offers, the GPU cards, an OIDC provider;
- dlab_web: requests from outside, bounded (addresses, rates, tokens, bodies);
- dlab_names: usernames' rules and look-alikes;
- dlab_spawner, dlab_swarm_spawner: DlabSpawner (a CPU and a GPU profile, homes of their own size)
  and DlabSwarmSpawner (the same on a Docker Swarm, each server a service, dlab_swarm.py);
- dlab_pages, dlab_auth: the account pages, DlabAuthenticator (NativeAuthenticator with a class
  code, the organizer's account made on first start) and InstitutionAuthenticator.
"""
from dlab_auth import DlabAuthenticator, InstitutionAuthenticator
from dlab_engine import (discover_oidc, docker_client, docker_gpu_ids, docker_gpu_runtime, gpu_device_requests, image_present,
                         memory_total, pick_gpus, swarm_gpus)
from dlab_names import skeleton
from dlab_spawner import HOME_HELPER_PRIVILEGES, DlabSpawner
from dlab_state import proxy_token, secret
from dlab_swarm_spawner import DlabSwarmSpawner

__all__ = ["DlabAuthenticator", "DlabSpawner", "DlabSwarmSpawner", "HOME_HELPER_PRIVILEGES", "InstitutionAuthenticator",
           "discover_oidc", "docker_client", "docker_gpu_ids", "docker_gpu_runtime", "gpu_device_requests", "image_present",
           "memory_total", "pick_gpus", "proxy_token", "secret", "skeleton", "swarm_gpus"]
