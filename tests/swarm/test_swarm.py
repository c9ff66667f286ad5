"""The class on a Docker Swarm of several engines (issue 17), on the test bed of tests/swarm/testbed.py
(tests/swarm/testbed.sh): four engines in network namespaces of their own, one manager, a registry
on it, a folder they share (the organizer's NFS), node 3 with a made-up GPU, node 4 without the
shared folder.

Students' servers are services made by dlab_hub.swarm.service_spec from the class server's own
settings (dlab_hub.config.configure at its defaults, as the hub has them); the tests try what a class
on several servers meets: servers landing on workers, the limits and the isolation there, a node
drained for maintenance, a node that dies, an image that only the registry has, a GPU request that
no node can serve. The image is dlab/base: the labs are not the point here. test_hub_on_swarm.py
runs the class server itself on the same test bed.
"""
import subprocess
import sys

import pytest
from docker.utils import parse_bytes

from conftest import wait_for
from testbed import (GPU_NODE, IMAGE, NAME, NO_HOMES_NODE, NODES, REGISTRY, SHARED, bed_script, helper_spec, node_check,
                     run)
from dlab_hub.swarm import GPU_RESOURCE, HOMES_LABEL  # noqa: I001 (testbed puts hub/ on the path)

@pytest.fixture(scope="module")
def hub_stand_in(swarm):
    """A service named `hub` on the class network, where the students' servers look for the hub's
    API (port 8081): it answers there, and on a port the hub does not serve (9999)."""
    swarm.manager.api.create_service(**helper_spec("hub", ["python3", "-c", LISTENER, "8081", "9999"]))
    swarm.running("hub")
    yield "hub"
    swarm.manager.api.remove_service("hub")


# A server that answers "hello from <host>" on each port it is given.
LISTENER = """
import socket, sys, threading
def serve(port):
    s = socket.create_server(("0.0.0.0", int(port)))
    while True:
        c, _ = s.accept(); c.sendall(f"hello from {socket.gethostname()}:{port}".encode()); c.close()
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(port,)).start()
"""
CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        print(s.recv(100).decode())
except OSError as e:
    print(f"refused: {e}"); sys.exit(1)
"""

FORK_BOMB = """
import os, sys, time
children = []
try:
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    print("forked all", len(children))
except OSError as error:
    print("stopped at", len(children), error)
for pid in children:
    os.kill(pid, 9)
"""
GATEWAY = """
import socket, struct
for line in list(open("/proc/net/route"))[1:]:
    fields = line.split()
    if fields[1] == "00000000":
        print(socket.inet_ntoa(struct.pack("<L", int(fields[2], 16))))
