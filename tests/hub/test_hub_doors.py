"""The doors the course tools opened (issue 33), each tried the way a student or an outsider would,
against the real class: megabyte usernames from outside, a student's loop on the change-password
page, options a student sends with a start, a symlink a student plants for the root helper
that moves a plain volume into a home of its own, a removed student's name taken by the next sign-up,
a hand-in folder filled, and floods of sign-ups, look-alike names and tokens."""
import json
import re
import secrets
import subprocess
import threading
import time

import pytest
import requests

from conftest import ROOT, dlab_home, docker
from hubstack import HOMES_DIR, PREFIX, auth, on_class_network, xsrf

PASSWORD = "a-long-password-1"


def hub_rss():
    """The resident memory of the hub's process (JupyterHub, in the hub's container), in bytes."""
    top = docker("top", f"{PREFIX}-hub", "-eo", "pid,args").stdout.splitlines()[1:]
    pid = next(line.split()[0] for line in top if "jupyterhub --config" in line and "tini" not in line)
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def while_probing(hub, work, probe_timeout):
    """Run work() while /hub/health is probed every 0.2 s; returns the probes that failed to answer
    within probe_timeout (a hub whose event loop is busy answers none)."""
    done, failed = threading.Event(), []

    def probe():
        while not done.is_set():
            try:
                if not hub.request("GET", hub.url + "/hub/health", timeout=probe_timeout).ok:
                    failed.append("not ok")
            except requests.RequestException as error:
                failed.append(type(error).__name__)
            time.sleep(0.2)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        work()
    finally:
        done.set()
        prober.join(probe_timeout + 5)
    return failed


