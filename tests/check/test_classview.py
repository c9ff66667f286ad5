"""The class view's pure parts (hub/dlab_hub/classview.py): Docker's statistics read as `docker
stats` reads them, the meter's and nvidia-smi's answers, a server's state, the metrics Prometheus
scrapes, who may see the page, and the settings. The real thing, with servers, chromium and
Prometheus, is tests/hub/test_hub_classview.py."""
import asyncio

import pytest
from jupyterhub.roles import get_default_roles
from jupyterhub.scopes import expand_scopes
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dlab_hub import classview_readings as classview
from dlab_hub.classview import CLASSVIEW_SCOPE, ClassView
from dlab_hub.classview_metrics import ClassMetrics
from dlab_hub.config import INSTRUCTOR_GROUP, Engine, configure
from dlab_hub.settings import load

# One-shot statistics as Docker 20.10 gave them here (cgroup v1), and the fields cgroup v2 names otherwise.
V1 = {"memory_stats": {"usage": 765952 + 4096 * 10, "limit": 268435456,
                       "stats": {"total_inactive_file": 4096 * 10, "total_rss": 106496, "cache": 0}},
      "cpu_stats": {"cpu_usage": {"total_usage": 30721137}}, "precpu_stats": {"cpu_usage": {"total_usage": 0}}}
V2 = {"memory_stats": {"usage": 50 * 2**20, "limit": 2**30, "stats": {"inactive_file": 10 * 2**20, "anon": 40 * 2**20}}}


def settings(**given):
    _, s, problems, _ = load(given)
    assert not problems, problems
    return s


def test_memory_is_counted_as_docker_stats_counts_it():
    assert classview.memory_used(V1) == 765952
    assert classview.memory_used(V2) == 40 * 2**20
    assert classview.memory_used({"memory_stats": {}}) is None  # a container that has just stopped


def test_cpu_is_the_cores_used_between_two_looks():
    assert classview.cpu_cores(None, (10**9, 100.0)) is None
    assert classview.cpu_cores((10**9, 100.0), (4 * 10**9, 102.0)) == pytest.approx(1.5)
    assert classview.cpu_cores((5 * 10**9, 100.0), (10**9, 115.0)) is None  # a new container of the same id's name


def test_the_meters_answers():
    assert classview.statvfs_script(2) == ["stat", "-f", "-c", "%b %f %S", "/v/0", "/v/1"]
    assert classview.parse_statvfs(b"29317 29000 4096\n14000 4000 4096\n") == [
        (29317 * 4096, 317 * 4096), (14000 * 4096, 10000 * 4096)]
    assert classview.parse_gpus(b"0, 87, 10240, 81920\n1, 0, 0, 81920\n[N/A], 1, 2, 3\n") == {
        "0": (87, 10240 * 2**20, 81920 * 2**20), "1": (0, 0, 81920 * 2**20)}


def finished(error=None, cancelled=False):
    """A start's future as JupyterHub leaves it on its spawner: failed with `error`, or cancelled."""
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    future.cancel() if cancelled else future.set_exception(error)
    loop.close()
    return future


class Spawner:
    """What server_state reads of JupyterHub's Spawner, set as JupyterHub sets it."""

    def __init__(self, pending=None, ready=False, spawn_future=None):
        self.pending, self.ready, self._spawn_future = pending, ready, spawn_future


class OrmSpawner:
    def __init__(self, server):
        self.server = server


def test_a_servers_state_and_why_a_start_failed():
    from tornado import web
    assert classview.server_state(Spawner("spawn"), None) == ("starting", "")
    assert classview.server_state(Spawner("stop"), None) == ("stopping", "")
    assert classview.server_state(Spawner(ready=True), None) == ("running", "")
    refused = web.HTTPError(500, "A container named dlab.ada exists and is not this server: the organizer removes it")
    assert classview.server_state(Spawner(spawn_future=finished(refused)), None) == (
        "failed", "A container named dlab.ada exists and is not this server: the organizer removes it")
    assert classview.server_state(Spawner(spawn_future=finished(TimeoutError("x" * 1000))), None)[1] == "x" * 300
    # A start cancelled by a stop is no failure (and its exception() would raise CancelledError).
    assert classview.server_state(Spawner(spawn_future=finished(cancelled=True)), None) == ("stopped", "")
    # Not yet in the hub's memory since it started: the database says whether it runs.
    assert classview.server_state(None, OrmSpawner(server=object())) == ("running", "")
    assert classview.server_state(None, OrmSpawner(server=None)) == ("stopped", "")
    assert classview.server_state(None, None) == ("stopped", "")


def row(name, **values):
    base = {"name": name, "state": "stopped", "reason": "", "admin": False, "last_activity": None, "started": None,
            "memory": None, "memory_limit": None, "cpu": None, "gpus": "", "gpu_util": None, "gpu_memory": None,
            "gpu_memory_total": None, "home": None, "handin": None}
    return {**base, **values}


