"""A class arriving at once, as the load test and `make bench` run it: N students sign up with
the class code, log in and open their server through the pages (GET /hub/spawn, as the "Start
my server" button does), all at the same moment. A 429 (the hub's spawn limit) is shown to the
student, who tries again after the seconds it names; every other answer is recorded."""
import os
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import docker
from hubstack import xsrf

PASSWORD = "a-long-password-1"


def arrive(hub, name, code, start_gate, log):
    """One student; returns when their server's start was accepted (they wait for it to be ready)."""
    start_gate.wait()
    s = hub.new_session()

    def record(r):
        log.append((name, r.request.method, r.url.split("?")[0].replace(hub.url, ""), r.status_code,
                    r.text if r.status_code >= 400 else ""))
        return r

    page = record(s.get(f"{hub.url}/hub/signup", timeout=120))
    record(s.post(f"{hub.url}/hub/signup", timeout=120, data={
        "username": name, "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD,
        "class_code": code, "_xsrf": xsrf(page.text)}))
    page = record(s.get(f"{hub.url}/hub/login", timeout=120))
    record(s.post(f"{hub.url}/hub/login", timeout=120, allow_redirects=False,
                  data={"username": name, "password": PASSWORD, "_xsrf": xsrf(page.text)}))
    while True:
        r = record(s.get(f"{hub.url}/hub/spawn", timeout=120, allow_redirects=False))
        if r.status_code != 429:
            return r.status_code
        wait = re.search(r"Try again in (\d+) seconds", r.text)
        time.sleep(int(wait.group(1)) if wait else 5)


