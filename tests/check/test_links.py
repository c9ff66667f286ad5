"""images/base/dlab_links.py's check of a course link, run on the host against a home in tmp_path:
every link a student could send to a classmate or the organizer, and the links `make link` makes.
The same attacks against a real class, in a browser: tests/hub/test_hub_links.py."""
import importlib.util
import os
import subprocess

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("dlab_links", ROOT / "images/base/dlab_links.py")
dlab_links = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dlab_links)
check_link, LinkRefused = dlab_links.check_link, dlab_links.LinkRefused

REPO = "https://github.com/teacher/deep-learning"


@pytest.fixture
def home(tmp_path):
    """A student's home as dlab makes it: the course and hand-in folders are links out of it."""
    home = tmp_path / "home"
    home.mkdir()
    os.symlink("/srv/course", home / "course")
    os.symlink("/srv/handin", home / "handin")
    (home / "week1").mkdir()
    return str(home)


@pytest.mark.parametrize("args, folder", [
    ({"repo": REPO}, "deep-learning"),
    ({"repo": REPO + ".git", "branch": "main"}, "deep-learning.git"),
    ({"repo": REPO, "targetpath": "course-material", "urlpath": "lab/tree/course-material/lab1.ipynb"}, "course-material"),
    ({"repo": REPO, "targetPath": "week1/material", "branch": "release/2026", "depth": "1"}, "week1/material"),
    ({"repo": "http://203.0.113.8:8080/course.git", "targetpath": "./labs-2026/"}, "labs-2026"),
    ({"repo": REPO, "targetpath": "Übungen", "subPath": "woche 1", "app": "lab"}, "Übungen"),
    ({"repo": "https://github.com/mallory/.jupyter", "targetPath": "safe"}, "safe"),
])
def test_a_course_link_puts_the_repository_in_a_visible_folder_of_the_home(home, args, folder):
    path, query = check_link(args, home)
    assert path == os.path.join(home, folder)
    # nbgitpuller sees the checked parameters alone, the folder always named.
    assert query["targetpath"] == folder and query["repo"] == args["repo"] and "targetPath" not in query
    assert set(query) <= set(args) | {"targetpath"}


def test_a_folder_made_by_the_same_repository_is_updated_and_any_other_refused(home, tmp_path):
    """nbgitpuller updates an existing folder from its own origin, committing the work in it: only
    a copy of the link's own repository may be updated."""
    copy = os.path.join(home, "deep-learning")
    subprocess.run(["git", "init", "-q", copy], check=True)
    subprocess.run(["git", "-C", copy, "remote", "add", "origin", REPO], check=True)
    assert check_link({"repo": REPO}, home)[0] == copy
    with pytest.raises(LinkRefused, match="exists and is not a copy of https://evil.example/x/deep-learning"):
        check_link({"repo": "https://evil.example/x/deep-learning"}, home)
    with pytest.raises(LinkRefused, match="'week1' exists and is not a copy"):
        check_link({"repo": REPO, "targetpath": "week1"}, home)


@pytest.mark.parametrize("args, says", [
    # Repositories that are not on the internet: other folders of the server, other transports.
    ({"repo": "/srv/handins/ana/planted"}, "is not an https:// URL"),
    ({"repo": "../ana/planted"}, "is not an https:// URL"),
    ({"repo": "file:///home/jovyan/planted"}, "is not an https:// URL"),
    ({"repo": "ext::sh -c touch% /tmp/pwned"}, "is not an https:// URL"),
    ({"repo": "ssh://git@github.com/teacher/course"}, "is not an https:// URL"),
    ({"repo": "git@github.com:teacher/course.git"}, "is not an https:// URL"),
    ({"repo": "https:///no-host"}, "is not an https:// URL"),
    ({"repo": ""}, "is not an https:// URL"),
    # Folders that change how the victim's Jupyter, Python or shell start, or lie outside the home.
    ({"repo": REPO, "targetpath": ".ipython/profile_default/startup"}, "hidden folder (.ipython)"),
    ({"repo": REPO, "targetpath": ".local/share/jupyter/kernels"}, "hidden folder (.local)"),
    ({"repo": REPO, "targetpath": "week1/../.config"}, "climbs out"),
    ({"repo": REPO, "targetpath": "../../srv/handins/ana"}, "climbs out"),
    ({"repo": REPO, "targetpath": "/home/jovyan/.ipython/profile_default/startup"}, "absolute path"),
    ({"repo": "https://evil.example/x/.ipython"}, "hidden folder (.ipython)"),
    ({"repo": REPO + "/"}, "names no folder"),
    ({"repo": REPO, "targetpath": "week1\\..\\.bashrc"}, "cannot have"),
    ({"repo": REPO, "targetpath": "a" * 256}, "too long"),
    # Through the links into the class's shared folders.
    ({"repo": REPO, "targetpath": "course/week2"}, "passes through course"),
    ({"repo": REPO, "targetpath": "handin"}, "passes through handin"),
    ({"repo": "https://github.com/teacher/course"}, "passes through course"),
    # The page to open afterwards, and the branch, stay what they are.
    ({"repo": REPO, "urlpath": "lab/tree/../../../hub/token"}, "climbs out"),
    ({"repo": REPO, "subpath": "/etc"}, "absolute path"),
    ({"repo": REPO, "branch": "--upload-pack=touch /tmp/pwned"}, "not a branch name"),
    ({"repo": REPO, "branch": "main..evil"}, "not a branch name"),
    ({"repo": REPO, "depth": "1; rm"}, "not a whole number"),
    # What a security review found in the first version of the check:
    # targetPath beside targetpath, which nbgitpuller's two pages read differently (the event
    # stream ignored targetPath, and cloned into .jupyter; the accepted case above shows that
    # nbgitpuller now sees the checked folder as targetpath);
    ({"repo": REPO, "targetpath": "", "targetPath": "safe"}, "names no folder"),
    # backup, which moves the victim's folder aside and puts the link's in its place;
    ({"repo": REPO, "targetpath": "material", "backup": "true"}, "does not take: backup"),
    # a ".." hidden from the check in percent-encoding, which the status page decodes;
    ({"repo": REPO, "urlpath": "%252e%252e/%252e%252e/hub/admin"}, "cannot have"),
    # markup in the repository's URL, which nbgitpuller's error box builds HTML from.
    ({"repo": "https://github.com/x/y?<form/action=//evil><input/name=pw>"}, "is not an https:// URL"),
    ({"repo": REPO, "app": "javascript"}, "not lab or notebook"),
])
def test_a_link_that_does_anything_else_is_refused_with_the_reason(home, args, says):
    with pytest.raises(LinkRefused, match=says.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check_link(args, home)


def test_the_organizer_names_the_hosts_links_may_take_from(home):
    hosts = dlab_links.link_hosts("GitHub.com, gitlab.uni.example")
    assert hosts == {"github.com", "gitlab.uni.example"}
    assert check_link({"repo": REPO}, home, hosts)[0].endswith("/deep-learning")
    assert check_link({"repo": "https://gitlab.uni.example/ml/lectures"}, home, hosts)[0].endswith("/lectures")
    with pytest.raises(LinkRefused, match="from github.com, gitlab.uni.example only, not from evil.example"):
        check_link({"repo": "https://evil.example/teacher/course"}, home, hosts)
    # A host that only ends like a named one is another host.
    with pytest.raises(LinkRefused, match="not from evilgithub.com"):
        check_link({"repo": "https://evilgithub.com/teacher/course"}, home, hosts)
    assert dlab_links.link_hosts("") == set()
