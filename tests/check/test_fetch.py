"""dlab-data's download logic (labs/dlab/fetch.py) on the host, against the local test server
(tests/data/server.py): checksums, resuming after a dropped connection, and what it says. The
container tests (tests/labs/test_dlab_data.py) cover every dataset's layout inside dlab/cpu."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT

from server import DataServer, registry_for

REGISTRY = json.loads((ROOT / "labs" / "dlab" / "registry.json").read_text())
# fetch.py by itself: the dlab package's __init__ imports numpy, which the host need not have.
LOAD_FETCH = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('fetch', {str(ROOT / 'labs/dlab/fetch.py')!r}); "
              "fetch = importlib.util.module_from_spec(spec); spec.loader.exec_module(fetch); sys.exit(fetch.main())")
TEXT = "".join(f"ACT {i}. Enter a student, with a notebook.\n" for i in range(20_000)).encode()  # ~0.9 MB


@pytest.fixture
def served(tmp_path):
    """Shakespeare's file served locally, with a sha256 in the registry so a corrupt copy is caught."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "input.txt").write_bytes(TEXT)
    entry = json.loads(json.dumps(REGISTRY["shakespeare"]))
    entry["files"]["input.txt"]["hash"] = "to be computed"
    with DataServer(files) as server:
        server.registry = tmp_path / "registry.json"
        server.registry.write_text(json.dumps(registry_for({"shakespeare": entry}, files, server.url)))
        server.data = tmp_path / "data"
        server.data.mkdir()
        yield server


def fetch(server, *args, expect_rc=0):
    out = subprocess.run([sys.executable, "-c", LOAD_FETCH, "--dir", str(server.data),
                          "--registry", str(server.registry), "fetch", "--quiet", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == expect_rc, out.stderr
    return out.stdout + out.stderr


def test_a_dataset_lands_where_the_loaders_look(served):
    fetch(served, "shakespeare")
    assert (served.data / "text" / "shakespeare.txt").read_bytes() == TEXT
    assert "already" in fetch(served, "shakespeare") or len(served.requests) == 1  # a second fetch downloads nothing
    assert len(served.requests) == 1


def test_a_corrupt_download_is_refused_and_removed(served):
    served.corrupt.add("input.txt")
    logs = fetch(served, "--retries", "1", "shakespeare", expect_rc=1)
    assert "does not match its checksum, so it was removed" in logs
    assert not (served.data / "text" / "shakespeare.txt").exists()
    assert list((served.data / ".dlab" / "downloads" / "shakespeare").iterdir()) == []


def test_a_dropped_connection_resumes_where_it_broke(served):
    served.drop["input.txt"] = [300_000, 1]
    logs = fetch(served, "shakespeare")
    ranges = [int(r.split("=")[1].rstrip("-")) for name, r in served.requests if r]
    assert ranges and 0 < ranges[-1] <= 300_000 and f"resuming input.txt at {ranges[-1]:,} bytes" in logs
    assert (served.data / "text" / "shakespeare.txt").read_bytes() == TEXT


def test_a_failed_fetch_keeps_its_part_for_the_next(served):
    served.drop["input.txt"] = [100_000, 1]
    assert "bytes are kept; the next fetch resumes" in fetch(served, "--retries", "0", "shakespeare", expect_rc=1)
    assert not (served.data / "text" / "shakespeare.txt").exists()
    fetch(served, "shakespeare")
    assert (served.data / "text" / "shakespeare.txt").read_bytes() == TEXT


def test_an_unknown_dataset_lists_the_known_ones(served):
    assert "unknown dataset imagenet; known: shakespeare" in fetch(served, "imagenet", expect_rc=1)
