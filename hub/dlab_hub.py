"""dlab's additions to JupyterHub, used by jupyterhub_config.py (installed into the hub image).

- secret(): the hub's secrets, made on first start into files that only the hub can read;
- docker_gpu_runtime() / image_present(): what the Docker engine behind the hub offers;
- DlabSpawner: DockerSpawner with a CPU profile and, where the server has a GPU, a GPU profile;
- DlabAuthenticator: NativeAuthenticator with a class access code, and an admin account made on
  first start with a generated password (there is no default password anywhere).
"""
import hmac
import os
import pathlib
import secrets

import docker
from dockerspawner import DockerSpawner
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import DiscardHandler, SignUpHandler, ToggleAuthorizationHandler
from tornado import web
from traitlets import Unicode, default

# Usernames: 1 to 32 letters (any script), digits, dots, dashes or underscores, starting with a
# letter or digit. They become URLs (/user/NAME), container and volume names: no spaces, no
# slashes, no "..". JupyterHub lowercases them first, so "Alice" and "alice" are one account.
USERNAME_PATTERN = r"^[^\W_][\w.-]{0,31}\Z"
USERNAME_RULE = ("Choose a username of 1 to 32 letters, digits, dots, dashes or underscores that "
                 "starts with a letter or a digit (no spaces or slashes; capitals count as small letters).")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit: a longer password would be an error, not a login

STATE_DIR = pathlib.Path(os.environ.get("DLAB_HUB_STATE", "/srv/jupyterhub"))
SECRETS_DIR = STATE_DIR / "secrets"


def secret(name, nbytes=32):
    """The hex secret kept in SECRETS_DIR/name: read it, or make it (mode 0600) on first start."""
    SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = SECRETS_DIR / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_hex(nbytes)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def docker_client():
    """The Docker engine the hub starts students' containers on; exits with what to do if absent."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing
        raise SystemExit(
            f"dlab hub: cannot reach the Docker engine ({error}). The hub needs /var/run/docker.sock "
            "and the socket's group: start it with `make up`, which sets both (compose.yaml)."
        ) from error


def docker_gpu_runtime(client):
    """True when the engine has the NVIDIA runtime (the NVIDIA container toolkit is installed)."""
    return "nvidia" in (client.info().get("Runtimes") or {})


def image_present(client, image):
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def gpu_device_requests(gpus):
    """Docker device requests for DLAB_GPUS, in `docker run --gpus` syntax: "all", a count ("2"),
    or "device=0,1"."""
    if gpus == "all":
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.startswith("device="):
        return [docker.types.DeviceRequest(device_ids=gpus[len("device="):].split(","), capabilities=[["gpu"]])]
    return [docker.types.DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]


PROFILE_FORM = """
<fieldset>
  <legend>Choose your server</legend>
  <div class="radio"><label><input type="radio" name="profile" value="cpu" checked>
    <strong>CPU</strong>: every lab runs here</label></div>
  <div class="radio"><label><input type="radio" name="profile" value="gpu">
    <strong>GPU</strong>: {gpu_image}, with the server's NVIDIA GPU ({gpus})</label></div>
