"""A class's accounts from a roster: `make accounts ROSTER=class.csv` makes them, `make
remove-accounts ROSTER=class.csv` removes them at the end of a course.

    python -m dlab_hub.accounts add --url URL < roster.csv     report on stderr, password sheet (HTML) on stdout
    python -m dlab_hub.accounts remove < roster.csv            report on stderr
    python -m dlab_hub.accounts reset-admin                    a lost organizer's password: a new first one
    python -m dlab_hub.accounts signups [--clear pending|ADDRESS]  the sign-ups waiting, and who signed up
                                                           from where; clear the waiting ones, or the
                                                           accounts one address made

A roster is a CSV file, one student a line: `username[,name[,email]]`, with an optional header line
(`username,name,email`), blank lines and `#` comments. Every line is checked first; a bad one is
reported with its line number and skipped, the others are made. An account that exists already is
left as it is (run the same roster again after fixing a line). Each new account is approved (no
class code needed) and gets a random first password, printed on the sheet; the student is asked to
choose their own at the first login.

Runs in the hub's container (scripts/hub.sh: docker exec): the accounts go into NativeAuthenticator's
table in the hub's database (hub/dlab_hub/state.py), as a sign-up would put them (bcrypt), and into JupyterHub through its
REST API with the hub's tool token (hub/dlab_hub/prestart.py), so the admin page lists them at once.
"""
import argparse
import csv
import fcntl
import html
import io
import json
import os
import re
import secrets
import sys
import time
from urllib.parse import quote

import bcrypt

from dlab_hub.prestart import TOKEN_FILE, Hub
from dlab_hub.settings import FIRST_PASSWORD_DIR, SECRETS_DIR, SIGNUPS_FILE, USERNAME_PATTERN, name_fits
from dlab_hub.state import Accounts
EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
NAME = re.compile(r"[^\x00-\x1f\x7f]{0,100}")
# No 0/O, 1/l/I: a password copied from paper by a student.
ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def say(message):
    print(f"dlab accounts: {message}", file=sys.stderr, flush=True)


def read_roster(text, organizer="admin"):
    """The roster's accounts, and its problems: (entries, problems), each entry a dict with line,
    username (lowercased, as JupyterHub keeps it), name and email; each problem (line, message)."""
    entries, problems, seen = [], [], {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not entries and not problems and cells[0].lower() in ("username", "user", "login"):
            continue  # the header
        if len(cells) > 3:
            problems.append((number, f"{len(cells)} columns: a line is username[,name[,email]] (a comma in a name needs quotes)"))
            continue
        username, name, email = (cells + ["", ""])[:3]
        username = username.lower()
        if not re.match(USERNAME_PATTERN, username) or not name_fits(username):
            problems.append((number, f"{username!r} is not a username: 1 to 32 letters, digits, dots, dashes or "
                                     "underscores, starting with a letter or a digit (in other scripts than Latin, at most about 20)"))
        elif username == organizer:
            problems.append((number, f"{username!r} is the organizer's account"))
        elif username in seen:
            problems.append((number, f"{username!r} is on line {seen[username]} already"))
        elif not NAME.fullmatch(name):
            problems.append((number, "the name is longer than 100 characters or holds control characters"))
        elif email and not EMAIL.fullmatch(email):
            problems.append((number, f"{email!r} is not an email address"))
        else:
            seen[username] = number
            entries.append({"line": number, "username": username, "name": name, "email": email})
    return entries, problems


def new_password(length):
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def sheet(url, accounts):
    """A printable page: one slip per account, to cut and hand out."""
    slips = "\n".join(
        f'<div class="slip"><h2>{html.escape(a["name"] or a["username"])}</h2>'
        f'<p>Class server: <b>{html.escape(url)}</b></p>'
        f'<p>Username: <code>{html.escape(a["username"])}</code></p>'
        f'<p>First password: <code>{html.escape(a["password"])}</code></p>'
        '<p>At your first login you choose a password of your own.</p></div>'
        for a in accounts)
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>dlab accounts</title><style>"
            "body{font-family:sans-serif} .slip{border:1px dashed #888;padding:0.5em 1em;margin:0.5em 0;"
            "page-break-inside:avoid} code{font-size:1.3em}</style></head><body>\n"
            f"{slips}\n</body></html>\n")


def add(hub, text, url, organizer, password_length):
    entries, problems = read_roster(text, organizer)
    made = []
    with Accounts() as accounts:
        existing = accounts.names()
        for entry in entries:
            if entry["username"] in existing:
                say(f"line {entry['line']}: {entry['username']} has an account already: left as it is")
                continue
            password = new_password(password_length)
            # hashed first (seconds for a class), so that the hub's database is held only for the insert
            made.append({**entry, "password": password, "hashed": bcrypt.hashpw(password.encode(), bcrypt.gensalt())})
        accounts.add_approved([(a["username"], a["hashed"], a["email"]) for a in made])
    FIRST_PASSWORD_DIR.mkdir(mode=0o700, exist_ok=True)
    for account in made:
        (FIRST_PASSWORD_DIR / account["username"]).touch()
    if made:  # JupyterHub learns of them now, so that the admin page lists the class
        status, answer = hub.call("POST", "/users", {"usernames": [a["username"] for a in made]})
        if status not in (201, 409):
            say(f"the hub answered {status} when told of the new accounts ({answer}); they can log in all the same")
    for line, message in problems:
        say(f"line {line}: {message}: skipped")
    say(f"{len(made)} accounts made, approved, each with a first password on the sheet; "
        f"{len(entries) - len(made)} existed already; {len(problems)} lines skipped")
    return made, problems


