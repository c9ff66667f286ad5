"""The class's accounts: DlabAuthenticator (NativeAuthenticator with a class code, bounded and
recorded sign-ups, failed logins counted per address, the organizer's account made on first start)
and InstitutionAuthenticator (sign-in with the institution, OpenID Connect or GitHub)."""
import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from dockerspawner import DockerSpawner
from oauthenticator.generic import GenericOAuthenticator
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import (ChangePasswordHandler, DiscardHandler, LoginHandler, SignUpHandler,
                                         ToggleAuthorizationHandler)
from nativeauthenticator.orm import UserInfo
from tornado import web
from traitlets import Any, Integer, Set, Unicode

from dlab_hub.settings import FIRST_PASSWORD_DIR, SECRETS_DIR, name_fits
from dlab_hub.engine import volume_exists
from dlab_hub.names import INVISIBLE, MAX_NAME_CHARS, MAX_PASSWORD_BYTES, skeleton
from dlab_hub.pages import (ClassCodeSignUpHandler, ConfirmedDiscardHandler, ConfirmedToggleAuthorizationHandler,
                        DlabChangePasswordHandler, DlabLoginHandler)
from dlab_hub.state import HANDIN_DIR, INSTITUTION_DIR
from dlab_hub.web import RecentEvents, client_address

class InstitutionAuthenticator(GenericOAuthenticator):
    """Sign-in with the institution (OpenID Connect, or GitHub's OAuth), beside the class's own
    accounts: DlabAuthenticator adds its /hub/oauth_login and /hub/oauth_callback. The name the
    provider gives is checked like any other username, and never one of the class's own accounts
    (the organizer's, a roster's, a sign-up's), whose servers it would open."""

    email_domain = Unicode("", config=True, help="With an email as the username: the only domain, dropped.")
    native = Any(help="The DlabAuthenticator whose accounts are the class's own.")
    allowed_names = Set(config=True, help="The names that may sign in (DLAB_OIDC_ALLOWED_USERS); empty: all.")

    def user_info_to_username(self, user_info):
        name = str(super().user_info_to_username(user_info))
        if self.email_domain:
            local, _, domain = name.rpartition("@")
            if domain.lower() != self.email_domain:
                raise web.HTTPError(403, f"Only accounts of {self.email_domain} sign in here, and {name} is not one.")
            name = local
        name = self.normalize_username(name)
        if not self.validate_username(name):
            raise web.HTTPError(403, f"{self.login_service} calls you {name[:40]!r}, which cannot be a username here: "
                                "ask the organizer for a class account.")
        if self.allowed_names and name not in self.allowed_names:
            raise web.HTTPError(403, f"{name} is not on this class's list for {self.login_service}: ask the organizer "
                                "to add you (DLAB_OIDC_ALLOWED_USERS), or for a class account.")
        if self.native.user_exists(name):
            raise web.HTTPError(403, f"{name} is an account of this class server: log in with its password, "
                                f"not with {self.login_service} (or ask the organizer).")
        INSTITUTION_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        (INSTITUTION_DIR / name).touch()  # so that no one can sign up under this name later
        return name


def institution_handler(handler, authenticator):
    """OAuthenticator's handler, acting for the institution's authenticator (JupyterHub gives every
    handler the hub's one authenticator, here the class's own accounts)."""
    return type(f"Institution{handler.__name__}", (handler,), {"authenticator": property(lambda self: authenticator)})


