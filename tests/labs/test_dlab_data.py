"""dlab-data against a local HTTP server that serves small files in the real formats: the
layouts the standard loaders read, checksums, resuming, and every failure's message."""
import json

import pytest

from conftest import ROOT, tracked_containers

from server import DataServer, registry_for

REGISTRY = json.loads((ROOT / "labs" / "dlab" / "registry.json").read_text())
DATASETS = [name for name in REGISTRY if not name.startswith("_")]


@pytest.fixture(scope="module")
def fake_files(tmp_path_factory):
    """Small real-format files, made inside dlab/cpu (numpy, Pillow)."""
    out = tmp_path_factory.mktemp("fake-datasets")
    out.chmod(0o777)
    for tracked in tracked_containers("dlab/cpu"):
        tracked.run_and_wait("-v", f"{ROOT / 'tests' / 'data'}:/make:ro", "-v", f"{out}:/out",
                             command=("python", "/make/make_fake_datasets.py", "/out"))
    return out


@pytest.fixture
def served(fake_files, tmp_path):
    """The local server, and a registry like dlab's own that points at it: the real install
    rules, the fakes' checksums (sizes where the real entry has no checksum)."""
    with DataServer(fake_files) as server:
        registry = registry_for(REGISTRY, fake_files, server.url)
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "registry.json").write_text(json.dumps(registry))
        data = tmp_path / "data"
        data.mkdir()
        data.chmod(0o777)
        server.conf, server.data = conf, data
        yield server


@pytest.fixture
def dlab_data(served, cpu_container):
    """Run dlab-data in dlab/cpu against the local server; returns its output."""

    def run(*args, data_mount=None, expect_rc=0):
        mount = data_mount or ["-v", f"{served.data}:/data"]
        logs = cpu_container.run_and_wait("--network", "host", *mount, "-v", f"{served.conf}:/conf:ro",
                                    command=("dlab-data", "--dir", "/data", "--registry", "/conf/registry.json", *args),
                                    expect_rc=expect_rc)
        return logs

    return run


def test_fetch_lays_out_every_dataset_where_the_loaders_look(served, dlab_data, cpu_container):
    logs = dlab_data("fetch", "--quiet", "--all")
    for name in DATASETS:
        assert f"dlab-data: {name} is ready" in logs
    # No published checksum: the one seen is recorded, and said.
    assert "notmnist-small: notMNIST_small.tar.gz has no published checksum; recorded sha256:" in logs
    assert json.loads((served.data / ".dlab" / "shakespeare.json").read_text())["files"]["input.txt"].startswith("sha256:")
    assert "mnist " in dlab_data("list") and "fetched 20" in dlab_data("list")
    check = r"""
import gzip, os, numpy as np, keras, dlab
# Keras' own loader reads the shared copy through the link in ~/.keras, with no network.
(x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data()
assert x.shape == (120, 28, 28) and xt.shape == (30, 28, 28), x.shape
assert os.path.realpath(os.path.expanduser("~/.keras/datasets/mnist.npz")) == "/srv/data/keras/datasets/mnist.npz"
assert os.path.exists(os.path.expanduser("~/.keras/datasets/cifar-10-batches-py-target_archive"))
# The labs' loaders read the real files, not the fallbacks.
(x, y), (xt, yt) = dlab.datasets.mnist(); assert x.shape == (120, 28, 28) and xt.shape == (30, 28, 28)
(x, y), (xt, yt) = dlab.datasets.cifar10(); assert x.shape == (100, 32, 32, 3) and xt.shape == (30, 32, 32, 3)
(x, y), (xt, yt) = dlab.datasets.notmnist(); assert len(x) + len(xt) == 50 and x.shape[1:] == (28, 28)
(x, y), (xt, yt) = dlab.datasets.fashion_mnist(); assert x.shape == (120, 28, 28)
assert dlab.datasets.text_corpus().startswith("First Citizen")
# torchvision's raw layout: uncompressed IDX files (MNIST written from the npz).
raw = open("/srv/data/torchvision/MNIST/raw/train-images-idx3-ubyte", "rb").read()
assert raw[:4] == bytes([0, 0, 8, 3]) and int.from_bytes(raw[4:8], "big") == 120 and len(raw) == 16 + 120 * 784
raw = open("/srv/data/torchvision/FashionMNIST/raw/t10k-labels-idx1-ubyte", "rb").read()
assert raw[:4] == bytes([0, 0, 8, 1]) and len(raw) == 8 + 30
assert sorted(os.listdir("/srv/data/torchvision/cifar-10-batches-py"))[:2] == ["batches.meta", "data_batch_1"]
print("LAYOUT OK")
"""
    logs = cpu_container.run_and_wait("--network", "none", "-v", f"{served.data}:/srv/data:ro",
                                      "-e", f"CHECK={check}", command=("bash", "-c", 'dlab-home-init && python -c "$CHECK"'),
                                      no_problems=False)
    assert "LAYOUT OK" in logs
    assert "dlab: MNIST from /srv/data/keras/datasets/mnist.npz: 120 train / 30 test images" in logs


