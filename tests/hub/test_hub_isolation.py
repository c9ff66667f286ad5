"""One student cannot reach another's server or files, nor the hub's secrets; the spawn form
cannot be edited into another image; no secret reaches a log."""
import json

from conftest import docker
from hubstack import PREFIX, xsrf

HUB = f"{PREFIX}-hub"
PASSWORD = "a-long-password-1"


def student(hub, name):
    """An approved student who signed up through the page: (logged-in session, API token)."""
    hub.restart()
    if hub.api("GET", f"/users/{name}").status_code == 404:
        assert "sent to the admin" in hub.signup(name, PASSWORD)
        hub.approve(name)
    return hub.session(name, PASSWORD)


def hub_secrets():
    return {name: docker("exec", HUB, "cat", path).stdout.strip()
            for name, path in (("cookie_secret", "/srv/jupyterhub/secrets/cookie_secret"),
                               ("proxy_token", "/srv/proxy/proxy_token"),
                               ("crypt_key", "/srv/jupyterhub/secrets/crypt_key"))}


def test_a_logged_in_student_cannot_open_another_students_server(hub):
    theo = student(hub, "theo")
    if hub.server("dave") is None:
        hub.api("POST", "/users/dave")
        hub.start_server("dave")
    for path in ("/lab", "/api/contents", "/files/labs/00-welcome.ipynb", "/api/kernels"):
        r = theo.get(f"{hub.user_url('dave')}{path}", timeout=30)
        # JupyterHub refuses theo at the hub (403) after the OAuth round trip; nothing of dave's comes back.
        assert r.status_code == 403 and "00-welcome" not in r.text and "jupyterhub-user-dave" not in theo.cookies, path


def test_a_students_container_holds_no_hub_secret_and_no_other_home(hub):
    if hub.server("dave") is None:
        hub.api("POST", "/users/dave")
        hub.start_server("dave")
    out, error = hub.run_code("dave", "import os, json\n"
                                      "print(json.dumps(dict(os.environ)))\n"
                                      "print(os.path.exists('/srv/jupyterhub'), os.access('/srv/data', os.W_OK))")
    assert error is None
    environ, (hub_state, data_writable) = json.loads(out.splitlines()[0]), out.splitlines()[1].split()
    values = "\n".join(environ.values())
    for name, value in hub_secrets().items():
        assert value not in values, f"the hub's {name} is in a student's environment"
    assert (hub_state, data_writable) == ("False", "False")
    assert environ["JUPYTERHUB_USER"] == "dave"
    mounts = [m for m in hub.container("dave")["Mounts"] if m["Type"] == "volume"]
    # dave's home and dave's hand-in folder (a volume of its own size): nothing of anyone else's.
    # (the hand-in folder is mounted twice: ~/handin, and the assignments' inbound)
    assert sorted({m["Name"] for m in mounts if m["RW"]}) == [f"{PREFIX}-handin-dave", f"{PREFIX}-home-dave"], \
        "a writable volume not dave's own"


def test_the_spawn_form_cannot_be_edited_into_another_image(hub):
    s = student(hub, "uri")
    page = s.get(f"{hub.url}/hub/spawn", timeout=60, allow_redirects=False)
    token = xsrf(page.text) if 'name="_xsrf"' in page.text else s.cookies.get("_xsrf", path="/hub/")
    if hub.server("uri"):
        hub.stop_server("uri")
    r = s.post(f"{hub.url}/hub/spawn", data={"profile": "../hub", "image": "dlab/hub:latest", "_xsrf": token},
               timeout=60)
    assert r.status_code == 400 and "Unknown profile" in r.text
    assert hub.container("uri") is None
    r = s.post(f"{hub.url}/hub/spawn", data={"profile": "cpu", "image": "dlab/hub:latest", "_xsrf": token},
               timeout=60)
    assert r.status_code < 400, r.status_code
    hub.wait_ready("uri")
    assert hub.container("uri")["Config"]["Image"] == "dlab/cpu:latest", "the form's image field was obeyed"
    hub.stop_server("uri")


def test_no_secret_reaches_a_log(hub):
    """After sign-up, approval, login, a token, a server start and a kernel: neither the hub's log
    nor the student's server's log holds a secret, a password or a token."""
    s = student(hub, "wes")
    r = s.post(f"{hub.url}/hub/api/users/wes/tokens", json={"note": "log test"}, timeout=30)
    token = r.json()["token"]
    hub.start_server("wes")
    assert hub.run_code("wes", "print('ok')", token=token) == ("ok\n", None)
    container = hub.container("wes")["Id"]
    student_log = docker("logs", container).stdout + docker("logs", container).stderr
    secrets = {**hub_secrets(), "admin password": hub.admin_password, "wes's password": PASSWORD,
               "wes's token": token, "wes's server token": docker(
                   "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", container).stdout.split(
                   "JUPYTERHUB_API_TOKEN=")[1].split()[0]}
    for where, log in (("the hub's log", hub.logs()), ("wes's server log", student_log)):
        for name, value in secrets.items():
            assert value not in log, f"{name} is in {where}"
    hub.stop_server("wes")
