"""The organizer's class page and the class's metrics (hub/dlab_hub/classview.py), for real: chromium
on /hub/classview while the test starts servers, fills one's memory and another's hand-in, and has
a start fail; a student's cookie, token and server's token refused; Prometheus (DLAB_PROMETHEUS)
scraping the hub and answering a query for each running student, out of the students' reach."""
import json
import re
import socket

import pytest
import requests
from playwright.sync_api import expect

from conftest import ROOT, docker
from hubstack import PREFIX, address_on_class_network, auth, free_port, log_in, on_class_network, wait_until

PASSWORD = "classview-long-password"
STUDENTS = ("cvada", "cvbo", "cvcy")
BROKEN = "cvdee"  # a container of her server's name, not hers, is in the way: her start fails
PROMETHEUS_PORT = free_port()
SETTINGS = {"DLAB_CLASS_VIEW_EVERY": "5", "DLAB_PROMETHEUS": "on", "DLAB_PROMETHEUS_PORT": str(PROMETHEUS_PORT)}


@pytest.fixture(scope="module")
def class_hub(hub):
    hub.restart(**SETTINGS)
    for name in (*STUDENTS, BROKEN):
        hub.student(name, PASSWORD)
    yield hub
    for name in (*STUDENTS, BROKEN):
        hub.stop_server(name)
    docker("rm", "-f", f"{PREFIX}.{BROKEN}", check=False)


def rows(hub, token=None):
    r = hub.api("GET", "/dlab/classview", token=token)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return {row["name"]: row for row in r.json()["rows"]}


def fraction(page, user, column):
    """The share of a row's cell (memory, home, hand-in) the page shows, from its bar."""
    value = page.locator(f"tr[data-user='{user}'] td.dlab-{column}").get_attribute("data-fraction")
    return float(value) if value else 0.0


