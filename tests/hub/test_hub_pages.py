"""A student plants a page, a configuration or a Python file wherever they can write, and waits for
a classmate or the organizer to open it: on the class's origin such a page could read the hub's
pages, ask the hub for a token in the visitor's name and read the visitor's files. Each test plants
for real, opens each URL in a real browser (Debian's chromium) logged in as the victim, and fails
if the planted script runs there."""
from conftest import docker
from hubstack import log_in
from playwright.sync_api import expect

PASSWORD = "a-long-password-1"
SECRET = "wendy's unpublished results"
PROXIED_PORT = 8899

# What a planted page does when it runs: take the visitor's XSRF token from a hub page, ask the hub's
# API for a token in the visitor's name, and with it read a file from the visitor's server.
PAYLOAD = """
window.planted = 'ran';
window.loot = (async () => {
  const loot = {};
  let token = '';
  try {
    const home = await (await fetch('/hub/home')).text();
    const xsrf = (home.match(/xsrf_token: "([^"]*)"/) || [])[1] || '';
    const r = await fetch(`/hub/api/users/${victim}/tokens`, {method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf}, body: '{"note": "planted"}'});
    const text = await r.text();
    loot.token = r.status + ' ' + text.slice(0, 100);
    if (r.ok) token = JSON.parse(text).token;
  } catch (e) { loot.token = 'error ' + e; }
  try {
    const r = await fetch(`/user/${victim}/api/contents/secret.txt?content=1`,
                          {headers: token ? {Authorization: 'token ' + token} : {}});
    loot.file = r.status + ' ' + (await r.text()).slice(0, 200);
  } catch (e) { loot.file = 'error ' + e; }
  return loot;
})();
"""


def planted_page(victim):
    return f"<html><body><h1>free exam answers</h1><script>const victim = {victim!r};{PAYLOAD}</script></body></html>"


# Run in the attacker's kernel: a page in every place they can write, a configuration that would
# serve it, an extension that would, a Python file that would run in the server, and a web server on
# a port that jupyter-server-proxy reaches.
PLANT = """
import json, pathlib, subprocess, sys
home = pathlib.Path.home()
page = {page!r}
def put(path, text):
    path = home / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
put('planted/planted.html', page)                                    # /files/, and the proxied port
put('.jupyter/custom/planted.html', page)                            # the server's /custom/
extra = {{'ServerApp': {{'extra_static_paths': [str(home / 'planted')]}}}}  # served at /static/
put('.jupyter/jupyter_server_config.json', json.dumps(extra))
put('.jupyter/jupyter_server_config.d/planted.json', json.dumps(extra))
put('.local/etc/jupyter/jupyter_server_config.json', json.dumps(extra))
put('.local/share/jupyter/labextensions/planted/package.json',
    json.dumps({{'name': 'planted', 'version': '1.0.0', 'jupyterlab': {{'_build': {{'load': 'static/remoteEntry.js'}}}}}}))
put('.local/share/jupyter/labextensions/planted/static/planted.html', page)
put('.local/share/jupyter/labextensions/planted/static/remoteEntry.js', 'window.planted = "ran";')
# A .pth file runs at every start of a Python that reads the user site: it records which program.
import site
put(pathlib.Path(site.getusersitepackages()) / 'planted.pth',
    "import os; open(os.path.expanduser('~/planted-ran'), 'a').write(open('/proc/self/cmdline').read().replace(chr(0), ' ') + chr(10))")
# Not an attack: a kernel of the student's own, which must stay in their launcher.
subprocess.run([sys.executable, '-m', 'ipykernel', 'install', '--user', '--name', 'mine'], check=True, capture_output=True)
print('planted')
"""

SERVE = f"""
import subprocess, sys, time, urllib.request
subprocess.Popen([sys.executable, '-m', 'http.server', '{PROXIED_PORT}', '--directory', 'planted'],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(50):
    try:
        print(urllib.request.urlopen('http://127.0.0.1:{PROXIED_PORT}/planted.html').status); break
    except OSError:
        time.sleep(0.2)
"""

TRACE_THE_SERVER = """
import ctypes, os
server = os.getppid()  # the kernel's parent: the Jupyter server
print(open(f'/proc/{server}/cmdline').read().replace(chr(0), ' '))
try:
    open(f'/proc/{server}/mem', 'rb').close(); print('mem: opened')
except OSError as e:
    print('mem:', e.strerror)
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
print('ptrace:', libc.ptrace(PTRACE_ATTACH, server, 0, 0), os.strerror(ctypes.get_errno()))
"""


