"""No CA bundle, secret or token ends up in any layer or in the image's configuration."""
import hashlib
import json
import os
import pathlib
import re
import subprocess
import tarfile

import pytest

from conftest import ARM64_CPU, FRAMEWORK_IMAGES, PARENT, ROOT, docker, image_param, skip_unless_tested

CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")


def build_ca_bundle():
    """The bundle `make build` handed to BuildKit as a secret (empty where none was needed)."""
    path = ROOT / ".build/ca-bundle.pem"
    return path.read_bytes() if path.exists() else b""


def certificate_bodies(pem):
    return {re.sub(rb"\s", b"", body) for body in CERT.findall(pem)}


def layer_files(image):
    """(layer, path, size, read) for every regular file of every layer of IMAGE, files a later
    layer deletes included: from the engine's own layer folders where it keeps them as overlay2
    does and this test may read them (as root: seconds), else from `docker save` (minutes for
    dlab/gpu's 13 GB)."""
    layers = overlay_layers(image)
    if not layers:
        yield from saved_layers(image)
    for layer in layers:
        yield from walk_layer(layer)


def overlay_layers(image):
    """IMAGE's layer folders, each one layer's files as it added them (its diff)."""
    driver = json.loads(docker("image", "inspect", "-f", "{{json .GraphDriver}}", image).stdout)
    if driver.get("Name") != "overlay2":
        return []
    data = driver.get("Data") or {}
    layers = [pathlib.Path(d) for d in (data.get("LowerDir") or "").split(":") + [data.get("UpperDir") or ""] if d]
    return layers if layers and all(os.access(layer, os.R_OK | os.X_OK) for layer in layers) else []


def walk_layer(layer):
    stack = [layer]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):  # whiteouts (a deleted file's mark) are devices
                    path = pathlib.Path(entry.path)
                    yield (str(layer.parent), str(path.relative_to(layer)), entry.stat(follow_symlinks=False).st_size,
                           path.read_bytes)


def saved_layers(image):
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for entry in outer:
                # A layer that repeats another is saved as a link to it: scanned once.
                if not entry.name.endswith("layer.tar") or not entry.isfile():
                    continue
                with tarfile.open(fileobj=outer.extractfile(entry), mode="r|") as layer:
                    for member in layer:
                        if member.isfile():
                            yield (entry.name, member.name, member.size,
                                   lambda layer=layer, member=member: layer.extractfile(member).read())


# cpu and gpu include every layer of dlab/base, legacy every layer of dlab/cpu
@pytest.mark.parametrize("image", [image_param(i) for i in (*FRAMEWORK_IMAGES, "dlab/legacy", "dlab/hub")])
def test_no_ca_bundle_or_secret_in_any_layer(image):
    skip_unless_tested(image)
    bundle = build_ca_bundle()
    bundle_sha = hashlib.sha256(bundle).hexdigest() if bundle else None
    # Certificates of the build's bundle that Debian's own ca-certificates does not ship: the
    # intercepting proxy's CA. None of them may appear in any file of any layer.
    debian = docker("run", "--rm", "--entrypoint", "cat", image, "/etc/ssl/certs/ca-certificates.crt").stdout.encode()
    foreign = certificate_bodies(bundle) - certificate_bodies(debian)
    leaks = []
    for layer_name, path, size, read in layer_files(image):
        if path.startswith("run/secrets/") or path.startswith("wheelhouse/"):
            leaks.append(f"{layer_name}: {path}")
            continue
        suspicious = path.endswith((".pem", ".crt", ".cer")) or (bundle and size == len(bundle))
        if not suspicious:
            continue
        content = read()
        if bundle_sha and hashlib.sha256(content).hexdigest() == bundle_sha:
            leaks.append(f"{layer_name}: {path} is the build's CA bundle")
        if certificate_bodies(content) & foreign:
            leaks.append(f"{layer_name}: {path} holds the build's extra CA")
    assert not leaks, leaks


@pytest.mark.parametrize("image", [image_param(f"dlab/{i}") for i in PARENT] +
                         [image_param(i) for i in (ARM64_CPU, "dlab/hub:latest-arm64", "dlab/legacy:latest-arm64")])
def test_no_secret_in_image_configuration_or_history(image):
    skip_unless_tested(image)
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    env = "\n".join(config["Env"])
    assert "ca_bundle" not in env and "SSL_CERT_FILE" not in env and "PIP_CERT" not in env
    assert not re.search(r"(TOKEN|SECRET|PASSWORD)=", env), env
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history
