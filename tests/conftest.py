"""Shared fixtures: real containers of real images, always removed, inspected with testinfra."""
import collections
import fcntl
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import time
import uuid

import pytest
import testinfra

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSION = (ROOT / "VERSION").read_text().strip()
# Lines that dlab's start scripts print when something is wrong (docker-stacks' convention).
# TensorFlow's absl prints one "WARNING:" line at every import, before any logging setting
# can act (TF_CPP_MIN_LOG_LEVEL does not hide it): that one line is not a dlab problem.
# start.sh writes docker-stacks' "WARNING[date] ..." lines; dlab's own programs "WARNING: dlab: ...".
PROBLEM_LINE = re.compile(r"^(WARNING|ERROR)(\[|:(?! All log messages before absl::InitializeLog))", re.MULTILINE)


def log_line(level, text):
    """A start.sh line of LEVEL that says TEXT (docker-stacks' format: LEVEL[date] text)."""
    return re.compile(rf"^{level}\[[^\]]*\] .*{re.escape(text)}", re.MULTILINE)


def docker(*args, check=True, timeout=300, **kwargs):
    """Run the docker CLI and return the completed process (text output)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout, **kwargs)


def dlab_home(homes_dir, *command):
    """Run a shell command as the hub runs dlab-home: scripts/lib.sh's home_helper (root in a
    throwaway dlab/hub container that may mount and use loop devices, the homes' folder at /homes)."""
    return subprocess.run(["bash", "-c", '. scripts/lib.sh && home_helper "$@"', "home_helper", str(homes_dir),
                           "bash", "-c", " ".join(command)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)


def in_volume(volume, command, user="1000"):
    """Run a shell command in a throwaway dlab/cpu container with VOLUME as the home; its output."""
    return docker("run", "--rm", "--user", user, "--entrypoint", "bash", "-v", f"{volume}:/home/jovyan",
                  "dlab/cpu:latest", "-c", command).stdout


def image_exists(image):
    return docker("image", "inspect", image, check=False).returncode == 0


def wait_for(condition, timeout, interval=0.5, message="condition"):
    """Poll until condition() returns a truthy value; fail with message after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def wait_healthy(container, cid, timeout=120):
    """Wait until a TrackedContainer's container CID turns healthy (Docker's HEALTHCHECK); fail
    with its logs if it ends first."""
    def healthy():
        state = container.inspect(cid)["State"]
        assert state["Running"], f"container exited:\n{container.logs(cid)}"
        return state.get("Health", {}).get("Status") == "healthy"

    wait_for(healthy, timeout, message=f"{container.image} to turn healthy")


# The images and their parents, said once in images/hierarchy.txt. The notebook images are dlab/base
# and those built on it (docker-stacks' promises hold in each); the framework images, those built on it.
PARENT = {line.split()[0]: line.split()[1] for line in (ROOT / "images" / "hierarchy.txt").read_text().splitlines()
          if line.strip() and not line.startswith("#")}
NOTEBOOK_IMAGES = [f"dlab/{image}" for image, parent in PARENT.items() if "base" in (image, parent)]
FRAMEWORK_IMAGES = [f"dlab/{image}" for image, parent in PARENT.items() if parent == "base"]


# This machine's architecture as Docker names it, and the machine of each (Python's platform_machine).
NATIVE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


class TrackedContainer:
    """Containers of one image that are always removed, as in jupyter/docker-stacks' tests.
    IMAGE is a name (dlab/cpu: this machine's architecture) or the tag of another architecture's
    build (dlab/cpu:latest-arm64, run emulated)."""

    def __init__(self, image):
        self.image = image
        self.name, _, tag = image.partition(":")
        self.arch = tag.rsplit("-", 1)[1] if tag.endswith(("-arm64", "-amd64")) else NATIVE_ARCH
        self.machine = MACHINE.get(self.arch, self.arch)
        self.ids = []

    def tag(self, tag):
        """This image's other tag: TAG (latest, the version) for this architecture."""
        return f"{self.name}:{tag}" + ("" if self.arch == NATIVE_ARCH else f"-{self.arch}")

    def run_detached(self, *args, command=()):
        """Start a container (docker run -d ARGS IMAGE COMMAND) and return its id."""
        name = f"dlab-test-{uuid.uuid4().hex[:10]}"
        cid = docker("run", "-d", "--name", name, "--platform", f"linux/{self.arch}", *args, self.image,
                     *command).stdout.strip()
        self.ids.append(cid)
        return cid

    def run_and_wait(self, *args, command=(), timeout=180, expect_rc=0, no_problems=True):
        """Run a container to its end; return its logs (stdout and stderr together)."""
        cid = self.run_detached(*args, command=command)
        rc = int(docker("wait", cid, timeout=timeout).stdout.strip())
        logs = self.logs(cid)
        assert rc == expect_rc, f"exit code {rc}, expected {expect_rc}; logs:\n{logs}"
        if no_problems:
            assert not PROBLEM_LINE.search(logs), f"WARNING/ERROR lines in the logs:\n{logs}"
        return logs

    def logs(self, cid):
        out = docker("logs", cid, check=False)
        return out.stdout + out.stderr

    def host(self, cid):
        """A testinfra host inside the container (docker exec)."""
        return testinfra.get_host(f"docker://{cid}")

    def inspect(self, cid):
        return json.loads(docker("inspect", cid).stdout)[0]

    def published_url(self, cid, port=8888):
        """http://127.0.0.1:<host port> for a container started with -p 127.0.0.1::PORT."""
        binding = docker("port", cid, f"{port}/tcp").stdout.split()[0]
        return "http://127.0.0.1:" + binding.rsplit(":", 1)[1]

    def remove_all(self):
        for cid in self.ids:
            docker("rm", "-f", "-v", cid, check=False)


@pytest.fixture(scope="session")
def version():
    return VERSION


def tracked_containers(image):
    """Yield a TrackedContainer of IMAGE, failing clearly if the image is not built."""
    if not image_exists(image):
        pytest.fail(f"{image} is not built: run `make build` (make test builds it)")
    tracked = TrackedContainer(image)
    yield tracked
    tracked.remove_all()


@pytest.fixture
def base_container():
    yield from tracked_containers("dlab/base")


@pytest.fixture
def cpu_container():
    yield from tracked_containers("dlab/cpu")


def skip_gpu_image():
    """DLAB_SKIP_GPU_IMAGE=1 leaves dlab/gpu (12 GB) out of `make test` where disk or time is short."""
    if os.environ.get("DLAB_SKIP_GPU_IMAGE") == "1":
        pytest.skip("DLAB_SKIP_GPU_IMAGE=1: the dlab/gpu image is neither built nor tested in this run")


# The arm64 build of dlab/cpu (make build-arm64), run emulated on an x86-64 machine: the image
# basics, the frameworks and a lab (tests/labs) are tested there too. Only dlab/cpu, which holds
# all of dlab/base, and not every test: emulation is slow (docs/testing.md).
ARM64_CPU = "dlab/cpu:latest-arm64"


def emulation_ready(arch):
    """True where this Linux kernel runs ARCH's programs through QEMU (scripts/emulation.sh)."""
    handler = pathlib.Path(f"/proc/sys/fs/binfmt_misc/qemu-{MACHINE[arch]}")
    return handler.exists() and handler.read_text().splitlines()[0] == "enabled"


def skip_arm64(image, build="make build-arm64"):
    """Skips, saying why, where the arm64 builds are not tested: DLAB_SKIP_ARM64=1, an ARM machine
    (every test runs on arm64 there), or no emulation (with what to install); fails if they should be."""
    if os.environ.get("DLAB_SKIP_ARM64") == "1":
        pytest.skip("DLAB_SKIP_ARM64=1: the arm64 images are neither built nor tested in this run")
    if NATIVE_ARCH == "arm64":
        pytest.skip("this machine is arm64: the other tests test the arm64 images, built by make build")
    if not emulation_ready("arm64"):
        pytest.skip("no arm64 emulation here: run `sudo scripts/emulation.sh arm64` (it installs "
                    "qemu-user-static and registers it with binfmt_misc), then `make build-arm64`")
    if not image_exists(image):
        pytest.fail(f"{image} is not built: run `{build}` (make test builds it)")


def image_param(image):
    """A parametrize value for an image; dlab/gpu carries the gpu_image mark, dlab/legacy the legacy
    one (make test builds both beside the first round), arm64 builds the arm64 one."""
    marks = {"dlab/gpu": [pytest.mark.gpu_image], "dlab/legacy": [pytest.mark.legacy]}.get(image, [])
    if image.endswith("-arm64"):
        marks = [pytest.mark.arm64]
    return pytest.param(image, marks=marks, id=image)


def skip_legacy(image="dlab/legacy:latest"):
    """DLAB_SKIP_LEGACY=1 leaves dlab/legacy out of `make test`; otherwise it must be built."""
    if os.environ.get("DLAB_SKIP_LEGACY") == "1":
        pytest.skip("DLAB_SKIP_LEGACY=1: dlab/legacy is neither built nor tested in this run")
    if not image.endswith("-arm64") and not image_exists(image):
        pytest.fail(f"{image} is not built: run `make build-legacy` (make test builds it)")


def skip_unless_tested(image):
    if image == "dlab/gpu":
        skip_gpu_image()
    if image.startswith("dlab/legacy"):
        skip_legacy(image)
    if image.endswith("-arm64"):
        skip_arm64(image)


def tested_containers(image):
    """tracked_containers of IMAGE, skipped (saying why) where this run leaves the image out."""
    skip_unless_tested(image)
    yield from tracked_containers(image)


@pytest.fixture(params=[image_param(i) for i in (*NOTEBOOK_IMAGES, ARM64_CPU)])
def container(request):
    """A TrackedContainer of each image that every dlab image must satisfy."""
    yield from tested_containers(request.param)


# For a test of `container` that the emulated arm64 build could only repeat: what it checks is the
# same file on both architectures (a start script, a hook, the Dockerfile's user). The arm64 build
# keeps what only it can show: its packages, its start, its frameworks (docs/testing.md).
NATIVE_BUILDS_ONLY = pytest.mark.parametrize("container", [image_param(i) for i in NOTEBOOK_IMAGES], indirect=True)


# Not the emulated arm64 build, where each framework's import costs most of a minute: there its
# Keras fit (test_frameworks.py) trains on TensorFlow, and lab 00 (test_labs.py) computes with all
# three frameworks; its torch version is its lock's (test_image_basics.py).
@pytest.fixture(params=[image_param(i) for i in FRAMEWORK_IMAGES])
def framework_container(request):
    """A TrackedContainer of each image with the frameworks; the CUDA builds must work without a GPU."""
    yield from tested_containers(request.param)


@pytest.fixture
def gpu_container():
    skip_gpu_image()
    yield from tracked_containers("dlab/gpu")


def nvidia_runtime():
    """True where this Docker engine can pass a GPU in (the NVIDIA container toolkit)."""
    return "nvidia" in json.loads(docker("info", "--format", "{{json .Runtimes}}").stdout)


@pytest.fixture
def gpu_host():
    """Skips, saying why, where there is no GPU for Docker; the GPU tests run for real where there is."""
    if not nvidia_runtime():
        pytest.skip("no GPU here: this Docker engine has no 'nvidia' runtime (an NVIDIA GPU, its driver "
                    "and the NVIDIA container toolkit are needed)")


def read_lock(path, machine="x86_64"):
    """{name: version} of a uv/pip-compile lock file as an image of MACHINE (x86_64, aarch64) installs
    it: lines whose environment marker (`; platform_machine == ...`) does not hold there are left out."""
    from packaging.markers import Marker
    linux = {"platform_machine": machine, "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
             "implementation_name": "cpython", "platform_python_implementation": "CPython",
             "python_version": "3.11", "python_full_version": "3.11.2"}
    pins = {}
    for line in pathlib.Path(path).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)\s*(?:;([^\\]*))?", line)
        if match and (not match.group(4) or Marker(match.group(4).strip()).evaluate(linux)):
            pins[match.group(1).lower().replace("_", "-").replace(".", "-")] = match.group(3)
    return pins