def test_the_organizer_sees_the_class_live(class_hub, browser):
    hub = class_hub
    screenshots = ROOT / ".build" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(viewport={"width": 1400, "height": 700}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the Stop button's "are you sure?"
    log_in(page, hub.url, hub.admin, hub.admin_password, next_page="classview")
    page.wait_for_url("**/hub/classview", timeout=60_000)
    expect(page.locator(f"tr[data-user='{STUDENTS[0]}']")).to_be_visible(timeout=30_000)

    # The page is open; the servers start.
    for name in STUDENTS:
        assert hub.api("POST", f"/users/{name}/server").status_code in (201, 202)
    # Her server's name is taken by a container that is not hers (an old one a script left): the start fails.
    docker("run", "-d", "--name", f"{PREFIX}.{BROKEN}", "--network", "none", "--entrypoint", "sleep",
           "dlab/hub:latest", "infinity")
    hub.api("POST", f"/users/{BROKEN}/server")
    for name in STUDENTS:
        hub.wait_ready(name)
        expect(page.locator(f"tr[data-user='{name}']")).to_have_attribute("data-state", "running", timeout=30_000)
    broken = page.locator(f"tr[data-user='{BROKEN}']")
    expect(broken).to_have_attribute("data-state", "failed", timeout=120_000)
    expect(broken.locator(".dlab-reason")).to_contain_text(f"A container named {PREFIX}.{BROKEN} exists and is not this server")

    # One student fills her memory near the limit (1536M in the tests), another his hand-in folder (64M).
    ada, bo = STUDENTS[0], STUDENTS[1]
    out, error = hub.run_code(ada, "hold = b'x' * (1100 * 2**20); print('held')", shutdown=False)
    assert "held" in out, error
    out, error = hub.run_code(bo, "open('/srv/handin/secret-answers.ipynb', 'wb').write(b'x' * 40 * 2**20); print('written')")
    assert "written" in out, error
    wait_until(lambda: fraction(page, ada, "memory") > 0.75, 60, "ada's memory near her limit on the page")
    wait_until(lambda: fraction(page, bo, "handin") > 0.5, 60, "bo's hand-in folder filling on the page")
    assert fraction(page, STUDENTS[2], "memory") < 0.5 and fraction(page, STUDENTS[2], "handin") < 0.5
    seen = rows(hub)
    assert seen[ada]["memory"] > 1100 * 2**20 and seen[ada]["memory_limit"] == 1536 * 2**20, seen[ada]
    assert 40 * 2**20 <= seen[bo]["handin"][1] <= seen[bo]["handin"][0] <= 64 * 2**20, seen[bo]
    assert seen[bo]["home"][0] <= 128 * 2**20 and seen[ada]["cpu"] is not None
    # Sizes and use only: no file's name is on the page or in its API.
    assert "secret-answers" not in page.content() and "secret-answers" not in json.dumps(seen)
    # Sorted by memory, the fullest first (a second click turns the order around).
    page.click("th[data-key=memory]")
    page.click("th[data-key=memory]")
    expect(page.locator("#dlab-rows tbody tr").first).to_have_attribute("data-user", ada)
    expect(page.locator("#dlab-totals")).to_contain_text(re.compile(r"[3-9] servers running"))
    page.screenshot(path=screenshots / "classview.png", full_page=True)

    # From the page: the class message, and a server stopped.
    page.fill("#dlab-message", "Lab 3 starts at 10:15")
    page.click("#dlab-message-form button")
    expect(page.locator("#dlab-message-said")).to_contain_text("now shows it")
    student = hub.session(STUDENTS[2], PASSWORD)
    assert "Lab 3 starts at 10:15" in student.get(hub.url + "/hub/home", timeout=30).text
    page.locator(f"tr[data-user='{ada}'] .dlab-stop").click()
    expect(page.locator(f"tr[data-user='{ada}']")).to_have_attribute("data-state", "stopped", timeout=120_000)
    assert hub.server(ada) is None
    page.fill("#dlab-message", "")
    page.click("#dlab-message-form button")
    expect(page.locator("#dlab-message-said")).to_contain_text("No message")


def test_a_student_sees_none_of_it(class_hub):
    hub, student = class_hub, STUDENTS[2]
    session = hub.session(student, PASSWORD)
    assert session.get(hub.url + "/hub/classview", timeout=30).status_code == 403
    assert ">Class<" not in session.get(hub.url + "/hub/home", timeout=30).text
    token = hub.user_token(student)
    for method, path, body in (("GET", "/dlab/classview", None), ("POST", "/dlab/classview/message", {"message": "hi"})):
        r = hub.api(method, path, token=token, json=body)
        assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text[:200]}"
    assert hub.request("GET", hub.url + "/hub/metrics", headers=auth(token), timeout=30).status_code == 403
    assert hub.request("GET", hub.url + "/hub/metrics", timeout=30).status_code == 403
    # And from her own server, with the token the hub gave it.
    if hub.server(student) is None:
        hub.start_server(student)
    out, error = hub.run_code(student, "import os, urllib.request, urllib.error\n"
                       "for path in ('api/dlab/classview', 'metrics'):\n"
                       "    request = urllib.request.Request('http://hub:8081/hub/' + path, headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
                       "    try: print(urllib.request.urlopen(request).status)\n"
                       "    except urllib.error.HTTPError as e: print(e.code)")
    assert out.split() == ["403", "403"], (out, error)


