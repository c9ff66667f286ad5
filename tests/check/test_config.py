"""dlab_hub.config.configure: the hub's whole JupyterHub configuration as a pure function of the
settings and the engine's answers (injected here), and dlab_hub's spawner logic, without Docker."""
import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.scopes import expand_scopes
from tornado import web

from conftest import ROOT

import dlab_hub.config
from dlab_hub.config import Engine, configure
from dlab_hub.engine import gpu_device_requests
from dlab_hub.spawner import DlabSpawner
from dlab_hub.swarm_spawner import DlabSwarmSpawner
from dlab_hub.kinds import GpuRequest
from dlab_hub.settings import load

GIB = 1024**3
BUILT = frozenset({"dlab/cpu:latest", "dlab/gpu:latest"})


def config(engine=Engine(images=BUILT), **settings):
    values, parsed, problems, _ = load(settings, applies=("hub", "both"))
    assert problems == []
    return configure(parsed, engine)


def test_defaults_make_a_class_with_limits_and_no_gpu_profile():
    c, notes = config()
    assert c.DockerSpawner.mem_limit == "4G" and c.DockerSpawner.cpu_limit == 2.0
    assert c.DockerSpawner.extra_host_config["pids_limit"] == 1024
    assert c.DockerSpawner.extra_host_config["tmpfs"] == {"/tmp": "size=1g,mode=1777,nosuid,nodev"}
    assert c.DockerSpawner.volumes == {"dlab-home-{username}": "/home/jovyan",
                                       "dlab-data": {"bind": "/srv/data", "mode": "ro"}}
    assert c.DlabSpawner.gpus == "" and c.DlabSpawner.home_size == "5G"
    assert c.DockerSpawner.environment["DLAB_FIREWALL"] == "egress"
    assert c.JupyterHub.active_server_limit == 44 and "at most 44 servers at once" in notes[0]
    assert c.Spawner.disable_user_config is True and c.DockerSpawner.extra_host_config["read_only"] is True
    assert "subdomain_host" not in c.JupyterHub and c.JupyterHub.bind_url == "http://:8000"


@pytest.mark.parametrize("gpus, engine, offered, note", [
    ("auto", Engine(gpu_runtime=True, images=BUILT), "all", None),
    ("auto", Engine(gpu_runtime=True, images=frozenset({"dlab/cpu:latest"})), "", "`make build-gpu` adds the GPU profile"),
    ("auto", Engine(gpu_runtime=False, images=BUILT), "", None),
    ("none", Engine(gpu_runtime=True, images=BUILT), "", None),
    ("device=0,1", Engine(images=BUILT), "device=0,1", None),
    ("2", Engine(images=BUILT), "2", "each GPU server gets 2 of the cards (none found)"),
])
def test_the_gpu_profile_follows_the_engine(gpus, engine, offered, note):
    c, notes = config(engine, DLAB_GPUS=gpus)
    assert c.DlabSpawner.gpus == offered
    assert any(note in n for n in notes) if note else not any("GPU" in n for n in notes)


def test_a_missing_student_image_is_said():
    _, notes = config(Engine(images=frozenset()))
    assert "dlab/cpu:latest is missing: `make up` builds it" in notes


@pytest.mark.parametrize("memory, setting, limit", [(24 * GIB, "auto", 44), (2 * GIB, "auto", 1), (64 * GIB, "auto", 124),
                                                    (24 * GIB, "0", 0), (24 * GIB, "12", 12)])
def test_max_servers(memory, setting, limit):
    c, notes = config(Engine(images=BUILT, memory=memory), DLAB_MAX_SERVERS=setting)
    assert c.JupyterHub.active_server_limit == limit
    assert f"at most {limit or 'unlimited'} servers" in notes[0]


@pytest.mark.parametrize("cpus, setting, at_once", [(2, "auto", 2), (16, "auto", 16), (16, "3", 3)])
def test_starts_take_turns_by_the_machines_cores(cpus, setting, at_once):
    c, notes = config(Engine(images=BUILT, cpus=cpus), DLAB_STARTS_AT_ONCE=setting)
    assert c.DlabSpawner.starts_at_once == at_once
    assert f"{at_once} server starts side by side" in " ".join(notes)
    # the spawn limit bounds the queue, far above the turns: a class waits in order, not for 429s
    assert c.JupyterHub.concurrent_spawn_limit == 100


