"""The organizer's tools that run in the hub's container, as the organizer's command drives them
from the host (dlab_hub.cli): prestart, accounts, remove-accounts, signups, message, reset-admin.
Each takes the class (dlab_hub.classserver.ClassServer). Standard library only.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

from dlab_hub.classserver import ROOT, Stop, docker, quiet_ok, say
from dlab_hub.settings import escaped_name


def prestart(server, names):
    """Before the class: every approved account's server, started in turn by the hub's prestart
    service (its token is in the hub's secrets) and held from the idle culler (DLAB_PRESTART_HOLD)."""
    server.hub_running()
    return server.hub_exec("python", "-m", "dlab_hub.prestart", "now", "--hold", server.env["DLAB_PRESTART_HOLD"],
                           "--organizer", server.env["DLAB_ADMIN"], *names).returncode


def accounts(server, roster):
    roster = roster_file(roster, "accounts")
    server.hub_running()
    sheet = Path(re.sub(r"\.csv$", "", roster) + "-passwords.html")
    part = Path(f"{sheet}.part")
    length = max(int(server.env["DLAB_MIN_PASSWORD_LENGTH"]), 12)
    # The sheet holds passwords: only whoever ran make accounts reads it. Written whole or not at all.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(roster, "rb") as given, os.fdopen(fd, "w") as out:
        status = subprocess.run(["docker", "exec", "-i", server.hub, "python", "-m", "dlab_hub.accounts", "add",
                                 "--url", server.class_url, "--organizer", server.env["DLAB_ADMIN"],
                                 "--password-length", str(length)], stdin=given, stdout=out).returncode
    if 'class="slip"' in part.read_text(errors="replace"):
        part.replace(sheet)
        say(f"the first passwords: {sheet} (print it, hand each student their slip, then delete it)")
    else:
        part.unlink()
    return status


def remove_accounts(server, roster, homes):
    roster = roster_file(roster, "remove-accounts")
    server.hub_running()
    if homes not in ("keep", "archive", "delete"):
        say(f"HOMES={homes}: choose keep, archive or delete")
        raise Stop(2)
    with open(roster, "rb") as given:
        out = subprocess.run(["docker", "exec", "-i", server.hub, "python", "-m", "dlab_hub.accounts", "remove",
                              "--organizer", server.env["DLAB_ADMIN"]], stdin=given, capture_output=True, text=True)
    print(out.stdout + out.stderr, end="", file=sys.stderr)
    removed = [line.removeprefix("dlab accounts: removed ") for line in (out.stdout + out.stderr).splitlines()
               if line.startswith("dlab accounts: removed ")]
    # The removed accounts that have a home (a server of theirs ever started).
    with_home = [name for name in " ".join(removed).split() if quiet_ok("volume", "inspect", home_volume(server.prefix, name))]
    if with_home and homes != "keep":
        if homes == "archive":
            homes_sh("backup", os.environ.get("BACKUP_DIR") or "backups", *with_home)
        homes_sh("delete", *with_home)
    elif with_home:
        say(f"their {len(with_home)} homes and hand-in folders are kept, and so their names stay taken (no sign-up gets",
            "them): make backup USERS=..., then make delete-home USERS=... when you choose")
    return 0


def signups(server, clear):
    server.hub_running()
    return server.hub_exec("python", "-m", "dlab_hub.accounts", "signups", "--organizer", server.env["DLAB_ADMIN"],
                           "--clear", clear).returncode


def message(server, text):
    server.hub_running()
    written = server.hub_exec("python", "-c", "import sys; from dlab_hub.state import write_class_message; "
                              "write_class_message(sys.stdin.read())", input=text)
    if written.returncode != 0:
        raise Stop
    say(f"every hub page now shows: {text}" if text else "no message on the hub's pages")
    return 0


def reset_admin(server):
    """A lost admin password: a new first one, written in place (dlab_hub.accounts). The account is
    never deleted meanwhile, so no sign-up can take the organizer's name. The restart drops what
    the hub's database session holds of the old password."""
    server.hub_running()
    if server.hub_exec("python", "-m", "dlab_hub.accounts", "reset-admin", "--organizer", server.env["DLAB_ADMIN"]).returncode:
        raise Stop
    docker("restart", server.hub)
    server.up()
    return 0


def roster_file(path, target):
    if not path:
        say(f"which roster? make {target} ROSTER=class.csv (one student a line: username[,name[,email]])")
        raise Stop(2)
    if not (os.path.isfile(path) and os.access(path, os.R_OK)):
        say(f"cannot read the roster {path}: check the path")
        raise Stop(2)
    return path


def home_volume(prefix, name):
    """A student's home volume as the hub names it: PREFIX-home-<name escaped as DockerSpawner escapes it>."""
    return f"{prefix}-home-{escaped_name(name)}"


def homes_sh(*args):
    """The homes' backups and deletions stay shell (tar pipelines in throwaway containers)."""
    status = subprocess.run([str(ROOT / "scripts/homes.sh"), *args]).returncode
    if status:
        raise Stop(status)
    return 0
