"""Host side: the locks are consistent and hash-pinned; the scripts fail with a clear message."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, read_lock

LOCKS = sorted(ROOT.glob("images/*/*.lock")) + [ROOT / "tests/requirements.lock"]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_pin_has_a_hash(lock):
    """Each pinned requirement is followed by at least one --hash line before the next pin."""
    pinned, hashed, current = set(), set(), None
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            current = line.split("==")[0]
            pinned.add(current)
        elif current and line.strip().startswith("--hash=sha256:"):
            hashed.add(current)
    assert pinned, f"{lock} pins nothing"
    assert pinned == hashed, f"pins without a hash: {pinned - hashed}"


@pytest.mark.parametrize("lock", ["images/hub/package-lock.json", "tests/oidc/package-lock.json"])
def test_every_npm_package_has_an_integrity_hash(lock):
    """npm ci checks each package against its lock's sha512: the proxy and the tests' identity provider."""
    import json
    packages = {name: p for name, p in json.loads((ROOT / lock).read_text())["packages"].items() if name}
    assert packages and all(p.get("integrity", "").startswith("sha512-") and p.get("resolved") for p in packages.values()), \
        [name for name, p in packages.items() if not p.get("integrity", "").startswith("sha512-")]


@pytest.mark.parametrize("image", ["cpu", "gpu"])
def test_framework_locks_keep_every_base_version(image):
    """dlab/cpu and dlab/gpu install on top of dlab/base without changing any of its packages."""
    base, lock = read_lock(ROOT / "images/base/requirements.lock"), read_lock(ROOT / f"images/{image}/requirements.lock")
    changed = {name: (version, lock.get(name)) for name, version in base.items() if lock.get(name) != version}
    assert not changed, changed


def test_gpu_and_cpu_images_hold_the_same_framework_versions():
    """A lab behaves the same on both: TensorFlow, Keras, PyTorch and JAX at one version each."""
    cpu, gpu = read_lock(ROOT / "images/cpu/requirements.lock"), read_lock(ROOT / "images/gpu/requirements.lock")
    assert cpu["tensorflow-cpu"] == gpu["tensorflow"]
    assert cpu["torch"].split("+")[0] == gpu["torch"]
    for name in ("keras", "jax", "jaxlib", "numpy", "papermill", "mlxtend"):
        assert cpu[name] == gpu[name], name
    assert "torchvision" in gpu and "jax-cuda12-plugin" in gpu


# Where an arm64 image holds something else than the amd64 one, and why (images/cpu/requirements.in).
ARM64_DIFFERENCES = {
    "tensorflow-cpu": "has no aarch64 wheel: there, the plain tensorflow wheel is the CPU build (same version)",
    "tensorflow": "the CPU build on aarch64, tensorflow-cpu's twin",
    "torch": "PyPI's aarch64 torch is a CUDA build from 2.11 on; 2.10.0 is its newest CPU build",
}


@pytest.mark.parametrize("lock", ["images/base/bootstrap.lock", "images/base/requirements.lock",
                                  "images/cpu/requirements.lock", "images/hub/requirements.lock"])
def test_arm64_images_install_what_amd64_images_do(lock):
    """dlab/base, dlab/cpu and dlab/hub for arm64 install their lock's aarch64 lines: the same
    packages at the same versions as on amd64, but for the named differences."""
    amd64, arm64 = read_lock(ROOT / lock, "x86_64"), read_lock(ROOT / lock, "aarch64")
    differ = {name: (amd64.get(name), arm64.get(name)) for name in set(amd64) | set(arm64) if amd64.get(name) != arm64.get(name)}
    assert set(differ) <= set(ARM64_DIFFERENCES), f"(amd64, arm64) versions differ: {differ}"
    if "tensorflow-cpu" in amd64:
        assert amd64["tensorflow-cpu"] == arm64["tensorflow"] and "tensorflow-cpu" not in arm64
        assert all(amd64[name] == arm64[name] for name in ("keras", "jax", "jaxlib", "numpy"))
        assert amd64["torch"].endswith("+cpu") and "+" not in arm64["torch"]


@pytest.mark.parametrize("args, message", [
    (["--arch", "arm64", "gpu"], "dlab/gpu is built for amd64 only"),
    (["--arch", "sparc", "cpu"], "unknown architecture 'sparc'"),
])
def test_builds_for_an_architecture_that_dlab_does_not_make_are_refused(args, message):
    result = subprocess.run(["scripts/build-images.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_emulation_of_an_unknown_architecture_is_refused():
    result = subprocess.run(["scripts/emulation.sh", "riscv64"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown architecture 'riscv64'" in result.stderr


def run_as_nobody(*command):
    """Run a project script as an unprivileged user with no Docker engine reachable."""
    env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_no_docker_engine_says_what_to_do():
    result = run_as_nobody("bash", "scripts/install-docker.sh")
    assert result.returncode != 0
    assert "dlab:" in result.stderr and ("Install Docker" in result.stderr or "start it" in result.stderr), result.stderr


def test_build_of_an_unknown_image_is_refused():
    result = subprocess.run(["scripts/build-images.sh", "nosuchimage"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown image 'nosuchimage'" in result.stderr


def test_make_without_a_target_lists_the_targets():
    out = subprocess.run(["make", "-s"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    for target in ["build", "lab", "test", "lock", "bench"]:
        assert f"make {target}" in out


def test_no_secret_is_tracked_by_git():
    """Secrets live in .env and in the hub's state volume, never in the repository."""
    import re
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert ".env" not in tracked and not [f for f in tracked if f.startswith("secrets/") or f.endswith((".pem", ".key"))]
    ignored = subprocess.run(["git", "check-ignore", ".env", "secrets/cookie_secret"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == [".env", "secrets/cookie_secret"]
    key = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    for name in tracked:
        path = ROOT / name
        if path.is_file():
            assert not key.search(path.read_bytes()), f"{name} holds a private key"


def test_the_hub_package_and_the_changelog_carry_the_release():
    """One release number: VERSION tags the images; the hub package and the changelog say the same."""
    import tomllib
    version = (ROOT / "VERSION").read_text().strip()
    assert tomllib.loads((ROOT / "hub/pyproject.toml").read_text())["project"]["version"] == version, \
        "hub/pyproject.toml's version is not VERSION's: set it to the release"
    assert f"## {version} " in (ROOT / "CHANGELOG.md").read_text(), f"CHANGELOG.md has no section for {version}"


RETIRED = ("theano", "lasagne", "mxnet", "paddlepaddle", "dlib")


def test_the_retired_frameworks_live_in_their_own_lock_only():
    """dlab/legacy's second environment: numpy 1.x (Theano 1.0.5 calls np.complex, gone in 1.24),
    Theano and Lasagne on both architectures, MXNet and PaddlePaddle on amd64 alone (MXNet's aarch64
    wheel needs Arm's own libraries, PaddlePaddle has no aarch64 wheel), dlib from its source
    release; none of them in a lock of the main environment."""
    for machine in ("x86_64", "aarch64"):
        legacy = read_lock(ROOT / "images/legacy/requirements.lock", machine)
        assert legacy["numpy"].startswith("1.23."), legacy["numpy"]
        assert (legacy["theano"], legacy["lasagne"]) == ("1.0.5", "0.1")
        assert ("mxnet" in legacy) == ("paddlepaddle" in legacy) == (machine == "x86_64")
    amd64 = read_lock(ROOT / "images/legacy/requirements.lock", "x86_64")
    arm64 = read_lock(ROOT / "images/legacy/requirements.lock", "aarch64")
    assert set(arm64) < set(amd64) and all(amd64[name] == version for name, version in arm64.items())
    dlib = (ROOT / "images/legacy/dlib.lock").read_text()
    assert re.search(r"^dlib==20\.0\.1 \\\n    --hash=sha256:[0-9a-f]{64}\n", dlib, re.MULTILINE), dlib
    for lock in ("images/base/requirements.lock", "images/cpu/requirements.lock", "images/gpu/requirements.lock"):
        main = read_lock(ROOT / lock)
        assert not set(RETIRED) & set(main), (lock, set(RETIRED) & set(main))


def test_the_legacy_image_is_built_only_when_asked():
    """make build leaves dlab/legacy out (nobody pays for it unasked); make build-legacy builds it."""
    makefile = (ROOT / "Makefile").read_text()
    build = re.search(r"^build: .*\n\t(.*)$", makefile, re.MULTILINE).group(1)
    assert "legacy" not in build, build
    assert re.search(r"^build-legacy: .*\n\t@scripts/build-images.sh .*legacy$", makefile, re.MULTILINE)
    assert "legacy   cpu" in (ROOT / "images/hierarchy.txt").read_text()