def in_threads(count, target, *args):
    threads = [threading.Thread(target=target, args=(i, *args), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)


def test_megabyte_usernames_from_outside_leave_nothing_in_the_hubs_memory(hub):
    """The failed-login tracker kept every username it was given: 500 failed logins with distinct
    200 KB names (each request under the 256 KB bound on bodies) grew the hub by 100 MB, for good.
    Now a name longer than any username is refused before any work, each answered with the login
    form, and the hub's memory stays where it was."""
    hub.restart()
    before, answers = hub_rss(), []

    def outsider(i):
        s = hub.new_session()
        token = xsrf(s.get(hub.url + "/hub/login", timeout=30).text)
        for n in range(50):
            name = f"{i:02d}{n:02d}" + secrets.token_hex(8) * 12_500  # 200 KB, a new one each time
            r = s.post(hub.url + "/hub/login", data={"username": name, "password": "guess", "_xsrf": token},
                       timeout=120, allow_redirects=False)
            answers.append((r.status_code, "Invalid username or password" in r.text))

    in_threads(10, outsider)
    grown = hub_rss() - before
    assert len(answers) == 500 and set(answers) == {(200, True)}, set(answers)
    assert grown < 50 * 1024**2, f"the hub grew by {grown // 1024**2} MB after 100 MB of usernames"
    # An account's own login still works, and the hub remembers failures of real accounts only.
    hub.student("mem-check", PASSWORD)
    assert hub.try_login("mem-check", PASSWORD)[0]


def test_huge_request_bodies_from_outside_are_answered_413_and_never_held(hub):
    """No page or API call of the hub takes more than a few kilobytes, but tornado held up to 100 MB
    of each request's body in memory: 12 clients posting 60 MB bodies at once grew the hub by
    hundreds of megabytes, and a body past the bound got the proxy's 503. Now a body past 256 KB is
    read and dropped as it comes, and answered 413 with a message; the hub keeps answering."""
    hub.restart()
    before, answers = hub_rss(), []
    body = b"username=x&password=" + b"y" * 60_000_000

    def outsider(i):
        for path in ("/hub/login", "/hub/signup", f"/hub/api/users/student-{i}/tokens"):
            r = requests.post(hub.url + path, data=body, timeout=120,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
            answers.append((r.status_code, "takes requests of at most 256 KB" in r.text))

    failed = while_probing(hub, lambda: in_threads(12, outsider), probe_timeout=10)
    grown = hub_rss() - before
    assert len(answers) == 36 and set(answers) == {(413, True)}, set(answers)
    assert grown < 100 * 1024**2, f"the hub grew by {grown // 1024**2} MB while 2 GB of bodies came in"
    assert failed == [], failed
    # What the hub takes still works.
    hub.student("body-check", PASSWORD)
    assert hub.try_login("body-check", PASSWORD)[0]


@pytest.mark.alone
def test_a_students_loop_on_change_password_and_a_burst_of_sign_ups_do_not_stall_the_hub(hub):
    """NativeAuthenticator checked the current password and hashed new ones with bcrypt (a quarter
    of a second of CPU each) on the hub's event loop, which every request of the class goes
    through: one logged-in student posting wrong current passwords from 30 tabs, or 24 sign-ups at
    once, held every other request for seconds. Now bcrypt runs in the hashing threads, a student's
    wrong current passwords lock that page like failed logins, and the hub answers its health
    probe all along."""
    hub.restart()
    student = hub.student("pwloop", PASSWORD)
    s = hub.session(student, PASSWORD)
    token = xsrf(s.get(hub.url + "/hub/change-password", timeout=30).text)
    said, deadline = [], time.monotonic() + 15

    def tab(i):
        while time.monotonic() < deadline:
            r = s.post(hub.url + "/hub/change-password", timeout=60, data={
                "old_password": f"wrong-{i}", "new_password": "another-password-2",
                "new_password_confirmation": "another-password-2", "_xsrf": token})
            said.append((r.status_code, "Too many wrong current passwords" in r.text))

    failed = while_probing(hub, lambda: in_threads(30, tab), probe_timeout=3)
    assert failed == [], f"the hub did not answer {len(failed)} health probes within 3 s: {failed[:5]}"
    assert len(said) >= 100 and {code for code, _ in said} == {200}, len(said)
    assert sum(not locked for _, locked in said) <= 5, "wrong current passwords were not limited to 5 a minute"
    assert not hub.try_login(student, "another-password-2")[0] and hub.try_login(student, PASSWORD)[0]

    def sign_up(i):
        hub.signup(f"burst{i}-{secrets.token_hex(2)}", PASSWORD)

    failed = while_probing(hub, lambda: in_threads(24, sign_up), probe_timeout=3)
    assert failed == [], f"the hub did not answer {len(failed)} health probes within 3 s: {failed[:5]}"
    listing = hub.session(hub.admin, hub.admin_password).get(hub.url + "/hub/authorize", timeout=30).text
    assert len(set(re.findall(r"burst\d+-[0-9a-f]{4}", listing))) == 24, "the sign-ups did not all make an account"


def test_a_start_takes_only_the_options_dlab_offers_and_stores_nothing_else(hub):
    """user_options are the student's to send through the REST API, and JupyterHub stores them for
    the next start and shows them in every user listing: 200 KB of them, an unknown key, or a
    profile that is not a string is refused with a short message, and nothing of it is kept."""
    hub.restart()
    student = hub.student("optioneer", PASSWORD)
    token = hub.user_token(student)
    url = f"{hub.url}/hub/api/users/{student}/server"
    for options, says in (({"profile": "cpu", "notes": "x" * 200_000}, "Unknown option 'notes'"),
                          ({"profile": ["cpu"]}, "Unknown profile"),
                          ({"profile": {"image": "dlab/hub:latest"}}, "Unknown profile")):
        r = hub.request("POST", url, headers=auth(token), json=options, timeout=60)
        assert r.status_code == 400 and says in r.text and len(r.text) < 400, (r.status_code, r.text[:300])
        stored = hub.api("GET", f"/users/{student}").json()["servers"]
        assert stored == {}, f"a refused start left {json.dumps(stored)[:200]}"
    listing = hub.api("GET", "/users").text
    assert "x" * 1000 not in listing and "dlab/hub" not in listing
    # The options dlab offers start the server, and only they are kept for the next start.
    r = hub.request("POST", url, headers=auth(token), json={"profile": "cpu"}, timeout=60)
    assert r.status_code in (201, 202), r.text
    assert hub.wait_ready(student)["user_options"] == {"profile": "cpu"}
    hub.stop_server(student)


def test_a_symlink_planted_in_a_home_never_leads_the_home_helper_into_a_classmates(hub):
    """When a plain volume meets an existing home of its own size (a restore into a missing volume,
    an engine reinstalled, `docker volume prune -a`), the root helper copies the volume's files into
    the home. It did so with cp -a, which writes through a symlink the home already holds: a student
    who planted `notes.txt -> /homes/<classmate's image>` and whose old volume holds a notes.txt
    overwrote a classmate's home. Now no link in the home is followed: the classmate's image is
    untouched, and the student's files arrive in their own home, the links replaced."""
    hub.restart()
    attacker, victim = hub.student("linker", PASSWORD), hub.student("linked", PASSWORD)
    for name in (attacker, victim):
        hub.start_server(name)
    out, error = hub.run_code(victim, "open('mine.txt', 'w').write('victim-data'); print('ok')")
    assert (out.strip(), error) == ("ok", None)
    victim_image = f"/homes/{PREFIX}-home-{victim}.ext4"
    plant = (f"import os; os.symlink({victim_image!r}, 'notes.txt'); os.symlink('/homes', 'shelf'); "
             "os.symlink('/homes/dev', 'devices'); print('planted')")
    out, error = hub.run_code(attacker, plant)
    assert (out.strip(), error) == ("planted", None)
    hub.stop_server(attacker)
    hub.stop_server(victim)
    before = dlab_home(HOMES_DIR, f"sha256sum {victim_image}").stdout.split()[0]

    # The attacker's volume goes missing and comes back plain, holding the attacker's old files
    # (as a restore of an archive of the plain home would).
    volume = f"{PREFIX}-home-{attacker}"
    docker("volume", "rm", volume)
    docker("run", "--rm", "--user", "1000:100", "--entrypoint", "bash", "-v", f"{volume}:/home/jovyan", "dlab/cpu:latest",
           "-c", "cd /home/jovyan && echo overwritten > notes.txt && mkdir -p shelf devices "
                 f"&& echo overwritten > shelf/{PREFIX}-home-{victim}.ext4 && echo x > devices/{PREFIX}-home-{victim}")
    hub.start_server(attacker)
    after = dlab_home(HOMES_DIR, f"sha256sum {victim_image}").stdout.split()[0]
    assert after == before, "the home helper wrote into the classmate's home through a planted link"
    out, error = hub.run_code(attacker, "import os; print(open('notes.txt').read().strip(), os.path.islink('notes.txt'), "
                                        "os.path.islink('shelf'), sorted(os.listdir('shelf')))")
    assert error is None and out.split(maxsplit=3)[:3] == ["overwritten", "False", "False"], out
    hub.start_server(victim)
    out, error = hub.run_code(victim, "print(open('mine.txt').read())")
    assert (out.strip(), error) == ("victim-data", None)
    hub.stop_server(attacker)
    hub.stop_server(victim)


def test_a_removed_students_files_never_reach_a_new_account_of_the_same_name(hub):
    """A student writes a diary in the home and an essay in the hand-in folder; the organizer
    deletes the account in the admin panel. Whoever signs up next under the name is refused, and
    nothing waits for the organizer to approve by mistake. make delete-home then deletes both and
    frees the name: the new account starts with an empty home and an empty hand-in folder."""
    hub.restart()
    name = "freed-ana"
    hub.student(name, PASSWORD)
    hub.start_server(name)
    out, error = hub.run_code(name, "open('/home/jovyan/diary.txt', 'w').write('private notes')\n"
                                    "open('/home/jovyan/handin/essay.txt', 'w').write('my essay')")
    assert error is None, error
    assert hub.api("DELETE", f"/users/{name}").status_code == 204  # the admin panel's delete (stops the server)

    message = hub.signup(name, "someone-elses-password")
    assert f"The name {name} is taken: choose another, or ask your organizer" in message, message
    assert not hub.try_login(name, "someone-elses-password")[0]
    organizer = hub.session(hub.admin, hub.admin_password)
    assert f"/hub/authorize/{name}" not in organizer.get(f"{hub.url}/hub/authorize", timeout=30).text

    # make delete-home: the home and the hand-in folder go, and the name is free again.
    deleted = subprocess.run(["scripts/homes.sh", "delete", name], cwd=ROOT, env=hub.env(hub.settings or {}),
                             capture_output=True, text=True, timeout=300)
    assert deleted.returncode == 0 and f"{name}'s hand-in folder" in deleted.stderr, deleted.stderr
    hub.student(name, "a-new-students-password")
    hub.start_server(name)
    out, error = hub.run_code(name, "import os\nprint(os.path.exists('/home/jovyan/diary.txt'), os.listdir('/home/jovyan/handin'))")
    assert error is None and out.strip() == "False []", (out, error)
    hub.stop_server(name)
    # A name that is not a username deletes nothing outside the hand-in volume.
    refused = subprocess.run(["scripts/homes.sh", "delete", "../handin"], cwd=ROOT, env=hub.env(hub.settings or {}),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "../handin is not a username" in refused.stderr


def test_a_student_who_fills_the_handin_folder_leaves_the_class_its_room(hub):
    """A student fills ~/handin, with one large file and with a flood of empty files: each stops at
    the hand-in folder's own size (DLAB_HANDIN_SIZE, 64M here) and its inodes, on disk the folder
    takes no more, and a classmate still hands in. The classmate's hand-in folder of an earlier
    release (a folder of the one hand-in volume) arrives in their own at their next start, and the
    organizer reads both."""
    hub.restart()
    filler, classmate = hub.student("fill-handin", PASSWORD), hub.student("fill-mate", PASSWORD)
    # The classmate's hand-in from before: a folder of the shared hand-in volume.
    docker("exec", f"{PREFIX}-hub", "sh", "-c", "mkdir -p /srv/handin/fill-mate && chmod 2770 /srv/handin/fill-mate")
    docker("run", "--rm", "--user", "1000:100", "--entrypoint", "sh", "-v", f"{PREFIX}-handin:/h", "dlab/hub:latest", "-c",
           "echo 'week 1 essay' > /h/fill-mate/essay.txt")
    for name in (filler, classmate):
        if not hub.server(name):
            hub.start_server(name)
    out, error = hub.run_code(filler, "import os, subprocess\n"
                                      "big = subprocess.run(['fallocate', '-l', '200M', '/home/jovyan/handin/big'], capture_output=True, text=True)\n"
                                      "print(big.returncode, big.stderr.strip())\n"
                                      "if os.path.exists('/home/jovyan/handin/big'): os.remove('/home/jovyan/handin/big')\n"
                                      "os.makedirs('/home/jovyan/handin/many', exist_ok=True)\n"
                                      "n = 0\n"
                                      "try:\n"
                                      "    while n < 40000:\n"
                                      "        open(f'/home/jovyan/handin/many/{n}', 'w').close()\n"
                                      "        n += 1\n"
                                      "except OSError as e:\n"
                                      "    print(n, e.errno)\n", timeout=300)
    assert error is None, error
    lines = out.strip().splitlines()
    assert len(lines) == 2, f"the hand-in folder took a 200 MB file and 40000 files: {out}"
    big, many = lines
    assert big.startswith("1 ") and "No space left on device" in big, out
    files, errno = map(int, many.split())
    assert errno == 28 and files < 40000, out  # ENOSPC: the folder's inodes ran out
    # On the machine's disk, the hand-in folder is its own image, no larger than its size.
    used = dlab_home(HOMES_DIR, f"du -k --apparent-size /homes/{PREFIX}-handin-fill-2dhandin.ext4 | cut -f1").stdout
    assert int(used) <= 64 * 1024, used

    # The classmate hands in, and finds the week-1 essay from before.
    out, error = hub.run_code(classmate, "open('/home/jovyan/handin/week2.txt', 'w').write('week 2')\n"
                                         "print(open('/home/jovyan/handin/essay.txt').read().strip())")
    assert error is None and out.strip() == "week 1 essay", (out, error)
    # The organizer reads both hand-in folders, each the student's own (a server of the organizer's
    # an earlier test left running would hold the folders of before).
    if hub.server(hub.admin):
        hub.stop_server(hub.admin)
    hub.start_server(hub.admin)
    out, error = hub.run_code(hub.admin, "import os\nh = '/home/jovyan/handins'\n"
                                         "print(sorted(os.listdir(h + '/fill-mate')), os.path.exists(h + '/fill-handin/many'))")
    assert error is None and out.strip() == "['essay.txt', 'week2.txt'] True", (out, error)
    for name in (filler, classmate, hub.admin):
        hub.stop_server(name)


PUPPETS_FROM_ELSEWHERE = """
import re, requests, socket
print(socket.gethostbyname(socket.gethostname()))
for i in range(12):
    s = requests.Session()
    page = s.get(url + '/hub/signup', timeout=30)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = s.post(url + '/hub/signup', timeout=60, data={{'username': f'puppet-{{i}}', 'signup_password': {password!r},
               'signup_password_confirmation': {password!r}, 'class_code': {code!r}, '_xsrf': token}})
    print('account is ready' in r.text)
"""


def test_sign_ups_are_bounded_look_alikes_refused_and_the_organizer_clears_them_in_bulk(hub, tmp_path):
    """A class of 30 signs up with the class code from one classroom's address; a name that looks like
    one of theirs (Cyrillic letters, fullwidth forms) is refused; someone at another address makes 12
    puppet accounts, which the organizer finds by address and removes in one command. Without a class
    code, at most DLAB_PENDING_SIGNUPS wait for approval, and the organizer clears them all at once.
    A student's loop on the token API stops at 20 tokens an hour."""
    code = "kernel-42"
    hub.restart(DLAB_CLASS_CODE=code, DLAB_PENDING_SIGNUPS="5")
    roster = tmp_path / "room.csv"
    roster.write_text("".join(f"room-{i:02d}\n" for i in range(30)))
    try:
        signing_up_together(hub, code, tmp_path)
    finally:  # 30 approved accounts would each get a server in test_hub_prestart
        hub.script(["remove-accounts", str(roster), "delete"], check=False)


def signing_up_together(hub, code, tmp_path):
    answers = [hub.signup(f"room-{i:02d}", PASSWORD, class_code=code) for i in range(30)]
    assert all("account is ready" in answer or "already exists" in answer for answer in answers), answers
    for look_alike in ("rооm-01", "ｒｏｏｍ-02", "rοom-03"):  # Cyrillic о; fullwidth letters; Greek ο
        answer = hub.signup(look_alike, PASSWORD, class_code=code)
        assert "looks like the name of an account that exists already" in answer, (look_alike, answer)
    assert hub.api("GET", "/users/r%D0%BE%D0%BEm-01").status_code == 404

    out = on_class_network(PUPPETS_FROM_ELSEWHERE.format(password=PASSWORD, code=code), timeout=300)
    elsewhere, *made = out.split()
    assert made == ["True"] * 12, out
    listing = hub.script(["signups"]).stdout
    assert re.search(rf"^\s+{re.escape(elsewhere)}\s+12\s", listing, re.M), listing
    cleared = hub.script(["signups", elsewhere])
    assert cleared.stderr.count("removed puppet-") == 12, cleared.stderr
    assert all(hub.api("GET", f"/users/puppet-{i}").status_code == 404 for i in range(12))
    assert not hub.try_login("puppet-3", PASSWORD)[0] and hub.try_login("room-07", PASSWORD)[0]

    # Without a class code: five wait for the organizer, the sixth is told to wait.
    hub.restart(DLAB_PENDING_SIGNUPS="5")
    hub.script(["signups", "pending"])  # what earlier tests left waiting
    answers = [hub.signup(f"waiting-{i}", PASSWORD) for i in range(6)]
    assert all("sent to the admin" in answer for answer in answers[:5]), answers
    assert "Too many sign-ups are waiting for the organizer" in answers[5], answers[5]
    listing = hub.script(["signups"]).stdout
    assert "5 sign-ups wait for your approval" in listing and "waiting-4" in listing, listing
    cleared = hub.script(["signups", "pending"])
    assert all(f"removed waiting-{i}" in cleared.stderr for i in range(5)), cleared.stderr
    assert "sent to the admin" in hub.signup("waiting-5", PASSWORD)
    hub.script(["signups", "pending"])

    # A student's loop on the token API.
    session = hub.session("room-07", PASSWORD)
    made = [session.post(f"{hub.url}/hub/api/users/room-07/tokens", json={"note": f"loop {i}"}, timeout=30).status_code
            for i in range(25)]
    assert made[:20] == [201] * 20 and made[20:] == [429] * 5, made


def test_a_student_finds_no_answers_in_the_image_and_an_organizer_can_withhold_the_solutions(hub):
    """The image ships answers: the sample assignments' sources, with their solutions and hidden
    tests (/opt/dlab/assignments, offered to the instructors' ~/grading), and the labs' exercise
    solutions (/opt/dlab/solutions). A student searches their server: the assignments' answers are
    never there (they were, readable by anyone, until an empty folder took their place in students'
    servers); the exercise solutions are there by default, so that a learner alone is never stuck,
    and gone with DLAB_LAB_SOLUTIONS=withheld, where the exercise then says to ask the organizer
    and nothing can be written in their place. The organizer's server keeps the assignments."""
    student = "seeker"
    solution = "/opt/dlab/solutions/13-debugging-a-training-run/train_step.py"
    take_solution = ("from dlab.exercises import ExerciseNotDone, load_solution\ntry:\n"
                     "    load_solution('13-debugging-a-training-run', 'train_step'); print('taken')\n"
                     "except ExerciseNotDone as error:\n    print(error)")

    def in_server(user, *command):
        return docker("exec", "-u", "1000", hub.container_name(user), *command, check=False, timeout=120)

    hub.restart(DLAB_LAB_SOLUTIONS="withheld")
    hub.api("POST", f"/users/{student}")
    hub.start_server(student)
    hidden = in_server(student, "grep", "-rl", "BEGIN HIDDEN TESTS", "/opt/dlab")
    assert hidden.returncode == 1 and not hidden.stdout, f"a student reads hidden tests: {hidden.stdout}"
    assert in_server(student, "ls", "-A", "/opt/dlab/assignments", "/opt/dlab/solutions").stdout.split() == [
        "/opt/dlab/assignments:", "/opt/dlab/solutions:"]
    said = in_server(student, "python", "-c", take_solution).stdout
    assert "there is no solution of train_step here" in said and "ask your organizer" in said, said
    planted = in_server(student, "sh", "-c", f"mkdir -p {solution.rsplit('/', 1)[0]} && echo 'def train_step(*a): 0' > {solution}")
    assert planted.returncode != 0, "a student wrote a solution where the class's were withheld"
    hub.stop_server(student)

    hub.restart()  # the default: solutions shown
    hub.start_server(student)
    assert in_server(student, "python", "-c", take_solution).stdout.strip() == "taken"
    hidden = in_server(student, "grep", "-rl", "BEGIN HIDDEN TESTS", "/opt/dlab")
    assert hidden.returncode == 1 and not hidden.stdout, f"a student reads hidden tests: {hidden.stdout}"
    hub.stop_server(student)
    if hub.server(hub.admin):  # left by an earlier test: started again, with today's settings
        hub.stop_server(hub.admin)
    hub.start_server(hub.admin)
    assert in_server(hub.admin, "grep", "-rlq", "BEGIN HIDDEN TESTS", "/opt/dlab/assignments").returncode == 0
    hub.stop_server(hub.admin)
