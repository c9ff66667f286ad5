"""Servers in seconds: the starts of a class take turns (the next starts once the last one's server
answers), `make prestart` starts every approved account's server ahead of the class and keeps it
from the idle culler while its hold lasts, and a student who then logs in lands in a running
JupyterLab. The figures (CPU per start, waits, the pre-started class's logins) are `make bench`'s."""
import datetime
import re
import time
from concurrent.futures import ThreadPoolExecutor

from classload import PASSWORD, class_logs_in
from conftest import docker
from hubstack import PREFIX, auth, wait_until


def approved_accounts(hub):
    # Through the hub's own accounts adapter (dlab_hub.state), read-only, as the prestart service reads them.
    out = docker("exec", f"{PREFIX}-hub", "python", "-c",
                 "from dlab_hub.state import Accounts\n"
                 "with Accounts(read_only=True) as accounts: print(*accounts.approved())")
    return set(out.stdout.split()) - {hub.admin}


def moment(stamp):
    """Docker's RFC 3339 time with nanoseconds, as a datetime."""
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", stamp.strip()).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(stamp)


def test_a_class_pressing_start_at_once_starts_in_turns_without_being_turned_away(hub):
    hub.restart(DLAB_STARTS_AT_ONCE="1")
    names = [f"turn{i}" for i in range(4)]
    for name in names:
        hub.api("POST", f"/users/{name}")
    with ThreadPoolExecutor(len(names)) as pool:  # everyone at once: none is told to try again
        answers = list(pool.map(lambda name: hub.api("POST", f"/users/{name}/server"), names))
    assert {r.status_code for r in answers} <= {201, 202}, [(r.status_code, r.text) for r in answers]
    for name in names:
        hub.wait_ready(name)
    # One at a time: each container started only after the one before it answered as a Jupyter server.
    turns = []
    for name in names:
        started = moment(hub.container(name)["State"]["StartedAt"])
        out = docker("logs", "--timestamps", hub.container_name(name))
        logs = out.stdout + out.stderr
        answering = next(line.split()[0] for line in logs.splitlines() if "Jupyter Server" in line and "is running at" in line)
        turns.append((started, moment(answering), name))
    turns.sort()
    for (_, answered, before), (started, _, after) in zip(turns, turns[1:]):
        assert started >= answered, f"{after}'s container started before {before}'s server answered"
    hub.stop_all_servers()


def test_make_prestart_starts_every_approved_account_and_holds_it_from_the_idle_culler(hub):
    # Every approved account of the whole test run (some fifty) gets a server: no server limit in
    # the way here (the limit's own answers are test_hub_load.py's).
    hub.restart(DLAB_MAX_SERVERS="0")
    hub.stop_all_servers()
    try:
        prestart_every_approved_account_and_hold_one(hub)
    finally:
        hub.stop_all_servers()  # the next tests meet no leftover servers, whatever failed here


def prestart_every_approved_account_and_hold_one(hub):
    # Approved, never logged in (JupyterHub does not know the account yet): started. A sign-up the
    # organizer has not approved: not started. The organizer: not started.
    assert "sent to the admin" in hub.signup("early", PASSWORD)
    hub.approve("early")
    assert "sent to the admin" in hub.signup("unapproved", PASSWORD)
    out = hub.script("prestart", check=False, timeout=900)
    assert out.returncode == 0, out.stderr
    everyone = approved_accounts(hub)
    assert "early" in everyone and "unapproved" not in everyone
    assert f"{len(everyone)} started, 0 were running, 0 failed" in out.stderr, out.stderr
    for name in everyone:
        assert hub.server(name)["ready"], f"{name}'s server is not ready"
    assert hub.api("GET", "/users/unapproved").status_code == 404
    assert hub.server(hub.admin) is None
    # Run again: nothing new to start. A name that is not an approved account is said, not started.
    again = hub.script("prestart", check=False)
    assert again.returncode == 0 and f"0 started, {len(everyone)} were running" in again.stderr, again.stderr
    wrong = hub.script(["prestart", "early", "unapproved"], check=False)
    assert wrong.returncode == 2 and "not approved accounts: unapproved" in wrong.stderr, wrong.stderr
    hub.stop_all_servers()

    # With the idle culler on: a server a student started and left idle is culled; the pre-started
    # one is held (two minutes here: on a loaded CI machine the two starts below took over one), then
    # culled like any other once its hold ends.
    hold_minutes = 2
    hub.restart(DLAB_IDLE_TIMEOUT="20", DLAB_CULL_EVERY="5", DLAB_PRESTART_HOLD=str(hold_minutes))
    hold_began = time.monotonic()
    out = hub.script(["prestart", "early"], check=False)
    assert out.returncode == 0 and "1 started" in out.stderr, out.stderr
    # A student cannot hold their own server: a start through the REST API with an earlier release's
    # hold option (a time far ahead: held for good; a string: the prestart service crashed on it, in
    # a restart loop, and classmates' holds were lost) is a start like any other. Both start after
    # early's, so once the culler has stopped them for idleness, early has been idle longer still.
    for name, hold in (("notheld", 10**12), ("stringhold", "forever")):
        hub.api("POST", f"/users/{name}")
        r = hub.request("POST", f"{hub.url}/hub/api/users/{name}/server", headers=auth(hub.user_token(name)),
                        json={"profile": "cpu", "dlab_held_until": hold}, timeout=60)
        assert r.status_code in (201, 202), r.text
    for name in ("notheld", "stringhold"):
        hub.wait_ready(name)
    for name in ("notheld", "stringhold"):
        wait_until(lambda: hub.server(name) is None, 120, f"the idle culler to stop {name}'s server")
    held_for = time.monotonic() - hold_began
    assert hub.server("early") is not None, f"the idle culler stopped a server during its hold ({held_for:.0f} s of {hold_minutes * 60})"
    wait_until(lambda: hub.server("early") is None, 180, "the culler to stop early's server after its hold")

    # Pre-started again, the student who logs in lands in JupyterLab at once, with no start.
    assert hub.script(["prestart", "early"], check=False).returncode == 0
    container = hub.container("early")["Id"]
    result = class_logs_in(hub, ["early"])
    assert result["answers"]["early"] == (200, "/user/early/lab", True), result["answers"]
    assert hub.container("early")["Id"] == container


def test_make_prestart_without_a_running_hub_says_to_start_it(hub):
    out = hub.script("prestart", {**(hub.settings or {}), "DLAB_PREFIX": "nohubhere"}, check=False)
    assert out.returncode == 1 and "the hub is not running: make up first" in out.stderr, out.stderr
