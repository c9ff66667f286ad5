"""DlabSpawner: DockerSpawner with a CPU profile and, where the server has a GPU, a GPU profile
(the least used cards), the starts taking turns, the options a start may take checked; each
student's home, hand-in folder and the course folder made ready before the start (ClassFolders,
dlab_hub.folders)."""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import docker
from dockerspawner import DockerSpawner
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Integer, List, Unicode, default

from dlab_hub.kinds import GpuRequest
from dlab_hub.engine import gpu_device_requests, pick_gpus
from dlab_hub.assignments import Assignments
from dlab_hub.folders import ClassFolders
from dlab_hub.policy import ASSIGNMENTS_DIR, EMPTY_FOLDER, SOLUTIONS_DIR, hidden_folders

LEGACY_HOLD_KEY = "dlab_held_until"  # an earlier release's prestart hold; dlab_hub.prestart keeps holds itself now



def checked_options(spawner, options):
    """The options dlab offers, checked: {"profile": "cpu" or "gpu"}, the GPU one where offered.
    Anything else is a 400 that says what to choose (a start through the REST API sends any JSON)."""
    if not isinstance(options, dict):
        raise web.HTTPError(400, 'The server\'s options are a JSON object, such as {"profile": "cpu"}.')
    unknown = [key for key in options if key not in ("profile", LEGACY_HOLD_KEY)]
    if unknown:
        raise web.HTTPError(400, f"Unknown option {str(unknown[0])[:40]!r}: the only one is 'profile' ('cpu' or 'gpu').")
    profile = options.get("profile", "cpu")
    if profile not in ("cpu", "gpu"):
        raise web.HTTPError(400, f"Unknown profile {str(profile)[:40]!r}: choose 'cpu' or 'gpu'.")
    if profile == "gpu" and not spawner.gpus:
        raise web.HTTPError(400, "This server offers no GPU profile (it has no GPU for Docker): choose 'cpu'.")
    return {"profile": profile}


def apply_checked_options(spawner, options):
    """Spawner.apply_user_options. JupyterHub has stored the options as they were sent before this
    runs, and keeps them for the next start and in every user listing: only the checked ones stay
    stored (none when refused), so megabytes or a made-up key are neither kept nor trusted later."""
    clean = {}
    try:
        clean = checked_options(spawner, options)
    finally:
        spawner.user_options = clean
        spawner.orm_spawner.user_options = clean
        spawner.db.commit()


PROFILE_FORM = """
<fieldset>
  <legend>Choose your server</legend>
  <div class="radio"><label><input type="radio" name="profile" value="cpu" checked>
    <strong>CPU</strong>: every lab runs here</label></div>
  <div class="radio"><label><input type="radio" name="profile" value="gpu">
    <strong>GPU</strong>: {gpu_image}, with the server's NVIDIA GPU ({gpus})</label></div>
</fieldset>
"""


DOCKER_THREADS = 8  # Docker calls the hub makes at once (DlabSpawner.executor)


