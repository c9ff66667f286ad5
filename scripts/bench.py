#!/usr/bin/env python3
"""make bench: measure what users wait for, and write it into the README's performance table.

Cold by default: dlab's images and the build cache are removed first, so the figures are those of
a fresh machine (the OS base included). BENCH_WARM=1 keeps the cache (rebuild figures instead).
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LAB_RESULTS = ROOT / ".build" / "bench-labs.json"
RESULTS = ROOT / ".build/bench.json"


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


def lab_minutes(image, data_volume):
    """Each lab at its default settings, as a student runs it: papermill in a running server,
    with the data volume mounted read-only at /srv/data (None: the packaged fallbacks)."""
    data = ["-v", f"{data_volume}:/srv/data:ro"] if data_volume else []
    cid = sh("docker", "run", "-d", *data, image)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(["docker", "exec", cid, "test", "-f", "/home/jovyan/labs/.dlab-labs.json"]).returncode:
            if time.monotonic() > deadline:
                sys.exit("bench: the labs never appeared in ~/labs")
            time.sleep(0.5)
        minutes = {}
        only = os.environ.get("BENCH_LABS", "").split()  # e.g. BENCH_LABS="09-gan": re-time one lab
        for lab in sorted(p.stem for p in (ROOT / "labs").glob("*.ipynb") if not only or p.stem in only):
            started = time.perf_counter()
            subprocess.run(["docker", "exec", "-w", "/home/jovyan/labs", cid, "papermill", "--no-progress-bar",
                            f"{lab}.ipynb", f"/tmp/{lab}.ipynb"], check=True, capture_output=True)
            minutes[lab] = (time.perf_counter() - started) / 60
            print(f"bench: {lab} {minutes[lab]:.1f} min ({data_volume or 'fallback data'})", flush=True)
        return minutes
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def full_size_volume():
    """A data volume filled by dlab-data with stand-ins of the real datasets' sizes (random
    pixels, real formats), served locally: the real files cannot be downloaded everywhere, and
    training time depends on the sizes, not on the pixels."""
    sys.path.insert(0, str(ROOT / "tests" / "data"))
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
    text = README.read_text()
    for lab in full:
        # The last two cells of the lab's row in the curriculum table are its measured times.
        text = re.sub(rf"^(\| `{re.escape(lab)}`.*?\| )[^|]*\|[^|]*\|$",
                      lambda m: f"{m.group(1)}{full[lab]:.1f} min | {fallback[lab]:.1f} min |", text, flags=re.M)
    text = re.sub(r"(<!-- labs:measured -->).*?(<!-- /labs:measured -->)",
                  lambda m: f"{m.group(1)}Measured by `make bench` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} "
                            f"cores, each lab at its default settings.{m.group(2)}", text, flags=re.S)
    README.write_text(text)


def bench_hub(students=30):
    """The class server with its default limits: make up until healthy, a student's first and
    second server start, a class of 30 arriving at once, and memory per idle student."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "hub")]
    from classload import class_arrives, cpu_seconds, memory_mib
    from hubstack import PREFIX, HubStack, remove_test_stack

    defaults = {"DLAB_MEM_LIMIT": "4G", "DLAB_CPU_LIMIT": "2", "DLAB_PIDS_LIMIT": "1024", "DLAB_SHM_SIZE": "1g"}
    remove_test_stack()
    stack = HubStack()
    r = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "students": students}
    try:
        started = time.perf_counter()
        stack.restart(**defaults)
        r["up_s"] = time.perf_counter() - started
        stack.api("POST", "/users/first")
        started = time.perf_counter()
        stack.start_server("first")
        r["first_spawn_s"] = time.perf_counter() - started  # a new home: the labs are copied in
        stack.stop_server("first")
        started = time.perf_counter()
        stack.start_server("first")
        r["spawn_s"] = time.perf_counter() - started  # the home exists
        # CPU the student's container spent from its start until the hub saw it ready (issue 14).
        r["start_cpu_s"] = cpu_seconds(f"{PREFIX}.first")
        stack.stop_server("first")
        # A class arriving at once (tests/hub/classload.py): sign up, log in, start, all together.
        stack.restart(**defaults, DLAB_CLASS_CODE="bench")
        load = class_arrives(stack, students, "bench")
        assert load["ready"] == students and not load["server_errors"], load["server_errors"][:3]
        r.update({key: load[key] for key in ("median_s", "worst_s", "hub_mib", "idle_student_mib_median",
                                             "idle_student_mib_max")})
        r["limit_answers"] = len(load["limit_answers"])
        r["spawn_limit"] = 10  # DLAB_SPAWN_LIMIT's default
        first = load["names"][0]
        _, error = stack.run_code(first, "import tensorflow, torch, jax", shutdown=False)
        assert error is None, error
        r["student_with_frameworks_mib"] = memory_mib(f"{PREFIX}.{first}")
    finally:
        remove_test_stack()
    (ROOT / ".build" / "bench-hub.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1), flush=True)
    rows = [
        "| what | figure |",
        "|---|---|",
        f"| `make up` (images built) until the hub is healthy | {r['up_s']:.0f} s |",
        f"| a student's first server start (new home, labs copied in) | {r['first_spawn_s']:.1f} s |",
        f"| a student's server start with an existing home | {r['spawn_s']:.1f} s |",
        f"| CPU the student's container spends from its start until ready (cgroup accounting) | {r['start_cpu_s']:.1f} s |",
        f"| {students} students signing up and starting at once: median wait until their server is ready | {r['median_s']:.0f} s |",
        f"| the same, the last student's wait | {r['worst_s']:.0f} s |",
        f"| the same, \"try again in N seconds\" pages shown (spawn limit {r['spawn_limit']}), 5xx answers | {r['limit_answers']}, 0 |",
        f"| memory of an idle student's server (JupyterLab, no kernel), median / largest of {students} | {r['idle_student_mib_median']:.0f} / {r['idle_student_mib_max']:.0f} MiB |",
        f"| the same with a kernel that imported TensorFlow, PyTorch and JAX | {r['student_with_frameworks_mib']:.0f} MiB |",
        f"| memory of the hub and its proxy (JupyterHub, idle culler; configurable-http-proxy) with {students} servers | {r['hub_mib']:.0f} MiB |",
        "",
        f"Measured by `make bench` (`BENCH_ONLY=hub` for these alone) on {r['date']}, {r['cpus']} cores, "
        "default limits (4G, 2 CPUs per student).",
    ]
    write_readme_section("bench-hub", rows)


def bench_logins(seconds=60):
    """The hub's health endpoint while 20 clients send wrong passwords for 20 real accounts in a
    loop (issue: bcrypt on the hub's event loop made it answer in seconds)."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "hub")]
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
    write_readme_section("bench-logins", rows)


def main():
    if os.environ.get("BENCH_ONLY") == "logins":
        return bench_logins()
    if os.environ.get("BENCH_ONLY") == "labs":
        return bench_labs()
    if os.environ.get("BENCH_ONLY") == "hub":
        return bench_hub()
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
    results["lab_ready_s"] = lab_ready_seconds("dlab/cpu")
    for module in ["tensorflow", "torch", "jax", "keras"]:
        results[f"import_{module}_s"] = import_seconds("dlab/cpu", module)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    write_table(results)
    bench_hub()
    bench_logins()
    bench_labs()


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
    write_readme_section("bench", rows)


def write_readme_section(marker, rows):
    """Replace what lies between README's <!-- MARKER:start --> and <!-- MARKER:end --> with rows."""
    text = README.read_text()
    if f"<!-- {marker}:start -->" not in text:
        sys.exit(f"README.md has no <!-- {marker}:start --> / <!-- {marker}:end --> markers")
    README.write_text(re.sub(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)",
                             lambda m: m.group(1) + "\n".join(rows) + "\n" + m.group(2), text, flags=re.S))


if __name__ == "__main__":
    main()