def test_students_containers_run_no_healthcheck():
    c, _ = config()
    assert c.DockerSpawner.extra_create_kwargs["healthcheck"] == {"test": ["NONE"]}


def test_https_makes_every_cookie_secure_and_subdomains_route_by_host():
    c, _ = config(DLAB_SSL_CERT="/etc/ssl/class.pem", DLAB_SUBDOMAIN_HOST="https://class.example.org")
    assert c.JupyterHub.bind_url == "https://:8000" and c.Spawner.cookie_options == {"secure": True}
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True}
    assert c.JupyterHub.subdomain_host == "https://class.example.org"


@pytest.mark.parametrize("opens", ["off", "on"])
def test_the_organizer_runs_the_class_but_opens_servers_only_when_allowed(opens):
    c, _ = config(DLAB_ADMIN="Teacher", DLAB_ORGANIZER_OPENS_SERVERS=opens)
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["admin"]["users"] == (["teacher"] if opens == "on" else [])
    assert roles["organizer"]["users"] == ["teacher"] and c.DlabAuthenticator.organizer == "teacher"
    # The scopes as JupyterHub expands them: `shares` holds `access:servers` (JupyterHub 5.x), so a
    # role that merely drops `access:servers` from its list still opens every student's server.
    expanded = expand_scopes(frozenset(roles["organizer"]["scopes"]))
    assert not [scope for scope in expanded if scope.startswith("access:servers")], sorted(expanded)
    assert {"admin:users", "admin:servers", "read:shares", "users:shares"} <= expanded
    assert "access:servers" in expand_scopes(frozenset(["shares"])), "the control: shares opens servers"


def test_the_organizers_scopes_are_the_admins_less_opening_servers():
    """Every scope of JupyterHub's admin role is the organizer's, but for what opens a server."""
    admin = expand_scopes(frozenset(dlab_hub.config.ADMIN_SCOPES))
    organizer = expand_scopes(frozenset(dlab_hub.config.ORGANIZER_SCOPES))
    assert admin - organizer == {"access:servers", "shares"}


def services(c):
    return {service["name"]: service["command"] for service in c.JupyterHub.services}


def test_the_idle_culler_runs_only_with_a_timeout():
    c, _ = config(DLAB_IDLE_TIMEOUT="600")
    culler = services(c)["idle-culler"]
    assert "--timeout=600" in culler and "--cull-every=150" in culler
    assert "--cull-every=30" in services(config(DLAB_IDLE_TIMEOUT="600", DLAB_CULL_EVERY="30")[0])["idle-culler"]
    c, _ = config(DLAB_IDLE_TIMEOUT="0")
    assert "idle-culler" not in services(c) and "idle-culler" not in {r["name"] for r in c.JupyterHub.load_roles}


def test_prestart_runs_always_and_holds_servers_well_within_the_idle_timeout():
    c, _ = config(DLAB_PRESTART_AT="07:45", DLAB_PRESTART_HOLD="90", DLAB_IDLE_TIMEOUT="30")
    prestart = services(c)["prestart"]
    assert prestart[1:4] == ["-m", "dlab_hub.prestart", "serve"]
    assert {"--at=07:45", "--hold=90", "--every=10", "--organizer=admin"} <= set(prestart)
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "prestart")
    assert role["services"] == ["prestart"] and "access:servers" not in role["scopes"]
    assert "--at=" in services(config(DLAB_IDLE_TIMEOUT="0")[0])["prestart"]


def test_a_class_of_its_own_names_everything_by_its_prefix():
    c, _ = config(DLAB_PREFIX="class2", DLAB_NETWORK="class2-net", DLAB_DATA_VOLUME="class2-data", DLAB_EGRESS="off",
                  DLAB_HOME_SIZE="0")
    assert c.DockerSpawner.prefix == "class2" and c.DockerSpawner.network_name == "class2-net"
    assert set(c.DockerSpawner.volumes) == {"class2-home-{username}", "class2-data"}
    assert c.DockerSpawner.extra_create_kwargs["labels"]["org.dlab.hub"] == "class2"
    assert c.DockerSpawner.environment["DLAB_FIREWALL"] == "closed" and c.DlabSpawner.home_size == ""


