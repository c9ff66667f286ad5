"""dlab-home-init's decisions (the labs' home sync, images/common), run on the host against a
folder of labs and a home in tmp_path: what is added, updated, kept and put beside."""
import importlib.machinery
import importlib.util
import json

import pytest

from conftest import ROOT


@pytest.fixture
def home_init(tmp_path, monkeypatch):
    """dlab-home-init as a module, with the image's labs in tmp_path/image and the home tmp_path/home;
    release(version, {name: text}) makes the image's labs of a version."""
    image, home = tmp_path / "image", tmp_path / "home"
    image.mkdir()
    home.mkdir()
    monkeypatch.setenv("DLAB_LABS_DIR", str(image))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DLAB_DATA_DIR", str(tmp_path / "data"))
    loader = importlib.machinery.SourceFileLoader("dlab_home_init", str(ROOT / "images/common/dlab-home-init"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)

    def release(version, files):
        module.VERSION = version
        for path in image.glob("*"):
            path.unlink()
        for name, text in files.items():
            (image / name).write_text(text)
        module.main()
        return {p.name: p.read_text() for p in (home / "labs").iterdir() if p.is_file() and not p.name.startswith(".")}

    module.release, module.home = release, home
    return module


def test_a_new_home_gets_every_lab(home_init):
    assert home_init.release("1", {"a.ipynb": "a1", "b.ipynb": "b1"}) == {"a.ipynb": "a1", "b.ipynb": "b1"}
    state = json.loads((home_init.home / "labs" / ".dlab-labs.json").read_text())
    assert state["version"] == "1" and set(state["files"]) == {"a.ipynb", "b.ipynb"}


def test_a_newer_image_updates_untouched_labs_and_never_overwrites_edits(home_init):
    home_init.release("1", {"a.ipynb": "a1", "b.ipynb": "b1"})
    (home_init.home / "labs" / "b.ipynb").write_text("my answers")
    files = home_init.release("2", {"a.ipynb": "a2", "b.ipynb": "b2", "c.ipynb": "c2"})
    assert files["a.ipynb"] == "a2" and files["c.ipynb"] == "c2"   # untouched: updated; new: added
    assert files["b.ipynb"] == "my answers"                          # edited: kept
    beside = [name for name in files if name.startswith("b.dlab-")]
    assert len(beside) == 1 and files[beside[0]] == "b2" and beside[0].endswith(".ipynb")
    # The next start changes nothing more: the edit stays, no second copy appears.
    assert home_init.release("2", {"a.ipynb": "a2", "b.ipynb": "b2", "c.ipynb": "c2"}) == files


def test_a_deleted_lab_comes_back_fresh(home_init):
    home_init.release("1", {"a.ipynb": "a1"})
    (home_init.home / "labs" / "a.ipynb").unlink()
    assert home_init.release("1", {"a.ipynb": "a1"}) == {"a.ipynb": "a1"}


def test_a_home_with_no_room_is_left_alone_with_a_warning(home_init, monkeypatch, capsys):
    home_init.release("1", {"a.ipynb": "a1"})
    (home_init.home / "labs" / "a.ipynb").write_text("mine")
    monkeypatch.setattr(home_init.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    assert home_init.release("2", {"a.ipynb": "a2", "b.ipynb": "b2"}) == {"a.ipynb": "mine"}
    assert "WARNING: dlab: could not bring the labs" in capsys.readouterr().err


def test_shared_keras_datasets_are_linked_and_dangling_links_dropped(home_init, tmp_path, monkeypatch):
    shared = tmp_path / "data" / "keras" / "datasets"
    shared.mkdir(parents=True)
    (shared / "mnist.npz").write_text("npz")
    monkeypatch.setenv("KERAS_HOME", str(home_init.home / ".keras"))
    home_init.release("1", {})
    link = home_init.home / ".keras" / "datasets" / "mnist.npz"
    assert link.is_symlink() and link.read_text() == "npz"
    (shared / "mnist.npz").unlink()
    home_init.release("1", {})
    assert not link.is_symlink()
