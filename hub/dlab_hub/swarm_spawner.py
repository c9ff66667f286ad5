"""DlabSwarmSpawner: DlabSpawner on a Docker Swarm, each server a one-task service made by
dlab_hub.swarm.service_spec from the same settings."""
import asyncio

import docker
from dockerspawner import SwarmSpawner
from docker.utils import parse_bytes
from tornado import web
from traitlets import default

from dlab_hub.swarm import service_name, service_spec
from dlab_hub.spawner import DlabSpawner

class DlabSwarmSpawner(DlabSpawner, SwarmSpawner):
    """The class on a Docker Swarm (DLAB_SWARM_SHARED): each student's server is a one-task service
    that may run on any node labelled ready (make swarm-check), its home a folder of the file system
    every node mounts (the organizer's NFS). DlabSpawner's profiles, turns, ownership checks and class
    folders hold as they are; the service itself comes from dlab_hub.swarm.service_spec, which carries
    every container setting that SwarmSpawner would drop. Names: PREFIX-u-<escaped name>."""

    _waiting_for = ""  # why the start waits, for the student (progress) and the hub's log
    _cards = 0  # GPUs the server asks the swarm for
    build_advice = "make build, then make swarm-push"

    @default("object_name")
    def _object_name_default(self):
        return service_name(self.prefix, self.escaped_name)

    async def prepare_home(self):
        """The student's home folder on the shared file system, made on first use by root in a
        throwaway dlab/hub container on this manager (the hub itself may not chown), owned by
        jovyan (1000:100) and closed to others."""
        source = next(host for host, bind in self.volume_binds.items() if bind["bind"] == self.notebook_dir)
        homes, name = source.rsplit("/", 1)
        status, said = await self.run_helper(
            ["sh", "-c", 'test -d "/homes/$1" || install -d -o 1000 -g 100 -m 0700 "/homes/$1"', "sh", name],
            binds={homes: {"bind": "/homes", "mode": "rw"}}, network_mode="none", cap_drop=["ALL"], cap_add=["CHOWN"],
            security_opt=["no-new-privileges:true"])
        if status != 0:
            self.log.error("dlab: %s's home %s could not be made: %s", self.user.name, source, said)
            raise web.HTTPError(503, "Your home could not be prepared; the organizer finds why in the hub's log "
                                f"(make swarm-check checks the shared folder): {said[-200:]}")

    async def create_object(self):
        host_config = dict(self.extra_host_config)
        # The GPU profile: its count of cards as the generic resource (start_in_turn asked for them
        # as device requests, which a service has not).
        self._cards = 0
        if host_config.pop("device_requests", None) is not None:
            self._cards = self.gpu_request.cards
        create = self._render_templates(self.extra_create_kwargs)
        healthcheck = create.get("healthcheck")
        spec = service_spec(
            self.object_name, self.image, args=await self.get_command(),
            env=[f"{key}={value}" for key, value in self.get_env().items()], user=create.get("user"),
            labels=create.get("labels", {}), host_config=host_config,
            mem_limit=parse_bytes(str(self.mem_limit)) if self.mem_limit else None, cpu_limit=self.cpu_limit,
            binds=self.volume_binds, network=self.network_name, gpus=self._cards,
            healthcheck=docker.types.Healthcheck(**healthcheck) if healthcheck else None)
        return await self.docker("create_service", **spec)

    def explain(self, task):
        """A task's state, as the student waiting for it reads it."""
        state, said = task["Status"]["State"], f'{task["Status"].get("Err", "")} {task["Status"].get("Message", "")}'
        if "insufficient resources" in said and self._cards:
            return ("Waiting for a GPU: every GPU of the class is in use. Your server starts as soon as one is "
                    "free; or stop this start and choose the CPU profile.")
        if "insufficient resources" in said:
            return "Waiting for room: every machine of the class is full. Your server starts as soon as room is free."
        if "no suitable node" in said:
            return ("Waiting for a machine that can run your server: none is ready for students now. The organizer "
                    "checks the machines (make swarm-check).")
        if any(word in said for word in ("No such image", "manifest unknown", "pull access denied")):
            return (f"A machine of the class could not get the image {self.image}; trying another. The organizer "
                    "pushes it to the class's registry (make swarm-push).")
        return f"Your server is being set up ({state})."

    async def start_object(self):
        """Until the service's task runs, saying why it waits (pending for a GPU, no node ready...)."""
        delay = 0.5
        while True:
            tasks = await self.docker("tasks", filters={"service": self.object_id})
            live = [task for task in tasks if task["DesiredState"] == "running"]
            if any(task["Status"]["State"] == "running" for task in live):
                self._waiting_for = ""
                return
            if tasks:
                reason = self.explain(max(tasks, key=lambda task: task["UpdatedAt"]))
                if reason != self._waiting_for:
                    self.log.info("dlab: %s's server: %s", self.user.name, reason)
                    self._waiting_for = reason
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 3)

    async def progress(self):
        """The start page's messages: why the server waits, as start_object found it."""
        said = ""
        while True:  # JupyterHub stops reading when the start ends
            if self._waiting_for and self._waiting_for != said:
                said = self._waiting_for
                yield {"progress": 50, "message": said}
            await asyncio.sleep(1)

    async def poll(self):
        """Running while the swarm means to run it: a task moving to another node (its node died or
        was drained) is not a stopped server, whose stop would remove the service."""
        service = await self.get_object()
        if service is None:
            return 0
        tasks = await self.docker("tasks", filters={"service": self.object_id})
        if any(task["DesiredState"] == "running" for task in tasks):
            return None
        return "the swarm runs no task of it"

    async def choose_gpus(self):
        return self.gpu_request  # the swarm's scheduler gives each server its cards (generic resources)
