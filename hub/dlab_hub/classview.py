"""The organizer's view of the class (the page /hub/classview, dlab_hub.classview_pages) and the
per-student metrics on the hub's /hub/metrics: one collector in the hub's process that looks every
DLAB_CLASS_VIEW_EVERY seconds at each student's server and keeps one row a student, the class's
totals and a day of history (one point a minute), all of bounded size.

What it reads, and from where (nothing a student can write is trusted for it):
- the state of each server (running, starting, stopping, stopped, failed and why) and its times,
  from the hub's own memory and database;
- memory and CPU of each running container (labelled by the hub: org.dlab.hub, org.dlab.user), from
  the host's cgroup files, which compose.yaml mounts read-only into the hub (the kernel's own counts,
  read for nothing), else from the Docker engine's one-shot statistics; the GPU cards from the
  labels the spawner set, their use from nvidia-smi in a throwaway container (only where the engine
  has the NVIDIA runtime);
- the home's and hand-in's use against their size: the file systems' own counts (statvfs), in a
  throwaway container of dlab/hub that mounts the running students' volumes read-only, as nobody,
  with no network, every fourth look. Sizes only: no file name is ever read.

The engine is asked in threads, each call with a timeout: a slow engine makes the rows older, never
the hub's pages slower (the pages serve the last look).
"""
import asyncio
import collections
import os
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import requests
from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

from dlab_hub.classview_readings import (cgroup_usage, cpu_cores, epoch, memory_used, parse_gpus, parse_statvfs,
                                         server_state, statvfs_script)

CLASSVIEW_SCOPE = "custom:dlab:classview"  # the organizer and the instructors group (dlab_hub.config)
HOME, HANDIN = "/home/jovyan", "/srv/handin"  # where a student's server mounts them (~/handin links there)
HISTORY_POINTS = 24 * 60  # a day, one point a minute
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)  # refused, or past the client's timeout


