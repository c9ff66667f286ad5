"""The organizer's view of the class (the page /hub/classview, dlab_hub.classview_pages) and the
per-student metrics on the hub's /hub/metrics: one collector in the hub's process that looks every
DLAB_CLASS_VIEW_EVERY seconds at each student's server and keeps one row a student, the class's
totals and a day of history (one point a minute), all of bounded size.

What it reads, and from where (nothing a student can write is trusted for it):
- the state of each server (running, starting, stopping, stopped, failed and why) and its times,
  from the hub's own memory and database;
- memory and CPU, from the Docker engine's statistics of each running container (labelled by the
  hub: org.dlab.hub, org.dlab.user); the GPU cards from the labels the spawner set, their use from
  nvidia-smi in a throwaway container (only where the engine has the NVIDIA runtime);
- the home's and hand-in's use against their size: the file systems' own counts (statvfs), in a
  throwaway container of dlab/hub that mounts the running students' volumes read-only, as nobody,
  with no network, every fourth look. Sizes only: no file name is ever read.

The engine is asked in threads, each call with a timeout: a slow engine makes the rows older, never
the hub's pages slower (the pages serve the last look).
"""
import asyncio
import collections
import datetime
import os
import time
from concurrent.futures import ThreadPoolExecutor

import docker
from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

CLASSVIEW_SCOPE = "custom:dlab:classview"  # the organizer and the instructors group (dlab_hub.config)
HOME, HANDIN = "/home/jovyan", "/srv/handin"  # where a student's server mounts them (~/handin links there)
HISTORY_POINTS = 24 * 60  # a day, one point a minute


def memory_used(stats):
    """A container's memory as `docker stats` counts it: its usage less the page cache it can drop
    at once (cgroup v1: total_inactive_file; v2: inactive_file)."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, memory.get("usage", 0) - inactive) if "usage" in memory else None


def cpu_cores(before, after):
    """Cores a container used between two looks: each look is (CPU nanoseconds used, the time in
    seconds). None without an earlier look, or with the counter gone back (a new container)."""
    if before is None or after[1] <= before[1] or after[0] < before[0]:
        return None
    return (after[0] - before[0]) / 1e9 / (after[1] - before[1])


def server_state(spawner, orm_spawner):
    """(state, reason) of a student's server: `spawner` is the hub's in-memory one (None if the hub
    has not made it since it started), `orm_spawner` its row in the database (None: never made)."""
    if spawner is not None:
        if spawner.pending == "spawn":
            return "starting", ""
        if spawner.pending == "stop":
            return "stopping", ""
        if spawner.ready:
            return "running", ""
        failed = spawner._failed  # JupyterHub keeps a failed start's exception until the next start
        if failed:
            return "failed", str(getattr(failed, "log_message", None) or failed)[:300]
        return "stopped", ""
    return ("running" if orm_spawner is not None and orm_spawner.server is not None else "stopped"), ""


def epoch(moment):
    """A database datetime (naive, UTC) as seconds since 1970; None stays None."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)).timestamp()


def statvfs_script(count):
    """The meter's command: `total used` bytes of each mount /v/0 ... /v/count-1, one a line."""
    return ["stat", "-f", "-c", "%b %f %S", *(f"/v/{i}" for i in range(count))]


def parse_statvfs(out):
    """stat -f's `blocks free blocksize` lines as [(size, used) bytes]."""
    sizes = []
    for line in out.decode(errors="replace").split("\n"):
        if line.strip():
            blocks, free, block = (int(x) for x in line.split())
            sizes.append((blocks * block, (blocks - free) * block))
    return sizes