</fieldset>
"""


class DlabSpawner(DockerSpawner):
    """One container per student. The profile (cpu or gpu) picks the image; the GPU profile passes
    the GPUs through with device_requests and exists only where the hub offers it (gpus != "")."""

    cpu_image = Unicode("dlab/cpu:latest", config=True, help="The image of the CPU profile.")
    gpu_image = Unicode("dlab/gpu:latest", config=True, help="The image of the GPU profile.")
    gpus = Unicode("", config=True, help='GPUs of the GPU profile ("all", "2", "device=0,1"); "" offers none.')

    @default("options_form")
    def _default_options_form(self):
        # No form without a GPU: the student's server starts at once.
        return PROFILE_FORM.format(gpu_image=self.gpu_image, gpus=self.gpus) if self.gpus else ""

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: {"profile": formdata.get("profile", ["cpu"])[0]}

    async def start(self):
        profile = self.user_options.get("profile", "cpu")
        if profile not in ("cpu", "gpu"):
            raise web.HTTPError(400, f"Unknown profile {str(profile)[:40]!r}: choose 'cpu' or 'gpu'.")
        if profile == "gpu" and not self.gpus:
            raise web.HTTPError(400, "This server offers no GPU profile (it has no GPU for Docker): choose 'cpu'.")
        self.image = self.gpu_image if profile == "gpu" else self.cpu_image
        host_config = dict(self.extra_host_config)
        host_config.pop("device_requests", None)
        if profile == "gpu":
            host_config["device_requests"] = gpu_device_requests(self.gpus)
        self.extra_host_config = host_config
        self.log.info("dlab: starting %s's %s server from %s", self.user.name, profile, self.image)
        try:
            return await super().start()
        except docker.errors.ImageNotFound as error:
            raise web.HTTPError(
                503, f"The image {self.image} is not on this server: the organizer builds it with "
                f"`make {'build-gpu' if profile == 'gpu' else 'build'}`.") from error
        except docker.errors.APIError as error:
            if "device driver" in str(error) or "nvidia" in str(error).lower():
                raise web.HTTPError(
                    503, "The GPU profile could not get a GPU from Docker: the server needs an NVIDIA "
                    f"driver and the NVIDIA container toolkit. Choose 'cpu' meanwhile. ({error.explanation})"
                ) from error
            raise


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
        code = self.authenticator.class_code
        if code and not hmac.compare_digest(self.get_body_argument("class_code", "").strip().encode(),
                                            code.encode()):
            return await self.refuse("That class code is not right: ask your organizer for it.", 403)
        username = self.authenticator.normalize_username(self.get_body_argument("username", ""))
        if not self.authenticator.validate_username(username):
            return await self.refuse(USERNAME_RULE)
        password = self.get_body_argument("signup_password", "")
        if len(password) < self.authenticator.minimum_password_length:
            return await self.refuse(f"Choose a password of at least {self.authenticator.minimum_password_length} characters.")
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            return await self.refuse(f"Choose a password of at most {MAX_PASSWORD_BYTES} bytes (about as many letters).")
        return await super().post()

    def get_result_message(self, user, *args):
        if user is not None and self.authenticator.class_code:
            return "alert-success", "Your account is ready: go to the login page and log in."
        return super().get_result_message(user, *args)


class SameSiteOnly:
    """For NativeAuthenticator's admin links that act on a GET (/hub/authorize/NAME approves,
    /hub/discard/NAME deletes): refuse one that another site started (a link or an image in a
    page the organizer opens), which the browser marks with Sec-Fetch-Site."""

    async def get(self, *args):
        site = self.request.headers.get("Sec-Fetch-Site", "same-origin")
        if site not in ("same-origin", "none"):
            raise web.HTTPError(403, "This link works only from the hub's own /hub/authorize page: open it there.")
        return await super().get(*args)


class SameSiteToggleAuthorizationHandler(SameSiteOnly, ToggleAuthorizationHandler):
    pass


class SameSiteDiscardHandler(SameSiteOnly, DiscardHandler):
    pass


class DlabAuthenticator(NativeAuthenticator):
    """Sign-up for a class: either the organizer approves each account (/hub/authorize), or a
    class access code approves it at once. The admin account is made on first start with a random
    password kept in SECRETS_DIR/admin-password until the admin changes it."""

    class_code = Unicode("", config=True, help="Class access code; empty: the admin approves each sign-up.")

    ours = {SignUpHandler: ClassCodeSignUpHandler, ToggleAuthorizationHandler: SameSiteToggleAuthorizationHandler,
            DiscardHandler: SameSiteDiscardHandler}

    def get_handlers(self, app):
        return [(path, self.ours.get(handler, handler)) for path, handler in super().get_handlers(app)]

    async def authenticate(self, handler, data):
        if len(data.get("password", "").encode()) > MAX_PASSWORD_BYTES:
            return None  # no account has such a password; bcrypt would raise instead of saying no
        return await super().authenticate(handler, data)

    def create_user(self, username, password, **kwargs):
        # With a class code, sign-ups reach this only after ClassCodeSignUpHandler checked the code.
        if self.class_code:
            kwargs["is_authorized"] = True
        return super().create_user(username, password, **kwargs)

    def add_user(self, user):
        # Called at every start for each user in the database, admins included.
        super().add_user(user)
        if user.name in self.admin_users and not self.user_exists(user.name):
            password = secrets.token_urlsafe(12)
            if self.create_user(user.name, password) is None:
                raise SystemExit(f"dlab hub: could not create the admin account {user.name!r}")
            SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = SECRETS_DIR / "admin-password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            self.log.info("dlab: created the admin account %r; its first password is in %s "
                          "(`make up` prints it) until it is changed at /hub/change-password", user.name, path)

    def change_password(self, username, new_password):
        if len(new_password.encode()) > MAX_PASSWORD_BYTES:
            return False  # the page then asks for another password
        changed = super().change_password(username, new_password)
        if changed and username in self.admin_users:
            (SECRETS_DIR / "admin-password").unlink(missing_ok=True)
        return changed
