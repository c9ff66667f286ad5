"""The hub's pages of accounts, after NativeAuthenticator's: sign-up with the class code and every
rule checked first, login with bounded names, password change, and the organizer's approvals and
deletions only by a confirmed POST."""
import hmac

import bcrypt
from jupyterhub.utils import url_path_join
from nativeauthenticator.handlers import (ChangePasswordHandler, DiscardHandler, LoginHandler, SignUpHandler,
                                         ToggleAuthorizationHandler, admin_users_scope)
from tornado import web

from dlab_hub.settings import FIRST_PASSWORD_DIR
from dlab_hub.names import MAX_NAME_CHARS, MAX_PASSWORD_BYTES, USERNAME_RULE
from dlab_hub.state import INSTITUTION_DIR, record_signup
from dlab_hub.web import client_address

class ClassCodeSignUpHandler(SignUpHandler):
    """/hub/signup: the class code (when one is set), the username and the password are checked
    first, each with a message that says what to change; then NativeAuthenticator makes the account."""

    async def refuse(self, message, status=400):
        html = await self.render_template(
            "signup.html", ask_email=self.authenticator.ask_email_on_signup, alert="alert-danger",
            result_message=message, two_factor_auth=self.authenticator.allow_2fa,
            recaptcha_key=self.authenticator.recaptcha_key, tos=self.authenticator.tos)
        self.set_status(status)
        return self.finish(html)

    async def post(self):
        signups, address = self.authenticator.recent_signups, client_address(self)
        if signups.count(address) >= self.authenticator.signups_per_hour:
            self.log.warning("dlab: sign-up refused: %s made %d in the last hour", address, signups.count(address))
            return await self.refuse("Too many sign-ups from your network in the last hour: try again later, "
                                     "or ask your organizer to make your account.", 429)
        signups.add(address)
        code = self.authenticator.class_code
        if code and not hmac.compare_digest(self.get_body_argument("class_code", "").strip().encode(),
                                            code.encode()):
            return await self.refuse("That class code is not right: ask your organizer for it.", 403)
        username = self.get_body_argument("username", "")
        if len(username) > MAX_NAME_CHARS:
            return await self.refuse(USERNAME_RULE)
        username = self.authenticator.normalize_username(username)
        if not self.authenticator.validate_username(username):
            return await self.refuse(USERNAME_RULE)
        if self.find_user(username) is None and not self.authenticator.user_exists(username):
            if self.authenticator.looks_like_an_account(username):
                return await self.refuse(f"The name {username} looks like the name of an account that exists already "
                                         "(a letter of another alphabet, or another form of one): choose another.", 409)
            if not code and self.authenticator.pending() >= self.authenticator.pending_signups:
                self.log.warning("dlab: sign-up as %s refused: %d sign-ups wait for approval", username,
                                 self.authenticator.pending())
                return await self.refuse("Too many sign-ups are waiting for the organizer's approval: ask your "
                                         "organizer to approve yours, or try again later.", 429)
            kept = await self.authenticator.kept_files(username)
            if kept:  # a removed account's files: whoever signs up next under its name would get them
                self.log.warning("dlab: sign-up as %s refused: %s of a removed account", username, " and ".join(kept))
                return await self.refuse(f"The name {username} is taken: choose another, or ask your organizer "
                                         "if it is yours.", 409)
        if (INSTITUTION_DIR / username).exists():  # a password here would open their server to whoever set it
            return await self.refuse(f"{username} signs in with {self.authenticator.institution.login_service}: "
                                     "use that button on the login page.")
        password = self.get_body_argument("signup_password", "")
        if len(password) < self.authenticator.minimum_password_length:
            return await self.refuse(f"Choose a password of at least {self.authenticator.minimum_password_length} characters.")
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            return await self.refuse(f"Choose a password of at most {MAX_PASSWORD_BYTES} bytes (about as many letters).")
        return await self.sign_up(username, password)

    async def sign_up(self, username, password):
        """NativeAuthenticator's sign-up, with bcrypt in the hashing thread (its own hashes on the
        event loop, which every student's request goes through)."""
        authenticator = self.authenticator
        matches = password == self.get_body_argument("signup_password_confirmation", "")
        taken = authenticator.user_exists(username)
        user = None
        if matches and not taken and authenticator.is_password_strong(password):
            hashed = await authenticator.in_hashing_thread(self, bcrypt.hashpw, password.encode(), bcrypt.gensalt())
            if hashed is None:
                return await self.refuse(self.dlab_login_error, 503)
            taken = authenticator.user_exists(username)  # another sign-up may have taken it meanwhile
            if not authenticator.class_code and authenticator.pending() >= authenticator.pending_signups:
                return await self.refuse("Too many sign-ups are waiting for the organizer's approval: ask your "
                                         "organizer to approve yours, or try again later.", 429)  # counted again: others hashed meanwhile
            if not taken:
                user = authenticator.create_user(username, password, hashed=hashed)
                record_signup(username, client_address(self), bool(authenticator.class_code))
        alert, message = self.get_result_message(user, True, taken, matches, username in authenticator.admin_users)
        html = await self.render_template(
            "signup.html", ask_email=authenticator.ask_email_on_signup, result_message=message, alert=alert,
            two_factor_auth=authenticator.allow_2fa, two_factor_auth_user=user.has_2fa if user else "",
            two_factor_auth_value=user.otp_secret if user else "", recaptcha_key=authenticator.recaptcha_key,
            tos=authenticator.tos)
        self.finish(html)

    def get_result_message(self, user, *args):
        if user is not None and self.authenticator.class_code:
            return "alert-success", "Your account is ready: go to the login page and log in."
        return super().get_result_message(user, *args)


