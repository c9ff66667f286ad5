"""The hub's state on its volumes (STATE_DIR; the proxy's, read-only): its secrets, the proxy's
token, the record of sign-ups, the organizer's message to the class, the database's schema and
integrity (make up's upgrade), and NativeAuthenticator's table of accounts in the hub's database:
the hub's SQL is said here alone. `make accounts`, `make remove-accounts`, `make signups`, `make
reset-admin` (hub/dlab_hub/accounts.py), `make prestart` (hub/dlab_hub/prestart.py) and make up's
upgrade (hub/dlab_hub/upgrade.py) go through it. Standard library only: the prestart service stays
a small process.

NativeAuthenticator's `users_info` has one row per account: the name, the bcrypt hash, whether the
organizer approved it; the hub itself reaches it through its ORM (hub/dlab_hub/auth.py)."""
import base64
import fcntl
import html
import json
import os
import pathlib
import secrets
import sqlite3
import time

from dlab_hub.settings import SECRETS_DIR, SIGNUPS_FILE, STATE_DIR

DATABASE = STATE_DIR / "jupyterhub.sqlite"
MESSAGE_FILE = STATE_DIR / "message"  # the organizer's message to the class (make message)
PROXY_DIR = pathlib.Path(os.environ.get("DLAB_PROXY_DIR", "/srv/proxy"))  # the proxy's volume, read-only
METRICS_DIR = pathlib.Path(os.environ.get("DLAB_METRICS_DIR", "/srv/metrics"))  # Prometheus' token (compose.yaml)
HANDIN_DIR = pathlib.Path(os.environ.get("DLAB_HANDIN_DIR", "/srv/handin"))  # the hand-in volume (compose.yaml)
INSTITUTION_DIR = STATE_DIR / "institution"  # an empty file per account that signs in with the institution


def database_revision(path):
    """The alembic revision the hub's database says it has (None: not stamped, or no database)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def database_intact(path):
    """SQLite's own integrity check of the hub's database."""
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def class_message(user=None):
    """The organizer's message to the class (`make message`), shown on every hub page; read at each
    page, so a new one shows at the next click, with no restart. Plain text: HTML is escaped."""
    try:
        return html.escape(MESSAGE_FILE.read_text(encoding="utf-8").strip())
    except OSError:
        return ""


MAX_MESSAGE_CHARS = 1000


def write_class_message(text):
    """Set the class message (make message, the class page): written aside and renamed into place,
    so a page never reads half of it. Empty: no message."""
    text = text.strip()[:MAX_MESSAGE_CHARS]
    part = MESSAGE_FILE.with_name("message.new")
    part.write_text(text + "\n" if text else "", encoding="utf-8")
    part.replace(MESSAGE_FILE)


class Accounts:
    """NativeAuthenticator's accounts, read (read_only=True: the prestart service) or changed; each
    change is committed at once. Use as a context manager: the connection closes after."""

    def __init__(self, path=DATABASE, read_only=False):
        if read_only:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA busy_timeout = 30000")  # the hub writes the same database

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.db.close()

    def names(self):
        """Every account's name, approved or waiting."""
        return {name for (name,) in self.db.execute("SELECT username FROM users_info")}

    def waiting(self):
        """The sign-ups waiting for the organizer's approval, by name."""
        return [name for (name,) in self.db.execute("SELECT username FROM users_info WHERE is_authorized = 0 ORDER BY username")]

    def approved(self):
        """The approved accounts, by name: the ones who may log in, whether or not they have logged
        in before (JupyterHub only knows those who have)."""
        return [name for (name,) in self.db.execute("SELECT username FROM users_info WHERE is_authorized ORDER BY username")]

    def add_approved(self, accounts):
        """Approved accounts, (username, bcrypt hash, email or None) each, as NativeAuthenticator's
        create_user stores a sign-up (a fresh secret for its second factor, which dlab leaves off):
        all of them or, on any error, none (a roster half made would leave accounts no sheet names)."""
        with self.db:  # one transaction
            self.db.executemany("INSERT INTO users_info (username, password, is_authorized, login_email_sent, email, "
                                "has_2fa, otp_secret) VALUES (?, ?, 1, 0, ?, 0, ?)",
                                [(name, hashed, email or None, base64.b32encode(os.urandom(10)).decode())
                                 for name, hashed, email in accounts])

    def set_password(self, username, hashed):
        """A new bcrypt hash for an account, approved; False if there is no such account."""
        changed = self.db.execute("UPDATE users_info SET password = ?, is_authorized = 1 WHERE username = ?",
                                  (hashed, username)).rowcount
        self.db.commit()
        return bool(changed)

    def remove(self, username):
        self.db.execute("DELETE FROM users_info WHERE username = ?", (username,))
        self.db.commit()


def secret(name, nbytes=32, folder=SECRETS_DIR):
    """The hex secret kept in folder/name (SECRETS_DIR's by default): read it, or make it (mode
    0600) on first start."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_hex(nbytes)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def proxy_token(wait=60):
    """The token the proxy made in its volume (images/hub/dlab-proxy); compose starts the proxy
    first, so it is there, or soon."""
    path = PROXY_DIR / "proxy_token"
    for _ in range(wait):
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(1)
    raise SystemExit(f"dlab hub: no proxy token in {path}: start the class with `make up` (compose.yaml "
                     "starts the proxy first)")


SIGNUPS_KEPT = 10_000  # lines of SIGNUPS_FILE: past them, the oldest half goes


def record_signup(username, address, approved):
    """A line for `make signups` (when, who, from which address, approved by the class code); the
    file keeps at most SIGNUPS_KEPT lines."""
    line = json.dumps({"time": int(time.time()), "username": username, "address": address, "approved": approved})
    with open(SIGNUPS_FILE, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")
        if f.tell() > SIGNUPS_KEPT * 120:  # about SIGNUPS_KEPT lines: keep the newest half
            f.seek(0)
            lines = f.readlines()[-SIGNUPS_KEPT // 2:]
            f.seek(0)
            f.truncate()
            f.writelines(lines)
