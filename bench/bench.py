#!/usr/bin/env python3
"""make bench: measure what users wait for, and write it into the tables of docs/performance.md and
docs/labs.md (between their <!-- NAME:start --> and <!-- NAME:end --> markers).

Cold by default: dlab's images and the build cache are removed first, so the figures are those of
a fresh machine (the OS base included). BENCH_WARM=1 keeps the cache (rebuild figures instead).
"""
import contextlib
import json
import os
import platform
import pathlib
import re
import subprocess
import sys
import time
import urllib.request

from curriculum import BACKENDS_LAB, LABS, REPORT_MIME, headless_parameters, lab_backends

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The pages whose tables make bench writes: the labs' times and lessons, and the rest.
LABS_DOC, PERFORMANCE_DOC = ROOT / "docs" / "labs.md", ROOT / "docs" / "performance.md"
LAB_RESULTS = ROOT / ".build" / "bench-labs.json"
RESULTS = ROOT / ".build/bench.json"
LESSON_RESULTS = ROOT / ".build" / "bench-lessons.json"


def sh(*command, **kwargs):
    return subprocess.run(command, cwd=ROOT, check=True, text=True, capture_output=True, **kwargs).stdout


def timed(*command):
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.monotonic() - start


def size_gb(image):
    return int(sh("docker", "image", "inspect", "-f", "{{.Size}}", image)) / 1e9


def lab_ready_seconds(image):
    """docker run until the Jupyter server answers /api: what a learner waits for after `make lab`."""
    start = time.monotonic()
    cid = sh("docker", "run", "-d", "-p", "127.0.0.1::8888", image).strip()
    try:
        port = sh("docker", "port", cid, "8888/tcp").split()[0].rsplit(":", 1)[1]
        while time.monotonic() - start < 120:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2)
                return time.monotonic() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{image} did not answer within 120 s")
    finally:
        sh("docker", "rm", "-f", cid)


def import_seconds(image, module):
    """First import of a framework in a new container (what the first notebook cell costs)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(["docker", "run", "--rm", image, "python", "-c", code], check=True, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return float(out.split()[-1])


@contextlib.contextmanager
def lab_container(image, data_volume=None):
    """A running student's server, with the data volume mounted read-only at /srv/data (None:
    the packaged fallbacks); yields its id once the labs are in ~/labs."""
    data = ["-v", f"{data_volume}:/srv/data:ro"] if data_volume else []
    cid = sh("docker", "run", "-d", *data, image).strip()
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(["docker", "exec", cid, "test", "-f", "/home/jovyan/labs/.dlab-labs.json"]).returncode:
            if time.monotonic() > deadline:
                sys.exit("bench: the labs never appeared in ~/labs")
            time.sleep(0.5)
        yield cid
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def run_lab(cid, lab, parameters=None):
    """papermill, as a student runs the lab headless; returns (its dlab.report, minutes)."""
    parameters = {**headless_parameters(lab), **(parameters or {})}
    args = [a for name, value in parameters.items() for a in ("-p", name, str(value))]
    started = time.perf_counter()
    subprocess.run(["docker", "exec", "-w", "/home/jovyan/labs", cid, "papermill", "--no-progress-bar",
                    f"{lab}.ipynb", f"/tmp/{lab}.ipynb", *args], check=True, capture_output=True)
    minutes = (time.perf_counter() - started) / 60
    executed = json.loads(sh("docker", "exec", cid, "cat", f"/tmp/{lab}.ipynb"))
    reports = [o["data"][REPORT_MIME] for c in executed["cells"] for o in c.get("outputs", [])
               if REPORT_MIME in o.get("data", {})]
    return (reports[0] if reports else {}), minutes


def lab_minutes(image, data_volume):
    """Each lab at its default settings, as a student runs it."""
    minutes = {}
    only = os.environ.get("BENCH_LABS", "").split()  # e.g. BENCH_LABS="09-gan": re-time one lab
    with lab_container(image, data_volume) as cid:
        for lab in LABS:
            if not only or lab in only:
                minutes[lab] = run_lab(cid, lab)[1]
                print(f"bench: {lab} {minutes[lab]:.1f} min ({data_volume or 'fallback data'})", flush=True)
    return minutes


def bench_lessons(image="dlab/cpu", seeds=(0, 1, 2)):
    """Every lab at its defaults on every Keras backend it offers and three seeds, on the packaged
    (real) data: does its lesson hold, and by what margin? Written to docs/labs.md's lessons table."""
    only = os.environ.get("BENCH_LABS", "").split()
    earlier = json.loads(LESSON_RESULTS.read_text()) if LESSON_RESULTS.exists() else {}
    runs = {key: run for key, run in earlier.get("runs", {}).items() if only and key.split("/")[0] not in only}
    with lab_container(image) as cid:
        for lab in LABS:
            if only and lab not in only:
                continue
            for seed in seeds:
                backends = lab_backends(lab)
                if lab == BACKENDS_LAB:
                    # It compares with the weights the other backends saved: the first one runs again last.
                    sh("docker", "exec", cid, "rm", "-rf", "/home/jovyan/labs/results/11-keras-backends")
                    backends = backends + backends[:1]
                for backend in backends:
                    parameters = {"SEED": seed, **({"BACKEND": backend} if backend else {})}
                    report, minutes = run_lab(cid, lab, parameters)
                    lesson = report.get("lesson") or {}
                    runs[f"{lab}/{backend or '-'}/{seed}"] = {"minutes": minutes, **lesson}
                    print(f"bench: {lab} {backend or ''} seed {seed}: {lesson.get('measured')} "
                          f"(needed {lesson.get('needed')}) in {minutes:.1f} min", flush=True)
    LESSON_RESULTS.parent.mkdir(exist_ok=True)
    LESSON_RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                                          "image": image, "seeds": list(seeds), "runs": runs}, indent=1))
    write_lessons_table(json.loads(LESSON_RESULTS.read_text()))