def test_an_instructor_sees_the_class_and_acts_on_none_of_it(class_hub, browser):
    """The page gives its viewer no more than they already hold: an instructor reads the rows but
    stops no one's server and sets no class message (a hijacked instructor's session could post one
    on the login page outsiders see)."""
    hub, instructor, student = class_hub, STUDENTS[1], STUDENTS[2]
    joined = hub.api("POST", "/groups/instructors/users", json={"users": [instructor]}) if hub.api("GET", "/groups/instructors").ok \
        else hub.api("POST", "/groups/instructors", json={"users": [instructor]})
    assert joined.ok, joined.text
    try:
        if hub.server(student) is None:
            hub.start_server(student)
        token = hub.user_token(instructor)
        assert student in rows(hub, token=token)
        assert hub.api("POST", "/dlab/classview/message", token=token, json={"message": "free pizza: log in at evil.example"}).status_code == 403
        # (JupyterHub answers 404 for a user the token may not see: it does not say whether one exists)
        assert hub.api("DELETE", f"/users/{student}/server", token=token).status_code in (403, 404)
        assert hub.server(student) is not None
        page = browser.new_context().new_page()
        log_in(page, hub.url, instructor, PASSWORD, next_page="classview")
        expect(page.locator(f"tr[data-user='{student}']")).to_have_attribute("data-state", "running", timeout=60_000)
        assert page.locator(".dlab-stop").count() == 0 and page.locator("#dlab-message-form").count() == 0
        page.context.close()
        # The organizer's own body that is not an object: a message that says what to send, not a 500.
        for body in ([1], "x", {"message": 5}, {"message": "y" * 1001}):
            answer = hub.api("POST", "/dlab/classview/message", json=body)
            assert answer.status_code == 400 and "at most 1000 characters" in answer.text, (body, answer.text)
    finally:
        hub.api("DELETE", "/groups/instructors/users", json={"users": [instructor]})


def test_prometheus_keeps_each_running_students_metrics(class_hub):
    hub, student = class_hub, STUDENTS[2]
    if hub.server(student) is None:
        hub.start_server(student)
    prometheus = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    login = ("dlab", docker("exec", f"{PREFIX}-hub", "cat", "/srv/metrics/password").stdout.strip())
    assert len(login[1]) >= 32 and login[1] in hub.up_output  # make up says it
    # Its page and API have a login: without it, or with another password, nothing.
    for wrong in (None, ("dlab", "guess"), ("admin", login[1])):
        r = requests.get(prometheus + "/api/v1/query", params={"query": "dlab_server_state"}, auth=wrong, timeout=10)
        assert r.status_code == 401, (wrong, r.status_code)
    # And no other site's script in the organizer's browser reads it.
    r = requests.get(prometheus + "/api/v1/query", params={"query": "up"}, auth=login, headers={"Origin": "http://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers

    def running_students():
        r = requests.get(prometheus + "/api/v1/query", params={"query": 'dlab_server_state{state="running"} == 1'}, auth=login, timeout=10)
        r.raise_for_status()
        return {result["metric"]["user"] for result in r.json()["data"]["result"]}
    running = {name for name in (*STUDENTS, BROKEN) if hub.server(name) is not None}
    assert student in running
    wait_until(lambda: running <= running_students(), 90, f"Prometheus' query to return {running}")
    assert BROKEN not in running_students()
    memory = requests.get(prometheus + "/api/v1/query", params={"query": f'dlab_server_memory_bytes{{user="{student}"}}'},
                          auth=login, timeout=10).json()["data"]["result"]
    assert memory and float(memory[0]["value"][1]) > 30 * 2**20, memory
    # JupyterHub's own metrics are there too, through the same token.
    own = requests.get(prometheus + "/api/v1/query", params={"query": "jupyterhub_running_servers"}, auth=login, timeout=10).json()
    assert own["data"]["result"], own
    # It is on this machine's loopback alone, and out of the students' reach.
    published = docker("port", f"{PREFIX}-prometheus", "9090").stdout.split()
    assert published == [f"127.0.0.1:{PROMETHEUS_PORT}"], published
    address = address_on_class_network(f"{PREFIX}-prometheus")
    reach = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 9090), timeout=5).close(); print('reached')\n"
             "except OSError as e: print('refused', e)")
    assert "reached" in on_class_network(reach, address)  # from the class network without a firewall: it answers
    out, error = hub.run_code(student, reach.replace("sys.argv[1]", repr(address)))
    assert "refused" in out, (out, error)


def test_without_prometheus_make_up_removes_it(class_hub):
    hub = class_hub
    hub.restart(**{**SETTINGS, "DLAB_PROMETHEUS": "off"})
    assert docker("ps", "-aq", "--filter", f"name=^{PREFIX}-prometheus$").stdout.strip() == ""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", PROMETHEUS_PORT), timeout=3).close()
    assert rows(hub)  # the class page stays
