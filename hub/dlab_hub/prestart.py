"""Servers ready before the class arrives: start the server of every approved account ahead of
time, one after another, so that thirty students who log in at once find JupyterLab running.

    python -m dlab_hub.prestart now [NAME...]  `make prestart [USERS=...]`: start them now, report, return
    python -m dlab_hub.prestart serve          the hub's `prestart` service: every day at DLAB_PRESTART_AT
                                           (if set), the same; always, the hold below

A pre-started server is held from the idle culler until DLAB_PRESTART_HOLD minutes after it started:
the service reports activity for it, as a student's open JupyterLab would. The holds are kept in the
hub's state (HOLDS_FILE), which no student can write: a server's user_options are the student's to
send, and once said how long it was held. Runs in the hub's container, as a JupyterHub service whose
token lives in the hub's secrets (jupyterhub_config.py), so `make prestart` (docker exec) uses it too.
"""
import argparse
import datetime
import fcntl
import json
import os
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

from dlab_hub.settings import SECRETS_DIR, STATE_DIR  # stdlib only: this service stays a small process
from dlab_hub.state import Accounts

TOKEN_FILE = SECRETS_DIR / "prestart_token"
HOLDS_FILE = STATE_DIR / "prestart-holds.json"  # {name: Unix time the hold ends}