def write_lessons_table(r):
    def shown(run):
        mark = "" if run.get("holds") else " ✗"
        return f"{run['measured']:.3g}{mark}" if run.get("measured") is not None else "—"

    seeds = r["seeds"]
    rows = ["| lab | lesson | needed | backend | " + " | ".join(f"seed {s}" for s in seeds) + " | smallest margin | minutes |",
            "|---|---|---|---|" + "---|" * len(seeds) + "---|---|"]
    for lab in LABS:
        for n, backend in enumerate(lab_backends(lab)):
            cells = [r["runs"].get(f"{lab}/{backend or '-'}/{s}") for s in seeds]
            if not all(cells):
                continue
            margins = [c["margin"] for c in cells if c.get("margin") is not None]
            said = f"`{lab}` | {cells[0]['says']} | {cells[0]['needed']}" if n == 0 else " | | "
            rows.append(f"| {said} | {backend or 'its own'} | "
                        + " | ".join(shown(c) for c in cells)
                        + f" | {min(margins):.3g} | {max(c['minutes'] for c in cells):.1f} |")
    rows += ["", f"Measured by `make bench` (`BENCH_ONLY=lessons` for these alone) on {r['date']}, {r['cpus']} cores, "
             f"in `{r['image']}`, each lab at its default settings on the packaged data; ✗ marks a run where the "
             "lesson did not hold; minutes: the slowest seed."]
    write_section("lessons", rows)


def full_size_volume():
    """A data volume filled by dlab-data with stand-ins of the real datasets' sizes (random
    pixels, real formats), served locally: the real files cannot be downloaded everywhere, and
    training time depends on the sizes, not on the pixels."""
    from server import DataServer, registry_for

    files = ROOT / ".build" / "bench-data"
    if not (files / "mnist.npz").exists():
        files.mkdir(parents=True, exist_ok=True)
        files.chmod(0o777)
        sh("docker", "run", "--rm", "-v", f"{ROOT / 'tests' / 'data'}:/make:ro", "-v", f"{files}:/out",
           "dlab/cpu", "python", "/make/make_fake_datasets.py", "--full-size", "/out")
    volume = "dlab-bench-data"
    subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)
    with DataServer(files) as server:
        conf = ROOT / ".build" / "bench-registry.json"
        registry = json.loads((ROOT / "labs" / "dlab" / "registry.json").read_text())
        conf.write_text(json.dumps(registry_for(registry, files, server.url)))
        # Mounted at /srv/data, as make data does: a new volume takes that folder's owner (jovyan).
        sh("docker", "run", "--rm", "--network", "host", "-v", f"{volume}:/srv/data", "-v", f"{conf}:/conf.json:ro",
           "dlab/cpu", "dlab-data", "--registry", "/conf.json", "fetch", "--quiet", "--all")
    return volume


def bench_labs():
    """Each lab at its defaults twice: with full-size data, and with the packaged fallbacks."""
    full = lab_minutes("dlab/cpu", full_size_volume())
    fallback = lab_minutes("dlab/cpu", None)
    # Merged with earlier results, so that re-timing one lab (BENCH_LABS) keeps the others.
    earlier = json.loads(LAB_RESULTS.read_text()) if LAB_RESULTS.exists() else {}
    LAB_RESULTS.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
        "minutes_full_size": {**earlier.get("minutes_full_size", {}), **full},
        "minutes_fallback": {**earlier.get("minutes_fallback", {}), **fallback}}, indent=1))
    text = LABS_DOC.read_text()
    start, end = text.index("<!-- labs:start -->"), text.index("<!-- labs:end -->")
    table = text[start:end]
    for lab in full:
        # The last two cells of the lab's row in the curriculum table are its measured times.
        table = re.sub(rf"^(\| `{re.escape(lab)}`.*?\| )[^|]*\|[^|]*\|$",
                       lambda m: f"{m.group(1)}{full[lab]:.1f} min | {fallback[lab]:.1f} min |", table, flags=re.M)
    text = text[:start] + table + text[end:]
    text = re.sub(r"(<!-- labs:measured -->).*?(<!-- /labs:measured -->)",
                  lambda m: f"{m.group(1)}Measured by `make bench` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} "
                            f"cores, each lab at its default settings.{m.group(2)}", text, flags=re.S)
    LABS_DOC.write_text(text)


def hub_defaults():
    """The class server's own defaults for what the test hub sets otherwise (tests/hub/hubstack.py):
    the bench measures the class an organizer gets, every feature on (homes of a fixed size, the
    firewall, the idle culler, the labs' sync). Only DLAB_MAX_SERVERS is raised, for the class of 60."""
    from dlab_hub.settings import SETTINGS
    names = ("DLAB_MEM_LIMIT", "DLAB_CPU_LIMIT", "DLAB_PIDS_LIMIT", "DLAB_SHM_SIZE", "DLAB_TMP_SIZE",
             "DLAB_IDLE_TIMEOUT", "DLAB_HOME_SIZE", "DLAB_SPAWN_LIMIT", "DLAB_STARTS_AT_ONCE")
    return {**{setting.name: setting.default for setting in SETTINGS if setting.name in names}, "DLAB_MAX_SERVERS": "64"}


