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
import datetime
import os
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import requests
from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

CLASSVIEW_SCOPE = "custom:dlab:classview"  # the organizer and the instructors group (dlab_hub.config)
HOME, HANDIN = "/home/jovyan", "/srv/handin"  # where a student's server mounts them (~/handin links there)
HISTORY_POINTS = 24 * 60  # a day, one point a minute
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)  # refused, or past the client's timeout


def memory_used(stats):
    """A container's memory as `docker stats` counts it: its usage less the page cache it can drop
    at once (cgroup v1: total_inactive_file; v2: inactive_file)."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, memory.get("usage", 0) - inactive) if "usage" in memory else None


def read_number(path):
    """A cgroup file's number; None for "max" (no limit) or v1's no-limit value (about 2**63)."""
    text = path.read_text().split()[0]
    return None if text == "max" or int(text) >= 2**62 else int(text)


def cgroup_usage(root, container_id):
    """(memory used, memory limit, CPU nanoseconds) of a container from the host's cgroup files
    under `root` (cgroup v2 or v1, Docker's cgroupfs or systemd driver), counted as `docker stats`
    counts them; None where none of those layouts holds it (the engine's statistics then). The kernel
    writes these files: nothing in the container can change them."""
    for folder in (root / "system.slice" / f"docker-{container_id}.scope", root / "docker" / container_id):  # v2
        if (folder / "memory.current").exists():
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            cpu = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())
            used = max(0, read_number(folder / "memory.current") - int(stat.get("inactive_file", 0)))
            return used, read_number(folder / "memory.max"), int(cpu["usage_usec"]) * 1000
    for parts in (("docker", container_id), ("system.slice", f"docker-{container_id}.scope")):  # v1
        memory, cpu = root.joinpath("memory", *parts), root.joinpath("cpuacct", *parts)
        if (memory / "memory.usage_in_bytes").exists() and (cpu / "cpuacct.usage").exists():
            stat = dict(line.split() for line in (memory / "memory.stat").read_text().splitlines())
            used = max(0, read_number(memory / "memory.usage_in_bytes") - int(stat.get("total_inactive_file", 0)))
            return used, read_number(memory / "memory.limit_in_bytes"), read_number(cpu / "cpuacct.usage")
    return None


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
        # JupyterHub keeps a failed start's exception until the next start (its Spawner._failed,
        # read here so that a cancelled start, whose exception() raises, is no failure).
        future = spawner._spawn_future
        failed = future is not None and future.done() and not future.cancelled() and future.exception()
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
