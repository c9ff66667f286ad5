"""What the class view reads, read (hub/dlab_hub/classview.py): a container's memory and CPU from the
host's cgroup files or the engine's statistics, counted as `docker stats` counts them; a server's
state as the hub holds it; the meter's and nvidia-smi's answers. Pure functions of what they are
given (files under a root, a dict, bytes), tested by `make check` (tests/check/test_classview.py)."""
import datetime


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