def test_the_metrics_name_each_student_once_and_leave_no_one_behind():
    view = ClassView(every=15)
    view.rows = {"ada": row("ada", state="running", memory=300 * 2**20, memory_limit=2**30, cpu=0.5,
                            home=(5 * 2**30, 2**30), handin=(2**30, 0), last_activity=1.7e9, started=1.7e9),
                 "bo": row("bo", state="failed", reason="no room")}
    view.totals = {"servers": 1, "max_servers": 44, "memory": 300 * 2**20, "machine_memory": 24 * 2**30,
                   "disk": 10**12, "disk_used": 10**11}
    registry = CollectorRegistry()
    registry.register(ClassMetrics(view))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode()) for s in family.samples}
    assert samples[("dlab_server_state", (("state", "running"), ("user", "ada")))] == 1
    assert samples[("dlab_server_state", (("state", "stopped"), ("user", "ada")))] == 0
    assert samples[("dlab_server_state", (("state", "failed"), ("user", "bo")))] == 1
    assert samples[("dlab_server_memory_bytes", (("user", "ada"),))] == 300 * 2**20
    assert samples[("dlab_home_used_bytes", (("user", "ada"),))] == 2**30
    assert samples[("dlab_home_size_bytes", (("user", "ada"),))] == 5 * 2**30
    assert samples[("dlab_class_servers", ())] == 1 and samples[("dlab_class_max_servers", ())] == 44
    assert ("dlab_server_memory_bytes", (("user", "bo"),)) not in samples  # nothing measured: no value
    del view.rows["bo"]  # bo's account removed: bo's series end at the next scrape
    assert 'user="bo"' not in generate_latest(registry).decode()


def test_only_the_organizer_and_the_instructors_may_see_the_class():
    c, notes = configure(settings(DLAB_ADMIN="boss"), Engine())
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    holders = [role for role in roles.values() if CLASSVIEW_SCOPE in role.get("scopes", [])]
    assert [(r.get("users"), r.get("groups")) for r in holders] == [(["boss"], [INSTRUCTOR_GROUP])]
    assert CLASSVIEW_SCOPE in c.JupyterHub.custom_scopes
    # A student holds JupyterHub's default `user` role, and no server token carries the scope.
    user_role = next(role for role in get_default_roles() if role["name"] == "user")
    assert not any(scope.startswith("custom:") for scope in expand_scopes(frozenset(user_role["scopes"]) - {"self"}))
    assert CLASSVIEW_SCOPE not in c.Spawner.server_token_scopes
    assert c.JupyterHub.authenticate_prometheus is True
    assert "each 15 s" in notes[-1] and c.ClassView.every == 15 and c.ClassView.prefix == "dlab"
    assert c.ClassView.sized_homes and c.ClassView.sized_handins


def test_prometheus_gets_a_service_that_reads_the_metrics_alone():
    c, _ = configure(settings(), Engine())
    assert "prometheus" not in [service["name"] for service in c.JupyterHub.services]
    c, _ = configure(settings(DLAB_PROMETHEUS="on"), Engine())
    assert {"name": "prometheus"} in c.JupyterHub.services
    assert {"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]} in c.JupyterHub.load_roles


def test_the_view_follows_the_homes_it_can_measure():
    c, notes = configure(settings(DLAB_HOME_SIZE="0"), Engine())
    assert not c.ClassView.sized_homes and not c.ClassView.sized_handins
    c, _ = configure(settings(DLAB_HANDIN_SIZE="0"), Engine())
    assert c.ClassView.sized_homes and not c.ClassView.sized_handins
    c, notes = configure(settings(DLAB_CLASS_VIEW_EVERY="0"), Engine())
    assert c.ClassView.every == 0 and "no class page" in notes[-1]


@pytest.mark.parametrize("value", ["3", "301", "-1", "15s", "1.5"])
def test_a_mistyped_interval_says_what_it_takes(value):
    _, _, problems, _ = load({"DLAB_CLASS_VIEW_EVERY": value})
    assert problems and "0, or a whole number of seconds from 5 to 300" in problems[0]


def test_prometheus_and_the_class_cannot_share_a_port():
    _, _, problems, _ = load({"DLAB_PROMETHEUS": "on", "DLAB_PROMETHEUS_PORT": "8000"})
    assert problems and "give Prometheus another port" in problems[0]
    _, _, problems, _ = load({"DLAB_PROMETHEUS": "on", "DLAB_PROMETHEUS_PORT": "8000"}, applies=("hub", "both"))
    assert not problems  # the hub reads neither port


def write(folder, files):
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_memory_and_cpu_come_from_the_hosts_cgroup_files_in_each_layout(tmp_path):
    """The kernel's files as cgroup v2 (Docker's systemd driver) and v1 (cgroupfs, this machine's)
    write them; a container in neither layout gets None, and the engine's statistics then."""
    write(tmp_path / "v2" / "system.slice" / "docker-abc.scope", {
        "memory.current": "52428800\n", "memory.max": "1610612736\n",
        "memory.stat": "anon 41943040\nfile 10485760\ninactive_file 10485760\nactive_file 0\n",
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"})
    assert classview.cgroup_usage(tmp_path / "v2", "abc") == (40 * 2**20, 1610612736, 2_500_000_000)
    write(tmp_path / "v1" / "memory" / "docker" / "abc", {
        "memory.usage_in_bytes": "827392\n", "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.stat": "cache 0\nrss 106496\ntotal_inactive_file 4096\n"})
    write(tmp_path / "v1" / "cpuacct" / "docker" / "abc", {"cpuacct.usage": "25541702\n"})
    assert classview.cgroup_usage(tmp_path / "v1", "abc") == (823296, None, 25541702)  # no limit: None
    write(tmp_path / "v2" / "docker" / "unlimited", {"memory.current": "4096\n", "memory.max": "max\n",
                                                      "memory.stat": "anon 4096\n", "cpu.stat": "usage_usec 1\n"})
    assert classview.cgroup_usage(tmp_path / "v2", "unlimited") == (4096, None, 1000)
    assert classview.cgroup_usage(tmp_path / "v1", "elsewhere") is None