@pytest.fixture(scope="session")
def hub():
    """The class server under test (tests/hub/hubstack.py), shared by every hub test."""
    from hubstack import hub_stack

    yield from hub_stack()


@pytest.fixture(scope="session")
def swarm():
    """The swarm test bed (tests/swarm/testbed.py), shared by every swarm test."""
    from testbed import swarm_bed

    yield from swarm_bed()


@pytest.fixture
def browser():
    """Debian's chromium, driven by Playwright: what students and organizers use."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Debian's chromium is not installed: `make test` installs it as root (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # --no-sandbox: chromium's sandbox cannot run as root (CI runs as root).
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


# Side by side (DLAB_TEST_WORKERS=N make test: pytest-xdist's workers). A group runs whole, in its
# order, on one worker: a test file (each worker makes its own class server, tests/hub/hubstack.py),
# or files that share a costly session fixture (the swarm's test bed). The groups that take longest
# are handed out first, so that none starts last and runs alone.
SHARED_GROUPS = {"tests/swarm/": "swarm"}


def group_of(nodeid):
    path = nodeid.split("::", 1)[0]
    return next((group for folder, group in SHARED_GROUPS.items() if path.startswith(folder)), path)


# Each lab's run is a group of its own when handed out (its container is the module's, made again
# on a worker that meets it anew): the labs are two thirds of the quiet round, whose tests each keep about
# one core busy, so that two workers share them out. (Reports still count them under their file.)
OWN_GROUPS = ("tests/labs/test_labs.py::test_lab_runs_and_its_lesson_holds[",)


def scope_of(nodeid):
    """What runs whole, in its order, on one worker."""
    return nodeid if nodeid.startswith(OWN_GROUPS) else group_of(nodeid)


# `make prestart` starts every approved account: it runs before the other tests make their fifty
# (starting fifty servers is `make bench`'s figure, not a promise's).
FIRST = ["tests/hub/test_hub_prestart.py"]
# Side by side, the groups handed out first: the longest, and FIRST's, which then meets only its
# worker's first accounts.
LONGEST_FIRST = ["swarm", *FIRST, "tests/labs/test_labs.py", "tests/images/test_docker_stacks.py"]

# The groups whose tests keep the CPU busy (models trained, a class of thirty started at once): side
# by side with groups that wait on containers, they take the CPU in turns (a lock file) while those go
# on; in make test's quiet round (--cpu-bound-together) they run side by side, each keeping about one
# core busy.
CPU_BOUND = {"tests/labs/test_labs.py", "tests/labs/test_graded_labs.py", "tests/hub/test_hub_load.py",
             "tests/images/test_frameworks.py", "tests/images/test_legacy.py"}
# Of those, the ones that time the class's answers (and so want the machine to themselves).
TIMED = {"tests/hub/test_hub_load.py"}


def pytest_collection_modifyitems(items):
    # tests/run-all.sh runs the `quiet` tests (they train) after the class servers' round, and the
    # `alone` ones (they time the class's answers, or swap dlab/hub:latest) last, by themselves.
    for item in items:
        group = group_of(item.nodeid)
        if group in TIMED:
            item.add_marker(pytest.mark.alone)
        elif group in CPU_BOUND:
            item.add_marker(pytest.mark.quiet)
    first = {group: i for i, group in enumerate(FIRST)}
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one after another: the files' own order, FIRST first
        items.sort(key=lambda item: first.get(group_of(item.nodeid), len(first)))
        return
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))  # stable: a file keeps its order


# Where the time goes: each group's seconds (setup, call and teardown of its tests, a session
# fixture's teardown counted with the test it followed), printed at the end of each round of make
# test beside pytest's slowest tests. In the process that prints the report (xdist's controller).
# Beside each, its hub restarts (tests/hub/hubstack.py's HubStack.restart with other settings, each
# a new JupyterHub) and their seconds: they travel with each test's report (from xdist's workers).
GROUP_SECONDS = collections.Counter()
HUB_RESTARTS = []  # this process's restarts since the last report: seconds each
GROUP_RESTARTS = collections.defaultdict(list)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    report.user_properties.append(("hub_restarts", list(HUB_RESTARTS)))
    HUB_RESTARTS.clear()


def pytest_runtest_logreport(report):
    GROUP_SECONDS[group_of(report.nodeid)] += report.duration
    for name, value in report.user_properties:
        if name == "hub_restarts":
            GROUP_RESTARTS[group_of(report.nodeid)] += value


def pytest_terminal_summary(terminalreporter, config):
    if GROUP_SECONDS and not hasattr(config, "workerinput"):
        terminalreporter.write_sep("=", "slowest groups (seconds of their tests, setup and teardown included)")
        for group, seconds in GROUP_SECONDS.most_common(12):
            restarts = GROUP_RESTARTS.get(group)
            beside = f"  ({len(restarts)} hub restarts, {sum(restarts):.0f} s)" if restarts else ""
            terminalreporter.write_line(f"{seconds:8.1f}s  {group}{beside}")
        every = [seconds for restarts in GROUP_RESTARTS.values() for seconds in restarts]
        if every:
            terminalreporter.write_line(f"hub restarts: {len(every)}, {sum(every):.0f} s in all")


def pytest_addoption(parser):
    parser.addoption("--cpu-bound-together", action="store_true",
                     help="side by side, CPU-bound tests run at once rather than in turns (make test's quiet "
                          "round: nothing beside them waits on containers)")


@pytest.fixture(autouse=True)
def cpu_bound_tests_in_turns(request):
    if ("PYTEST_XDIST_WORKER" not in os.environ or group_of(request.node.nodeid) not in CPU_BOUND
            or request.config.getoption("cpu_bound_together")):
        yield
        return
    with open("/tmp/dlab-tests-cpu.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, after the test
        yield


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: known only where it is installed
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling, with group_of as the scope (its xdist_group marks do not reach
    the scheduler under pytest 9: every test went its own way)."""
    if config.getvalue("dist") != "load":  # -n N alone; any other --dist is the caller's choice
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

    return ByGroup(config, log)