"""


def connect(container, host, port):
    code, out = run(container, f"python3 -c '{CONNECT}' {host} {port}")
    return code == 0, out.strip()


def test_the_test_bed_is_one_swarm_of_separate_engines(swarm):
    nodes = swarm.manager.nodes.list()
    assert sorted(node.attrs["Description"]["Hostname"] for node in nodes) == [f"{NAME}-{n}" for n in range(1, NODES + 1)]
    assert all(node.attrs["Status"]["State"] == "ready" for node in nodes)
    assert [node.attrs["Spec"]["Role"] for node in nodes].count("manager") == 1
    # four engines, each with its own data, not one engine seen four times
    assert len({client.info()["ID"] for client in swarm.clients.values()}) == NODES
    assert len({client.info()["DockerRootDir"] for client in swarm.clients.values()}) == NODES


def test_the_node_check_labels_the_ready_nodes_and_says_what_the_others_miss(swarm):
    checked = swarm.checked
    assert checked.returncode == 1, checked.stderr
    for n in range(1, NODES + 1):
        labels = swarm.node_of(n).attrs["Spec"].get("Labels") or {}
        if n == NO_HOMES_NODE:
            assert HOMES_LABEL not in labels
            said = checked.stderr.split(f"node {NAME}-{n} ")[1]
            assert "NOT ready" in said and "mount the class's NFS export" in said, checked.stderr
        else:
            assert labels.get(HOMES_LABEL) == "true"
            gpus = 1 if n == GPU_NODE else 0
            assert f"node {NAME}-{n} (" in checked.stderr and f"{gpus} GPU): ready for students" in checked.stderr.split(f"node {NAME}-{n} ")[1].splitlines()[0]
    # no probe, marker or label of the check is left behind
    assert not [s for s in swarm.manager.services.list() if s.name.startswith("dlab-node-check")]
    assert not list(SHARED.glob(".dlab-*"))


def test_the_node_check_names_the_nodes_missing_the_image_and_unlabels_them(swarm):
    checked = node_check("dlab/never-pushed:latest")
    missing = f"{REGISTRY}/dlab/never-pushed:latest"  # the name the nodes pull
    try:
        assert checked.returncode == 1
        for n in (1, 2, 3):
            said = checked.stderr.split(f"node {NAME}-{n} ")[1]
            assert f"no image {missing}: push it to the registry" in said.split("dlab: node")[0], checked.stderr
            assert HOMES_LABEL not in (swarm.node_of(n).attrs["Spec"].get("Labels") or {})
    finally:
        again = node_check()  # the real image again: nodes 1 to 3 labelled again
    assert again.returncode == 1 and again.stderr.count("ready for students") == 3, again.stderr
    assert all(swarm.node_of(n).attrs["Spec"]["Labels"].get(HOMES_LABEL) == "true" for n in (1, 2, 3)), swarm.nodes()


def test_a_class_spreads_over_the_nodes_with_the_homes_mount_only(swarm, hub_stand_in):
    names = [swarm.start_student(user) for user in ("ann", "ben", "cat", "dan")]
    nodes = [swarm.running(name)[0] for name in names]
    assert NO_HOMES_NODE not in nodes, f"a student landed on node {NO_HOMES_NODE}, which has no shared folder"
    assert len(set(nodes)) >= 2, f"the class did not spread over the nodes: {nodes}"
    # The workers had no image: each got it from the registry on the manager, the one pushed there.
    pushed = swarm.manager.images.get(IMAGE).attrs["RepoDigests"]
    for n in set(nodes) - {1}:
        assert swarm.clients[n].images.get(IMAGE).attrs["RepoDigests"] == pushed
    for name in names:
        swarm.manager.api.remove_service(name)


def test_a_server_on_a_worker_keeps_every_guarantee(swarm, hub_stand_in):
    name = swarm.start_student("alice")
    node, container = swarm.running(name)
    s = swarm.settings
    # (the service's process, once it runs: on a busy machine the exec can come before it)
    code, out = run(container, "for i in $(seq 120); do p=$(pgrep -x sleep) && break; sleep 0.5; done; "
                               "grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs):' /proc/$p/status")
    status = dict(line.split(":\t", 1) for line in out.splitlines())
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["100"] * 4, out
    assert status["CapEff"] == status["CapBnd"] == "0000000000000000", out
    assert status["NoNewPrivs"] == "1", out
    limits = run(container, "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
                            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")[1].split()
    assert int(limits[0]) == s["DLAB_PIDS_LIMIT"]
    assert int(limits[1]) == parse_bytes(s["DLAB_MEM_LIMIT"])
    assert int(limits[2]) / int(limits[3]) == pytest.approx(float(s["DLAB_CPU_LIMIT"]))
    sizes = run(container, "stat -f -c '%b %S' /dev/shm /tmp")[1].split()
    assert int(sizes[0]) * int(sizes[1]) == parse_bytes(s["DLAB_SHM_SIZE"])
    assert int(sizes[2]) * int(sizes[3]) == parse_bytes(s["DLAB_TMP_SIZE"])
    assert run(container, "touch /etc/planted")[0] != 0, "the root file system is writable"
    assert run(container, "test -e /var/run/docker.sock")[0] != 0, "the Docker socket is in a student's server"
    assert run(container, "cat /proc/sys/net/ipv6/conf/all/disable_ipv6")[1].strip() == "1"
    log = container.attrs["HostConfig"]["LogConfig"]
    assert log == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert container.attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
    # The home is the student's folder of the shared file system, written as uid 1000.
    assert run(container, "echo kept > ~/notes.txt")[0] == 0
    written = SHARED / "homes" / "alice" / "notes.txt"
    assert written.read_text() == "kept\n" and written.stat().st_uid == 1000
    # A fork bomb stops at the process limit, and the server lives on.
    code, out = run(container, f"python3 -c '{FORK_BOMB}' {s['DLAB_PIDS_LIMIT'] + 50}")
    assert code == 0 and out.startswith("stopped at"), out
    assert int(out.split()[2]) < s["DLAB_PIDS_LIMIT"], out
    assert container.exec_run("true").exit_code == 0
    swarm.manager.api.remove_service(name)


def test_students_on_different_nodes_reach_the_hub_and_not_each_other(swarm, hub_stand_in):
    listen = ["python3", "-c", LISTENER, "8888", "7777"]  # the Jupyter port, and another
    first = swarm.start_student("erin", listen)
    second = swarm.start_student("finn", listen)
    node_a, erin = swarm.running(first)
    swarm.manager.api.remove_service(second)  # again, on another node than erin's
    second = swarm.start_student("finn", listen, constraints=[f"node.hostname != {NAME}-{node_a}"])
    node_b, finn = swarm.running(second)
    _, hub = swarm.running(hub_stand_in)
    wait_for(lambda: connect(erin, "hub", 8081)[0], 60, message="erin to reach the hub's API port")
    assert connect(finn, "hub", 8081)[0]
    assert not connect(erin, "hub", 9999)[0], "a student reached the hub on a port other than its API"
    # the hub (and its proxy) reach each student's Jupyter port; no other port
    assert connect(hub, first, 8888) == (True, f"hello from {erin.attrs['Config']['Hostname']}:8888")
    assert not connect(hub, first, 7777)[0]
    # a classmate is reached on no port, by name or by address, on the class network or the node's
    for port in (8888, 7777):
        assert not connect(finn, first, port)[0], f"finn reached erin's port {port}"
        assert not connect(erin, second, port)[0], f"erin reached finn's port {port}"
    for address in erin.attrs["NetworkSettings"]["Networks"].values():
        assert not connect(finn, address["IPAddress"], 8888)[0], f"finn reached erin at {address['IPAddress']}"
    # nor the node itself: a listener of the test's own in finn's node, at its docker_gwbridge address
    gateway = run(finn, f"python3 -c '{GATEWAY}'")[1].strip()
    node_listener = subprocess.Popen(["ip", "netns", "exec", f"{NAME}-{node_b}", sys.executable, "-c", LISTENER, "7070"])
    try:
        wait_for(lambda: subprocess.run(["ip", "netns", "exec", f"{NAME}-{node_b}", sys.executable, "-c", CONNECT,
                                         gateway, "7070"], capture_output=True).returncode == 0, 30,
                 message="the test's listener on the node")
        assert not connect(finn, gateway, 7070)[0], "a student reached the node it runs on"
    finally:
        node_listener.kill()
    for name in (first, second):
        swarm.manager.api.remove_service(name)


def test_a_gpu_server_lands_where_a_gpu_is_and_waits_when_none_is_free(swarm, hub_stand_in):
    name = swarm.start_student("hana", gpus=1)
    node, container = swarm.running(name)
    assert node == GPU_NODE
    # the engine tells the server which card it holds (here the test bed's made-up one)
    assert container.attrs["Config"]["Env"].count(f"DOCKER_RESOURCE_{GPU_RESOURCE}=GPU-fake-0") == 1
    waiting = swarm.start_student("ivan", gpus=1)  # the only card is taken
    wait_for(lambda: any("insufficient resources" in err for _, err, _ in swarm.errors(waiting)), 60,
             message=f"ivan's GPU server to wait for a card; tasks: {swarm.errors(waiting)}")
    assert not [t for t in swarm.tasks(waiting) if t["Status"]["State"] == "running"]
    swarm.manager.api.remove_service(name)  # hana stops: ivan gets the card
    node, _ = swarm.running(waiting)
    assert node == GPU_NODE
    swarm.manager.api.remove_service(waiting)


def test_a_drained_node_hands_its_student_to_another_with_every_file(swarm, hub_stand_in):
    name = swarm.start_student("gwen")
    node, container = swarm.running(name)
    assert run(container, "mkdir -p ~/work && echo 'epoch 3' > ~/work/log.txt")[0] == 0
    spec = swarm.node_of(node).attrs["Spec"]
    swarm.node_of(node).update({**spec, "Availability": "drain"})  # the organizer's maintenance
    try:
        moved_to, container = swarm.running(name, not_on=(node,))
        assert moved_to != NO_HOMES_NODE
        assert run(container, "cat ~/work/log.txt")[1] == "epoch 3\n"
    finally:
        swarm.node_of(node).update({**swarm.node_of(node).attrs["Spec"], "Availability": "active"})
    swarm.manager.api.remove_service(name)


def test_when_a_node_dies_its_students_start_again_elsewhere_and_the_others_go_on(swarm, hub_stand_in):
    """Last: the node stays dead for the rest of the module."""
    first = swarm.start_student("jade")
    first_node, jade = swarm.running(first)
    dying = next(n for n in range(2, NODES + 1) if n not in (first_node, NO_HOMES_NODE))  # a worker
    # kai starts on that node: the others are paused (they keep their servers, take no new one)
    others = [n for n in range(1, NODES + 1) if n != dying]
    for n in others:
        swarm.node_of(n).update({**swarm.node_of(n).attrs["Spec"], "Availability": "pause"})
    try:
        second = swarm.start_student("kai")
        kai_node, kai = swarm.running(second)
        assert kai_node == dying
    finally:
        for n in others:
            swarm.node_of(n).update({**swarm.node_of(n).attrs["Spec"], "Availability": "active"})
    assert run(kai, "echo 'not lost' > ~/draft.txt")[0] == 0
    killed = bed_script("kill", str(dying))
    assert killed.returncode == 0, killed.stderr
    # the manager notices within seconds (the test bed's heartbeat is 1 s) and starts kai elsewhere
    moved_to, kai = swarm.running(second, timeout=120, not_on=(dying,))
    assert run(kai, "cat ~/draft.txt")[1] == "not lost\n"
    # jade's server was never touched: the same container, still running
    assert swarm.running(first)[1].id == jade.id
    for name in (first, second):
        swarm.manager.api.remove_service(name)
