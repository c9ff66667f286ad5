"""The hub's state on its volume (STATE_DIR): the organizer's message to the class, and
NativeAuthenticator's table of accounts in the hub's database, whose SQL is said here alone: `make accounts`, `make remove-accounts`, `make
signups`, `make reset-admin` (hub/dlab_accounts.py) and `make prestart` (hub/dlab_prestart.py) go
through it. Standard library only: the prestart service stays a small process.

NativeAuthenticator's `users_info` has one row per account: the name, the bcrypt hash, whether the
organizer approved it; the hub itself reaches it through its ORM (hub/dlab_hub.py)."""
import base64
import html
import os
import sqlite3

from dlab_settings import STATE_DIR

DATABASE = STATE_DIR / "jupyterhub.sqlite"
MESSAGE_FILE = STATE_DIR / "message"  # the organizer's message to the class (make message)


def class_message(user=None):
    """The organizer's message to the class (`make message`), shown on every hub page; read at each
    page, so a new one shows at the next click, with no restart. Plain text: HTML is escaped."""
    try:
        return html.escape(MESSAGE_FILE.read_text(encoding="utf-8").strip())
    except OSError:
        return ""


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

    def add_approved(self, username, hashed, email=None):
        """An approved account with this bcrypt hash, as NativeAuthenticator's create_user stores a
        sign-up (a fresh secret for its second factor, which dlab leaves off)."""
        self.db.execute("INSERT INTO users_info (username, password, is_authorized, login_email_sent, email, "
                        "has_2fa, otp_secret) VALUES (?, ?, 1, 0, ?, 0, ?)",
                        (username, hashed, email or None, base64.b32encode(os.urandom(10)).decode()))
        self.db.commit()

    def set_password(self, username, hashed):
        """A new bcrypt hash for an account, approved; False if there is no such account."""
        changed = self.db.execute("UPDATE users_info SET password = ?, is_authorized = 1 WHERE username = ?",
                                  (hashed, username)).rowcount
        self.db.commit()
        return bool(changed)

    def remove(self, username):
        self.db.execute("DELETE FROM users_info WHERE username = ?", (username,))
        self.db.commit()