def test_the_hosts_course_links_may_take_from_reach_every_students_server():
    assert config()[0].DockerSpawner.environment["DLAB_LINK_HOSTS"] == ""
    c, _ = config(DLAB_LINK_HOSTS="github.com, gitlab.uni.example")
    assert c.DockerSpawner.environment["DLAB_LINK_HOSTS"] == "github.com, gitlab.uni.example"
    _, _, problems, _ = load({"DLAB_LINK_HOSTS": "https://github.com/x"})
    assert problems == ["DLAB_LINK_HOSTS='https://github.com/x' is not host names separated by spaces or commas, "
                        "like github.com gitlab.uni.example, or empty"]


# --- The spawner ---------------------------------------------------------------------------------

def spawner(name="alice", **traits):
    c, _ = config(**traits)
    return DlabSpawner(user=SimpleNamespace(name=name, id=1, url=f"/user/{name}/"), config=c)


@pytest.mark.parametrize("name, container", [
    ("alice", "dlab.alice"), ("a.b-c_d", "dlab.a-2eb-2dc-5fd"), ("éva", "dlab.-c3-a9va"), ("hub", "dlab.hub")])
def test_container_names_cannot_take_the_hubs_or_another_classs(name, container):
    """PREFIX.<escaped name>: compose names its containers PREFIX-SERVICE, so no account's server
    is called dlab-hub or dlab-proxy, whatever the student picks."""
    assert spawner(name).object_name == container


def test_the_spawner_acts_only_on_containers_labelled_as_this_students():
    s = spawner("alice")
    ours = {"Config": {"Labels": {"org.dlab.hub": "dlab", "org.dlab.user": "alice"}}}
    assert s.owns(ours)
    assert not s.owns({"Config": {"Labels": {"org.dlab.hub": "dlab", "org.dlab.user": "bob"}}})
    assert not s.owns({"Config": {"Labels": {"org.dlab.hub": "class2", "org.dlab.user": "alice"}}})
    assert not s.owns({"Config": {"Labels": None}})


def test_on_a_swarm_the_spawner_names_and_owns_services():
    c, _ = config(DLAB_SWARM_SHARED="/mnt/class")
    s = DlabSwarmSpawner(user=SimpleNamespace(name="éva", id=1, url="/user/%C3%A9va/"), config=c)
    assert s.object_name == "dlab-u--c3-a9va"  # a service's name: a DNS label, apart from dlab-hub
    assert s.owns({"Spec": {"Name": "dlab-u--c3-a9va", "Labels": {"org.dlab.hub": "dlab", "org.dlab.user": "éva"}}})
    assert not s.owns({"Spec": {"Name": "dlab-u--c3-a9va", "Labels": {"org.dlab.hub": "dlab", "org.dlab.user": "bob"}}})
    assert not s.owns({"Spec": {"Name": "dlab-u--c3-a9va"}})


def test_the_profile_form_appears_only_with_a_gpu_profile():
    assert spawner().options_form == ""
    form = spawner(DLAB_GPUS="all").options_form
    assert 'value="gpu"' in form and 'value="cpu" checked' in form
    assert spawner().options_from_form({"profile": ["gpu"]}) == {"profile": "gpu"}
    assert spawner().options_from_form({}) == {"profile": "cpu"}


@pytest.mark.parametrize("gpus, profile, message", [
    ("none", "tpu", "Unknown profile 'tpu'"), ("none", "gpu", "offers no GPU profile"), ("all", "<script>" * 10, "Unknown profile")])
def test_a_wrong_profile_is_refused_before_docker_is_asked(gpus, profile, message):
    s = spawner(DLAB_GPUS=gpus)
    s.user_options = {"profile": profile}
    with pytest.raises(web.HTTPError) as error:
        asyncio.run(s.start())
    assert error.value.status_code == 400 and message in error.value.log_message
    assert len(error.value.log_message) < 120


@pytest.mark.parametrize("gpus, request_", [("all", {"Count": -1}), ("2", {"Count": 2}),
                                            ("device=0,1", {"DeviceIDs": ["0", "1"]})])
