"""Settings an organizer changes in .env: the GPU profile, a class code, the admin's password, a
wrong value. Each test restarts the test hub with its settings."""

import threading

import pytest
import requests

from conftest import docker, image_exists, nvidia_runtime
from hubstack import PREFIX, wait_until


def test_no_gpu_profile_where_docker_has_no_gpu(hub):
    if nvidia_runtime():
        pytest.skip("this Docker engine has the NVIDIA runtime: the GPU profile is offered here")
    hub.restart()
    hub.api("POST", "/users/gina")
    # No form to fill: opening the spawn page starts the (CPU) server at once.
    spawn = hub.session(hub.admin, hub.admin_password).get(f"{hub.url}/hub/spawn/gina", timeout=60,
                                                           allow_redirects=False)
    assert spawn.status_code == 302 and 'value="gpu"' not in spawn.text
    hub.wait_ready("gina")
    assert hub.container("gina")["Config"]["Image"] == "dlab/cpu:latest"
    hub.stop_server("gina")
    r = hub.api("POST", "/users/gina/server", json={"profile": "gpu"})
    assert r.status_code == 400 and "no GPU profile" in r.json()["message"]


def test_gpu_profile_passes_the_gpus_through(hub):
    """With DLAB_GPUS=all the GPU profile is offered and its container asks Docker for every GPU.
    Where the engine has no GPU, Docker refuses that request, and the student is told why."""
    # The real GPU image where this run built it (DLAB_SKIP_GPU_IMAGE unset), else a stand-in.
    gpu_image = "dlab/gpu:latest" if image_exists("dlab/gpu:latest") else "dlab/cpu:latest"
    hub.restart(DLAB_GPUS="all", DLAB_GPU_IMAGE=gpu_image)
    hub.api("POST", "/users/hana")
    form = hub.session(hub.admin, hub.admin_password).get(f"{hub.url}/hub/spawn/hana", timeout=60).text
    assert 'name="profile" value="gpu"' in form and 'value="cpu" checked' in form
    r = hub.api("POST", "/users/hana/server", json={"profile": "gpu"})
    if nvidia_runtime():
        hub.wait_ready("hana")
        requests_ = hub.container("hana")["HostConfig"]["DeviceRequests"]
        assert requests_ and requests_[0]["Count"] == -1 and requests_[0]["Capabilities"] == [["gpu"]]
        out, error = hub.run_code("hana", "import subprocess; print(subprocess.run(['nvidia-smi', '-L'], "
                                          "capture_output=True, text=True).stdout)")
        assert error is None and "GPU 0" in out
        hub.stop_server("hana")
        return
    assert r.status_code == 202 or r.status_code >= 500
    wait_until(lambda: hub.server("hana") is None, 120, "the failed GPU start to end")
    log = hub.logs()
    # Docker's own answer to the container's device request for GPUs, and dlab's advice.
    assert "capabilities: [[gpu]]" in log
    assert "needs an NVIDIA driver and the NVIDIA container toolkit" in log
    assert hub.container("hana") is None
    # The CPU profile still works for the same student.
    hub.start_server("hana", profile="cpu")
    assert not hub.container("hana")["HostConfig"].get("DeviceRequests")
    hub.stop_server("hana")


def test_class_code_approves_a_signup_at_once(hub):
    hub.restart(DLAB_CLASS_CODE="deep-learning-2026")
    page = requests.get(hub.url + "/hub/signup", timeout=10).text
    assert 'name="class_code"' in page
    assert "not right" in hub.signup("ivan", "a-long-password-1", class_code="guess")
    assert hub.api("GET", "/users/ivan").status_code == 404, "a wrong code made a user"
    assert "account is ready" in hub.signup("ivan", "a-long-password-1", class_code="deep-learning-2026")
    assert hub.session("ivan", "a-long-password-1")


def test_reset_admin_gives_a_new_first_password(hub):
    """reset-admin used to delete the organizer's account and restart the hub, which made it anew:
    in between, a sign-up under the organizer's name became the organizer. Here a student signs
    up as the organizer in a loop all along; every try finds the name taken."""
    hub.restart()
    old, said, done = hub.admin_password, [], threading.Event()

    def squat():
        while not done.is_set():
            try:
                said.append(hub.signup(hub.admin, "squatters-password-9"))
            except (requests.RequestException, AssertionError):
                pass  # the hub restarting: no answer, or the proxy's error page (no sign-up form)

    squatter = threading.Thread(target=squat, daemon=True)
    squatter.start()
    try:
        out = hub.script("reset-admin", check=False)
    finally:
        done.set()
        squatter.join(60)
    assert out.returncode == 0, out.stderr
    assert any("already in use" in m for m in said), {m[:80] for m in said}
    assert not [m for m in said if "sent to the admin" in m], "a sign-up took the organizer's name"
    hub._admin_password = None
    assert hub.admin_password != old and f"admin's first password: {hub.admin_password}" in out.stderr
    assert not hub.try_login(hub.admin, old)[0] and not hub.try_login(hub.admin, "squatters-password-9")[0]
    assert hub.session(hub.admin, hub.admin_password)
    hub._admin_token = None