def holds(update=None, now=None):
    """The holds that have not ended, {name: until}; with `update`, these are set first. One
    writer at a time (make prestart and the service may both write), replaced whole."""
    now = now or time.time()
    with open(HOLDS_FILE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            kept = json.loads(HOLDS_FILE.read_text())
        except (OSError, ValueError):
            kept = {}
        kept = {name: until for name, until in kept.items() if isinstance(until, (int, float)) and until > now}
        if update:
            kept.update(update)
            temporary = HOLDS_FILE.with_suffix(".new")
            temporary.write_text(json.dumps(kept))
            os.replace(temporary, HOLDS_FILE)
        return kept


def say(message):
    print(f"dlab prestart: {message}", file=sys.stderr, flush=True)


class Hub:
    """The hub's REST API, with the prestart service's token."""

    def __init__(self, url, token):
        self.url, self.token = url.rstrip("/"), token

    def call(self, method, path, body=None):  # path: names in it quoted (zoë.o-neil is a name)
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {"message": text}

    def users(self, active_only=False):
        """name: model of every user (or of those with a server running or starting), page by page."""
        found, offset, page_size = {}, 0, 200  # JupyterHub's largest page
        while True:
            query = f"/users?offset={offset}&limit={page_size}" + ("&state=active" if active_only else "")
            status, page = self.call("GET", query)
            if status != 200:
                raise SystemExit(f"dlab prestart: the hub answered {status} to the list of users: {page}")
            found.update((user["name"], user) for user in page)
            if len(page) < page_size:
                return found
            offset += len(page)


def approved_accounts(db_path):
    """Every approved account (read-only): the ones who may log in."""
    with Accounts(db_path, read_only=True) as accounts:
        return accounts.approved()


def prestart(hub, names, hold_minutes, organizer, timeout=300):
    """Start each account's server in turn (one pending at a time: a student arriving early still
    gets a start of their own at once). Returns (started, already running, failed)."""
    users = hub.users()
    started, running, failed = [], [], []
    names = [name for name in names if name != organizer]  # the organizer starts their own
    say(f"starting the servers of {len(names)} approved accounts, one after another")
    for name in names:
        user = users.get(name)
        if user is None:  # approved, never logged in: JupyterHub learns of the account now
            status, answer = hub.call("POST", f"/users/{quote(name, safe='')}")
            if status not in (201, 409):
                failed.append((name, f"{status} {answer.get('message', answer)}"))
                continue
            user = {"servers": {}}
        if "" in (user.get("servers") or {}):
            running.append(name)
            continue
        holds({name: int(time.time() + hold_minutes * 60)})  # before the start: the culler may look meanwhile
        status, answer = hub.call("POST", f"/users/{quote(name, safe='')}/server", {"profile": "cpu"})
        if status == 429:  # a limit of the hub's (DLAB_MAX_SERVERS, DLAB_SPAWN_LIMIT): the rest would meet it too
            failed.append((name, f"the hub said: {answer.get('message', 'too many servers')}"))
            say(f"stopped at {name} ({failed[-1][1]}): run make prestart again once there is room")
            break
        if status not in (201, 202):
            failed.append((name, f"{status} {answer.get('message', answer) if answer else ''}"))
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, user = hub.call("GET", f"/users/{quote(name, safe='')}")
            server = (user.get("servers") or {}).get("") if status == 200 else None
            if server is None:
                failed.append((name, "its server stopped while starting (the hub's log says why)"))
                break
            if server.get("ready"):
                started.append(name)
                break
            time.sleep(0.2)
        else:
            failed.append((name, f"not ready after {timeout} s"))
        say(f"{len(started) + len(running)} of {len(names)} ready ({name})")
    return started, running, failed


def hold(hub, now=None):
    """Report activity for every pre-started server whose hold has not ended, so the idle culler
    leaves it; returns the names held."""
    now = now or time.time()
    held, until = [], holds(now=now)
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat()
    for name, user in hub.users(active_only=True).items():
        if (user.get("servers") or {}).get("") and name in until:
            status, _ = hub.call("POST", f"/users/{quote(name, safe='')}/activity", {"servers": {"": {"last_activity": stamp}}})
            if status == 204:
                held.append(name)
    return held


def next_run(at, now):
    """The next moment (a UTC datetime) the clock reads `at` ("HH:MM", UTC) after `now`."""
    hour, minute = (int(part) for part in at.split(":"))
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + datetime.timedelta(days=1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dlab_hub.prestart", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["now", "serve"])
    parser.add_argument("names", nargs="*", help="now: only these approved accounts (default: every one)")
    # The values come from the settings (hub/dlab_hub/settings.py), passed by dlab_hub/config.py and hub.sh.
    parser.add_argument("--at", default="", help="HH:MM (UTC), daily; serve only")
    parser.add_argument("--hold", type=int, required=True, help="minutes a pre-started server is kept from the idle culler")
    parser.add_argument("--every", type=int, default=60, help="seconds between two reports of activity (serve)")
    parser.add_argument("--organizer", required=True)
    args = parser.parse_intermixed_args(argv)
    url = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    token = os.environ.get("JUPYTERHUB_API_TOKEN") or TOKEN_FILE.read_text().strip()
    hub = Hub(url, token)
    db = STATE_DIR / "jupyterhub.sqlite"
    if args.mode == "now":
        approved = approved_accounts(db)
        unknown = [name for name in args.names if name not in approved]
        if unknown:
            say(f"not approved accounts: {' '.join(unknown)} (approve them at /hub/authorize, or check the names)")
            return 2
        started, running, failed = prestart(hub, args.names or approved, args.hold, args.organizer)
        say(f"{len(started)} started, {len(running)} were running, {len(failed)} failed; "
            f"held from the idle culler for {args.hold} minutes")
        for name, why in failed:
            say(f"{name}: {why}")
        return 1 if failed else 0
    upcoming = next_run(args.at, datetime.datetime.now(datetime.timezone.utc)) if args.at else None
    if upcoming:
        say(f"the approved accounts' servers start every day at {args.at} UTC (next: {upcoming:%Y-%m-%d %H:%M})")
    while True:
        if upcoming and datetime.datetime.now(datetime.timezone.utc) >= upcoming:
            started, running, failed = prestart(hub, approved_accounts(db), args.hold, args.organizer)
            say(f"{len(started)} started, {len(running)} were running, {len(failed)} failed")
            upcoming = next_run(args.at, datetime.datetime.now(datetime.timezone.utc))
        try:
            hold(hub)
        except (OSError, SystemExit) as error:  # the hub restarting: try again at the next round
            say(f"could not report activity: {error}")
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