def planted_token_notes(hub, user):
    return [t["note"] for t in hub.api("GET", f"/users/{user}/tokens").json()["api_tokens"] if t["note"] == "planted"]


def fresh_start(hub, name):
    """Start the student's server anew (one left from another test runs with other settings)."""
    if hub.server(name):
        hub.stop_server(name)
    hub.start_server(name)


def plant(hub, attacker, victim):
    fresh_start(hub, attacker)
    out, error = hub.run_code(attacker, PLANT.format(page=planted_page(victim)))
    assert (out.strip(), error) == ("planted", None), (out, error)
    # A fresh start, so that the server would read what was planted; then the proxied web server.
    hub.stop_server(attacker)
    hub.start_server(attacker)
    out, error = hub.run_code(attacker, SERVE)
    assert (out.strip(), error) == ("200", None), (out, error)


def victim_with_a_secret(hub, browser, victim):
    fresh_start(hub, victim)
    out, error = hub.run_code(victim, f"open('secret.txt', 'w').write({SECRET!r}); print('ok')")
    assert (out.strip(), error) == ("ok", None)
    page = browser.new_context().new_page()
    log_in(page, hub.url, victim, PASSWORD, next_page="home")
    page.wait_for_url("**/hub/home")
    # Her JupyterLab's address: the server's login cookie is set on the way (no need to wait for the page).
    page.goto(f"{hub.user_url(victim)}/lab", wait_until="commit")
    page.wait_for_url(f"**/user/{victim}/lab**", wait_until="commit", timeout=120_000)
    return page


def run_payload(page, victim):
    return page.evaluate(f"(async () => {{ const victim = {victim!r}; {PAYLOAD}; return await window.loot; }})()")


def opens_without_running(page, url):
    """Open url as the victim would: the planted script must not run, whatever the answer."""
    response = page.goto(url)
    page.wait_for_timeout(1000)  # the payload's first line is synchronous; give any script a moment
    assert page.evaluate("window.planted") is None, f"the planted script ran at {url}: {page.evaluate('window.loot')}"
    return response.status if response else None


def test_pages_a_student_plants_never_run_in_a_classmates_or_the_organizers_browser(hub, browser):
    hub.restart()
    attacker, victim = hub.student("trudy", PASSWORD), hub.student("wendy", PASSWORD)
    plant(hub, attacker, victim)
    wendy = victim_with_a_secret(hub, browser, victim)

    # The payload is potent: run on a hub page of wendy's session, it gets a token and her file.
    wendy.goto(hub.url + "/hub/home")
    loot = run_payload(wendy, victim)
    assert loot["token"].startswith("201") and loot["file"].startswith("200") and SECRET in loot["file"], loot
    for token in hub.api("GET", f"/users/{victim}/tokens").json()["api_tokens"]:
        if token["note"] == "planted":
            hub.api("DELETE", f"/users/{victim}/tokens/{token['id']}")

    base = hub.user_url(attacker)
    mine = {"Authorization": f"token {hub.user_token(attacker)}"}
    # Not served at all, even to the attacker: the server read no configuration or extension from the home.
    for path in ("/custom/planted.html", "/static/planted.html",
                 "/lab/extensions/planted/static/planted.html", "/lab/extensions/planted/static/remoteEntry.js"):
        r = hub.request("GET", base + path, headers=mine, timeout=30)
        assert r.status_code == 404, f"{path}: {r.status_code} {r.text[:200]}"
        assert opens_without_running(wendy, base + path) == 404
    labextensions = hub.request("GET", base + "/lab/api/extensions", headers=mine, timeout=30)
    assert labextensions.ok and "planted" not in labextensions.text
    kernelspecs = hub.request("GET", base + "/api/kernelspecs", headers=mine, timeout=30).json()["kernelspecs"]
    assert "mine" in kernelspecs, list(kernelspecs)
    # Served to the attacker alone: their files and their proxied port.
    for path in ("/files/planted/planted.html", f"/proxy/{PROXIED_PORT}/planted.html"):
        r = hub.request("GET", base + path, headers=mine, timeout=30)
        assert r.status_code == 200 and "free exam answers" in r.text, f"{path}: {r.status_code}"
        opens_without_running(wendy, base + path)
        expect(wendy.locator("body")).not_to_contain_text("free exam answers")

    # The organizer does not open students' servers either (DLAB_ORGANIZER_OPENS_SERVERS=off).
    organizer = browser.new_context().new_page()
    log_in(organizer, hub.url, hub.admin, hub.admin_password, next_page="home")
    organizer.wait_for_url("**/hub/home")
    for path in ("/lab", f"/proxy/{PROXIED_PORT}/planted.html"):
        # Refused, not a consent page away: JupyterHub's `shares` scope holds access:servers, and an
        # organizer who kept it was shown "Authorize access", one click from the student's page.
        assert opens_without_running(organizer, base + path) == 403, organizer.url
        expect(organizer.locator("body")).not_to_contain_text("Authorize access")
        expect(organizer.locator("body")).not_to_contain_text("free exam answers")
        assert f"/user/{attacker}/lab" not in organizer.url
    # ... but still runs the class: approvals here; the admin panel in test_hub_browser.py (in a full
    # run this hub holds more accounts than the panel's first page shows); stopping servers below,
    # with the organizer's token.
    organizer.goto(hub.url + "/hub/home")
    expect(organizer.get_by_role("link", name="Authorize Users")).to_be_visible()
    organizer.get_by_role("link", name="Authorize Users").click()
    expect(organizer.locator("tr", has_text=victim)).to_be_visible()

    # The planted Python file ran in the attacker's kernels (it works), never in their Jupyter server.
    out, error = hub.run_code(attacker, "print(open('planted-ran').read())")
    assert error is None and "ipykernel" in out and "singleuser" not in out, out
    # Nor can the attacker's kernel take the server over (same user): no tracing, no /proc/PID/mem.
    out, error = hub.run_code(attacker, TRACE_THE_SERVER)
    lines = out.splitlines()
    assert error is None and "jupyterhub-singleuser" in lines[0], out
    assert lines[1:] == ["mem: Permission denied", "ptrace: -1 Operation not permitted"], out

    assert planted_token_notes(hub, victim) == [] and planted_token_notes(hub, hub.admin) == []
    hub.stop_server(attacker)
    hub.stop_server(victim)


