"""The HTTP server of the REST API and the metrics: eventlet's WSGI server on 127.0.0.1 with
the limits it lacks by default, so that no client can keep the others from being answered.

- One request per connection, read and answered within REQUEST_TIMEOUT_S (a header and
  idle timeout in one): a connection that sends half a request, or nothing, is closed.
- At most MAX_CONNECTIONS at once; when full, the oldest is closed to admit the new one, so
  a flood of half-sent requests delays a fresh one by nothing instead of by the timeout.
- A request whose Host is not this server is refused (421): a web page whose domain was
  re-pointed at 127.0.0.1 (DNS rebinding) must not read the controller.
- An unexpected error is a JSON 500 without the traceback, which is logged once.

eventlet is used directly, not through compat: it is the hub under both os-ken and Ryu, and
neither framework's hub.WSGIServer passes eventlet any of these options.
"""

from __future__ import annotations

import json
import logging
import sys

import eventlet
import eventlet.wsgi

REQUEST_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 64

log = logging.getLogger("lb.http")


class Throttled:
    """Log lines of one kind: the first at once, then at most one per interval_s, which repeats
    the latest and counts them; a flood of bad requests is a few lines, not one per request."""

    def __init__(self, level: int = logging.WARNING, interval_s: float = 10.0) -> None:
        self.level, self.interval_s = level, interval_s
        self.held: tuple | None = None     # while quiet: (count, latest msg, its args)

    def log(self, msg: str, *args, exc_info: bool = False) -> None:
        if self.held is None:
            log.log(self.level, msg, *args, exc_info=exc_info)
            self.held = (0, msg, args)
            eventlet.spawn_after(self.interval_s, self._release)
        else:
            self.held = (self.held[0] + 1, msg, args)

    def _release(self) -> None:
        count, msg, args = self.held
        self.held = None
        if count:
            self.log(f"{msg} (the last of {count} in {self.interval_s:g} s)", *args)


class HttpServer:
    """One endpoint on 127.0.0.1:port, listening from construction (OSError if it cannot)."""

    def __init__(self, port: int, what: str) -> None:
        # backlog: room for a burst of connections while the loop closes old ones (about 2,500
        # a second here); the default 50 drops SYNs, and clients wait a second to retry.
        # reuse_port: eventlet sets SO_REUSEPORT unless told not to, and then a second server
        # that sets it too (another controller given our port) binds as well and takes a share
        # of our clients; without it, the second one's bind fails.
        self.socket = eventlet.listen(("127.0.0.1", port), backlog=256, reuse_port=False)
        self.port, self.what = port, what

    def serve_forever(self, app) -> None:
        eventlet.wsgi.server(self.socket, Guard(app, self.port, self.what),
                             custom_pool=Connections(MAX_CONNECTIONS, REQUEST_TIMEOUT_S, self.what),
                             keepalive=False, debug=False,       # True: tracebacks in 500 bodies
                             log=logging.getLogger("eventlet.wsgi"), log_output=False,
                             socket_timeout=2 * REQUEST_TIMEOUT_S)   # a backstop: the deadline comes first


class Connections(eventlet.GreenPool):
    """The server's connection handlers: at most `size`, each with `timeout_s` for its whole
    exchange; when full, the oldest is closed to make room. (Handlers never yield while they
    compute, only while reading or writing, so a deadline or an eviction never cuts one short
    in the middle of changing the controller's state.)"""

    def __init__(self, size: int, timeout_s: float, what: str) -> None:
        super().__init__(size)
        self.timeout_s, self.what = timeout_s, what
        self.peers: dict = {}           # handler greenthread -> client address, oldest first
        self.closed = Throttled()

    def spawn(self, handle, connection):
        """What eventlet.wsgi.server calls for each accepted connection; `connection` is its
        [client address, socket, state] (the same in eventlet 0.33 and 0.41)."""
        if not self.free():
            oldest, peer = next(iter(self.peers.items()))
            self._closed(peer, f"{self.size} connections open, this one the oldest")
            oldest.kill()
        thread = super().spawn(self._bounded, handle, connection)
        self.peers[thread] = connection[0]
        thread.link(self.peers.pop, None)
        return thread

    def _bounded(self, handle, connection) -> None:
        deadline = eventlet.Timeout(self.timeout_s)
        try:
            handle(connection)
        except eventlet.Timeout as exc:
            if exc is not deadline:
                raise
            self._closed(connection[0], f"no complete request and response within {self.timeout_s:g} s")
        finally:
            deadline.cancel()

    def _closed(self, peer, why: str) -> None:
        self.closed.log("%s: closed the connection from %s:%d: %s", self.what, *peer[:2], why)


class Guard:
    """What every request meets before the app: the Host check, and a JSON 500 for an
    unexpected error. Refusals (421 here, 401 from the app) and errors are logged, throttled."""

    def __init__(self, app, port: int, what: str) -> None:
        self.app, self.port, self.what = app, port, what
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.refused, self.failed = Throttled(), Throttled(logging.ERROR)

    def __call__(self, environ, start_response):
        request = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        peer = f"{environ.get('REMOTE_ADDR')}:{environ.get('REMOTE_PORT')}"
        host = environ.get("HTTP_HOST", "").lower()
        if host not in self.hosts:
            self.refused.log("%s: refused %s from %s: Host %r is not this server",
                                 self.what, request, peer, host)
            return error(start_response, "421 Misdirected Request",
                         f"Host '{host}' is not this server: use 127.0.0.1:{self.port} or localhost:{self.port}")

        def watched(status, headers, exc_info=None):
            if status.startswith("401"):
                self.refused.log("%s: refused %s from %s: %s", self.what, request, peer, status)
            return start_response(status, headers, exc_info)
        try:
            return self.app(environ, watched)   # our apps return lists: nothing can raise later
        except Exception:  # noqa: BLE001 - the point is to catch everything
            self.failed.log("%s: internal error on %s from %s", self.what, request, peer, exc_info=True)
            return error(start_response, "500 Internal Server Error", "internal error", sys.exc_info())


def error(start_response, status: str, message: str, exc_info=None) -> list[bytes]:
    data = json.dumps({"error": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))], exc_info)
    return [data]
