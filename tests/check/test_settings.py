"""The one declaration of the class's settings (hub/dlab_hub/settings.py): what is made from it, how
.env is read, and that every wrong value stops a command with the setting named and what it allows."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

import dlab_hub.settings
from dlab_hub.kinds import GpuRequest, Invalid
from dlab_hub.settings import BY_NAME, SETTINGS, load, read_env_file

# A value each setting must refuse, the way a person gets it wrong. A new setting needs a line here
# (test_every_setting_has_a_wrong_value_here), so its check is tested from the day it exists.
WRONG = {
    "DLAB_HUB_PORT": "80000", "DLAB_HUB_BIND": "localhost", "DLAB_ADMIN": "the organizer",
    "DLAB_CLASS_CODE": "a code pasted twice " * 11,
    "DLAB_IMAGE": "dlab/cpu latest", "DLAB_GPU_IMAGE": "Dlab/GPU", "DLAB_GPUS": "yes", "DLAB_GPU_IDS": "0 1",
    "DLAB_MEM_LIMIT": "4 GB", "DLAB_CPU_LIMIT": "two", "DLAB_PIDS_LIMIT": "10", "DLAB_SHM_SIZE": "-1g",
    "DLAB_TMP_SIZE": "1gb", "DLAB_HOME_SIZE": "10", "DLAB_HANDIN_SIZE": "32M", "DLAB_COURSE_SIZE": "1T1", "DLAB_HOMES_DIR": "homes", "DLAB_HUB_CONFIG_DIR": "../elsewhere", "DLAB_EGRESS": "maybe", "DLAB_LAB_SOLUTIONS": "hidden", "DLAB_OIDC_ALLOWED_USERS": "ana;ben", "DLAB_PENDING_SIGNUPS": "0", "DLAB_LINK_HOSTS": "https://github.com",
    "DLAB_SUBDOMAIN_HOST": "class.example.org/lab", "DLAB_ORGANIZER_OPENS_SERVERS": "yes",
    "DLAB_IDLE_TIMEOUT": "1h", "DLAB_CULL_EVERY": "5s", "DLAB_START_TIMEOUT": "ten", "DLAB_GRADE_TIMEOUT": "5", "DLAB_CLASS_VIEW_EVERY": "3", "DLAB_PROMETHEUS": "yes", "DLAB_PROMETHEUS_PORT": "0", "DLAB_GRADING_SIZE": "1T2",
    "DLAB_MIN_PASSWORD_LENGTH": "0", "DLAB_DATA_VOLUME": "my data", "DLAB_PREFIX": "Class2",
    "DLAB_NETWORK": "-net", "DLAB_SPAWN_LIMIT": "0", "DLAB_STARTS_AT_ONCE": "0", "DLAB_PRESTART_AT": "8:45", "DLAB_PRESTART_HOLD": "0", "DLAB_MAX_SERVERS": "lots", "DLAB_SIGNUPS_PER_HOUR": "-5",
    "DLAB_MIN_FREE_GB": "2GB", "DLAB_SWARM_SHARED": "nfs:/homes", "DLAB_SWARM_REGISTRY": "http://registry", "DLAB_SSL_CERT": "fullchain.pem", "DLAB_SSL_KEY": "~/privkey.pem",
    "DLAB_DOMAIN": "https://class.example.edu", "DLAB_ACME_EMAIL": "organizer@localhost",
    "DLAB_ACME_DIRECTORY": "acme-v02.api.letsencrypt.org/directory", "DLAB_ACME_CA_ROOT": "root.pem",
    "DLAB_OIDC_ISSUER": "login.uni.example", "DLAB_OIDC_CLIENT_ID": "dlab class", "DLAB_OIDC_CLIENT_SECRET": "s3cret pasted",
    "DLAB_OIDC_NAME": "Uni\tLogin", "DLAB_OIDC_USERNAME_CLAIM": "preferred username", "DLAB_OIDC_EMAIL_DOMAIN": "@uni.example",
}


def export(tmp_path, env_text, **environ):
    """scripts/lib.sh's reader: `PYTHONPATH=hub python3 -m dlab_hub.settings export`, as a command runs it."""
    (tmp_path / "class.env").write_text(env_text)
    env = {"PATH": os.environ["PATH"], "DLAB_ENV_FILE": str(tmp_path / "class.env"), "PYTHONPATH": "hub", **environ}
    return subprocess.run([sys.executable, "-m", "dlab_hub.settings", "export"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_env_example_and_the_readme_table_are_made_from_the_declaration():
    assert (ROOT / ".env.example").read_text() == dlab_hub.settings.env_example(), \
        ".env.example is stale: run .venv/bin/python -m dlab_hub.settings write"
    reference = (ROOT / dlab_hub.settings.TABLE_FILE).read_text()
    assert dlab_hub.settings.readme_with_table(reference) == reference, \
        f"the settings table of {dlab_hub.settings.TABLE_FILE} is stale: run .venv/bin/python -m dlab_hub.settings write"


def test_env_example_as_it_is_gives_the_defaults():
    assert read_env_file(ROOT / ".env.example") == {s.name: s.default for s in SETTINGS}
    values, parsed, problems, warnings = load({}, ROOT / ".env.example")
    assert problems == [] and warnings == [] and set(parsed) == set(BY_NAME)


def test_every_setting_has_a_wrong_value_here():
    assert set(WRONG) == set(BY_NAME), "add the new setting's wrong value to WRONG"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_each_setting_takes_its_default_and_refuses_a_wrong_value(name):
    setting = BY_NAME[name]
    setting.parse(setting.default)  # the default is allowed
    with pytest.raises(Invalid) as error:
        setting.parse(WRONG[name])
    assert str(error.value) == f"{name}={WRONG[name]!r} is not {setting.kind.allowed}"


@pytest.mark.parametrize("name, value, parsed", [
    ("DLAB_HOME_SIZE", "0", ""), ("DLAB_HOME_SIZE", "500m", "500M"), ("DLAB_CPU_LIMIT", "0.5", 0.5),
    ("DLAB_MAX_SERVERS", "0", 0), ("DLAB_MAX_SERVERS", "auto", "auto"), ("DLAB_ADMIN", "Teacher", "teacher"),
    ("DLAB_GPUS", "device=0,1", GpuRequest("devices", devices=("0", "1"))), ("DLAB_GPUS", "2", GpuRequest("count", 2)), ("DLAB_DATA_VOLUME", "/srv/datasets", "/srv/datasets"),
    ("DLAB_SUBDOMAIN_HOST", "https://class.example.org:8443", "https://class.example.org:8443"),
])
def test_values_people_write_are_understood(name, value, parsed):
    assert BY_NAME[name].parse(value) == parsed


def test_a_wrong_env_stops_with_every_mistake_named_and_nothing_exported(tmp_path):
    out = export(tmp_path, "DLAB_GPUS=yes\nDLAB_MEM_LIMIT=4 GB\nDLAB_PREFIX=Class2\nDLAB_PIDSLIMIT=100\n")
    assert out.returncode == 1 and out.stdout == ""
    for line in ("DLAB_GPUS='yes' is not auto, none, all", "DLAB_MEM_LIMIT='4 GB' is not a size like 512m",
                 "DLAB_PREFIX='Class2' is not small letters, digits", "DLAB_PIDSLIMIT in ",
                 "is not a dlab setting (a typo?", "fix those in "):
        assert line in out.stderr, out.stderr


def test_env_is_read_as_data_as_compose_reads_it(tmp_path):
    planted = tmp_path / "planted"
    text = (f"# a comment\n\nexport DLAB_CLASS_CODE=deep learning # shared in class\n"
            f"DLAB_ADMIN='teacher'\nDLAB_NETWORK=\"class-net\"\r\nDLAB_DATA_VOLUME=$(touch {planted})\n")
    (tmp_path / "class.env").write_text(text)
    assert read_env_file(tmp_path / "class.env") == {
        "DLAB_CLASS_CODE": "deep learning", "DLAB_ADMIN": "teacher", "DLAB_NETWORK": "class-net",
        "DLAB_DATA_VOLUME": f"$(touch {planted})"}
    # Through scripts/lib.sh, as every command reads it: the command substitution is a value (and a
    # wrong one), never run.
    out = subprocess.run(["bash", "-c", ". scripts/lib.sh && load_settings && echo \"$DLAB_CLASS_CODE\""], cwd=ROOT,
                         env={"PATH": os.environ["PATH"], "DLAB_ENV_FILE": str(tmp_path / "class.env")},
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "DLAB_DATA_VOLUME='$(touch" in out.stderr
    assert not planted.exists()


def test_a_line_that_is_not_a_setting_names_its_line(tmp_path):
    out = export(tmp_path, "DLAB_PREFIX=class2\nDLAB_CLASS_CODE deep-learning\n")
    assert out.returncode == 1 and "line 2 is not NAME=value: DLAB_CLASS_CODE deep-learning" in out.stderr


def test_the_environment_wins_over_env_and_empty_means_the_default(tmp_path):
    out = export(tmp_path, "DLAB_PREFIX=class2\nDLAB_HUB_PORT=\nDLAB_MEM_LIMIT=2G\n", DLAB_MEM_LIMIT="3G")
    assert out.returncode == 0, out.stderr
    values = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert values["DLAB_PREFIX"] == "class2" and values["DLAB_HUB_PORT"] == "8000" and values["DLAB_MEM_LIMIT"] == "3G"
    hub = json.loads(values["DLAB_HUB_SETTINGS"])
    # The hub gets its settings and the shared ones, not the host's own (the TLS key's path, the port).
    assert hub["DLAB_PREFIX"] == "class2" and "DLAB_SSL_KEY" not in hub and "DLAB_HUB_PORT" not in hub
    assert set(hub) == {s.name for s in SETTINGS if s.applies in ("hub", "both")}


def test_load_settings_exports_every_setting_for_the_scripts(tmp_path):
    (tmp_path / "class.env").write_text("DLAB_PREFIX=class2\nDLAB_DATA_VOLUME=class2-data\n")
    out = subprocess.run(["bash", "-c", '. scripts/lib.sh && load_settings && echo "$DLAB_PREFIX $DLAB_DATA_VOLUME $DLAB_IMAGE"'],
                         cwd=ROOT, env={"PATH": os.environ["PATH"], "DLAB_ENV_FILE": str(tmp_path / "class.env")},
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "class2 class2-data dlab/cpu:latest\n", out.stderr


def test_compose_keeps_no_second_list_of_settings_or_defaults():
    compose = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"\$\{DLAB_\w+:-", compose), "a default in compose.yaml: defaults live in hub/dlab_hub/settings.py"
    # The proxy's two flags, Caddy's inputs (the https service: dlab_hub.https), the hub's one JSON value.
    assert re.findall(r"^\s+(DLAB_\w+):", compose, re.M) == [
        "DLAB_SSL_CERT", "DLAB_SUBDOMAIN_HOST", "DLAB_DOMAIN", "DLAB_ACME_DIRECTORY", "DLAB_ACME_EMAIL", "DLAB_HUB_SETTINGS"]


# DLAB_ names that are not class settings: the settings file, the build's and the tests' knobs, and
# what make up derives for compose.yaml (DLAB_PROXY_BIND, DLAB_ACME_ROOT_MOUNT).
NOT_SETTINGS = {"DLAB_ENV_FILE", "DLAB_HUB_SETTINGS", "DLAB_CA_BUNDLE", "DLAB_WHEELHOUSE", "DLAB_SKIP_GPU_IMAGE", "DLAB_SKIP_LEGACY",
                "DLAB_HUB_STATE", "DLAB_PROXY_DIR", "DLAB_METRICS_DIR", "DLAB_FIREWALL", "DLAB_HANDIN_DIR", "DLAB_GPU_CARDS", "DLAB_DOCKER_SOCKET", "DLAB_COURSE", "DLAB_ROLE",
                "DLAB_TEST_WORKERS", "DLAB_PROXY_BIND", "DLAB_ACME_ROOT_MOUNT"}  # the servers' environment (DLAB_GPU_CARDS, DLAB_COURSE, DLAB_ROLE) and make test's own knobs (DLAB_SKIP_*, DLAB_TEST_WORKERS) are not the class's


def test_every_setting_the_class_server_reads_is_declared():
    used = set()
    paths = ["compose.yaml", "scripts/hub.sh", "scripts/homes.sh", "scripts/fetch-data.sh", "Makefile"]
    paths += [str(p.relative_to(ROOT)) for p in (ROOT / "hub").rglob("*.py") if p.name != "settings.py"]
    for path in paths:
        used |= set(re.findall(r"\bDLAB_[A-Z_]+\b", (ROOT / path).read_text()))
    assert used - NOT_SETTINGS <= set(BY_NAME), f"not declared in hub/dlab_hub/settings.py: {used - NOT_SETTINGS - set(BY_NAME)}"


def test_an_issuer_without_its_client_is_refused():
    _, _, problems, _ = load({"DLAB_OIDC_ISSUER": "https://login.uni.example", "DLAB_OIDC_CLIENT_ID": "dlab"})
    assert problems == ["DLAB_OIDC_ISSUER is set but DLAB_OIDC_CLIENT_ID or DLAB_OIDC_CLIENT_SECRET is empty: set "
                        "both (the provider gives them when you register the class server)"]
    _, parsed, problems, _ = load({"DLAB_OIDC_ISSUER": "https://login.uni.example", "DLAB_OIDC_CLIENT_ID": "dlab",
                                   "DLAB_OIDC_CLIENT_SECRET": "s3cret"})
    assert problems == [] and parsed["DLAB_OIDC_NAME"] == "your institution"


def test_a_gpu_request_is_parsed_once_into_what_docker_swarm_and_kubernetes_take():
    """DLAB_GPUS's grammar lives in GpuRequest alone: the spawner's value, a swarm service's and a
    Kubernetes pod's count of cards all come from it."""
    for text, kind, cards in (("auto", "auto", 1), ("none", "none", 1), ("all", "all", 1), ("3", "count", 3),
                              ("device=0,GPU-4b2e", "devices", 1)):
        request = GpuRequest.parse(text)
        assert (request.kind, request.cards) == (kind, cards) and GpuRequest.parse(str(request)) == request
    assert str(GpuRequest.parse("none")) == ""  # the spawner's "": no GPU profile
    for wrong in ("0", "02", "device=", "device=0,", "yes", "all,1", "2 "):
        with pytest.raises(Invalid):
            GpuRequest.parse(wrong)
    with pytest.raises(Invalid):
        BY_NAME["DLAB_GPUS"].parse("")  # the setting itself is never empty
