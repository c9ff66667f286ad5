"""Students reach the hub and, if the organizer allows, the internet; nothing else: not a
classmate's container (any port), not this machine's other ports, not a private or link-local
address. Every target is one the test made: a classmate's server (started through the hub), a
listener on this machine's side of the test hub's own Docker network, and listeners in a network
namespace the test made, at a private (10.213.7.2), a link-local (169.254.213.2) and a
documentation address (203.0.113.7, standing in for the internet). A container on the class
network without dlab's firewall reaches each of them: the test would fail if the firewall did not
hold."""
import json
import socket
import threading

import pytest

from conftest import docker
from hubstack import PREFIX, address_on_class_network, on_class_network, outside_namespace

NAMESPACE = f"{PREFIX}-outside"  # the test's own network namespace, removed by name
VETH = "dlt-out0"  # its link to this machine (the other end lives in the namespace)
PRIVATE, LINK_LOCAL, INTERNET = "10.213.7.2", "169.254.213.2", "203.0.113.7"
PORT = 8213

# Connect to each (host, port); print one line per target: "open" or the error's name.
PROBE = """
import json, socket, sys
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print('open')
    except OSError as error:
        print(type(error).__name__)
"""


@pytest.fixture(scope="module")
def outside():
    """The namespace with its listeners, joined to this machine by a veth pair; the machine routes
    the link-local and documentation addresses into it."""
    with outside_namespace(NAMESPACE, VETH, "10.213.7", [LINK_LOCAL, INTERNET],
                           ["python3", "-m", "http.server", "--bind", "0.0.0.0", str(PORT)]):
        yield [(PRIVATE, PORT), (LINK_LOCAL, PORT), (INTERNET, PORT)]


@pytest.fixture(scope="module")
def host_listener():
    """A listener on this machine, on every address (a service a student must not reach)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    stop = threading.Event()

    def serve():
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def class_network_gateway():
    """This machine's address on the test hub's network."""
    return json.loads(docker("network", "inspect", PREFIX).stdout)[0]["IPAM"]["Config"][0]["Gateway"]


def probe_unprotected(targets):
    """The same probe from a container on the class network with no firewall (a control)."""
    return on_class_network(PROBE, json.dumps(targets)).split()


def probe_as_student(hub, username, targets):
    out, error = hub.run_code(username, f"import sys; sys.argv = ['probe', {json.dumps(targets)!r}]\n" + PROBE,
                              timeout=120)
    assert error is None, error
    return out.split()


def students(hub, *names):
    hub.restart()
    for name in names:
        if hub.api("GET", f"/users/{name}").status_code == 404:
            hub.api("POST", f"/users/{name}")
        if not hub.server(name):
            hub.start_server(name)


def test_a_student_reaches_no_classmate_no_host_port_and_no_private_address(hub, outside, host_listener):
    students(hub, "nina", "omar")
    # omar serves his home on a port of his own, as a student might to share a file.
    hub.run_code("omar", "import subprocess, sys\n"
                 "subprocess.Popen([sys.executable, '-m', 'http.server', '9000'], cwd='/home/jovyan',\n"
                 "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
                 "import time; time.sleep(2)", shutdown=False)
    gateway = class_network_gateway()
    omar = address_on_class_network(hub.container("omar")["Id"])
    hub_ip, proxy_ip = (address_on_class_network(f"{PREFIX}-{service}") for service in ("hub", "proxy"))
    # omar's Jupyter port and one of his own; this machine's listener; the proxy's API; private and
    # link-local listeners.
    forbidden = [(omar, 8888), (omar, 9000), (gateway, host_listener), (proxy_ip, 8001), *outside[:2]]
    # The control: without the firewall, the class network reaches the targets that listen to it.
    control = probe_unprotected([(omar, 8888), (gateway, host_listener), (proxy_ip, 8001), *outside])
    assert control == ["open"] * 6, f"the test's own targets do not answer: {control}"
    seen = probe_as_student(hub, "nina", forbidden + [outside[2], (hub_ip, 8081)])
    assert seen[:-2] == ["ConnectionRefusedError"] * len(forbidden), list(zip(forbidden, seen))
    assert seen[-2:] == ["open", "open"], "the internet (egress on) or the hub's API is not reachable"
    # The student cannot lift the firewall: no capability, not even in the bounding set.
    out, error = hub.run_code("nina", "import subprocess\n"
                              "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
                              "print(status['CapBnd'].strip(), status['CapEff'].strip())\n"
                              "print(subprocess.run(['iptables', '-F'], capture_output=True).returncode)")
    assert error is None and out.split() == ["0000000000000000", "0000000000000000", out.split()[2]]
    assert out.split()[2] != "0", "a student flushed the firewall"


def test_with_egress_off_a_student_reaches_the_hub_and_nothing_else(hub, outside):
    students(hub, "nina")
    hub.restart(DLAB_EGRESS="off")  # running servers keep their rules until their next start
    try:
        hub.stop_server("nina")
        hub.start_server("nina")
        hub_ip = address_on_class_network(f"{PREFIX}-hub")
        seen = probe_as_student(hub, "nina", [outside[2], (hub_ip, 8081)])
        assert seen == ["ConnectionRefusedError", "open"], seen
    finally:
        hub.stop_server("nina")
        hub.restart()