def test_gpus_become_docker_device_requests(gpus, request_):
    (device,) = gpu_device_requests(GpuRequest.parse(gpus))
    assert {k: device[k] for k in request_} == request_ and device["Capabilities"] == [["gpu"]]


def test_the_home_helper_has_the_same_privileges_from_the_hub_and_from_make():
    """hub/dlab_hub/ starts dlab-home through Docker's API; scripts/lib.sh's home_helper with docker
    run's flags (make backup, restore, delete-home): the same privileges, and nothing more."""
    import re

    from dlab_hub.folders import HOME_HELPER_PRIVILEGES
    lib = (ROOT / "scripts" / "lib.sh").read_text()
    helper = lib[lib.index("home_helper() {"):lib.index("\n}\n", lib.index("home_helper() {"))]
    flags = [(name, quoted or plain) for name, quoted, plain in
             re.findall(r"--(cap-add|security-opt|device-cgroup-rule|privileged|device)[ =](?:'([^']*)'|(\S+))", helper)]
    assert sorted(flags) == sorted([("cap-add", c) for c in HOME_HELPER_PRIVILEGES["cap_add"]]
                                   + [("security-opt", o) for o in HOME_HELPER_PRIVILEGES["security_opt"]]
                                   + [("device-cgroup-rule", r) for r in HOME_HELPER_PRIVILEGES["device_cgroup_rules"]])


@pytest.mark.parametrize("now, at, expected", [
    ("2026-11-24 06:00", "07:45", "2026-11-24 07:45"),   # later today
    ("2026-11-24 07:45", "07:45", "2026-11-25 07:45"),   # this very minute has begun: tomorrow
    ("2026-12-31 23:59", "00:30", "2027-01-01 00:30"),   # past midnight, into a new year
])
def test_prestart_runs_next_at_the_time_of_day_in_utc(now, at, expected):
    from datetime import datetime, timezone

    from dlab_hub.prestart import next_run
    utc = lambda text: datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)  # noqa: E731
    assert next_run(at, utc(now)) == utc(expected)


# --- GPUs shared fairly: DLAB_GPUS=1 over the cards ------------------------------------------

@pytest.mark.parametrize("cards, holders, count, chosen", [
    (["0", "1", "2", "3"], [], 1, ["0"]),                                 # the first student: card 0
    (["0", "1", "2", "3"], [["0"]], 1, ["1"]),                            # the second: card 1
    (["0", "1", "2", "3"], [["0"], ["1"], ["2"], ["3"]], 1, ["0"]),       # the fifth: round again
    (["0", "1", "2", "3"], [["0"], ["0"], ["1"], ["2"], ["3"]], 1, ["1"]),  # card 0 has two already
    (["0", "1", "2", "3"], [["0"], ["1"]], 2, ["2", "3"]),                # two cards a student
    (["0", "1"], [["1"], ["7"]], 1, ["0"]),                               # a card outside the class's list
    (["2", "3"], [], 3, ["2", "3"]),                                      # more asked than there are
    (["GPU-aa", "GPU-bb"], [["GPU-aa"]], 1, ["GPU-bb"]),                  # UUIDs
])
def test_gpu_students_spread_over_the_cards(cards, holders, count, chosen):
    from dlab_hub.engine import pick_gpus
    assert pick_gpus(cards, holders, count) == chosen


def test_a_class_of_eight_on_four_cards_gets_two_per_card():
    from dlab_hub.engine import pick_gpus
    holders = []
    for _ in range(8):
        holders.append(pick_gpus(["0", "1", "2", "3"], holders, 1))
    assert sorted(card for (card,) in holders) == ["0", "0", "1", "1", "2", "2", "3", "3"]


@pytest.mark.parametrize("ids, engine_ids, cards", [("auto", ("0", "1", "2"), ["0", "1", "2"]),
                                                    ("0,1", ("0", "1", "2"), ["0", "1"]), ("auto", (), [])])
