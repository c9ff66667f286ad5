"""The images' health probe (images/base/dlab-healthcheck; the hub's and the proxy's through
images/hub/dlab-hub-healthcheck) on the host, against servers of the test's own on loopback: a
server that answers 200 is healthy; one that answers an error, hangs, speaks no HTTP or is not
there is not, within its 2 seconds; a Jupyter server is found from its jpserver-*.json, asked on
127.0.0.1 for 0.0.0.0, with its token, and not through a proxy from the environment. The images'
tests run it for real (tests/images/test_docker_stacks.py: healthy, HTTPS, unhealthy while the
server stops answering; tests/hub: the hub and proxy, HTTPS included)."""
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT

PROBE = ROOT / "images" / "base" / "dlab-healthcheck"


def probe(*args, env=None):
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-IS", str(PROBE), *args], capture_output=True, text=True, timeout=30, env=env)
    return out.returncode, out.stdout + out.stderr, time.monotonic() - began


@contextmanager
def http_server(status=200, token=None):
    """A server on loopback answering every GET with status (401 without `token`, where given)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            ok = token is None or self.headers.get("Authorization") == f"token {token}"
            self.send_response(status if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.seen = seen
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tcp_server(reply):
    """A TCP listener on loopback that reads a request and then sends `reply` (None: nothing, ever)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(1024)
            if reply is not None:
                connection.sendall(reply)
                connection.close()
            else:
                stop.wait(10)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a close alone would leave it listening)
        listener.close()


def test_a_url_that_answers_200_is_healthy_and_an_error_is_not():
    with http_server(200) as server:
        rc, said, _ = probe(f"http://127.0.0.1:{server.server_port}/hub/health")
        assert rc == 0 and said.strip().endswith(": 200"), said
        assert server.seen == [("/hub/health", None)]
    with http_server(503) as server:
        rc, said, _ = probe(f"http://127.0.0.1:{server.server_port}/_chp_healthz")
        assert rc == 1 and said.strip().endswith(": 503"), said


@pytest.mark.parametrize("reply, what", [(None, "timed out"), (b"SSH-2.0-OpenSSH\r\n", "not HTTP"), (b"", "not HTTP")])
def test_a_server_that_hangs_or_speaks_no_http_is_unhealthy_within_its_time(reply, what):
    with tcp_server(reply) as port:
        rc, said, took = probe(f"http://127.0.0.1:{port}/api")
    assert rc == 1 and what in said, said
    assert took < 15  # its own 2 s, not Docker's timeout (a generous bound: the point is that it ends)


def test_nothing_listening_is_unhealthy():
    with socket.socket() as bound:  # a port of the test's own, bound but not listening: refused
        bound.bind(("127.0.0.1", 0))
        rc, said, _ = probe(f"http://127.0.0.1:{bound.getsockname()[1]}/api")
    assert rc == 1 and "refused" in said.lower(), said


def test_a_jupyter_server_is_found_from_its_runtime_file_and_asked_with_its_token(tmp_path):
    runtime = tmp_path / "home" / ".local" / "share" / "jupyter" / "runtime"
    runtime.mkdir(parents=True)
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
           "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}  # never used: straight to the server
    rc, said, _ = probe(env=env)
    assert rc == 1 and "no Jupyter server running" in said, said
    with http_server(200, token="s3cret") as server:
        port = server.server_port
        (runtime / "jpserver-7.json").write_text(json.dumps({"url": f"http://0.0.0.0:{port}/user/zoe/", "token": "s3cret"}))
        rc, said, _ = probe(env=env)
        assert rc == 0, said
        assert server.seen == [("/user/zoe/api", "token s3cret")]
        (runtime / "jpserver-7.json").write_text(json.dumps({"url": f"http://0.0.0.0:{port}/", "token": "wrong"}))
        rc, said, _ = probe(env=env)
        assert rc == 1 and ": 401" in said, said
