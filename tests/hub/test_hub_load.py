"""Load: a class of 30 signing up and starting their servers at the same moment on this small
server, all served in turn; the limits (spawns at once, servers at once) answer with a message and a
retry works.
The figures (spawn latency, memory) are reported by `make bench`, not asserted here."""
import threading

from classload import class_arrives, class_leaves
from hubstack import PREFIX

CODE = "load-test-2026"


def test_thirty_students_starting_at_once_all_get_a_server_and_no_5xx(hub):
    hub.restart(DLAB_CLASS_CODE=CODE)
    result = class_arrives(hub, 30, CODE)
    try:
        print({k: (len(v) if isinstance(v, list) else v) for k, v in result.items()})
        assert result["server_errors"] == [], f"5xx answers: {result['server_errors'][:5]}"
        assert result["ready"] == 30, f"only {result['ready']} of 30 servers became ready"
        assert set(result["spawn_answers"]) <= {302}, result["spawn_answers"]
        # The starts wait their turn in the hub: with the default limits no one is told to come back.
        assert result["limit_answers"] == [], result["limit_answers"][:3]
        assert hub.request("GET", f"{hub.url}/hub/health", timeout=10).ok
    finally:
        class_leaves(hub, result["names"])


def test_the_server_limits_answer_with_a_message_and_a_retry_succeeds(hub):
    hub.restart(DLAB_MAX_SERVERS="2", DLAB_SPAWN_LIMIT="1")
    hub.stop_all_servers()  # the limit counts every running server
    names = ["lim1", "lim2", "lim3"]
    for name in names:
        hub.api("POST", f"/users/{name}")
    # Two start at the same moment with room for one start at a time: one is told to try again.
    answers, gate = {}, threading.Barrier(2)

    def start(name):
        gate.wait()
        answers[name] = hub.api("POST", f"/users/{name}/server")
    threads = [threading.Thread(target=start, args=(name,)) for name in names[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [name for name, r in answers.items() if r.status_code == 429]
    assert len(refused) == 1, {n: (r.status_code, r.text) for n, r in answers.items()}
    assert "Try again in" in answers[refused[0]].text
    accepted = next(name for name in names[:2] if name not in refused)
    hub.wait_ready(accepted)
    hub.start_server(refused[0])  # the retry
    # Two servers run, the most DLAB_MAX_SERVERS allows: the third student is told to come back.
    r = hub.api("POST", "/users/lim3/server")
    assert r.status_code == 429 and "Active user limit exceeded. Try again in a few minutes." in r.text, r.text
    assert hub.container("lim3") is None
    hub.stop_server(accepted)
    hub.start_server("lim3")  # room again: the retry succeeds
    for name in (refused[0], "lim3"):
        hub.stop_server(name)
    assert not [c for c in names if hub.container(c)], f"{PREFIX} containers left"