def test_the_cards_come_from_the_engine_or_the_setting(ids, engine_ids, cards):
    c, notes = config(Engine(gpu_runtime=True, images=BUILT, gpu_ids=engine_ids), DLAB_GPUS="1", DLAB_GPU_IDS=ids)
    assert c.DlabSpawner.gpus == "1" and c.DlabSpawner.gpu_ids == cards
    assert any(f"each GPU server gets 1 of the cards {','.join(cards) or '(none found)'}" in note for note in notes)


def test_a_gpu_student_is_given_the_least_used_card(monkeypatch):
    """choose_gpus asks Docker for the class's containers (their org.dlab.gpus labels) and counts the
    starts under way; a stopped container, and the student's own old one, hold no card."""
    s = spawner("dora", DLAB_GPUS="1", DLAB_GPU_IDS="0,1,2")
    found = [{"State": "running", "Labels": {"org.dlab.gpus": "0", "org.dlab.user": "ana"}},
             {"State": "exited", "Labels": {"org.dlab.gpus": "1", "org.dlab.user": "ben"}},
             {"State": "created", "Labels": {"org.dlab.gpus": "1", "org.dlab.user": "dora"}}]

    async def docker(method, *args, **kwargs):
        assert method == "containers" and kwargs["filters"]["label"] == ["org.dlab.hub=dlab", "org.dlab.gpus"]
        return found
    monkeypatch.setattr(s, "docker", docker)
    monkeypatch.setattr(DlabSpawner, "_gpu_claims", {"carl": ["1"]})
    assert str(asyncio.run(s.choose_gpus())) == "device=2"
    assert s._chosen_gpus == ["2"] and DlabSpawner._gpu_claims["dora"] == ["2"]


# --- The organizer's tools -----------------------------------------------------------------------

def test_the_class_folders_are_two_volumes_of_the_class():
    c, _ = config(DLAB_PREFIX="class2", DLAB_ADMIN="teacher")
    assert (c.DlabSpawner.course_volume, c.DlabSpawner.handin_volume) == ("class2-course", "class2-handin")
    assert c.DlabSpawner.organizer == "teacher" and c.DlabSpawner.instructor_group == "instructors"


@pytest.mark.parametrize("name, admin, groups, instructor", [
    ("admin", False, [], True), ("tina", True, [], True), ("tom", False, ["instructors"], True),
    ("sam", False, [], False), ("sue", False, ["students", "Instructors"], False)])
def test_instructors_are_the_organizer_admins_and_the_group(name, admin, groups, instructor):
    s = spawner(name)
    s.user.admin, s.user.groups = admin, [SimpleNamespace(name=g) for g in groups]
    assert s.is_instructor() is instructor


def test_the_message_to_the_class_is_text_not_html(tmp_path, monkeypatch):
    import dlab_hub.state
    c, _ = config()
    assert c.JupyterHub.template_vars["announcement"] is dlab_hub.state.class_message
    monkeypatch.setattr(dlab_hub.state, "MESSAGE_FILE", tmp_path / "message")
    assert dlab_hub.state.class_message(None) == ""
    (tmp_path / "message").write_text('Lab 4 at 14:00 <script>alert("x")</script>\n')
    assert dlab_hub.state.class_message(None) == "Lab 4 at 14:00 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


ROSTER = """username,name,email
ana,Ana Lima,ana@uni.example
# a comment, and a blank line

Ben.Okafor,"Okafor, Ben",
carl
ana,Ana again,
bad name,Bad,
dora,Dora,not-an-email
admin,The organizer,
eve,Eve,eve@uni.example,extra
zoë-ωmega,Zoë,
x23456789012345678901234567890123,Too long,
"""


def test_a_roster_is_read_line_by_line_and_each_bad_line_named():
    from dlab_hub.accounts import read_roster
    entries, problems = read_roster(ROSTER, organizer="admin")
    assert [(e["line"], e["username"], e["name"], e["email"]) for e in entries] == [
        (2, "ana", "Ana Lima", "ana@uni.example"), (5, "ben.okafor", "Okafor, Ben", ""), (6, "carl", "", ""),
        (12, "zoë-ωmega", "Zoë", "")]
    assert [line for line, _ in problems] == [7, 8, 9, 10, 11, 13]
    said = dict(problems)
    assert "on line 2 already" in said[7] and "'bad name' is not a username" in said[8]
    assert "'not-an-email' is not an email address" in said[9] and "the organizer's account" in said[10]
    assert "4 columns" in said[11] and "is not a username" in said[13]