def parse_gpus(out):
    """nvidia-smi's `index, utilization.gpu, memory.used, memory.total` (csv, no units): {card: (util %, used, total bytes)}."""
    cards = {}
    for line in out.decode(errors="replace").splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 4 and all(part.isdigit() for part in parts):
            cards[parts[0]] = (int(parts[1]), int(parts[2]) * 1024**2, int(parts[3]) * 1024**2)
    return cards


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
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="dlab-classview")
        self.engine = None

    # -- the engine, in threads ------------------------------------------------------------------
    def containers(self):
        """The class's students' containers (the spawner labels them), running or not."""
        return [c for c in self.engine.api.containers(all=True, filters={"label": f"org.dlab.hub={self.prefix}"})
                if (c.get("Labels") or {}).get("org.dlab.user")]

    def stats(self, container_id):
        return self.engine.api.stats(container_id, stream=False, one_shot=True)

    def meter(self, volumes):
        """Size and use of each volume, by statvfs in a throwaway container (no network, no
        capability, nobody, read-only mounts)."""
        if not volumes:
            return []
        out = self.engine.containers.run(
            self.meter_image, statvfs_script(len(volumes)), entrypoint=[], user="65534:65534", network_mode="none",
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], read_only=True, mem_limit="64m",
            pids_limit=16, remove=True, labels={"org.dlab.meter": self.prefix},
            volumes={volume: {"bind": f"/v/{i}", "mode": "ro"} for i, volume in enumerate(volumes)})
        return parse_statvfs(out)

    def gpu_use(self):
        out = self.engine.containers.run(
            self.meter_image, ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,memory.total",
                               "--format=csv,noheader,nounits"],
            entrypoint=[], user="root", network_mode="none", remove=True, labels={"org.dlab.meter": self.prefix},
            device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])])
        return parse_gpus(out)

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
        rows, now = self.hub_rows(app), time.time()
        containers = await self.ask(self.containers)
        running = [c for c in containers if c.get("State") == "running" and c["Labels"]["org.dlab.user"] in rows]
        answers = await asyncio.gather(*(self.ask(self.stats, c["Id"]) for c in running), return_exceptions=True)
        seen = {}
        for container, stats in zip(running, answers):
            row = rows[container["Labels"]["org.dlab.user"]]
            if isinstance(stats, Exception):
                continue
            row["memory"] = memory_used(stats)
            row["memory_limit"] = (stats.get("memory_stats") or {}).get("limit")
            usage = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
            if usage is not None:
                seen[container["Id"]] = (usage, now)
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
        self.looks += 1

    async def measure(self, running):
        volumes = sorted({m["Name"] for c in running for m in c.get("Mounts") or []
                          if m.get("Name") and ((m.get("Destination") == HOME and self.sized_homes)
                                                or (m.get("Destination") == HANDIN and self.sized_handins))})
        try:
            sizes = await self.ask(self.meter, volumes)
            self.disk = dict(zip(volumes, sizes))
        except docker.errors.DockerException as error:  # a volume removed meanwhile: at the next look
            self.log.warning("dlab: the class view could not measure the homes: %s", str(error)[:300])
        if self.gpus:
            try:
                self.cards = await self.ask(self.gpu_use)
            except docker.errors.DockerException as error:
                self.log.warning("dlab: the class view could not measure the GPUs: %s", str(error)[:300])

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
        self.engine = docker.from_env(timeout=10)
        await self.ask(self.remove_leftovers)
        app = JupyterHub.instance()
        while getattr(app, "users", None) is None or getattr(app, "db", None) is None:
            await asyncio.sleep(1)
        while True:
            started = time.monotonic()
            try:
                await self.look(app)
            except Exception:
                self.log.exception("dlab: the class view's look failed; it looks again in %d s", self.every)
            await asyncio.sleep(max(1.0, self.every - (time.monotonic() - started)))

    def remove_leftovers(self):
        """Meters of an earlier hub, stopped in the middle of a measure."""
        for container in self.engine.api.containers(all=True, filters={"label": f"org.dlab.meter={self.prefix}"}):
            try:
                self.engine.api.remove_container(container["Id"], force=True)
            except docker.errors.DockerException:
                pass


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