def test_registry_checksums_are_the_ones_keras_checks(cpu_container):
    """Keras re-downloads a cached file whose hash differs from its own: ours must be the same."""
    logs = cpu_container.run_and_wait(command=("bash", "-c",
        "grep -h -A1 'file_hash=' /opt/venv/lib/python3.11/site-packages/keras/src/datasets/{mnist,cifar10}.py"))
    keras_hashes = {line.strip().strip('"') for line in logs.splitlines() if len(line.strip().strip('"')) == 64}
    ours = {REGISTRY["mnist"]["files"]["mnist.npz"]["hash"], REGISTRY["cifar10"]["files"]["cifar-10-python.tar.gz"]["hash"]}
    assert {h.removeprefix("sha256:") for h in ours} == keras_hashes


def test_corrupted_download_is_refused_and_removed(served, dlab_data):
    served.corrupt.add("mnist.npz")
    logs = dlab_data("fetch", "--quiet", "--retries", "1", "mnist", expect_rc=1)
    assert "does not match its checksum, so it was removed" in logs
    assert not (served.data / "keras" / "datasets" / "mnist.npz").exists()
    leftovers = list((served.data / ".dlab" / "downloads" / "mnist").iterdir())
    assert leftovers == [], leftovers
    assert not (served.data / ".dlab" / "mnist.json").exists()


def resumed_at(served, name):
    """The byte a resumed request started from (requests stream in blocks, so a break loses
    at most the block in flight)."""
    starts = [int(r.split("=")[1].rstrip("-")) for n, r in served.requests if n == name and r]
    assert starts, f"no Range request for {name}: {served.requests}"
    return starts[-1]


def test_dropped_connection_resumes_where_it_broke(served, dlab_data):
    served.drop["cifar-10-python.tar.gz"] = [300_000, 1]  # the first response breaks after 300 kB
    logs = dlab_data("fetch", "--quiet", "cifar10")
    start = resumed_at(served, "cifar-10-python.tar.gz")
    assert 0 < start <= 300_000
    assert f"resuming cifar-10-python.tar.gz at {start:,} bytes" in logs
    assert (served.data / "torchvision" / "cifar-10-batches-py" / "test_batch").exists()


def test_failed_download_keeps_the_part_and_the_next_fetch_resumes(served, dlab_data):
    served.drop["input.txt"] = [100_000, 1]
    logs = dlab_data("fetch", "--quiet", "--retries", "0", "shakespeare", expect_rc=1)
    assert "bytes are kept; the next fetch resumes" in logs
    assert not (served.data / "text" / "shakespeare.txt").exists()  # no half file where the real one goes
    dlab_data("fetch", "--quiet", "shakespeare")
    assert 0 < resumed_at(served, "input.txt") <= 100_000
    assert (served.data / "text" / "shakespeare.txt").read_bytes() == (served.root / "input.txt").read_bytes()


def test_read_only_data_folder_says_what_to_do(served, dlab_data):
    logs = dlab_data("fetch", "mnist", data_mount=["-v", f"{served.data}:/data:ro"], expect_rc=1)
    assert "cannot write to /data" in logs and "make data" in logs


def test_full_disk_says_so_and_leaves_no_half_file(served, dlab_data):
    logs = dlab_data("fetch", "--quiet", "--retries", "0", "mnist",
                     data_mount=["--tmpfs", "/data:size=48k,uid=1000,gid=100"], expect_rc=1)
    assert "is full. Free some space" in logs, logs


def test_unknown_dataset_lists_the_known_ones(served, dlab_data):
    logs = dlab_data("fetch", "imagenet", expect_rc=1)
    assert "unknown dataset imagenet; known: " + ", ".join(DATASETS) in logs