class ClassView(LoggingConfigurable):
    """The collector; its settings come from dlab_hub.config (update_class_view)."""

    every = Integer(15, config=True, help="Seconds between looks (DLAB_CLASS_VIEW_EVERY); 0: none.")
    prefix = Unicode("dlab", config=True, help="The class's containers carry org.dlab.hub=PREFIX.")
    max_servers = Integer(0, config=True, help="Servers at once, at most (0: no limit).")
    machine_memory = Integer(0, config=True, help="Bytes of the machine's memory.")
    sized_homes = Bool(True, config=True, help="Homes are file systems of their own size (DLAB_HOME_SIZE).")
    sized_handins = Bool(True, config=True, help="Hand-in folders are file systems of their own size.")
    meter_image = Unicode("dlab/hub:latest", config=True, help="The image of the throwaway meter.")
    gpu_image = Unicode("", config=True, help="The GPU profile's image (its servers hold every card).")
    gpus = Bool(False, config=True, help="The engine has the NVIDIA runtime: measure the cards.")
    disk_every = Integer(4, config=True, help="Looks between two measures of the homes and the cards.")
    cgroups = Unicode("/host/cgroup", config=True, help="Where the host's /sys/fs/cgroup is mounted (compose.yaml).")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows = {}            # name: row (a dict), one a student of the class
        self.cards = {}           # card: (util %, used, total)
        self.totals = {}
        self.history = collections.deque(maxlen=HISTORY_POINTS)  # (time, servers running, memory bytes)
        self.looked = 0.0         # when the last look ended
        self.cpu_seen = {}        # container id: (CPU ns, time), of the last look
        self.disk = {}            # volume: (size, used), of the last measure
        self.looks = 0
        self.pool = ThreadPoolExecutor(16, thread_name_prefix="dlab-classview")  # idle ones are cheap
        self.engine = None

    # -- the engine, in threads ------------------------------------------------------------------
    def containers(self):
        """The class's students' containers (the spawner labels them), running or not."""
        return [c for c in self.engine.api.containers(all=True, filters={"label": f"org.dlab.hub={self.prefix}"})
                if (c.get("Labels") or {}).get("org.dlab.user")]

    def usage(self, container_id):
        """(memory used, memory limit, CPU ns, when): from the host's cgroup files where the hub sees
        them (compose.yaml mounts them read-only: reading them costs nothing), else the engine's
        one-shot statistics (dockerd answers each at its next 1 s tick, hence the threads)."""
        try:
            reading = cgroup_usage(pathlib.Path(self.cgroups), container_id)
        except (OSError, ValueError, KeyError):  # gone meanwhile, or a layout not foreseen
            reading = None
        if reading is None:
            stats = self.engine.api.stats(container_id, stream=False, one_shot=True)
            cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
            reading = memory_used(stats), (stats.get("memory_stats") or {}).get("limit"), cpu
        return (*reading, time.time())

    def throwaway(self, command, **host_config):
        """Run command in a throwaway container of the meter image and return what it printed: made
        with the low-level API (never a pull, whatever the tag), waited for at most a minute,
        removed whatever happens (a meter left behind would hold every home it mounts)."""
        api = self.engine.api
        container = api.create_container(self.meter_image, command, entrypoint=[], user=host_config.pop("user", "65534:65534"),
                                         network_disabled=True, labels={"org.dlab.meter": self.prefix},
                                         host_config=api.create_host_config(network_mode="none", **host_config))
        try:
            api.start(container["Id"])
            if api.wait(container["Id"], timeout=60)["StatusCode"] != 0:
                raise docker.errors.DockerException(api.logs(container["Id"], stdout=False, stderr=True).decode(errors="replace")[:300])
            return api.logs(container["Id"], stdout=True, stderr=False)
        finally:
            api.remove_container(container["Id"], force=True)

    def meter(self, volumes):
        """Size and use of each volume, by statvfs in a throwaway container (no network, no
        capability, nobody, read-only mounts). Only volumes that still exist: a bind of a volume
        removed since the list would make an empty one of its name."""
        present = {v["Name"] for v in self.engine.api.volumes(filters={"name": self.prefix}).get("Volumes") or []}
        volumes = [volume for volume in volumes if volume in present]
        if not volumes:
            return {}
        out = self.throwaway(statvfs_script(len(volumes)), cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
                             read_only=True, mem_limit="64m", pids_limit=16,
                             binds={volume: {"bind": f"/v/{i}", "mode": "ro"} for i, volume in enumerate(volumes)})
        return dict(zip(volumes, parse_statvfs(out)))

    def gpu_use(self):
        return parse_gpus(self.throwaway(
            ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"],
            user="root", device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]))

    async def ask(self, function, *args):
        return await asyncio.wrap_future(self.pool.submit(function, *args))

    # -- one look ----------------------------------------------------------------------------------
    def hub_rows(self, app):
        """A row for each of the class's accounts, from the hub's memory and database."""
        from jupyterhub import orm
        rows = {}
        for orm_user in app.db.query(orm.User):
            user = dict.get(app.users, orm_user.id)  # only a user the hub holds already: make none
            spawner = dict.get(user.spawners, "") if user is not None else None
            orm_spawner = orm_user.orm_spawners.get("")
            state, reason = server_state(spawner, orm_spawner)
            started = orm_spawner.started if orm_spawner is not None and state != "stopped" else None
            rows[orm_user.name] = {
                "name": orm_user.name, "state": state, "reason": reason, "admin": bool(orm_user.admin),
                "last_activity": epoch(orm_user.last_activity), "started": epoch(started),
                "memory": None, "memory_limit": None, "cpu": None, "gpus": "", "gpu_util": None,
                "gpu_memory": None, "gpu_memory_total": None, "home": None, "handin": None}
        return rows

    async def look(self, app):
        try:
            await self.look_once(app)
        finally:
            self.looks += 1  # a failed look too: the meter waits its turn, as on a good one

    async def look_once(self, app):
        rows, now = self.hub_rows(app), time.time()
        containers = await self.ask(self.containers)
        running = [c for c in containers if c.get("State") == "running" and c["Labels"]["org.dlab.user"] in rows]
        answers = await asyncio.gather(*(self.ask(self.usage, c["Id"]) for c in running), return_exceptions=True)
        seen = {}
        for container, answer in zip(running, answers):
            row = rows[container["Labels"]["org.dlab.user"]]
            if isinstance(answer, Exception):
                continue
            row["memory"], row["memory_limit"], cpu, when = answer
            if cpu is not None:
                seen[container["Id"]] = (cpu, when)
                row["cpu"] = cpu_cores(self.cpu_seen.get(container["Id"]), seen[container["Id"]])
            labels = container["Labels"]
            row["gpus"] = labels.get("org.dlab.gpus") or ("all" if self.gpu_image and container.get("Image") == self.gpu_image else "")
        self.cpu_seen = seen
        if self.looks % self.disk_every == 0:
            await self.measure(running)
        for container in running:
            row = rows[container["Labels"]["org.dlab.user"]]
            for key, path, sized in (("home", HOME, self.sized_homes), ("handin", HANDIN, self.sized_handins)):
                volume = next((m.get("Name") for m in container.get("Mounts") or [] if m.get("Destination") == path), None)
                if sized and volume in self.disk:
                    row[key] = self.disk[volume]
            cards = [card for card in row["gpus"].split(",") if card] if row["gpus"] != "all" else list(self.cards)
            if cards and all(card in self.cards for card in cards):
                row["gpu_util"] = max(self.cards[card][0] for card in cards)
                row["gpu_memory"] = sum(self.cards[card][1] for card in cards)
                row["gpu_memory_total"] = sum(self.cards[card][2] for card in cards)
        for name, row in rows.items():  # a stopped server's folders: as last measured
            old = self.rows.get(name)
            if old and row["home"] is None and row["state"] != "running":
                row["home"], row["handin"] = old["home"], old["handin"]
        self.rows, self.looked = rows, time.time()
        self.totals = self.class_totals(rows)
        if not self.history or now - self.history[-1][0] >= 60:
            self.history.append((round(now), self.totals["servers"], self.totals["memory"]))

    async def measure(self, running):
        volumes = sorted({m["Name"] for c in running for m in c.get("Mounts") or []
                          if m.get("Name") and ((m.get("Destination") == HOME and self.sized_homes)
                                                or (m.get("Destination") == HANDIN and self.sized_handins))})
        try:
            self.disk = await self.ask(self.meter, volumes)
        except ENGINE_ERRORS as error:  # a volume removed meanwhile, an engine slow to answer: the next measure
            self.log.warning("dlab: the class view could not measure the homes: %s", str(error)[:300])
            await self.ask(self.remove_leftovers)  # a meter the timeout left behind
        if self.gpus:
            try:
                self.cards = await self.ask(self.gpu_use)
            except ENGINE_ERRORS as error:
                self.log.warning("dlab: the class view could not measure the GPUs: %s", str(error)[:300])
                await self.ask(self.remove_leftovers)

    def class_totals(self, rows):
        states = collections.Counter(row["state"] for row in rows.values())
        disk = os.statvfs("/")  # the hub's root: Docker's disk, where the images, volumes and homes live
        return {"servers": states["running"], "starting": states["starting"], "failed": states["failed"],
                "accounts": len(rows), "max_servers": self.max_servers,
                "memory": sum(row["memory"] or 0 for row in rows.values()), "machine_memory": self.machine_memory,
                "disk": disk.f_blocks * disk.f_frsize, "disk_used": (disk.f_blocks - disk.f_bfree) * disk.f_frsize,
                "gpus": {card: {"util": u, "memory": m, "memory_total": t} for card, (u, m, t) in self.cards.items()}}

    def snapshot(self):
        """What the page shows: the rows, the totals, the day's history, when it was looked at."""
        return {"rows": sorted(self.rows.values(), key=lambda row: row["name"]), "totals": self.totals,
                "history": list(self.history), "looked": self.looked, "every": self.every}

    # -- running ------------------------------------------------------------------------------------
    async def run(self):
        """Look every `every` seconds for as long as the hub runs; a failed look is said and retried."""
        from jupyterhub.app import JupyterHub
        self.engine = docker.from_env(timeout=10, max_pool_size=16)  # a connection for each thread
        await self.ask(self.remove_leftovers)
        app = JupyterHub.instance()
        while getattr(app, "users", None) is None or getattr(app, "db", None) is None:
            await asyncio.sleep(1)
        while True:
            started = time.monotonic()
            try:
                await self.look(app)
            except ENGINE_ERRORS as error:  # the engine is down or slow: said in a line, the rows kept
                self.log.warning("dlab: the class view could not ask the Docker engine (%s); it looks again in %d s",
                                 str(error)[:200], self.every)
            except Exception:
                self.log.exception("dlab: the class view's look failed; it looks again in %d s", self.every)
            await asyncio.sleep(max(1.0, self.every - (time.monotonic() - started)))

    def remove_leftovers(self):
        """Meters of an earlier hub stopped in the middle of a measure, or one past its timeout."""
        try:
            for container in self.engine.api.containers(all=True, filters={"label": f"org.dlab.meter={self.prefix}"}):
                self.engine.api.remove_container(container["Id"], force=True)
        except ENGINE_ERRORS as error:
            self.log.warning("dlab: the class view could not remove its last meter: %s", str(error)[:200])


VIEW = None  # the hub's one collector (start)


def start(config):
    """In the hub's process (jupyterhub_config.py): make the collector from the configuration, put
    its metrics into the hub's /hub/metrics, and start its looks on the hub's event loop. Nothing
    when DLAB_CLASS_VIEW_EVERY is 0, or outside a running hub (jupyterhub upgrade-db reads the
    same configuration)."""
    global VIEW
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    view = ClassView(config=config)
    if view.every <= 0:
        return None
    from prometheus_client import REGISTRY
    from dlab_hub.classview_metrics import ClassMetrics
    REGISTRY.register(ClassMetrics(view))
    VIEW = view
    view.task = loop.create_task(view.run())
    return view