def machine_cpu_seconds():
    """CPU time the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def start_phases(image="dlab/cpu:latest"):
    """CPU seconds of each phase of a student's server start, in containers of the image run as the
    class server runs them: start.sh until the command (hooks: thread pools, the labs into a new
    home; the firewall), then in Python the imports of jupyterhub-singleuser, then the Jupyter
    server's set-up (extensions loaded, ready to listen)."""
    network, home = "dlab-bench-phases", "dlab-bench-phases-home"
    subprocess.run(["docker", "network", "create", network], capture_output=True)
    spawner_like = ["docker", "run", "--rm", "--network", network, "--user", "root", "--cap-drop", "ALL",
                    *[arg for cap in ("NET_ADMIN", "SETUID", "SETGID", "SETPCAP") for arg in ("--cap-add", cap)],
                    "--read-only", "--tmpfs", "/tmp", "-v", f"{home}:/home/jovyan", "-e", "DLAB_FIREWALL=egress",
                    "-e", "JUPYTERHUB_API_URL=http://hub:8081/hub/api", "-e", "JUPYTERHUB_DISABLE_USER_CONFIG=1",
                    "-e", "JUPYTER_DOCKER_STACKS_QUIET=1", image]
    # One Python: the CPU after the imports of jupyterhub-singleuser, then after the server's set-up
    # (its extensions loaded; JupyterHub's own needs a hub, so it is left out).
    # ARGV: the server's arguments; nbgrader's share is the set-up with and without its extensions.
    server = ("import resource, sys; cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]); "
              "import jupyterhub.singleuser; imported = cpu(); "
              "from jupyter_server.serverapp import ServerApp; from tornado.ioloop import IOLoop; "
              "app = ServerApp.instance(); app.initialize(argv=sys.argv[1:]); "
              "IOLoop.current().add_callback(IOLoop.current().stop); app.start(); print(imported, cpu() - imported)")
    # (a dict on the command line replaces the image's, so the image's two entries are said again)
    without_nbgrader = [f"--ServerApp.jpserver_extensions={name}" for name in (
        "nbgitpuller=False", "dlab_links=True", *(f"nbgrader.server_extensions.{part}=False" for part in (
            "formgrader", "assignment_list", "course_list", "validate_assignment")))]
    cgroup_cpu = ("cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null | awk '{print $1 / 1e9}' || "
                  "awk '/usage_usec/ {print $2 / 1e6}' /sys/fs/cgroup/cpu.stat")
    try:
        imports, setup = (float(x) for x in sh(*spawner_like, "python", "-s", "-c", server).split()[-2:])
        setup = min([setup, *(float(sh(*spawner_like, "python", "-s", "-c", server).split()[-1]) for _ in range(2))])
        bare = min(float(sh(*spawner_like, "python", "-s", "-c", server, *without_nbgrader).split()[-1]) for _ in range(3))
        phases = {"start_script_s": float(sh(*spawner_like, "bash", "-c", cgroup_cpu).split()[-1]),
                  "imports_s": imports, "server_setup_s": setup, "nbgrader_s": max(setup - bare, 0.0)}
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", home], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    return phases