def memory_mib(container):
    """A running container's memory use now, in MiB (docker stats)."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout.split("/")[0].strip()
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]i?B)", usage).groups()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1024, "MB": 1, "GB": 1024}[unit]


def cpu_seconds(container):
    """CPU time a running container has used since it started (its cgroup's accounting: v1's
    cpuacct.usage, or v2's cpu.stat, under the cgroupfs or the systemd driver)."""
    cid = docker("inspect", "-f", "{{.Id}}", container).stdout.strip()
    for path, read in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", lambda text: int(text) / 1e9),
                       (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", lambda text: int(text.split()[1]) / 1e6),
                       (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", lambda text: int(text.split()[1]) / 1e6)):
        if os.path.exists(path):
            with open(path) as f:
                return read(f.read())
    raise RuntimeError(f"no cgroup CPU accounting found for {container}")


def class_arrives(hub, students, code, timeout=900):
    """Run the arrival; returns the figures (seconds from the moment they all began until each
    server was ready, the answers, memory) for the test to check and the bench to report."""
    names = [f"load{i:02d}" for i in range(students)]
    gate, log, ready_at = threading.Barrier(students + 1), [], {}
    with ThreadPoolExecutor(students) as pool:
        arrivals = [pool.submit(arrive, hub, name, code, gate, log) for name in names]
        gate.wait()
        began = time.monotonic()
        deadline = began + timeout
        while len(ready_at) < students and time.monotonic() < deadline:
            failed = [f for f in arrivals if f.done() and f.exception()]
            if failed:
                raise failed[0].exception()
            users = hub.api("GET", "/users").json()
            for user in users:
                server = user.get("servers", {}).get("")
                if user["name"] in names and server and server["ready"] and user["name"] not in ready_at:
                    ready_at[user["name"]] = time.monotonic() - began
            time.sleep(0.5)
        spawn_answers = [f.result() for f in arrivals]
    time.sleep(20)  # idle: JupyterLab's server, no kernel
    idle = sorted(memory_mib(f"{hub.prefix}.{name}") for name in ready_at)
    latencies = sorted(ready_at.values())
    return {
        "students": students,
        "ready": len(ready_at),
        "spawn_answers": spawn_answers,
        "answers": log,
        "server_errors": [entry for entry in log if entry[3] >= 500],
        "limit_answers": [entry for entry in log if entry[3] == 429],
        "median_s": statistics.median(latencies) if latencies else None,
        "worst_s": latencies[-1] if latencies else None,
        "hub_mib": memory_mib(f"{hub.prefix}-hub") + memory_mib(f"{hub.prefix}-proxy"),  # both containers
        "idle_student_mib_median": statistics.median(idle) if idle else None,
        "idle_student_mib_max": idle[-1] if idle else None,
        "names": names,
    }


def class_starts(hub, names, timeout=900):
    """Students whose accounts exist all press "Start my server" at the same moment (the hub's
    REST API, as the spawn page does it): seconds from that moment until each server was ready, and
    the answers. A 429 (the spawn limit) is tried again after the seconds it names; a start that
    failed (the server is gone before it was ready) is pressed again, and counted."""
    gate, answers, ready_at, failed = threading.Barrier(len(names) + 1), [], {}, []
    tokens = {name: hub.user_token(name) for name in names}

    def press(name, wait_for_the_others=True):
        if wait_for_the_others:
            gate.wait()
        while True:
            r = hub.api("POST", f"/users/{name}/server", token=tokens[name])
            answers.append((name, r.status_code, r.text if r.status_code >= 400 else ""))
            if r.status_code != 429:
                return r.status_code
            time.sleep(float(r.headers.get("Retry-After") or 5))

    with ThreadPoolExecutor(len(names)) as pool:
        presses = {name: pool.submit(press, name) for name in names}
        gate.wait()
        began = time.monotonic()
        while len(ready_at) < len(names) and time.monotonic() < began + timeout:
            pressed = {name for name, future in presses.items() if future.done()}  # before the look
            active = {user["name"]: user.get("servers", {}).get("")
                      for user in hub.api("GET", "/users", params={"state": "active"}).json()}
            for name in names:
                if name in ready_at:
                    continue
                if active.get(name) and active[name]["ready"]:
                    ready_at[name] = time.monotonic() - began
                elif name not in active and name in pressed:
                    failed.append(name)  # the hub gave up on this start: the student presses again
                    presses[name] = pool.submit(press, name, False)
            time.sleep(0.5)  # the list costs the hub ~20 ms: looking more often would slow what it measures
        codes = [press.result() for press in presses.values()]
    latencies = sorted(ready_at.values())
    return {"students": len(names), "ready": len(ready_at), "codes": codes, "failed_starts": failed,
            "server_errors": [a for a in answers if a[1] >= 500], "limit_answers": [a for a in answers if a[1] == 429],
            "median_s": statistics.median(latencies) if latencies else None,
            "worst_s": latencies[-1] if latencies else None}


def class_logs_in(hub, names, timeout=300):
    """Students with accounts (password PASSWORD) log in at the same moment, as the login page does
    it, and follow the hub's redirects to their JupyterLab page: seconds from that moment until
    each had the page, and the final answers (name: (status, url, whether it is JupyterLab))."""
    gate, sessions, done = threading.Barrier(len(names) + 1), {}, {}
    for name in names:
        s = hub.new_session()
        sessions[name] = (s, xsrf(s.get(f"{hub.url}/hub/login", timeout=60).text))

    def log_in(name):
        s, token = sessions[name]
        gate.wait()
        began = time.monotonic()
        r = s.post(f"{hub.url}/hub/login?next=/hub/spawn", timeout=timeout,
                   data={"username": name, "password": PASSWORD, "_xsrf": token})
        done[name] = (r.status_code, r.url.replace(hub.url, ""), '<title>JupyterLab' in r.text or "jupyter-config-data" in r.text)
        return time.monotonic() - began

    with ThreadPoolExecutor(len(names)) as pool:
        waits = [pool.submit(log_in, name) for name in names]
        gate.wait()
        latencies = sorted(w.result() for w in waits)
    return {"students": len(names), "answers": done, "median_s": statistics.median(latencies),
            "worst_s": latencies[-1], "lab_pages": sum(1 for status, _, lab in done.values() if status == 200 and lab)}


def lab_page_load(browser, hub, name, password=PASSWORD):
    """A student's JupyterLab opened in chromium, logged in, their server running: seconds from
    asking for /user/NAME/lab until the launcher's cards show, and the bytes that came over the
    network (as sent: compressed where compressed), first with an empty cache, then once more."""
    from hubstack import log_in
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub.url, name, password, next_page="home")
    page.wait_for_url("**/hub/home")
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    received = []
    cdp.on("Network.loadingFinished", lambda event: received.append(event["encodedDataLength"]))
    loads = []
    for _ in range(2):
        received.clear()
        began = time.monotonic()
        if loads:
            page.reload()
        else:
            page.goto(f"{hub.url}/user/{name}/lab")
        page.locator(".jp-LauncherCard").first.wait_for(state="visible", timeout=120_000)
        seconds = time.monotonic() - began
        page.wait_for_load_state("networkidle")
        loads.append({"seconds": seconds, "bytes": sum(received), "requests": len(received)})
    context.close()
    return {"first": loads[0], "again": loads[1]}


def class_leaves(hub, names):
    """Stop every server of the arrival (their homes stay) and remove the accounts."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: hub.api("DELETE", f"/users/{name}/server"), names))
    for name in names:
        deadline = time.monotonic() + 180
        while hub.server(name) is not None and time.monotonic() < deadline:
            time.sleep(1)
        hub.api("DELETE", f"/users/{name}")


def login_flood(hub, targets, seconds, during=lambda: None, probe_timeout=10):
    """Wrong passwords for targets from len(targets) threads for `seconds`, while `during()` runs and
    /hub/health is probed every 0.2 s. Returns the probes' latencies and counts."""
    stop = threading.Event()
    guesses = []

    def guesser(name):
        s = hub.new_session()
        token = xsrf(s.get(hub.url + "/hub/login", timeout=30).text)
        while not stop.is_set():
            try:
                s.post(hub.url + "/hub/login", data={"username": name, "password": "wrong-guess", "_xsrf": token},
                       timeout=60, allow_redirects=False)
                guesses.append(1)
            except requests.RequestException:
                pass

    threads = [threading.Thread(target=guesser, args=(n,), daemon=True) for n in targets]
    for t in threads:
        t.start()
    latencies, failures = [], 0
    worker = threading.Thread(target=during, daemon=True)
    worker.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end or worker.is_alive():
        t0 = time.monotonic()
        try:
            ok = hub.request("GET", hub.url + "/hub/health", timeout=probe_timeout).ok
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - t0)
        failures += not ok
        time.sleep(0.2)
        if time.monotonic() > end + 300:
            break
    stop.set()
    for t in threads:
        t.join(60)
    latencies.sort()
    return {"probes": len(latencies), "probe_failures": failures, "guesses": len(guesses),
            "health_p50_s": round(statistics.median(latencies), 3),
            "health_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 3)}
