"""The arm64 builds (make build-arm64; emulated on x86-64): one version, two architectures, each
holding its lock. dlab/cpu's arm64 build also goes through the image basics and the frameworks'
tests (conftest's ARM64_CPU) and runs a lab (tests/labs); dlab/hub's runs a class (tests/hub)."""
import json

import pytest

from conftest import NATIVE_ARCH, ROOT, VERSION, docker, read_lock, skip_arm64

ARM64 = {name: f"{name}:latest-arm64" for name in ("dlab/base", "dlab/cpu", "dlab/hub")}
pytestmark = pytest.mark.arm64


@pytest.fixture(params=sorted(ARM64))
def arm64_image(request):
    skip_arm64(ARM64[request.param])
    return request.param


def inspect(image):
    return json.loads(docker("image", "inspect", image).stdout)[0]


def test_each_architecture_has_its_tag_of_one_version(arm64_image):
    """`dlab/cpu` is this machine's build, `dlab/cpu:latest-arm64` the arm64 one, and both are the
    same version of the same sources (the engine here keeps one architecture per tag)."""
    native, arm64 = inspect(f"{arm64_image}:latest"), inspect(ARM64[arm64_image])
    assert native["Architecture"] == NATIVE_ARCH and arm64["Architecture"] == "arm64"
    assert native["Id"] != arm64["Id"]
    for label in ("org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.title"):
        assert native["Config"]["Labels"][label] == arm64["Config"]["Labels"][label], label
    assert arm64["Config"]["Labels"]["org.dlab.architecture"] == "arm64"
    assert "arm64" in arm64["Config"]["Labels"]["org.dlab.os.source"]
    # Same start: the same entry point, user, command and health check on both.
    for key in ("Entrypoint", "Cmd", "User", "Healthcheck", "ExposedPorts"):
        assert native["Config"][key] == arm64["Config"][key], key


# dlab/cpu's arm64 build goes through test_image_basics' lock test (conftest's ARM64_CPU).
@pytest.mark.parametrize("name, locks", [("dlab/base", ["images/base/bootstrap.lock", "images/base/requirements.lock"]),
                                         ("dlab/hub", ["images/base/bootstrap.lock", "images/hub/requirements.lock"])])
def test_the_arm64_build_runs_arm64_code_and_holds_its_lock(name, locks):
    """uname says aarch64 inside; every package is its lock's aarch64 line (dlab-info's manifest)."""
    skip_arm64(ARM64[name])
    expected = {}
    for lock in locks:
        expected.update(read_lock(ROOT / lock, "aarch64"))
    if name == "dlab/hub":
        expected["dlab-hub"] = VERSION  # the hub's own package, installed from hub/

    def run(*command):
        return docker("run", "--rm", "--platform", "linux/arm64", "--entrypoint", command[0], ARM64[name],
                      *command[1:]).stdout

    machine, manifest = run("uname", "-m").strip(), json.loads(run("cat", "/opt/dlab/manifest.json"))
    assert machine == "aarch64" and manifest["architecture"] == "aarch64"
    installed = manifest["python_packages"]
    wrong = {name: (version, installed.get(name)) for name, version in expected.items() if installed.get(name) != version}
    assert not wrong, f"(locked, installed): {wrong}"
    assert set(installed) - set(expected) <= {"pip", "setuptools"}  # seeded into every venv by Python itself
