"""The JSON API (WSGI, served on 127.0.0.1 by the app): what the controller sees and does.

    GET /api/v1/topology            switches, links, hosts, whether the spec is all discovered
    GET /api/v1/links               per directed link: capacity, rate, utilisation, loss, latency, age
    GET /api/v1/paths?src=h1&dst=h7 candidate paths with their features and policy scores
    GET /api/v1/flows               installed flows and their paths
    GET /api/v1/decisions?flow=&limit=  recent decisions, newest first: each one's candidates,
                                    their features and scores as the policy saw them, the choice
    GET /api/v1/layout              where the web page draws each switch and host (service/layout.py)
    GET /api/v1/policy              the policy in use (and its model) and the ones available
    GET /api/v1/counters            the counters (Prometheus: lb_*_total), OpenFlow errors by request kind
    PUT /api/v1/policy              {"policy": "<name>"}: switch policy for new flows
    GET /api/v1/services            each service: VIP, port, member policy, members with their health,
                                    open connections, weight and measured load
    PUT /api/v1/services            {"policy": "<name>"[, "service": "<name>"]}: switch the member
                                    policy for new connections (of every service, or one)
    POST /api/v1/model/reload       reload the BPANN model file (installed flows stay)
    POST /api/v1/qtable/reset       empty the Q-learning policy's table (and its file)

Errors are JSON too: {"error": "..."} with a 4xx status that says what was wrong.

GET is open (read-only, on 127.0.0.1). PUT and POST change what the controller does, so they
need `Authorization: Bearer <token>` (the configured token, or one generated at start and
written to token_path(port), readable by this user only) and `Content-Type: application/json`,
which a web page cannot make a browser send to another site without asking it first (CORS
preflight, which this API never grants). Bodies are at most MAX_BODY bytes.
"""

from __future__ import annotations

import atexit
import contextlib
import hmac
import json
import logging
import math
import os
import secrets
import tempfile
import time
from itertools import islice
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

from controller.core.balancer import MAX_EXPLAINED, Balancer, Explained
from controller.service.metrics import COUNTERS
from controller.core.monitor import LinkMetrics, PathFeatures
from controller.service.layout import Layout
from controller.policies import POLICIES, make_policy
from controller.policies.members import SERVICE_POLICY_TYPES, member_policy_factory
from controller.core.settings import ConfigError, Settings
from controller.openflow.xids import label_pairs
from models.bpann import ModelError
from controller.policies.qlearning import QTableError

PREFIX = "/api/v1/"
MAX_BODY = 10_000
DECISIONS_LIMIT = 100      # decisions a GET returns unless it asks for up to MAX_EXPLAINED
log = logging.getLogger("lb.rest")