def stock_hub(students):
    """The set-up an organizer would write by hand (bench/stock): jupyterhub-deploy-docker's basic
    example config, the same JupyterHub, the stock image built from the same lock. A class of
    `students` presses Start at once, as for dlab; returns class_starts' figures and CPU per start."""
    import secrets as tokens
    from classload import class_starts, cpu_seconds, memory_mib
    from hubstack import HubStack, free_port, wait_until
    subprocess.run(["scripts/build-images.sh", "stock"], cwd=ROOT, check=True)
    name, network, token, port = "dlabstock-jupyterhub", "dlabstock", tokens.token_hex(16), free_port()

    def remove():
        users = sh("docker", "ps", "-aq", "--filter", "name=^jupyter-").split()
        subprocess.run(["docker", "rm", "-f", name, *users], capture_output=True)
        volumes = sh("docker", "volume", "ls", "-q", "--filter", "name=^jupyterhub-user-").split()
        subprocess.run(["docker", "volume", "rm", "-f", "dlabstock-data", *volumes], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    remove()
    sh("docker", "network", "create", network)
    try:
        sh("docker", "run", "-d", "--name", name, "--network", network, "--network-alias", "jupyterhub",
           "--user", "root", "-p", f"127.0.0.1:{port}:8000", "-v", "/var/run/docker.sock:/var/run/docker.sock",
           "-v", "dlabstock-data:/data", "-v", f"{ROOT}/bench/stock/jupyterhub_config.py:/srv/jupyterhub/jupyterhub_config.py:ro",
           "-e", "DOCKER_NOTEBOOK_IMAGE=dlab-bench/stock:latest", "-e", f"DOCKER_NETWORK_NAME={network}",
           "-e", "JUPYTERHUB_ADMIN=admin", "-e", f"BENCH_TOKEN={token}",
           "dlab/hub:latest", "jupyterhub", "-f", "/srv/jupyterhub/jupyterhub_config.py")
        stock = HubStack()
        stock.port, stock.url, stock._admin_token = port, f"http://127.0.0.1:{port}", token
        wait_until(lambda: stock.request("GET", stock.url + "/hub/api/", timeout=5).ok, 120, "the stock hub")
        names = [f"stock{i:02d}" for i in range(students)]
        for user in names:
            stock.api("POST", f"/users/{user}").raise_for_status()
        result = class_starts(stock, names)
        cpus = sorted(cpu_seconds(f"jupyter-{user}") for user in names)
        time.sleep(20)
        idle = sorted(memory_mib(f"jupyter-{user}") for user in names)
        result.update(start_cpu_s=cpus[len(cpus) // 2], idle_mib=idle[len(idle) // 2],
                      failed=len(result["failed_starts"]), failed_students=len(set(result["failed_starts"])))
        return result
    finally:
        remove()


def bench_hub():
    """The class server with its default limits and features: make up until healthy, one student's
    first and second start, classes of 10, 30 and 60 pressing Start at once, a class of 30 signing
    up and starting, a pre-started class of 30 logging in, the first JupyterLab page in chromium,
    memory; and the hand-made set-up (stock_hub) beside it, in the same run."""
    import shutil
    from classload import (PASSWORD, class_arrives, class_leaves, class_logs_in, class_starts, cpu_seconds,
                           lab_page_load, memory_mib)
    from hubstack import PREFIX, HubStack, remove_test_stack
    from playwright.sync_api import sync_playwright

    defaults = hub_defaults()
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "settings": defaults, "phases": start_phases()}
    print(f"bench: a start's phases: {r['phases']}", flush=True)
    remove_test_stack()
    stack = HubStack()
    try:
        started = time.perf_counter()
        stack.restart(**defaults)
        r["up_s"] = time.perf_counter() - started
        stack.api("POST", "/users/first")
        started = time.perf_counter()
        stack.start_server("first")
        r["first_spawn_s"] = time.perf_counter() - started  # a new home: made, and the labs copied in
        stack.stop_server("first")
        spawns, cpus = [], []
        for _ in range(3):  # the home exists; the median of three
            started = time.perf_counter()
            stack.start_server("first")
            spawns.append(time.perf_counter() - started)
            cpus.append(cpu_seconds(f"{PREFIX}.first"))  # the container's CPU from its start until ready
            stack.stop_server("first")
        r["spawn_s"], r["start_cpu_s"] = sorted(spawns)[1], sorted(cpus)[1]
        # Classes pressing Start at the same moment, accounts made, homes new (their first session).
        r["classes"] = {}
        for students in (10, 30, 60):
            names = [f"c{students}s{i:02d}" for i in range(students)]
            for name in names:
                stack.api("POST", f"/users/{name}").raise_for_status()
            busy, hub_cpu, proxy_cpu = machine_cpu_seconds(), cpu_seconds(f"{PREFIX}-hub"), cpu_seconds(f"{PREFIX}-proxy")
            load = class_starts(stack, names)
            busy = machine_cpu_seconds() - busy
            hub_cpu, proxy_cpu = cpu_seconds(f"{PREFIX}-hub") - hub_cpu, cpu_seconds(f"{PREFIX}-proxy") - proxy_cpu
            assert load["ready"] == students and not load["server_errors"] and not load["failed_starts"], load
            cpus = sorted(cpu_seconds(f"{PREFIX}.{name}") for name in names)
            figures = {key: load[key] for key in ("median_s", "worst_s")}
            figures.update(limit_answers=len(load["limit_answers"]), start_cpu_median_s=cpus[students // 2],
                           start_cpu_max_s=cpus[-1],
                           # per start, the machine's CPU outside the students' containers: the hub (its
                           # polls by this bench included), the proxy, and the rest (Docker, the homes' helper)
                           hub_cpu_per_start_s=hub_cpu / students, proxy_cpu_per_start_s=proxy_cpu / students,
                           other_cpu_per_start_s=(busy - sum(cpus) - hub_cpu - proxy_cpu) / students)
            if students >= 30:
                time.sleep(20)  # idle: JupyterLab's server, no kernel
                idle = sorted(memory_mib(f"{PREFIX}.{name}") for name in names)
                figures.update(idle_mib_median=idle[students // 2], idle_mib_max=idle[-1],
                               hub_mib=memory_mib(f"{PREFIX}-hub"), proxy_mib=memory_mib(f"{PREFIX}-proxy"))
            r["classes"][students] = figures
            print(f"bench: class of {students}: {figures}", flush=True)
            class_leaves(stack, names)
        # A class of 30 arriving with nothing made: sign up (bcrypt), log in, start, all together.
        stack.restart(**defaults, DLAB_CLASS_CODE="bench")
        load = class_arrives(stack, 30, "bench")
        assert load["ready"] == 30 and not load["server_errors"], load["server_errors"][:3]
        r["arrival"] = {key: load[key] for key in ("median_s", "worst_s")}
        r["arrival"]["limit_answers"] = len(load["limit_answers"])
        first = load["names"][0]
        _, error = stack.run_code(first, "import tensorflow, torch, jax", shutdown=False)
        assert error is None, error
        r["student_with_frameworks_mib"] = memory_mib(f"{PREFIX}.{first}")
        class_leaves(stack, load["names"])
        # Servers ready before the class: make prestart, then 30 log in at the same moment.
        names = [f"pre{i:02d}" for i in range(30)]
        for name in names:
            assert "account is ready" in stack.signup(name, PASSWORD, class_code="bench")
        started = time.perf_counter()
        stack.script("prestart")
        r["prestart_s"] = time.perf_counter() - started
        logins = class_logs_in(stack, names)
        assert logins["lab_pages"] == 30, logins["answers"]
        r["prestarted_login"] = {key: logins[key] for key in ("median_s", "worst_s")}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            r["page_load"] = lab_page_load(browser, stack, names[0])
            browser.close()
        class_leaves(stack, names)
    finally:
        remove_test_stack()
    r["stock"] = stock_hub(30)
    print(f"bench: stock set-up, class of 30: {r['stock']}", flush=True)
    r["stock"] = {key: r["stock"][key] for key in ("median_s", "worst_s", "start_cpu_s", "idle_mib", "ready", "failed",
                                                   "failed_students")}
    dlab30 = r["classes"][30]
    r["ratio_median"] = r["stock"]["median_s"] / dlab30["median_s"]
    r["ratio_worst"] = r["stock"]["worst_s"] / dlab30["worst_s"]
    (ROOT / ".build").mkdir(exist_ok=True)
    (ROOT / ".build" / "bench-hub.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1), flush=True)
    write_hub_tables(r)


def write_hub_tables(r):
    c, page = r["classes"], r["page_load"]
    rows = [
        "| what | figure |",
        "|---|---|",
        f"| `make up` (images built) until the hub is healthy | {r['up_s']:.0f} s |",
        f"| a student's first server start (new home made, labs copied in) | {r['first_spawn_s']:.1f} s |",
        f"| a student's server start with an existing home (median of 3) | {r['spawn_s']:.1f} s |",
        f"| CPU the student's container spends from its start until ready (cgroup accounting): one start alone (median of 3); median / largest in the class of 30 | {r['start_cpu_s']:.2f} s; {c[30]['start_cpu_median_s']:.2f} / {c[30]['start_cpu_max_s']:.2f} s |",
        f"| where a start's CPU goes, in the student's container: start.sh until the command (hooks: thread pools, labs into a new home; the firewall) / Python importing jupyterhub-singleuser and Jupyter Server / the server's set-up, its extensions loaded | {r['phases']['start_script_s']:.2f} / {r['phases']['imports_s']:.2f} / {r['phases']['server_setup_s']:.2f} s |",
        f"| of the set-up, nbgrader's server extensions (formgrader, assignment list; graded assignments) | {r['phases'].get('nbgrader_s', 0):.2f} s |",
        f"| and outside it, per start in the class of 30: the hub (this bench's polls included) / the proxy / the rest (Docker, the home's helper container, this bench's own client) | {c[30]['hub_cpu_per_start_s']:.2f} / {c[30]['proxy_cpu_per_start_s']:.2f} / {c[30]['other_cpu_per_start_s']:.2f} s |",
        f"| 30 students signing up, logging in and starting at once: median / last student's wait until their server is ready | {r['arrival']['median_s']:.0f} / {r['arrival']['worst_s']:.0f} s |",
        f"| the same, \"try again in N seconds\" pages, 5xx answers | {r['arrival']['limit_answers']}, 0 |",
        f"| `make prestart` for 30 approved accounts | {r['prestart_s']:.0f} s |",
        f"| then 30 students logging in at once: median / last until their JupyterLab page (bcrypt: 0.3 s of CPU a login) | {r['prestarted_login']['median_s']:.1f} / {r['prestarted_login']['worst_s']:.1f} s |",
        f"| a student's first JupyterLab in chromium: until the launcher shows; bytes over the network (gzipped), requests | {page['first']['seconds']:.1f} s; {page['first']['bytes'] / 1e6:.2f} MB, {page['first']['requests']} |",
        f"| the same, opened again (cached) | {page['again']['seconds']:.1f} s; {page['again']['bytes'] / 1e3:.0f} kB |",
        f"| memory of an idle student's server (JupyterLab, no kernel), median / largest of 30 | {c[30]['idle_mib_median']:.0f} / {c[30]['idle_mib_max']:.0f} MiB |",
        f"| the same with a kernel that imported TensorFlow, PyTorch and JAX | {r['student_with_frameworks_mib']:.0f} MiB |",
        f"| memory of the hub (JupyterHub, the idle culler and prestart services) with 30 / 60 servers | {c[30]['hub_mib']:.0f} / {c[60]['hub_mib']:.0f} MiB |",
        f"| memory of its proxy (configurable-http-proxy) with 30 / 60 servers | {c[30]['proxy_mib']:.0f} / {c[60]['proxy_mib']:.0f} MiB |",
        "",
        "A class pressing *Start my server* at the same moment (accounts made, homes new: their first "
        "session), until each server is ready:",
        "",
        "| students | median wait | last student's wait | CPU per start (median) | \"try again\" pages | 5xx |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {c[n]['median_s']:.0f} s | {c[n]['worst_s']:.0f} s | {c[n]['start_cpu_median_s']:.2f} s | "
          f"{c[n]['limit_answers']} | 0 |" for n in sorted(c)),
        f"| 30, hand-made set-up (below) | {r['stock']['median_s']:.0f} s | {r['stock']['worst_s']:.0f} s | "
        f"{r['stock']['start_cpu_s']:.2f} s | 0 | 0 |",
        "",
        f"In the hand-made set-up {r['stock']['failed_students']} of 30 students saw their start fail "
        "(JupyterHub's default `http_timeout` of 30 s passed before their server answered) and pressed "
        "Start again; their wait counts until the server they finally got was ready.",
        "",
        f"dlab is **{r['ratio_median']:.1f}x** faster than the hand-made set-up at the median and "
        f"**{r['ratio_worst']:.1f}x** for the last student of 30 (its idle server: {r['stock']['idle_mib']:.0f} MiB). "
        "The hand-made set-up is jupyterhub-deploy-docker's basic example (`bench/stock/jupyterhub_config.py`) "
        "on the same JupyterHub, and an image with the same packages from the same lock installed with pip "
        "into Debian's Python, started by `jupyterhub-singleuser` (`bench/stock/Dockerfile`); both measured "
        "in the same run.",
        "",
        f"Measured by `make bench` (`BENCH_ONLY=hub` for these alone) on {r['date']}, {r['cpus']} cores, "
        "the class server's defaults (4G, 2 CPUs and a 5G home per student, the firewall, the idle "
        "culler), DLAB_MAX_SERVERS=64 for the class of 60.",
    ]
    write_section("bench-hub", rows)


def bench_logins(seconds=60):
    """The hub's health endpoint while 20 clients send wrong passwords for 20 real accounts in a
    loop (issue: bcrypt on the hub's event loop made it answer in seconds)."""
    from classload import PASSWORD, login_flood
    from hubstack import HubStack, remove_test_stack

    remove_test_stack()
    stack = HubStack()
    try:
        stack.restart(DLAB_CLASS_CODE="bench")
        targets = [f"target{i}" for i in range(20)]
        for name in targets:
            assert "account is ready" in stack.signup(name, PASSWORD, class_code="bench")
        idle = login_flood(stack, [], seconds=15)
        flood = login_flood(stack, targets, seconds=seconds)
    finally:
        remove_test_stack()
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "idle": idle, "flood": flood}
    (ROOT / ".build").mkdir(exist_ok=True)
    (ROOT / ".build" / "bench-logins.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1), flush=True)
    rows = [
        "| `/hub/health` answer time | p50 | p99 | failed probes |",
        "|---|---|---|---|",
        f"| idle hub | {idle['health_p50_s'] * 1000:.0f} ms | {idle['health_p99_s'] * 1000:.0f} ms | {idle['probe_failures']} |",
        f"| 20 clients sending wrong passwords for 20 accounts ({flood['guesses']} guesses in {seconds} s) "
        f"| {flood['health_p50_s'] * 1000:.0f} ms | {flood['health_p99_s'] * 1000:.0f} ms | {flood['probe_failures']} |",
        "",
        f"Measured by `make bench` (`BENCH_ONLY=logins` for these alone) on {r['date']}, {r['cpus']} cores.",
    ]
    write_section("bench-logins", rows)


def process_cpu_seconds(name):
    """CPU time the host's processes of this name (dockerd, containerd) have used since they started."""
    total = 0.0
    for pid in sh("pgrep", "-x", name).split():
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench_classview(window=150):
    """What the class page and the per-student metrics cost (hub/dlab_hub/classview.py): with 30,
    then 60 servers running, the hub, the engine (dockerd, containerd) and the whole machine's CPU
    over `window` seconds with the view looking every 15 s (its default) and with it off
    (DLAB_CLASS_VIEW_EVERY=0), the hub's memory after each, and how long the page's API and
    /hub/metrics take to answer with the whole class in them."""
    from classload import class_starts, cpu_seconds, memory_mib
    from hubstack import PREFIX, HubStack, remove_test_stack

    settings = hub_defaults()
    names = [f"view{i:02d}" for i in range(60)]
    remove_test_stack()
    stack = HubStack()
    hub = f"{PREFIX}-hub"
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "window_s": window, "runs": {}}

    def measure(servers, every):
        stack.restart(**settings, DLAB_CLASS_VIEW_EVERY=every)
        time.sleep(30)  # the hub's start, and the view's first looks (the meter among them), behind us
        before = (cpu_seconds(hub), process_cpu_seconds("dockerd") + process_cpu_seconds("containerd"), machine_cpu_seconds())
        time.sleep(window)
        after = (cpu_seconds(hub), process_cpu_seconds("dockerd") + process_cpu_seconds("containerd"), machine_cpu_seconds())
        run = {"hub_core_pct": 100 * (after[0] - before[0]) / window, "engine_core_pct": 100 * (after[1] - before[1]) / window,
               "machine_core_pct": 100 * (after[2] - before[2]) / window, "hub_mib": memory_mib(hub)}
        if every != "0":
            token = stack.admin_token
            timings = []
            for _ in range(20):
                began = time.perf_counter()
                answer = stack.api("GET", "/dlab/classview", token=token)
                timings.append(time.perf_counter() - began)
                assert answer.ok and len([row for row in answer.json()["rows"] if row["state"] == "running"]) >= servers
            scrape = time.perf_counter()
            assert stack.request("GET", stack.url + "/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30).ok
            run.update(api_p50_ms=1000 * sorted(timings)[10], metrics_ms=1000 * (time.perf_counter() - scrape))
        r["runs"][f"{servers}-{'on' if every != '0' else 'off'}"] = run
        print(f"bench: class view, {servers} servers, every {every}: {run}", flush=True)

    def meter(servers, runs=20):
        """The homes' meter, as the view runs it once a minute (a throwaway container mounting every
        running student's home and hand-in): CPU of the whole machine per run, less its idle rate."""
        import docker
        from dlab_hub.classview import HANDIN, HOME, ClassView
        view = ClassView(prefix=PREFIX)
        view.engine = docker.from_env(timeout=60)
        volumes = sorted({m["Name"] for c in view.containers() if c["State"] == "running"
                          for m in c.get("Mounts") or [] if m.get("Destination") in (HOME, HANDIN) and m.get("Name")})
        began, idle_from = time.monotonic(), machine_cpu_seconds()
        time.sleep(30)
        idle = (machine_cpu_seconds() - idle_from) / (time.monotonic() - began)
        began, busy_from = time.monotonic(), machine_cpu_seconds()
        for _ in range(runs):
            assert len(view.meter(volumes)) == len(volumes)
        per_run = (machine_cpu_seconds() - busy_from - idle * (time.monotonic() - began)) / runs
        r["runs"][f"{servers}-meter"] = {"volumes": len(volumes), "cpu_s": per_run}
        print(f"bench: the meter, {len(volumes)} volumes: {per_run:.2f} s of CPU a run", flush=True)

    try:
        stack.restart(**settings, DLAB_CLASS_VIEW_EVERY="0")
        for name in names:
            stack.api("POST", f"/users/{name}").raise_for_status()
        class_starts(stack, names[:30])
        measure(30, "0")
        meter(30)
        measure(30, "15")
        class_starts(stack, names[30:])
        measure(60, "15")
        meter(60)
        measure(60, "0")
    finally:
        remove_test_stack()
    rows = ["| servers running | hub | engine (dockerd, containerd) | the homes' meter, once a minute | the view's CPU in all "
            "| whole machine, on less off (noisy) | hub's memory, on / off | page's API (p50) | /hub/metrics |",
            "|---|---|---|---|---|---|---|---|---|"]
    for servers in (30, 60):
        on, off, meter_run = r["runs"][f"{servers}-on"], r["runs"][f"{servers}-off"], r["runs"][f"{servers}-meter"]
        hub_pct, engine_pct = on["hub_core_pct"] - off["hub_core_pct"], on["engine_core_pct"] - off["engine_core_pct"]
        meter_pct = 100 * meter_run["cpu_s"] / 60
        r["runs"][f"{servers}-total_pct"] = max(hub_pct, 0) + max(engine_pct, 0) + meter_pct
        rows.append(f"| {servers} | {hub_pct:+.1f} % of a core | {engine_pct:+.1f} % | {meter_pct:.1f} % "
                    f"({meter_run['cpu_s']:.2f} s, {meter_run['volumes']} volumes) | **{r['runs'][f'{servers}-total_pct']:.1f} %** "
                    f"| {on['machine_core_pct'] - off['machine_core_pct']:+.1f} % "
                    f"| {on['hub_mib']:.0f} / {off['hub_mib']:.0f} MiB ({on['hub_mib'] - off['hub_mib']:+.0f}) "
                    f"| {on['api_p50_ms']:.0f} ms | {on['metrics_ms']:.0f} ms |")
    rows += ["", f"The view looking every 15 s (the default) against `DLAB_CLASS_VIEW_EVERY=0`, each over {window} s "
             "with the servers idle: the hub's container and the engine's processes, on less off; the meter timed apart "
             "(20 runs, the machine's idle rate taken off), as it runs once a minute. The whole machine's difference "
             "carries the idle servers' own healthchecks, hence its noise. Measured by `make bench` "
             f"(`BENCH_ONLY=classview` for these alone) on {r['date']}, {r['cpus']} cores."]
    (ROOT / ".build").mkdir(exist_ok=True)
    (ROOT / ".build" / "bench-classview.json").write_text(json.dumps(r, indent=1))
    write_section("bench-classview", rows)
    on, off = r["runs"]["60-on"], r["runs"]["60-off"]
    readme = ROOT / "README.md"
    readme.write_text(re.sub(r"(<!-- classview-cost -->).*?(<!-- /classview-cost -->)", lambda m: (
        f"{m.group(1)}{r['runs']['60-total_pct']:.1f} % of a core, "
        f"{on['hub_mib'] - off['hub_mib']:+.0f} MiB in the hub ([docs/performance.md](docs/performance.md), "
        f"{r['date']}){m.group(2)}"), readme.read_text(), flags=re.S))


def bench_arm64():
    """The arm64 images (make build-arm64) from cold, on this machine: emulated where it is x86-64.
    Each image is built alone (make build-arm64 builds dlab/hub beside the others), then the waits a
    learner meets, beside the same waits on this machine's own dlab/cpu: the ratio is emulation's cost."""
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "host": platform.machine()}
    print("bench: removing the arm64 images and the build cache for a cold build", flush=True)
    images = [i for i in sh("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "dlab/*").split()
              if i.endswith("-arm64")]  # dlab/os:bookworm-arm64 too: the OS base is timed as well
    if images:
        subprocess.run(["docker", "image", "rm", "-f", *images], capture_output=True)
    sh("docker", "builder", "prune", "-af")
    r["emulation_s"] = timed("scripts/emulation.sh", "arm64")
    r["os_base_s"] = timed("scripts/os-base.sh", "arm64")
    for image in ["base", "cpu", "hub"]:
        r[f"{image}_build_s"] = timed("scripts/build-images.sh", "--arch", "arm64", image)
        r[f"{image}_size_gb"] = size_gb(f"dlab/{image}:latest-arm64")
    for image, key in [("dlab/cpu:latest-arm64", "arm64"), ("dlab/cpu", "native")]:
        r[f"lab_ready_s_{key}"] = lab_ready_seconds(image)
        for module in ["tensorflow", "torch", "jax"]:
            r[f"import_{module}_s_{key}"] = import_seconds(image, module)
    (ROOT / ".build").mkdir(exist_ok=True)
    (ROOT / ".build" / "bench-arm64.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1), flush=True)
    waits = [("`docker run` until JupyterLab answers", "lab_ready_s")] + [
        (f"first `import {m}`", f"import_{m}_s") for m in ("tensorflow", "torch", "jax")]
    rows = [
        "| arm64 image | build, cold | size |",
        "|---|---|---|",
        f"| OS base (`debootstrap --arch arm64` or pull) | {r['os_base_s']:.0f} s | |",
        *(f"| `dlab/{i}:latest-arm64` | {r[f'{i}_build_s']:.0f} s | {r[f'{i}_size_gb']:.2f} GB |" for i in ("base", "cpu", "hub")),
        "",
        f"| in `dlab/cpu` | arm64, emulated on {r['host']} | {r['host']}, native | ratio |",
        "|---|---|---|---|",
        *(f"| {what} | {r[key + '_arm64']:.1f} s | {r[key + '_native']:.1f} s | {r[key + '_arm64'] / r[key + '_native']:.1f}x |"
          for what, key in waits),
        "",
        f"Measured by `make bench` (`BENCH_ONLY=arm64` for these alone) on {r['date']}, {r['cpus']} cores "
        f"({r['host']}; QEMU {'set up in ' + format(r['emulation_s'], '.0f') + ' s' if r['emulation_s'] > 1 else 'already set up'}).",
    ]
    write_section("bench-arm64", rows)


def bench_legacy(build_s=None):
    """dlab/legacy (make build-legacy): its build on top of dlab/cpu (timed here unless the cold run
    above did), what it adds to dlab/cpu and which packages take it, and the first import of each
    retired framework in a new container (what the first cell of an old tutorial costs)."""
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    if build_s is None:  # its own steps from cold (dlib's compile included), dlab/cpu's from the cache
        start = time.monotonic()
        subprocess.run(["scripts/build-images.sh", "legacy"], cwd=ROOT, check=True, env={**os.environ, "DLAB_NO_CACHE": "legacy"})
        build_s = time.monotonic() - start
    r["build_s"] = build_s
    r["size_gb"], r["cpu_size_gb"] = size_gb("dlab/legacy"), size_gb("dlab/cpu")
    site = "/opt/legacy/lib/python3.11/site-packages"
    parts = {"paddle": "PaddlePaddle", "mxnet": "MXNet", "scipy": "SciPy", "skimage": "scikit-image",
             "sklearn": "scikit-learn", "theano": "Theano", "_dlib_pybind11*": "dlib"}
    named = {path: name for path, name in parts.items() if "*" not in path}
    du = sh("docker", "run", "--rm", "--entrypoint", "bash", "dlab/legacy", "-c",
            f"cd {site} && du -sm {' '.join(parts)} && du -sm /opt/legacy | tail -1")
    r["mb"] = {named.get(path, "dlib" if path.startswith("_dlib_pybind11") else path): int(mb)
               for mb, path in (line.split("\t") for line in du.splitlines())}
    for module in ["theano", "mxnet", "paddle", "dlib"]:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        out = sh("docker", "run", "--rm", "--entrypoint", "/opt/legacy/bin/python", "dlab/legacy", "-c", code)
        r[f"import_{module}_s"] = float(out.split()[-1])
    (ROOT / ".build").mkdir(exist_ok=True)
    (ROOT / ".build" / "bench-legacy.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1), flush=True)
    added = r["size_gb"] - r["cpu_size_gb"]
    rows = [
        "| `dlab/legacy` | figure |",
        "|---|---|",
        f"| build on top of `dlab/cpu` (its environment, dlib compiled, g++) | {r['build_s']:.0f} s |",
        f"| size, and what it adds to `dlab/cpu` ({r['cpu_size_gb']:.2f} GB) | {r['size_gb']:.2f} GB, +{added:.2f} GB |",
        "| `/opt/legacy`, of which: " + ", ".join(f"{name} {mb} MB" for name, mb in r["mb"].items() if name != "/opt/legacy")
        + f" | {r['mb']['/opt/legacy']} MB |",
        "| first `import theano` / `mxnet` / `paddle` / `dlib` in a new container | "
        + " / ".join(f"{r[f'import_{m}_s']:.1f}" for m in ("theano", "mxnet", "paddle", "dlib")) + " s |",
        "",
        f"Measured by `make bench` (`BENCH_ONLY=legacy` for these alone) on {r['date']}, {r['cpus']} cores.",
    ]
    write_section("bench-legacy", rows)
    for doc in (ROOT / "README.md", ROOT / "docs" / "images.md"):
        doc.write_text(re.sub(r"(<!-- legacy-size -->).*?(<!-- /legacy-size -->)",
                              lambda m: f"{m.group(1)}{added:.1f} GB{m.group(2)}", doc.read_text(), flags=re.S))


def main():
    if os.environ.get("BENCH_ONLY") == "legacy":
        return bench_legacy()
    if os.environ.get("BENCH_ONLY") == "arm64":
        return bench_arm64()
    if os.environ.get("BENCH_ONLY") == "logins":
        return bench_logins()
    if os.environ.get("BENCH_ONLY") == "labs":
        return bench_labs()
    if os.environ.get("BENCH_ONLY") == "lessons":
        return bench_lessons()
    if os.environ.get("BENCH_ONLY") == "hub":
        return bench_hub()
    if os.environ.get("BENCH_ONLY") == "classview":
        return bench_classview()
    results = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "cold": not os.environ.get("BENCH_WARM")}
    if results["cold"]:
        print("bench: removing dlab images and the build cache for a cold build", flush=True)
        images = sh("docker", "image", "ls", "-q", "dlab/*").split()
        if images:
            subprocess.run(["docker", "image", "rm", "-f", *sorted(set(images))], cwd=ROOT, capture_output=True)
        sh("docker", "builder", "prune", "-af")
    results["os_base_s"] = timed("scripts/os-base.sh")
    for image in ["base", "cpu", "gpu", "hub"]:
        results[f"{image}_build_s"] = timed("scripts/build-images.sh", image)
        results[f"{image}_size_gb"] = size_gb(f"dlab/{image}")
    # dlab/legacy's own steps, cold too (base and cpu are cached by now)
    legacy_build_s = timed("scripts/build-images.sh", "legacy")
    results["lab_ready_s"] = lab_ready_seconds("dlab/cpu")
    for module in ["tensorflow", "torch", "jax", "keras"]:
        results[f"import_{module}_s"] = import_seconds("dlab/cpu", module)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    write_table(results)
    bench_legacy(legacy_build_s)
    bench_hub()
    bench_classview()
    bench_logins()
    bench_labs()
    bench_lessons()
    if platform.machine() == "x86_64":
        bench_arm64()


def write_table(r):
    kind = "cold (no image, no build cache)" if r["cold"] else "warm (build cache kept)"
    rows = [
        "| what | figure |",
        "|---|---|",
        f"| OS base (debootstrap or pull) | {r['os_base_s']:.0f} s |",
        f"| `dlab/base` build, {kind} | {r['base_build_s']:.0f} s |",
        f"| `dlab/cpu` build on top of base | {r['cpu_build_s']:.0f} s |",
        f"| `dlab/base` size | {r['base_size_gb']:.2f} GB |",
        f"| `dlab/cpu` size (includes base) | {r['cpu_size_gb']:.2f} GB |",
        f"| `dlab/gpu` build on top of base | {r['gpu_build_s']:.0f} s |",
        f"| `dlab/gpu` size (includes base) | {r['gpu_size_gb']:.2f} GB |",
        f"| `dlab/hub` build (from the OS base), {kind} | {r['hub_build_s']:.0f} s |",
        f"| `dlab/hub` size | {r['hub_size_gb']:.2f} GB |",
        f"| `docker run dlab/cpu` until JupyterLab answers | {r['lab_ready_s']:.1f} s |",
        f"| first `import tensorflow` / `torch` / `jax` / `keras` | {r['import_tensorflow_s']:.1f} / {r['import_torch_s']:.1f} / {r['import_jax_s']:.1f} / {r['import_keras_s']:.1f} s |",
        "",
        f"Measured by `make bench` on {r['date']}, {r['cpus']} cores.",
    ]
    write_section("bench", rows)


def write_section(marker, rows):
    """Replace what lies between <!-- MARKER:start --> and <!-- MARKER:end --> with rows, in the page
    that holds them (docs/labs.md or docs/performance.md)."""
    page = next((p for p in (LABS_DOC, PERFORMANCE_DOC) if f"<!-- {marker}:start -->" in p.read_text()), None)
    if page is None:
        sys.exit(f"neither docs/labs.md nor docs/performance.md has <!-- {marker}:start --> / <!-- {marker}:end --> markers")
    page.write_text(re.sub(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)",
                           lambda m: m.group(1) + "\n".join(rows) + "\n" + m.group(2), page.read_text(), flags=re.S))

if __name__ == "__main__":
    main()