@pytest.mark.parametrize("setting, value, message", [
    ("DLAB_GPUS", "yes", "DLAB_GPUS='yes' is not auto, none, all"),
    ("DLAB_IDLE_TIMEOUT", "1h", "DLAB_IDLE_TIMEOUT='1h' is not a whole number"),
    ("DLAB_MEM_LIMIT", "4 GB", "DLAB_MEM_LIMIT='4 GB' is not a size like 512m, 4G or 1g"),
    ("DLAB_HOME_SIZE", "10", "DLAB_HOME_SIZE='10' is not a size of at least 64M, like 500M, 5G"),
    ("DLAB_PREFIX", "Class 2", "DLAB_PREFIX='Class 2' is not small letters, digits, - and _"),
])
def test_a_wrong_setting_stops_make_up_and_leaves_the_class_running(hub, setting, value, message):
    """make up checks every setting before it touches anything: the organizer's typo is named with
    what is allowed, and the class that was running goes on, the same containers, answering."""
    hub.restart()
    before = docker("ps", "-q", "--no-trunc", "--filter", f"name=^{PREFIX}-(hub|proxy)$").stdout.split()
    out = hub.script("up", {setting: value}, check=False)
    assert out.returncode == 1
    assert message in out.stderr and "then run the command again" in out.stderr, out.stderr
    assert docker("ps", "-q", "--no-trunc", "--filter", f"name=^{PREFIX}-(hub|proxy)$").stdout.split() == before
    assert hub.session(hub.admin, hub.admin_password), "the running class stopped answering"


def test_changing_the_admin_password_retires_the_first_one(hub):
    from hubstack import xsrf
    hub.restart()
    first, new = hub.admin_password, "the-organizers-own-password"
    s = hub.session(hub.admin, first)
    page = s.get(hub.url + "/hub/change-password", timeout=30)
    r = s.post(hub.url + "/hub/change-password", timeout=30, data={
        "old_password": first, "new_password": new, "new_password_confirmation": new, "_xsrf": xsrf(page.text)})
    assert r.ok
    assert docker("exec", f"{PREFIX}-hub", "test", "-e", "/srv/jupyterhub/secrets/admin-password",
                  check=False).returncode == 1, "the first password is still kept"
    hub._admin_password = new
    out = hub.script("up")
    assert "first password" not in out.stderr
    assert hub.try_login(hub.admin, new)[0] and not hub.try_login(hub.admin, first)[0]


def test_a_profile_whose_image_is_not_built_tells_the_student_what_to_do(hub):
    hub.restart(DLAB_GPUS="all", DLAB_GPU_IMAGE="dlab/not-built:latest")
    hub.api("POST", "/users/lee")
    r = hub.api("POST", "/users/lee/server", json={"profile": "gpu"})
    wait_until(lambda: hub.server("lee") is None, 120, "the failed start to end")
    message = r.text if r.status_code >= 400 else hub.logs()
    assert "The image dlab/not-built:latest is not on this server" in message and "make build-gpu" in message
    assert hub.container("lee") is None


def test_the_organizers_own_jupyterhub_files_apply_after_dlabs_and_a_broken_one_is_named(hub, tmp_path):
    """DLAB_HUB_CONFIG_DIR, TLJH's jupyterhub_config.d: a file of the organizer's adds one more
    environment variable to students' servers, beside dlab's own; one with a mistake stops make up
    with its name and line; a folder the hub cannot read is said, never skipped in silence."""
    extra = tmp_path / "jupyterhub_config.d"
    extra.mkdir()
    (extra / "50-course.py").write_text('c = get_config()  # noqa\nc.DockerSpawner.environment.update({"COURSE_NAME": "ml101"})\n')
    (extra / "notes.txt").write_text("not Python: not read\n")
    extra.chmod(0o755)
    tmp_path.chmod(0o755)
    for path in extra.iterdir():
        path.chmod(0o644)
    hub.restart(DLAB_HUB_CONFIG_DIR=str(extra), DLAB_EGRESS="off")
    assert "reading 50-course.py" in docker("logs", f"{PREFIX}-hub").stderr
    hub.student("extra-env", "a-long-password-1")
    hub.start_server("extra-env")
    out, error = hub.run_code("extra-env", "import os; print(os.environ['COURSE_NAME'], os.environ['DLAB_FIREWALL'])")
    assert (out.split(), error) == (["ml101", "closed"], None)
    hub.stop_server("extra-env")

    (extra / "60-typo.py").write_text("c = get_config()  # noqa\nc.JupyterHub.log_level = 'DEBUG\n")
    (extra / "60-typo.py").chmod(0o644)
    out = hub.script("up", {"DLAB_HUB_CONFIG_DIR": str(extra), "DLAB_EGRESS": "off"}, check=False)
    assert out.returncode == 1 and "60-typo.py" in out.stderr, out.stderr
    (extra / "60-typo.py").unlink()
    extra.chmod(0o700)
    out = hub.script("up", {"DLAB_HUB_CONFIG_DIR": str(extra), "DLAB_EGRESS": "off"}, check=False)
    assert out.returncode == 1 and "cannot read DLAB_HUB_CONFIG_DIR" in out.stderr and "chmod" in out.stderr, out.stderr
    hub.settings = None  # make up again for real: the class back to the tests' settings
    hub.restart()
