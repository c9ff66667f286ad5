"""Requests from outside, bounded before JupyterHub sees them: the address a request comes from
(only the class's own proxy is trusted to say it), events per address pruned on time, API tokens
per hour, and request bodies past 256 KB dropped as they come."""
import datetime
import hashlib
import json
import os
import re
import socket
import time

import tornado.httpserver
from tornado import httputil
from jupyterhub import apihandlers, handlers
from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from tornado import web

from dlab_hub.classview_pages import ClassMessageAPI, ClassViewAPI, ClassViewPage
from dlab_hub.grading import GradeHandler


def client_address(handler):
    """The address of the browser behind a request. The proxy appends the address it saw to
    X-Forwarded-For, so for a request from the proxy the last entry is the one to trust; where that
    address is the class's HTTPS front door (Caddy, with DLAB_DOMAIN), which sets X-Forwarded-For to
    the browser's address whatever the browser sent, the entry before it. A request that reached
    the hub's port directly (a student's container can) counts as the socket's own address.
    Tornado's remote_ip would believe a client's own X-Real-Ip header."""
    peer = handler.request.connection.context.address
    peer = peer[0] if isinstance(peer, tuple) else str(peer)
    forwarded = [entry.strip() for entry in handler.request.headers.get("X-Forwarded-For", "").split(",")]
    if not forwarded[-1] or peer not in addresses_of("proxy"):
        return peer
    if len(forwarded) > 1 and FRONT_DOOR and forwarded[-1] in addresses_of(FRONT_DOOR):
        return forwarded[-2] or forwarded[-1]
    return forwarded[-1]


# compose.yaml's https service, where there is one (the hub's settings say: DLAB_DOMAIN); else no
# name to look up (an unknown name would go to the machine's DNS every 30 s).
FRONT_DOOR = "https" if json.loads(os.environ.get("DLAB_HUB_SETTINGS") or "{}").get("DLAB_DOMAIN") else ""


def addresses_of(service):
    """The addresses a service's requests come from on the class network: `proxy`, `https` (looked
    up at most every 30 s: a recreated container may get a new one)."""
    now = time.monotonic()
    at, addresses = _lookups.get(service, (float("-inf"), frozenset()))
    if now - at > 30:
        try:
            addresses = frozenset(
                a for info in socket.getaddrinfo(service, None) for a in (info[4][0], f"::ffff:{info[4][0]}"))
        except OSError:
            addresses = frozenset()
        _lookups[service] = (now, addresses)
    return addresses


_lookups = {}




TOKENS_PER_HOUR = 20  # API tokens a user may make in an hour (the token page, the REST API)
TOKENS_KEPT = 100  # a user's unexpired tokens (their server's and their logins' included)


class RecentEvents:
    """Events per key within a sliding window (failed logins, sign-ups), kept in memory: a hub
    restart forgets them, which only ever unblocks someone. Bounded whatever a flood sends: each
    key is a 16-byte digest of what it stands for (a megabyte username costs 16 bytes), each keeps
    at most `most` times (the largest count anyone asks about), keys whose window has passed are
    dropped once a window, and past `keys` keys the oldest go."""

    def __init__(self, window, most, keys=50_000):
        self.window, self.most, self.keys = window, most, keys
        self.events = {}  # digest: [times], oldest key first
        self.pruned = time.monotonic()

    @staticmethod
    def digest(key):
        return hashlib.blake2b(repr(key).encode(errors="replace"), digest_size=16).digest()

    def recent(self, digest, now):
        return [t for t in self.events.get(digest, ()) if t > now - self.window]

    def count(self, key):
        return len(self.recent(self.digest(key), time.monotonic()))

    def add(self, key):
        digest, now = self.digest(key), time.monotonic()
        times = self.recent(digest, now)[-(self.most - 1):] if self.most > 1 else []
        self.events.pop(digest, None)  # re-inserted last: the dict's order is the keys' age
        self.events[digest] = times + [now]
        if now - self.pruned > self.window:
            self.events = {d: ts for d, ts in self.events.items() if ts[-1] > now - self.window}
            self.pruned = now
        while len(self.events) > self.keys:
            del self.events[next(iter(self.events))]

    def forget(self, key):
        self.events.pop(self.digest(key), None)


recent_tokens = RecentEvents(3600, most=TOKENS_PER_HOUR)