class DlabLoginHandler(LoginHandler):
    """NativeAuthenticator's login page checked a wrong password a second time, with bcrypt on the
    event loop, to word its message; here authenticate() leaves the message on the handler."""

    async def post(self):
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            if (FIRST_PASSWORD_DIR / user.name).exists():  # a roster account (make accounts)
                return self.redirect(url_path_join(self.hub.base_url, "change-password"))
            return self.redirect(self.get_next_url(user))
        error = getattr(self, "dlab_login_error", None) or "Invalid username or password."
        self.finish(await self._render(login_error=error, username=data.get("username", "")))


class DlabChangePasswordHandler(ChangePasswordHandler):
    """/hub/change-password: NativeAuthenticator checks the old password and hashes the new one
    with bcrypt on the event loop, so a logged-in student posting in a loop stalled the hub. Here
    both run in the hashing thread, and wrong old passwords count like failed logins."""

    @web.authenticated
    async def post(self):
        user, authenticator = await self.get_current_user(), self.authenticator
        old = self.get_body_argument("old_password", "", strip=False)
        new = self.get_body_argument("new_password", "", strip=False)
        key = ("change-password", client_address(self), user.name)
        info = authenticator.get_user(user.name)
        if info is None:  # signed in another way (the institution): no password here to change
            alert, message = "alert-danger", f"{user.name} has no password on this server to change."
        elif authenticator.allowed_failed_logins and authenticator.failed_logins.count(key) >= authenticator.allowed_failed_logins:
            alert, message = "alert-danger", (f"Too many wrong current passwords: wait {authenticator.seconds_before_next_try} "
                                              "seconds, then try again.")
        elif not await authenticator.counted_check(key, old, info, self):
            alert, message = "alert-danger", getattr(self, "dlab_login_error", None) or "Your current password was incorrect. Please try again."
        elif new != self.get_body_argument("new_password_confirmation", "", strip=False):
            alert, message = "alert-danger", "Your new password didn't match the confirmation. Please try again."
        elif not authenticator.acceptable_password(new):
            alert, message = "alert-danger", (f"Choose a password of at least {authenticator.minimum_password_length} characters "
                                              f"and at most {MAX_PASSWORD_BYTES} bytes, not a common one.")
        else:
            hashed = await authenticator.in_hashing_thread(self, bcrypt.hashpw, new.encode(), bcrypt.gensalt())
            if hashed is not None and authenticator.change_password(user.name, new, hashed=hashed):
                alert, message = "alert-success", "Your password has been changed successfully!"
            else:
                alert, message = "alert-danger", getattr(self, "dlab_login_error", None) or "Your password could not be changed: try again."
        self.finish(await self.render_template("change-password.html", user_name=user.name, result_message=message, alert=alert))


class ConfirmedAction:
    """NativeAuthenticator approves (/hub/authorize/NAME) and deletes (/hub/discard/NAME) accounts
    on a GET, so a link or an image on any page the organizer opens could do either. Here a GET
    only shows what would happen, with a button; the button POSTs with the page's XSRF token, which
    JupyterHub checks on every POST (plain HTTP included: no Sec-Fetch-* header is needed)."""

    @admin_users_scope
    async def get(self, name):
        info = self.authenticator.get_user(name)
        if info is None:
            raise web.HTTPError(404, f"No account {name!r} has signed up.")
        html = await self.render_template("dlab-confirm.html", account=info.username, action=self.describe(info))
        self.finish(html)

    @admin_users_scope
    async def post(self, name):
        return await super().get(name)  # NativeAuthenticator's action, now behind a POST


class ConfirmedToggleAuthorizationHandler(ConfirmedAction, ToggleAuthorizationHandler):
    def describe(self, info):
        return "Withdraw the approval of" if info.is_authorized else "Approve"


class ConfirmedDiscardHandler(ConfirmedAction, DiscardHandler):
    def describe(self, info):
        return "Delete the (not yet approved) account"