def test_with_subdomains_a_students_page_cannot_reach_the_hub_or_a_classmate(hub, browser):
    """DLAB_SUBDOMAIN_HOST, tested with *.localhost (chromium resolves it to this machine): each
    server on a host of its own. Even an organizer who chose to open students' servers
    (DLAB_ORGANIZER_OPENS_SERVERS=on) runs the planted page there without harm."""
    hub.restart(DLAB_SUBDOMAIN_HOST=f"http://localhost:{hub.port}", DLAB_ORGANIZER_OPENS_SERVERS="on")
    attacker, victim = hub.student("trudy", PASSWORD), hub.student("wendy", PASSWORD)
    fresh_start(hub, attacker)
    student(hub, attacker, f"""
import pathlib, subprocess, sys, time, urllib.request
pathlib.Path('planted').mkdir(exist_ok=True)
pathlib.Path('planted/planted.html').write_text({planted_page(victim)!r})
{SERVE}""")
    fresh_start(hub, victim)
    student(hub, victim, f"open('secret.txt', 'w').write({SECRET!r})")
    wendy = browser.new_context().new_page()
    log_in(wendy, hub.url, victim, PASSWORD)
    wendy.wait_for_url(f"http://{victim}.localhost:{hub.port}/user/{victim}/lab**", wait_until="commit",
                       timeout=120_000)

    organizer = browser.new_context().new_page()
    log_in(organizer, hub.url, hub.admin, hub.admin_password, next_page="home")
    organizer.wait_for_url("**/hub/home")
    planted = f"http://{attacker}.localhost:{hub.port}/user/{attacker}/proxy/{PROXIED_PORT}/planted.html"
    organizer.goto(planted)
    # JupyterHub asks the organizer to confirm opening someone else's server; the organizer does.
    expect(organizer.locator("h1")).to_have_text("Authorize access")
    organizer.get_by_role("button", name="Authorize").click()
    expect(organizer.locator("h1")).to_have_text("free exam answers", timeout=60_000)  # served, and it runs
    # On the attacker's own host no hub cookie is sent, and wendy's server is another origin.
    loot = organizer.evaluate("window.loot")
    assert not loot["token"].startswith("201") and SECRET not in loot["file"], loot
    # wendy is not let into trudy's server at all.
    opens_without_running(wendy, planted)
    expect(wendy.locator("body")).not_to_contain_text("free exam answers")
    assert planted_token_notes(hub, victim) == [] and planted_token_notes(hub, hub.admin) == []
    hub.stop_server(attacker)
    hub.stop_server(victim)


def student(hub, name, code):
    """Run Python as the student in their container (here, where their server's URL is a subdomain)."""
    container = hub.container_name(name)
    docker("exec", "-u", "1000:100", "-w", "/home/jovyan", container, "/opt/venv/bin/python", "-c", code)