class ApiError(Exception):
    def __init__(self, status: str, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


def token_path(port: int) -> Path:
    """Where a generated token is written: the session's runtime directory (per user, in
    memory, gone at logout) if there is one, else ~/.config; one file per REST port, so that
    two controllers on one machine keep their own."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".config") / "sdn-lb" / f"api-token-{port}"


def api_token(settings: Settings) -> str:
    """The token PUT and POST need: the configured one, else a new one written for the
    operator's tools to token_path (created 0600 under a new name, then renamed over the old
    file, so no other user can read it, and no reader sees half of it) until the process exits."""
    if settings.api_token:
        log.info("REST API: PUT and POST need the token given by --api-token / LB_API_TOKEN")
        return settings.api_token
    token, path = secrets.token_urlsafe(32), token_path(settings.rest_port)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.error("REST API: cannot write the token file %s: %s; PUT and POST are refused until "
                  "the controller is restarted with --api-token", path, exc.strerror or exc)
    else:
        log.info("REST API: PUT and POST need the token in %s", path)
        atexit.register(_forget_token, path, token)
    return token


def _forget_token(path: Path, token: str) -> None:
    """At exit the file goes (the token is of no use any more), unless a controller started
    since on the same port has replaced it with its own."""
    with contextlib.suppress(OSError):
        if path.read_text() == token + "\n":
            path.unlink()


def finite(x: float) -> float | None:
    """JSON has no infinity: an unknown age or value is null."""
    return round(x, 6) if math.isfinite(x) else None


def features_json(f: PathFeatures) -> dict:
    return {k: finite(v) if isinstance(v, float) else v for k, v in f.as_dict().items()}


def decision_json(balancer: Balancer, e: Explained, now: float) -> dict:
    """A decision as taken: a policy that is not load-aware was given hops alone (its other
    features read 0, unmeasured), so only hops are shown for it; score null: not chosen by score."""
    name, measured = balancer.net.name, e.features is not None
    scores = e.scores or [None] * len(e.candidates)
    features = e.features or [None] * len(e.candidates)
    return {"id": e.id, "age_s": round(now - e.at, 3), "flow": str(e.key),
            "src": balancer.net.host_name(e.src), "dst": balancer.net.host_name(e.dst),
            "policy": e.policy, "measured": measured, "chosen": e.action,
            "candidates": [{"path": [name(d) for d in c],
                            **(features_json(f) if measured else {"hops": len(c) - 1}),
                            "score": None if score is None else finite(score), "chosen": i == e.action}
                           for i, (c, f, score) in enumerate(zip(e.candidates, features, scores))]}


def link_json(balancer: Balancer, m: LinkMetrics) -> dict:
    name = balancer.net.name
    return {"src": name(m.src.dpid), "src_port": m.src.port, "dst": name(m.dst.dpid),
            "dst_port": m.dst.port, "capacity_mbps": m.capacity_mbps,
            "rate_mbps": finite(m.rate_mbps), "utilisation": finite(m.utilisation),
            "loss": finite(m.loss), "latency_ms": finite(m.latency_ms), "age_s": finite(m.age_s),
            "known": m.known, "booked_mbps": finite(balancer.bookings.on((m.src, True)) / 1e6)}


class RestApi:
    def __init__(self, balancer: Balancer, clock: Callable[[], float] = time.monotonic,
                 token: str | None = None, ofp_errors: Counter | None = None) -> None:
        self.balancer = balancer
        self.ofp_errors = Counter() if ofp_errors is None else ofp_errors   # (request kind, error type) -> n
        self.clock = clock
        self.token = token or secrets.token_urlsafe(32)    # none given: one nobody knows
        self.layout = Layout()
        self.routes = {("GET", "topology"): self.topology, ("GET", "links"): self.links,
                       ("GET", "paths"): self.paths, ("GET", "flows"): self.flows,
                       ("GET", "policy"): self.policy, ("PUT", "policy"): self.set_policy,
                       ("GET", "counters"): self.counters, ("GET", "decisions"): self.decisions,
                       ("GET", "layout"): lambda environ: self.layout(self.balancer),
                       ("GET", "services"): self.services, ("PUT", "services"): self.set_service_policy,
                       ("POST", "model/reload"): self.reload_model, ("POST", "qtable/reset"): self.reset_qtable}

    def __call__(self, environ, start_response):
        try:
            path = environ.get("PATH_INFO", "")
            if not path.startswith(PREFIX):
                raise ApiError("404 Not Found", f"no such resource '{path}' (the API is under {PREFIX})")
            name, method = path[len(PREFIX):].strip("/"), environ.get("REQUEST_METHOD", "GET")
            handler = self.routes.get((method, name))
            if handler is None:
                if any(n == name for _, n in self.routes):
                    raise ApiError("405 Method Not Allowed", f"{method} not allowed on {path}")
                raise ApiError("404 Not Found", f"no such resource '{path}'")
            if method != "GET":
                self._check_change(environ)
            status, body, extra = "200 OK", handler(environ), ()
        except ApiError as exc:
            status, body, extra = exc.status, {"error": str(exc)}, exc.headers
        data = json.dumps(body, indent=1, allow_nan=False).encode()    # strict JSON: no NaN, no Infinity
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data))), *extra])
        return [data]

    def _check_change(self, environ) -> None:
        """A PUT or POST: the token, a JSON content type, a body of bounded size."""
        scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError("401 Unauthorized", "PUT and POST need 'Authorization: Bearer <token>' (the "
                           "controller's log says where its token is)", (("WWW-Authenticate", "Bearer"),))
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ApiError("401 Unauthorized", "wrong token", (("WWW-Authenticate", "Bearer"),))
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            raise ApiError("415 Unsupported Media Type", "PUT and POST need 'Content-Type: application/json'")
        if int(environ.get("CONTENT_LENGTH") or 0) > MAX_BODY:   # eventlet checked it is a number
            raise ApiError("413 Content Too Large", f"the body is over {MAX_BODY} bytes")

    # -- resources ---------------------------------------------------------------------------
    def topology(self, environ) -> dict:
        net = self.balancer.net
        return {
            "switches": [{"name": net.name(d), "dpid": d, "ports": sorted(p)}
                         for d, p in sorted(net.ports.items())],
            "links": [{"src": net.name(a.dpid), "src_port": a.port, "dst": net.name(b.dpid),
                       "dst_port": b.port} for a, b in net.links.links()],
            "hosts": [{"mac": h.mac, "ip": h.ip, "switch": net.name(h.at.dpid), "port": h.at.port}
                      for h in sorted(net.hosts.values(), key=lambda h: h.ip)],
            "complete": None if net.spec is None else not net.missing_spec_links(),
        }

    def links(self, environ) -> list[dict]:
        return [link_json(self.balancer, m) for m in self.balancer.link_metrics(self.clock())]

    def paths(self, environ) -> dict:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        for side in ("src", "dst"):
            if len(query.get(side, [])) != 1:
                raise ApiError("400 Bad Request", f"query parameter '{side}' is required once "
                                                  "(a host name from the spec, or an IP address)")
        ends = [self._host(query[side][0]) for side in ("src", "dst")]
        b, now = self.balancer, self.clock()
        candidates = b.paths.candidates(b.net, ends[0].at.dpid, ends[1].at.dpid)
        features = [b.features(c, ends[0], ends[1], now) for c in candidates]
        chosen = b.policy.choose(None, features) if candidates else None
        return {"src": query["src"][0], "dst": query["dst"][0], "policy": b.policy.name,
                "candidates": [{"path": [b.net.name(d) for d in c], **features_json(f),
                                "score": finite(score), "chosen": i == chosen}
                               for i, (c, f, score) in enumerate(zip(candidates, features,
                                                                     b.policy.scores(features)))]}

    def _host(self, name: str):
        spec, net = self.balancer.net.spec, self.balancer.net
        ip = name
        if spec is not None and name in {h.name for h in spec.hosts}:
            ip = spec.host(name).ip
        elif name.count(".") != 3:
            raise ApiError("400 Bad Request", f"unknown host '{name}': not in the topology spec "
                                              "and not an IPv4 address")
        host = net.host_by_ip(ip)
        if host is None:
            raise ApiError("404 Not Found", f"host '{name}' ({ip}) not seen yet: it must send a packet first")
        return host

    def flows(self, environ) -> list[dict]:
        now, net = self.clock(), self.balancer.net
        return [{"flow": str(f.key), "src_ip": f.key.src_ip, "dst_ip": f.key.dst_ip,
                 "proto": f.key.proto, "src_port": f.key.src_port, "dst_port": f.key.dst_port,
                 "path": [net.name(d) for d in f.path], "cookie": hex(f.cookie),
                 "age_s": round(now - f.installed_at, 3),
                 "booked_mbps": finite(self.balancer.bookings.of(f.cookie) / 1e6)}
                for f in self.balancer.flows.values()]

    def decisions(self, environ) -> dict:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        for name in ("flow", "limit"):
            if len(query.get(name, [])) > 1:
                raise ApiError("400 Bad Request", f"query parameter '{name}' given more than once")
        limit = query.get("limit", [str(DECISIONS_LIMIT)])[0]
        if not (limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= MAX_EXPLAINED):
            raise ApiError("400 Bad Request", f"query parameter 'limit': a whole number from 1 to {MAX_EXPLAINED}")
        flow, now, ring = query.get("flow", [None])[0], self.clock(), self.balancer.explained
        chosen = islice((e for e in map(Explained._make, reversed(ring)) if flow is None or str(e.key) == flow),
                        int(limit))    # built for what is returned, not for the whole ring
        return {"kept": len(ring), "max_kept": ring.maxlen,
                "decisions": [decision_json(self.balancer, e, now) for e in chosen]}

    def counters(self, environ) -> dict:
        counters = self.balancer.counters
        return {"counters": {name: counters[name] for name in sorted(set(COUNTERS) | set(counters))},
                "ofp_errors": label_pairs(self.ofp_errors.items())}

    def policy(self, environ) -> dict:
        return {**self.balancer.policy.describe(), "available": sorted(POLICIES)}

    def reload_model(self, environ) -> dict:
        try:
            self.balancer.reload_model()
        except ConfigError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        except ModelError as exc:
            raise ApiError("422 Unprocessable Entity", f"{exc}; the previous model stays in use") from None
        return self.policy(environ)

    def reset_qtable(self, environ) -> dict:
        try:
            self.balancer.reset_learning()
        except ConfigError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        except QTableError as exc:
            raise ApiError("409 Conflict", f"{exc}; nothing was reset") from None
        return self.policy(environ)

    @staticmethod
    def _body(environ, shape: str, optional: tuple[str, ...] = ()) -> dict[str, str]:
        """A JSON object of string fields: "policy", and those `optional` (shape says it in errors)."""
        try:
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"null")
        except (ValueError, KeyError):
            raise ApiError("400 Bad Request", f"body must be JSON: {shape}") from None
        except RecursionError:   # json has no depth limit of its own: the interpreter's bounds it
            raise ApiError("400 Bad Request", f"body nested too deeply: must be {shape}") from None
        if (not isinstance(body, dict) or "policy" not in body or not set(body) <= {"policy", *optional}
                or not all(isinstance(v, str) for v in body.values())):
            raise ApiError("400 Bad Request", f"body must be {shape}")
        return body

    def services(self, environ) -> list[dict]:
        return [{"name": s.spec.name, "vip": s.spec.vip, "port": s.spec.port, **s.policy.describe(),
                 "available": sorted(SERVICE_POLICY_TYPES),
                 "members": [{"host": m.host, "ip": m.ip, "weight": m.weight, "healthy": m.healthy,
                              "active": m.active, "chosen": m.chosen, "completed": m.completed,
                              "rtt_ms": m.rtt_ms and round(m.rtt_ms, 3),
                              "response_ms": m.response_ms and round(m.response_ms, 3)} for m in s.members]}
                for s in self.balancer.services.services.values()]

    def set_service_policy(self, environ) -> list[dict]:
        body = self._body(environ, '{"policy": "<name>"[, "service": "<name>"]}', ("service",))
        service = body.get("service")
        if service is not None and service not in self.balancer.services.services:
            raise ApiError("404 Not Found", f"no service '{service}' (known: "
                                            f"{', '.join(self.balancer.services.services) or 'none'})")
        try:
            make = member_policy_factory(body["policy"], self.balancer.settings,
                                         [s.policy for s in self.balancer.services.services.values()])
        except ConfigError as exc:
            raise ApiError("400 Bad Request", str(exc)) from None
        self.balancer.set_member_policy(make, service)
        return self.services(environ)

    def set_policy(self, environ) -> dict:
        body = self._body(environ, '{"policy": "<name>"}')
        try:
            self.balancer.set_policy(make_policy(body["policy"], self.balancer.settings))
        except ConfigError as exc:
            raise ApiError("400 Bad Request", str(exc)) from None
        return self.policy(environ)