class DlabSpawner(ClassFolders, Assignments, DockerSpawner):
    """One container per student. The profile (cpu or gpu) picks the image; the GPU profile passes
    the GPUs through with device_requests and exists only where the hub offers it (gpus != "").

    Students' containers are named PREFIX.<escaped name>: DLAB_PREFIX has no dot and compose names
    its containers PREFIX-SERVICE, so no account can take the hub's name, another class's or a test
    hub's. And the spawner acts only on a container labelled as this student's of this class: one
    that merely has the name is never stopped or removed."""

    # DockerSpawner sends every Docker call of every student through one thread, so a class that
    # starts at once queues behind each container's start, each home's helper and each poll.
    # Docker's API serves calls side by side, and docker-py's client may be shared by threads
    # (its connection pool holds 10): 8 threads here.
    _dlab_executor = None

    @property
    def executor(self):
        if DlabSpawner._dlab_executor is None:
            DlabSpawner._dlab_executor = ThreadPoolExecutor(DOCKER_THREADS, thread_name_prefix="dlab-docker")
        return DlabSpawner._dlab_executor

    @default("name_template")
    def _default_name_template(self):
        return "{prefix}.{username}"

    def owns(self, obj):
        """Is this container (docker inspect), or service, the server of this student of this class?"""
        labels = (obj.get("Config") or obj.get("Spec") or {}).get("Labels") or {}
        return labels.get("org.dlab.hub") == self.prefix and labels.get("org.dlab.user") == self.user.name

    async def get_object(self):
        obj = await super().get_object()
        if obj is not None and not self.owns(obj):
            self.log.warning("dlab: the container %s is not %s's server (its labels say otherwise): "
                             "leaving it alone", self.object_name, self.user.name)
            self.object_id = ""
            return None
        return obj

    async def _owned_id(self):
        """The container's (or service's) id to stop or remove, or "" when there is none that is ours."""
        if not self.object_id:
            return ""
        try:
            obj = await self.docker(f"inspect_{self.object_type}", self.object_id)
        except docker.errors.NotFound:
            return ""
        if not self.owns(obj):
            self.log.warning("dlab: not touching the %s %s (%s): it is not %s's server", self.object_type,
                             self.object_id[:12], obj.get("Name") or obj.get("Spec", {}).get("Name"), self.user.name)
            return ""
        return self.object_id

    async def create_object(self):
        # A stop that interrupts a start cancels the start (JupyterHub), but Docker's create runs in
        # a thread and makes the container all the same, after stop() has found none to remove
        # (CI saw one left so). The create is shielded, and a container made for a cancelled start
        # is removed here.
        creating = asyncio.ensure_future(super().create_object())
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            try:
                made = (await creating)[self.object_id_key]
                self.log.info("dlab: %s's start was stopped while its %s was made: removing %s",
                              self.user.name, self.object_type, made[:12])
                extra = {"force": True} if self.object_type == "container" else {}
                await self.docker(f"remove_{self.object_type}", made, **extra)
            except Exception:
                self.log.exception("dlab: could not remove what %s's stopped start made", self.user.name)
            raise

    async def stop_object(self):
        if await self._owned_id():
            await super().stop_object()

    async def remove_object(self):
        if await self._owned_id():
            await super().remove_object()

    cpu_image = Unicode("dlab/cpu:latest", config=True, help="The image of the CPU profile.")
    gpu_image = Unicode("dlab/gpu:latest", config=True, help="The image of the GPU profile.")
    gpus = Unicode("", config=True, help='GPUs of the GPU profile ("all", "2", "device=0,1"); "" offers none.')
    lab_solutions = Bool(True, config=True, help="Whether students' servers hold the labs' exercise solutions.")

    @property
    def gpu_request(self):
        return GpuRequest.parse(self.gpus)
    gpu_ids = List(Unicode(), config=True, help="The cards a count in `gpus` spreads the students over.")
    _gpu_claims = {}  # user: cards, for the GPU starts under way (their containers may not exist yet)
    _chosen_gpus = ()

    async def choose_gpus(self):
        """With a count of GPUs and known cards: the least used ones, as `docker run --gpus`
        device=... (each GPU server's container carries its cards in the label org.dlab.gpus)."""
        request = self.gpu_request
        if not (request.kind == "count" and self.gpu_ids):
            return request
        running = await self.docker("containers", all=True, filters={"label": [f"org.dlab.hub={self.prefix}", "org.dlab.gpus"]})
        holders = [c["Labels"]["org.dlab.gpus"].split(",") for c in running
                   if c["State"] in ("created", "running", "restarting") and c["Labels"].get("org.dlab.user") != self.user.name]
        holders += [cards for name, cards in DlabSpawner._gpu_claims.items() if name != self.user.name]
        self._chosen_gpus = pick_gpus(list(self.gpu_ids), holders, request.count)
        DlabSpawner._gpu_claims[self.user.name] = self._chosen_gpus
        self.log.info("dlab: %s's GPU server gets card %s of %s (the least used)", self.user.name,
                      ",".join(self._chosen_gpus), ",".join(self.gpu_ids))
        return GpuRequest("devices", devices=tuple(self._chosen_gpus))

    def get_env(self):
        env = super().get_env()
        if self._chosen_gpus:  # dlab-info shows it to the student
            env["DLAB_GPU_CARDS"] = ",".join(self._chosen_gpus)
        env.update(self.assignment_env())
        return env

    @default("options_form")
    def _default_options_form(self):
        # No form without a GPU: the student's server starts at once.
        return PROFILE_FORM.format(gpu_image=self.gpu_image, gpus=self.gpus) if self.gpus else ""

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return apply_checked_options

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: {"profile": formdata.get("profile", ["cpu"])[0]}

    _class_volumes = None
    _class_create_kwargs = None
    build_advice = "make build"  # what the organizer runs when the image is missing

    starts_at_once = Integer(2, config=True, help="Servers that start side by side; the others wait their turn.")
    _turns = None  # the semaphore the starts share (made in the hub's event loop)

    async def wait_answering(self, ip, port):
        """Until the new server answers its API (every 0.1 s, up to http_timeout), or its container
        has stopped: the next start's turn comes when this one's CPU is spent, and the hub, which
        looks with growing pauses (up to seconds), finds it up at its first look."""
        url = url_path_join(f"http://{ip}:{port}", self.server.base_url, "api")
        client, deadline, next_poll = AsyncHTTPClient(), time.monotonic() + self.http_timeout, time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if (await client.fetch(url, request_timeout=2, raise_error=False)).code == 200:
                    return
            except (OSError, HTTPClientError):
                pass  # not listening yet, or too busy to answer within 2 s: look again
            if time.monotonic() > next_poll:
                if await self.poll() is not None:
                    return  # it stopped: the hub reports why
                next_poll = time.monotonic() + 2
            await asyncio.sleep(0.1)

    async def start(self):
        if DlabSpawner._turns is None:
            DlabSpawner._turns = asyncio.Semaphore(self.starts_at_once)
        async with DlabSpawner._turns:  # first come, first served
            try:
                ip, port = await self.start_in_turn()
            finally:
                DlabSpawner._gpu_claims.pop(self.user.name, None)  # its container holds the label now
            await self.wait_answering(ip, port)
        return ip, port

    async def start_in_turn(self):
        profile = checked_options(self, self.user_options)["profile"]
        self.image = self.gpu_image if profile == "gpu" else self.cpu_image
        host_config = dict(self.extra_host_config)
        host_config.pop("device_requests", None)
        host_config.pop("group_add", None)  # an instructor's, below: a role can change between starts
        # The image's answers, out of a student's sight: an empty read-only folder over each (by role,
        # which can change between starts too).
        tmpfs = {path: options for path, options in host_config.get("tmpfs", {}).items()
                 if path not in (ASSIGNMENTS_DIR, SOLUTIONS_DIR)}
        hidden = hidden_folders(self.lab_solutions, self.is_instructor())
        host_config["tmpfs"] = {**tmpfs, **dict.fromkeys(hidden, EMPTY_FOLDER)}
        if self._class_create_kwargs is None:
            self._class_create_kwargs = dict(self.extra_create_kwargs)
        create_kwargs = {**self._class_create_kwargs, "labels": dict(self._class_create_kwargs.get("labels", {}))}
        self._chosen_gpus = ()
        if profile == "gpu":
            host_config["device_requests"] = gpu_device_requests(await self.choose_gpus())
            if self._chosen_gpus:
                create_kwargs["labels"]["org.dlab.gpus"] = ",".join(self._chosen_gpus)
        self.extra_host_config = host_config
        self.extra_create_kwargs = create_kwargs
        self.log.info("dlab: starting %s's %s server from %s", self.user.name, profile, self.image)
        await self.prepare_home()
        if self._class_volumes is None:
            self._class_volumes = dict(self.volumes)  # as configured: the home and the datasets
        folders, sized = await self.class_folders()
        graded, graded_sized, mounts = self.assignment_folders(self._handin_source)
        if self.course_id:  # (none on a swarm, where SwarmSpawner's mounts are a property of its own)
            self.mounts = mounts
        folders.update(graded)
        sized += graded_sized
        if self.home_size:
            home = next(host for host, bind in self.volume_binds.items() if bind["bind"] == self.notebook_dir)
            sized.insert(0, (home, self.home_size, None, {}))
        if sized:
            await self.ensure_sized_volumes(sized)
        if graded:
            await self.lay_out()
            if self.is_instructor():  # the exchange's feedback folder is this group's
                self.extra_host_config = {**host_config, "group_add": [str(self.graders_gid)]}
        self.volumes = {**self._class_volumes, **folders}
        try:
            return await super().start()
        except docker.errors.ImageNotFound as error:
            raise web.HTTPError(
                503, f"The image {self.image} is not on this server: the organizer builds it with "
                f"`{self.build_advice.replace('build', 'build-gpu', 1) if profile == 'gpu' else self.build_advice}`.") from error
        except docker.errors.APIError as error:
            if error.status_code == 409 and "already in use" in str(error):
                raise web.HTTPError(
                    409, f"A container named {self.object_name} exists and is not this server: the "
                    "organizer removes it (docker rm) or checks what made it.") from error
            if "device driver" in str(error) or "nvidia" in str(error).lower():
                raise web.HTTPError(
                    503, "The GPU profile could not get a GPU from Docker: the server needs an NVIDIA "
                    f"driver and the NVIDIA container toolkit. Choose 'cpu' meanwhile. ({error.explanation})"
                ) from error
            raise