class DlabAuthenticator(NativeAuthenticator):
    """Sign-up for a class: either the organizer approves each account (/hub/authorize), or a
    class access code approves it at once. The organizer's account is made on first start with a
    random password kept in SECRETS_DIR/admin-password until the organizer changes it."""

    organizer = Unicode("admin", config=True, help="The organizer's account (its role: jupyterhub_config.py).")
    class_code = Unicode("", config=True, help="Class access code; empty: the organizer approves each sign-up.")
    signups_per_hour = Integer(100, config=True, help="Sign-up attempts one address may make in an hour.")
    password_checks = Integer(1, config=True, help="bcrypt checks that run at once, off the event loop.")
    password_queue = Integer(64, config=True, help="Logins that may wait for a check; more are refused.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Failed logins count per (address, username): a stranger's guesses lock out the stranger's
        # address for that name, never the organizer logging in from elsewhere.
        self.failed_logins = RecentEvents(self.seconds_before_next_try, most=self.allowed_failed_logins or 1)
        self.recent_signups = RecentEvents(3600, most=self.signups_per_hour)
        # bcrypt costs about a quarter of a second of CPU: run it in a thread (it releases the GIL),
        # one at a time, so that guesses never stall the event loop every student's request goes through.
        self.hashing = ThreadPoolExecutor(max_workers=self.password_checks, thread_name_prefix="dlab-bcrypt")
        self.waiting = 0

    ours = {LoginHandler: DlabLoginHandler, SignUpHandler: ClassCodeSignUpHandler, ChangePasswordHandler: DlabChangePasswordHandler,
            ToggleAuthorizationHandler: ConfirmedToggleAuthorizationHandler, DiscardHandler: ConfirmedDiscardHandler}

    institution_issuer = Unicode("", config=True, help="DLAB_OIDC_ISSUER: sign-in with the institution too; \"\": not.")
    home_volume = Unicode("", config=True, help="Each home's volume (or folder), as DockerSpawner.volumes names it: {username}.")
    handin_volume = Unicode("", config=True, help="The hand-in volume; each student's own is named after it (DlabSpawner).")

    pending_signups = Integer(100, config=True, help="Sign-ups that may wait for approval at once; more are refused.")

    def pending(self):
        """Sign-ups waiting for the organizer's approval."""
        return self.db.query(UserInfo).filter(UserInfo.is_authorized == False).count()  # noqa: E712 (SQL)

    def looks_like_an_account(self, username):
        """Whether another account's name looks like this one (Cyrillic "а" for Latin "a",
        fullwidth letters, "1" for "l"): the organizer would see two names that read the same."""
        names = {name for (name,) in self.db.query(UserInfo.username)} | {name for (name,) in self.db.query(orm.User.name)}
        looks = skeleton(username)
        return any(name != username and skeleton(name) == looks for name in names)

    def validate_username(self, username):
        """The pattern (sign-up, the REST API, the admin page), a name its home can be named after,
        and no letter that shows nothing."""
        return super().validate_username(username) and name_fits(username) and not INVISIBLE & set(username)

    async def kept_files(self, username):
        """What a removed account left under this name: ["home", "hand-in folder"], either or none.
        Removing an account keeps its files (make remove-accounts HOMES=keep, the admin panel's
        delete, a restore onto a new machine), so its name is taken until the organizer gives the
        account back (make accounts) or deletes them (make delete-home)."""
        kept = []
        if self.home_volume:
            home = self.home_volume.format(username=DockerSpawner._escape(username))
            if home.startswith("/"):
                exists = os.path.exists(home)
            else:
                exists = await asyncio.to_thread(volume_exists, home)
            if exists:
                kept.append("home")
        handin = f"{self.handin_volume}-{DockerSpawner._escape(username)}" if self.handin_volume else ""
        if (HANDIN_DIR / username).exists() or (handin and await asyncio.to_thread(volume_exists, handin)):
            kept.append("hand-in folder")
        return kept

    @property
    def institution(self):
        if getattr(self, "_institution", None) is None:
            self._institution = InstitutionAuthenticator(parent=self, native=self)
        return self._institution

    def get_handlers(self, app):
        handlers = [(path, self.ours.get(handler, handler)) for path, handler in super().get_handlers(app)]
        if self.institution_issuer:
            handlers += [(path, institution_handler(handler, self.institution))
                         for path, handler in self.institution.get_handlers(app) if path != r"/logout"]
        return handlers

    async def authenticate(self, handler, data):
        username, password = data.get("username", ""), data.get("password", "")
        if len(username) > MAX_NAME_CHARS:
            return None  # no account has such a name: nothing to look up or to remember
        username = self.normalize_username(username)
        key = (client_address(handler), username)
        if self.allowed_failed_logins and self.failed_logins.count(key) >= self.allowed_failed_logins:
            self.log.warning("dlab: login as %r from %s refused: %d failed logins in the last %d s",
                             username, key[0], self.failed_logins.count(key), self.seconds_before_next_try)
            handler.dlab_login_error = (f"Too many failed logins as {username} from your address: wait "
                                        f"{self.seconds_before_next_try} seconds, then try again.")
            return None
        info = self.get_user(username)
        if info is None:
            return None  # failures are counted for accounts alone: made-up names fill no memory
        if not await self.counted_check(key, password, info, handler):
            return None
        if not info.is_authorized:
            handler.dlab_login_error = f"User {username} has not been approved by the organizer yet."
            return None
        return username

    async def counted_check(self, key, password, info, handler):
        """Is password the account's? Counted as a failure under `key` before bcrypt runs and
        forgotten when right: thirty tabs posting at once get no more checks than one would."""
        self.failed_logins.add(key)
        # A password over bcrypt's 72 bytes is no account's password (bcrypt would raise, not say no).
        if len(password.encode()) > MAX_PASSWORD_BYTES or not await self.check_password(password, bytes(info.password), handler):
            return False
        self.failed_logins.forget(key)
        return True

    async def in_hashing_thread(self, handler, function, *args):
        """function(*args) (bcrypt's) in the hashing thread; None, with handler.dlab_login_error
        saying so, when password_queue requests already wait for it."""
        if self.waiting >= self.password_queue:
            self.log.warning("dlab: a request refused: %d already wait for a password check", self.waiting)
            handler.dlab_login_error = "The class server is busy: try again in a minute."
            return None
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.hashing, function, *args)
        finally:
            self.waiting -= 1

    async def check_password(self, password, hashed, handler):
        """bcrypt.checkpw in the hashing thread; False when too many requests already wait for it."""
        return bool(await self.in_hashing_thread(handler, bcrypt.checkpw, password.encode(), hashed))

    def acceptable_password(self, password):
        return len(password.encode()) <= MAX_PASSWORD_BYTES and self.is_password_strong(password)

    def create_user(self, username, password, hashed=None, **kwargs):
        """NativeAuthenticator's, with the bcrypt hash made beforehand (in the hashing thread) where
        `hashed` is given; without, it hashes here (the organizer's account at the hub's start)."""
        # With a class code, sign-ups reach this only after ClassCodeSignUpHandler checked the code.
        if self.class_code:
            kwargs["is_authorized"] = True
        if hashed is None:
            return super().create_user(username, password, **kwargs)
        username = self.normalize_username(username)
        if (self.user_exists(username) or not self.validate_username(username) or not self.enable_signup
                or not self.acceptable_password(password)):
            return None
        if self.open_signup or username in self.allowed_users | self.admin_users:  # get_authed_users, less its query per account
            kwargs["is_authorized"] = True
        info = UserInfo(username=username, password=hashed, **kwargs)
        self.db.add(info)
        self.db.commit()
        return info

    def add_user(self, user):
        # Called at every start for each user in the database, the organizer included.
        super().add_user(user)
        if user.name == self.normalize_username(self.organizer) and not self.user_exists(user.name):
            password = secrets.token_urlsafe(12)
            if self.create_user(user.name, password, is_authorized=True) is None:
                raise SystemExit(f"dlab hub: could not create the organizer's account {user.name!r}")
            SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = SECRETS_DIR / "admin-password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            self.log.info("dlab: created the organizer's account %r; its first password is in %s "
                          "(`make up` prints it) until it is changed at /hub/change-password", user.name, path)

    def change_password(self, username, new_password, hashed=None):
        """NativeAuthenticator's, with the hash made beforehand where `hashed` is given (the
        organizer's page for another account still hashes here)."""
        info = self.get_user(username)
        if info is None or not self.acceptable_password(new_password):
            return False  # the page then asks for another password
        info.password = hashed or bcrypt.hashpw(new_password.encode(), bcrypt.gensalt())
        self.db.commit()
        (FIRST_PASSWORD_DIR / username).unlink(missing_ok=True)  # their own password now
        if username == self.normalize_username(self.organizer):
            (SECRETS_DIR / "admin-password").unlink(missing_ok=True)
        return True