def remove(hub, text, organizer):
    entries, problems = read_roster(text, organizer)
    removed = []
    with Accounts() as accounts:
        existing = accounts.names()
        for entry in entries:
            name = entry["username"]
            if name not in existing and hub.call("GET", f"/users/{quote(name, safe='')}")[0] == 404:
                say(f"line {entry['line']}: {name} has no account")
                continue
            problem = remove_account(hub, accounts, name)  # stops the server first
            if problem:
                problems.append((entry["line"], problem))
                continue
            (FIRST_PASSWORD_DIR / name).unlink(missing_ok=True)
            removed.append(name)
            say(f"removed {name}")  # scripts/hub.sh reads these lines (the homes to archive or delete)
    for line, message in problems:
        say(f"line {line}: {message}: skipped")
    say(f"{len(removed)} accounts removed (their servers stopped); {len(problems)} lines skipped")
    return removed, problems


def reset_organizer(organizer):
    """A new first password for the organizer, written in place of the old one's hash and into
    SECRETS_DIR/admin-password (where `make up` reads it). The account's row is never absent: a
    sign-up under the organizer's name while this runs finds the name taken."""
    password = new_password(16)
    with Accounts() as accounts:
        changed = accounts.set_password(organizer, bcrypt.hashpw(password.encode(), bcrypt.gensalt()))
    if not changed:  # scripts/hub.sh restarts the hub next, which makes it
        say(f"no account {organizer!r} yet: the hub makes it, with a first password, as it restarts")
        return 0
    fd = os.open(SECRETS_DIR / "admin-password", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return 0


def recorded_signups():
    """The hub's record of sign-ups (hub/dlab_hub/state.py's record_signup), oldest first."""
    try:
        lines = SIGNUPS_FILE.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def remove_account(hub, accounts, name):
    """An account gone: its server stopped and its JupyterHub user deleted (files kept, so its name
    stays taken while they are), and its row in NativeAuthenticator's table."""
    status, answer = hub.call("DELETE", f"/users/{quote(name, safe='')}")
    if status not in (204, 404):
        return f"the hub answered {status} for {name}: {answer}"
    accounts.remove(name)
    forget_signups(name)
    return None


def forget_signups(name):
    """The hub's record of sign-ups without this name's: a name given back later (make accounts)
    is not counted against the address that once signed up under it."""
    try:
        with open(SIGNUPS_FILE, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            kept = [line for line in f if line.strip() and json.loads(line)["username"] != name]
            f.seek(0)
            f.truncate()
            f.writelines(kept)
    except FileNotFoundError:
        pass


def signups(hub, organizer, clear=""):
    """Print the sign-ups waiting for approval and the sign-ups by address; with clear="pending",
    remove every waiting one; with clear=ADDRESS, every account made by a sign-up from it."""
    with Accounts() as accounts:
        waiting, existing = accounts.waiting(), accounts.names()
        records = [r for r in recorded_signups() if r["username"] in existing]
        since = {r["username"]: r for r in records}  # the latest sign-up of each existing account
        if clear:
            names = waiting if clear == "pending" else [r["username"] for r in since.values() if r["address"] == clear]
            names = [name for name in names if name != organizer]
            if not names:
                say(f"no {'sign-up waits for approval' if clear == 'pending' else f'account signed up from {clear}'}")
            problems = [problem for problem in (remove_account(hub, accounts, name) for name in names) if problem]
            for name in names:
                say(f"removed {name}")
            for problem in problems:
                say(problem)
            return 1 if problems else 0
        when = lambda r: time.strftime("%Y-%m-%d %H:%M", time.localtime(r["time"]))  # noqa: E731
        print(f"{len(waiting)} sign-ups wait for your approval (/hub/authorize; make signups CLEAR=pending removes them all):")
        for name in waiting:
            record = since.get(name)
            print(f"  {name:<34} {when(record) + ' from ' + record['address'] if record else ''}")
        by_address = {}
        for record in since.values():
            by_address.setdefault(record["address"], []).append(record)
        print("accounts made by sign-up, by address (make signups CLEAR=ADDRESS removes an address's):")
        for address, made in sorted(by_address.items(), key=lambda item: -len(item[1])):
            names = ", ".join(r["username"] for r in made[:8]) + (", ..." if len(made) > 8 else "")
            print(f"  {address:<20} {len(made):>4}  {when(made[0])} to {when(made[-1])}  {names}")
        return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dlab_hub.accounts", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["add", "remove", "reset-admin", "signups"])
    parser.add_argument("--clear", default="", help="signups: pending, or an address")
    parser.add_argument("--url", default="", help="the class server's address, printed on the sheet")
    parser.add_argument("--organizer", required=True)
    parser.add_argument("--password-length", type=int, default=12)
    args = parser.parse_args(argv)
    if args.action == "reset-admin":
        return reset_organizer(args.organizer)
    hub = Hub(os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"), TOKEN_FILE.read_text().strip())
    if args.action == "signups":
        return signups(hub, args.organizer, args.clear)
    text = sys.stdin.read()
    if args.action == "add":
        made, problems = add(hub, text, args.url, args.organizer, args.password_length)
        sys.stdout.write(sheet(args.url, made))
    else:
        _, problems = remove(hub, text, args.organizer)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