class BoundedTokensHandler(UserTokenListAPIHandler):
    """POST /hub/api/users/NAME/tokens (and the token page, which calls it): at most
    TOKENS_PER_HOUR new tokens an hour and TOKENS_KEPT unexpired ones a user; JupyterHub's own has
    no bound, and each token is a row of the hub's database."""

    async def post(self, user_name):
        # Only tokens made count (a stranger's refused requests must not use up a student's hour),
        # so no name reaches the bound without tokens of its own.
        user = self.find_user(user_name)
        if user is not None:
            if recent_tokens.count(user.name) >= TOKENS_PER_HOUR:
                raise web.HTTPError(429, f"{user.name} made {TOKENS_PER_HOUR} tokens in the last hour: try again later.")
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            if sum(1 for t in user.api_tokens if not t.expires_at or t.expires_at > now) >= TOKENS_KEPT:
                raise web.HTTPError(403, f"{user.name} holds {TOKENS_KEPT} tokens: revoke some on the token page "
                                         "(/hub/token) first.")
        result = await super().post(user_name)
        if user is not None and self.get_status() == 201:
            recent_tokens.add(user.name)
        return result


# Request bodies: JupyterHub's server holds a request's body in memory until the handler runs, up to
# tornado's default 100 MB; no page or API call of the hub takes more than a few kilobytes (uploads
# go to the students' servers, not through the hub). A larger body is read and dropped as it comes,
# and answered 413 with a message: closing the connection instead (tornado's max_body_size) makes
# the proxy, still sending, answer 503. JupyterHub makes its HTTPServer after reading its
# configuration, which imports this module.
MAX_BODY_BYTES = 256 * 1024
TOO_LARGE = (f"This class server takes requests of at most {MAX_BODY_BYTES // 1024} KB: this one was larger, "
             "and was not read. (Files go to your own server: upload them in JupyterLab.)\n").encode()


class BoundedBody(httputil.HTTPMessageDelegate):
    """One request's delegate, wrapped: past MAX_BODY_BYTES its body goes nowhere, and the
    answer is 413 without the request reaching JupyterHub."""

    def __init__(self, delegate, connection):
        self.delegate, self.connection, self.received, self.too_large = delegate, connection, 0, False

    def headers_received(self, start_line, headers):
        length = headers.get("Content-Length", "0")
        if not re.fullmatch(r"[0-9]{1,20}", length) or int(length) > MAX_BODY_BYTES:
            self.too_large = True
            return None
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        self.received += len(chunk)
        self.too_large = self.too_large or self.received > MAX_BODY_BYTES  # a chunked body
        return None if self.too_large else self.delegate.data_received(chunk)

    def finish(self):
        if not self.too_large:
            return self.delegate.finish()
        self.connection.write_headers(httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
                                      httputil.HTTPHeaders({"Content-Type": "text/plain; charset=UTF-8",
                                                            "Content-Length": str(len(TOO_LARGE))}), TOO_LARGE)
        self.connection.finish()
        return None

    def on_connection_close(self):
        if not self.too_large:
            self.delegate.on_connection_close()


class BoundedBodyHTTPServer(tornado.httpserver.HTTPServer):
    def start_request(self, server_conn, request_conn):
        return BoundedBody(super().start_request(server_conn, request_conn), request_conn)


# Read and dropped up to 64 GB; a larger Content-Length, which nothing honest sends, closes the
# connection, and so does a body that takes more than a minute (a slow sender holds no buffer).
tornado.httpserver.HTTPServer.configure(BoundedBodyHTTPServer, max_body_size=64 * 1024**3, body_timeout=60)

# JupyterHub reads its API's routes from this list when it starts (after its configuration, which
# imports this module): the bounded handler takes the tokens' route.
apihandlers.default_handlers[:] = [(route[0], BoundedTokensHandler, *route[2:]) if route[1] is UserTokenListAPIHandler
                                   else route for route in apihandlers.default_handlers]
# And dlab's own: grading in a sandbox (dlab_hub.grading), the class page (dlab_hub.classview_pages).
apihandlers.default_handlers += [(r"/api/dlab/grade", GradeHandler), (r"/api/dlab/classview", ClassViewAPI),
                                 (r"/api/dlab/classview/message", ClassMessageAPI)]
handlers.default_handlers.append((r"/classview", ClassViewPage))