def test_first_passwords_are_long_random_and_readable():
    from dlab_hub.accounts import ALPHABET, new_password
    passwords = {new_password(12) for _ in range(200)}
    assert len(passwords) == 200 and all(len(p) == 12 and set(p) <= set(ALPHABET) for p in passwords)
    assert not set("0O1lI") & set(ALPHABET)


def test_the_password_sheet_escapes_what_the_roster_says():
    from dlab_hub.accounts import sheet
    page = sheet("http://class:8000", [{"username": "ana", "name": "<b>Ana</b>", "password": "pw"}])
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page and "<b>Ana</b>" not in page and page.count('class="slip"') == 1


@pytest.mark.parametrize("name", ["alice", "roster-07", "a.b-c_d", "zoë-ωmega", "x1"])
def test_the_scripts_name_a_home_as_the_hub_does(name):
    """scripts/lib.sh's home_volume (make backup, restore, delete-home, remove-accounts) and the
    hub's volume name for the same account."""
    import subprocess
    out = subprocess.run(["bash", "-c", '. scripts/lib.sh && DLAB_PREFIX=dlab home_volume "$1"', "-", name],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    s = spawner(name)
    assert out == s.format_volume_name("dlab-home-{username}", s)


# --- Sign in with the institution -----------------------------------------------------------------

PROVIDER = {"authorization_endpoint": "https://login.uni.example/auth", "token_endpoint": "https://login.uni.example/token",
            "userinfo_endpoint": "https://login.uni.example/me"}


def test_sign_in_with_the_institution_is_configured_from_the_discovery_document():
    c, notes = config(Engine(images=BUILT, oidc=PROVIDER), DLAB_OIDC_ISSUER="https://login.uni.example",
                      DLAB_OIDC_CLIENT_ID="dlab", DLAB_OIDC_CLIENT_SECRET="s3cret", DLAB_OIDC_NAME="Uni Login")
    i = c.InstitutionAuthenticator
    assert (i.authorize_url, i.token_url, i.userdata_url) == ("https://login.uni.example/auth",
                                                              "https://login.uni.example/token", "https://login.uni.example/me")
    assert (i.client_id, i.client_secret, i.username_claim, i.login_service) == ("dlab", "s3cret", "preferred_username", "Uni Login")
    assert c.DlabAuthenticator.institution_issuer == "https://login.uni.example"
    assert c.JupyterHub.template_vars["institution_login"] == "Uni Login"
    assert "students may also sign in with Uni Login (https://login.uni.example)" in notes
    c, _ = config()
    assert "institution_login" not in c.JupyterHub.template_vars and "InstitutionAuthenticator" not in c


def institution(accounts=("admin", "ana"), **traits):
    from dlab_hub.auth import InstitutionAuthenticator
    c, _ = config(Engine(images=BUILT, oidc=PROVIDER), DLAB_OIDC_ISSUER="https://login.uni.example",
                  DLAB_OIDC_CLIENT_ID="dlab", DLAB_OIDC_CLIENT_SECRET="s3cret", **traits)
    return InstitutionAuthenticator(config=c, native=SimpleNamespace(user_exists=lambda name: name in accounts))


@pytest.mark.parametrize("claim, domain, given, name, refused", [
    ("preferred_username", "", "Ola.Nordmann", "ola.nordmann", None),
    ("preferred_username", "", "ana", None, "ana is an account of this class server"),   # a class account
    ("preferred_username", "", "admin", None, "admin is an account of this class server"),  # the organizer's
    ("preferred_username", "", "ola nordmann", None, "which cannot be a username here"),
    ("preferred_username", "", "../hub", None, "which cannot be a username here"),
    ("email", "uni.example", "Kari@UNI.example", "kari", None),
    ("email", "uni.example", "kari@gmail.com", None, "Only accounts of uni.example sign in here"),
])
def test_the_institutions_names_are_checked_like_any_username(claim, domain, given, name, refused, tmp_path, monkeypatch):
    import dlab_hub.auth
    monkeypatch.setattr(dlab_hub.auth, "INSTITUTION_DIR", tmp_path / "institution")
    authenticator = institution(DLAB_OIDC_USERNAME_CLAIM=claim, DLAB_OIDC_EMAIL_DOMAIN=domain)
    if refused:
        with pytest.raises(web.HTTPError) as error:
            authenticator.user_info_to_username({claim: given})
        assert error.value.status_code == 403 and refused in error.value.log_message
        assert not (tmp_path / "institution").exists() or not list((tmp_path / "institution").iterdir())
    else:
        assert authenticator.user_info_to_username({claim: given}) == name
        assert (tmp_path / "institution" / name).exists()  # no sign-up may take this name later


def test_a_username_is_accepted_only_where_its_home_can_be_named():
    """A home's image is named after the escaped name (-xx per byte beyond letters and digits), and
    a file name holds 255 bytes: 27 CJK characters once passed sign-up and never got a home."""
    from dockerspawner import DockerSpawner

    from dlab_hub.auth import DlabAuthenticator
    from dlab_hub.settings import escaped_name, name_fits
    for name in ("ana", "ana.b_c-d", "Ünal", "学生", "ана"):
        assert escaped_name(name) == DockerSpawner._escape(name)
    assert name_fits("学" * 22) and not name_fits("学" * 27) and name_fits("a" * 32)
    authenticator = DlabAuthenticator.__new__(DlabAuthenticator)  # its checks alone, without a hub's database
    authenticator.username_pattern = r"^[^\W_][\w.-]{0,31}\Z"
    assert authenticator.validate_username("学" * 22) and not authenticator.validate_username("学" * 27)
    assert not authenticator.validate_username("mary\u3164")  # a Hangul filler shows nothing
    assert len(f"dlab-handin-{escaped_name('学' * 22)}.ext4.new") <= 255


def test_names_that_look_alike_have_one_skeleton_and_distinct_letters_do_not():
    from dlab_hub.names import skeleton
    assert skeleton("ana") == skeleton("аna") == skeleton("ａｎａ") == skeleton("ANA")  # Cyrillic а, fullwidth
    assert skeleton("paul") == skeleton("pau1") == skeleton("раul")  # 1 for l, Cyrillic р and а
    assert skeleton("ana") != skeleton("ama") and skeleton("olga") != skeleton("olea")
    assert skeleton("zoë") != skeleton("zoe")  # a letter of its own, not a look-alike
    # What a security review found: pairs that look like one letter, 0 for o, letters that show nothing.
    assert skeleton("rnary") == skeleton("mary") and skeleton("vvill") == skeleton("will")
    assert skeleton("0scar") == skeleton("oscar") and skeleton("mary\u3164") == skeleton("mary")
    assert len({skeleton(c) for c in "abcdefghijklmnopqrstuvwxyz23456789._-"}) == 37  # 0 is o, 1 is l


def test_github_sign_in_admits_only_the_class_it_lists():
    """GitHub signs in every GitHub user: without a list of the class's logins, make up stops."""
    github = {"DLAB_OIDC_ISSUER": "https://github.com", "DLAB_OIDC_CLIENT_ID": "id", "DLAB_OIDC_CLIENT_SECRET": "secret",
              "DLAB_OIDC_USERNAME_CLAIM": "login"}
    _, _, problems, _ = load(github, applies=("hub", "both"))
    assert problems == ["DLAB_OIDC_ISSUER is GitHub, which signs in every GitHub user: list the class's GitHub logins "
                        "in DLAB_OIDC_ALLOWED_USERS (like ana-gh, ben-gh), or use the institution's own provider"]
    c, _ = config(engine=Engine(images=BUILT, oidc={"authorization_endpoint": "https://github.com/login/oauth/authorize"}),
                  **github, DLAB_OIDC_ALLOWED_USERS="Ana-GH, ben-gh")
    assert c.InstitutionAuthenticator.allowed_names == {"ana-gh", "ben-gh"}
    # An institution's own provider restricts who it signs in: no list needed.
    _, _, problems, _ = load({**github, "DLAB_OIDC_ISSUER": "https://login.uni.example/realms/students"}, applies=("hub", "both"))
    assert problems == []
