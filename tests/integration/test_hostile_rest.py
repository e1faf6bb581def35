"""Hostile HTTP clients against a real controller process (no switches needed), under os-ken
and Ryu: real requests over sockets to the REST API and the metrics endpoint. Each test
asserts what the attack must not achieve and what the operator sees. Issue 14, item 13."""

from __future__ import annotations

import errno
import http.client
import json
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import RYU_PYTHON
from tests.prerequisites import venv_problem
from topologies.lab import ROOT, free_port, interrupt, user_env, wait_until

JSON = {"Content-Type": "application/json"}
TRACEBACK = "Traceback (most recent call last)"


class Controller:
    """A controller process with its REST API and metrics on free ports, its log in a file,
    and a runtime directory of its own (where it writes its generated API token)."""

    def __init__(self, workdir: Path, python: Path | str, *args: str) -> None:
        self.workdir, self.rest_port, self.metrics_port = workdir, free_port(), free_port()
        self.ofp_port, self.run = free_port(), workdir / "run"
        self.log_path = workdir / "controller.log"
        self.run.mkdir(mode=0o700)
        self.token_path = self.run / "sdn-lb" / f"api-token-{self.rest_port}"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [str(python), "-m", "controller", "--ofp-port", str(self.ofp_port),
                 "--rest-port", str(self.rest_port), "--metrics-port", str(self.metrics_port), *args],
                cwd=ROOT, env={**user_env(), "XDG_RUNTIME_DIR": str(self.run)}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def listening(port: int) -> bool:
            assert self.proc.poll() is None, f"controller exited: {self.log()}"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        # the metrics port opens after the REST API's token is written
        wait_until(lambda: all(map(listening, (self.rest_port, self.metrics_port))), 30,
                   what="the controller's REST API and metrics")
        self.token = self.token_path.read_text().strip() if self.token_path.exists() else ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rest(self, method: str, path: str, headers: dict | None = None, body: bytes = b"",
             token: bool = False):
        auth = {"Authorization": f"Bearer {self.token}"} if token else {}
        return request(self.rest_port, method, path, {**auth, **(headers or {})}, body)

    def policy(self) -> dict:
        status, _, body = self.rest("GET", "/api/v1/policy")
        assert status == 200, body
        return json.loads(body)


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes = b"",
            timeout_s: float = 5):
    """One exchange on a fresh connection: (status, headers, body). Host is the listening
    address unless `headers` says otherwise."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["os_ken", "ryu"])
def framework(request) -> tuple[str, Path | str]:
    if request.param == "ryu" and (problem := venv_problem("ryu")):
        pytest.fail(f"{problem}; rebuild it with: sudo scripts/setup.sh --with-ryu", pytrace=False)
    return request.param, RYU_PYTHON if request.param == "ryu" else sys.executable


@pytest.fixture(scope="module")
def controller(framework, tmp_path_factory):
    """Policy bpann on a copy of the shipped model, so a reload shows in GET /api/v1/policy."""
    name, python = framework
    workdir = tmp_path_factory.mktemp(f"hostile-rest-{name}")
    for suffix in (".npz", ".json"):
        shutil.copy(ROOT / "models" / f"bpann{suffix}", workdir / f"model{suffix}")
    ctl = Controller(workdir, python, "--framework", name, "--policy", "bpann", "--model", str(workdir / "model"))
    yield ctl
    interrupt(ctl.proc)


def retag_model(ctl: Controller, trained_at: str) -> None:
    """Change the model file on disk (its trained_at), as a retrained model would."""
    path = ctl.workdir / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "trained_at": trained_at}))


def test_requests_without_the_token_change_nothing(controller):
    before = controller.policy()
    retag_model(controller, "retrained")
    for auth in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": controller.token}):
        for method, path, body in (("POST", "/api/v1/model/reload", b""), ("POST", "/api/v1/qtable/reset", b""),
                                   ("PUT", "/api/v1/policy", b'{"policy": "shortest"}')):
            status, headers, data = controller.rest(method, path, {**JSON, **auth}, body)
            assert status == 401 and "token" in json.loads(data)["error"], (method, path, auth, data)
            assert headers.get("WWW-Authenticate") == "Bearer"
    assert controller.policy() == before                      # not reloaded, policy not switched
    assert "refused POST /api/v1/model/reload from 127.0.0.1:" in controller.log()
    # the operator, with the token, can
    status, _, data = controller.rest("POST", "/api/v1/model/reload", JSON, token=True)
    assert status == 200 and json.loads(data)["trained_at"] == "retrained" != before["trained_at"]


def test_a_cross_site_simple_post_changes_nothing(controller):
    """What a web page can make a browser send without a preflight: text/plain, foreign Origin."""
    before = controller.policy()
    simple = {"Content-Type": "text/plain", "Origin": "http://attacker.example"}
    assert controller.rest("PUT", "/api/v1/policy", simple, b'{"policy": "shortest"}')[0] == 401
    assert controller.rest("POST", "/api/v1/model/reload", simple, b"x")[0] == 401
    # even with the token, only JSON is accepted
    status, _, data = controller.rest("PUT", "/api/v1/policy", simple, b'{"policy": "shortest"}', token=True)
    assert status == 415 and "application/json" in json.loads(data)["error"]
    assert controller.policy() == before


def test_a_request_naming_another_host_is_refused(controller):
    """DNS rebinding: a page on attacker.example re-points its name at 127.0.0.1 and reads."""
    for port, path in ((controller.rest_port, "/api/v1/topology"), (controller.metrics_port, "/metrics")):
        status, headers, data = request(port, "GET", path, {"Host": f"attacker.example:{port}"})
        assert status == 421 and headers["Content-Type"] == "application/json", data
        assert "attacker.example" in json.loads(data)["error"] and b"lb_" not in data
        assert request(port, "GET", path, {"Host": f"localhost:{port}"})[0] == 200
    assert "Host 'attacker.example:" in controller.log()


def test_an_oversized_body_is_refused(controller):
    big = json.dumps({"policy": "shortest", "pad": "x" * 20_000}).encode()
    status, _, data = controller.rest("PUT", "/api/v1/policy", JSON, big, token=True)
    assert status == 413 and "10000 bytes" in json.loads(data)["error"]
    assert controller.policy()["policy"] == "bpann"


def test_deeply_nested_json_is_a_one_line_400(controller):
    deep = b"[" * 4000 + b"]" * 4000
    status, headers, data = controller.rest("PUT", "/api/v1/policy", JSON, deep, token=True)
    assert status == 400 and headers["Content-Type"] == "application/json", data[:300]
    error = json.loads(data)["error"]
    assert "\n" not in error and "nested" in error
    assert TRACEBACK not in controller.log()
    assert controller.policy()["policy"] == "bpann"


def test_silent_and_half_sent_connections_are_closed_within_seconds(controller):
    silent = socket.create_connection(("127.0.0.1", controller.rest_port))
    half = socket.create_connection(("127.0.0.1", controller.rest_port))
    half.sendall(b"GET /api/v1/topol")
    start = time.monotonic()
    try:
        for s in (silent, half):
            s.settimeout(max(0.1, start + 10 - time.monotonic()))
            try:
                assert s.recv(100) == b""             # closed by the server, nothing answered
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail("a connection that sent no complete request was still open after 10 s")
    finally:
        silent.close()
        half.close()
    assert time.monotonic() - start < 8
    assert "no complete request" in controller.log()


def test_half_sent_requests_cannot_keep_a_fresh_one_waiting(controller):
    """Slowloris: 1,100 connections that each send part of a request line and wait."""
    seen, held = len(controller.log()), []
    deadline = time.monotonic() + 30
    try:
        while len(held) < 1100 and time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", controller.rest_port), timeout=2)
            except OSError:                          # the server stopped accepting: the attack worked
                break
            held.append(s)
            s.sendall(b"GET /api/v1/topol")
        start = time.monotonic()
        try:
            status = request(controller.rest_port, "GET", "/api/v1/policy", timeout_s=5)[0]
        except OSError as exc:
            status = exc
        took = time.monotonic() - start
        assert len(held) == 1100 and status == 200 and took < 1, \
            f"{len(held)} connections held; a fresh GET got {status!r} after {took:.2f} s"
    finally:
        for s in held:
            s.close()
    # the operator sees it, in a few lines that count the connections closed
    def closed() -> list[str]:
        return [line for line in controller.log()[seen:].splitlines() if "closed the connection from" in line]
    wait_until(lambda: sum(map(int, re.findall(r"the last of (\d+) in", "".join(closed())))) >= 1100 - 64,
               15, what=f"the log to count the closed connections: {closed()}")
    assert len(closed()) <= 3, closed()


def test_an_unexpected_error_is_a_json_500_logged_once(controller):
    """A real one: prometheus_client's handler raises TypeError on an Accept header that asks
    for a version that is not a number. Asked five times, it is logged with its traceback once."""
    before = controller.log().count(TRACEBACK)
    for _ in range(5):
        status, headers, data = request(controller.metrics_port, "GET", "/metrics",
                                        {"Accept": "text/plain; version=abc"})
        assert status == 500 and headers["Content-Type"] == "application/json", data[:300]
        assert json.loads(data) == {"error": "internal error"}
    wait_until(lambda: "internal error on GET /metrics from 127.0.0.1:" in controller.log(), 5,
               what="the error to be logged")
    log = controller.log()
    assert log.count(TRACEBACK) == before + 1 and "TypeError" in log
    assert request(controller.metrics_port, "GET", "/metrics")[0] == 200    # and it goes on


def test_the_generated_token_is_private_and_its_path_logged(controller):
    path = controller.token_path
    assert controller.token and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(path) in controller.log() and controller.token not in controller.log()


def test_no_other_server_can_share_its_ports(controller):
    """A socket that sets SO_REUSEPORT, as eventlet's listeners do unless told not to (another
    os-ken or Ryu controller given one of our ports), cannot bind the controller's ports: were
    both sockets to set it, both would bind and the kernel would split the connections."""
    for port in (controller.ofp_port, controller.rest_port, controller.metrics_port):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError) as refused:
                s.bind(("127.0.0.1", port))
            assert refused.value.errno == errno.EADDRINUSE, port


def test_a_second_controller_on_its_openflow_port_stops_with_one_line(controller, framework):
    """Started by the launcher it is refused before the framework starts; started by the
    manager, as users run it, the framework's listener fails: the log says so in one line and
    the exit status fails (the manager exited 0 after a traceback). ryu-manager does not run
    on this Python, so under Ryu the launcher alone."""
    name, python = framework
    port = str(controller.ofp_port)
    env = {**user_env(), "LB_REST_PORT": "0", "LB_METRICS_PORT": "0"}
    launched = subprocess.run([str(python), "-m", "controller", "--framework", name, "--ofp-port", port],
                              cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=60)
    assert (launched.returncode, launched.stderr) == (
        2, f"error: --listen, --ofp-port: cannot listen on 127.0.0.1:{port}: Address already in use\n")
    if name == "os_ken":
        managed = subprocess.run([str(Path(python).parent / "osken-manager"), "--ofp-listen-host", "127.0.0.1",
                                  "--ofp-tcp-listen-port", port, "controller/app.py"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                 timeout=60)
        out = managed.stdout + managed.stderr
        assert managed.returncode == 2, out
        assert out.count("OpenFlow off: ") == 1, out
        assert f"OpenFlow off: cannot listen on 127.0.0.1:{port}: Address already in use; stopping" in out
        assert TRACEBACK not in out and "uncaught exception" not in out, out


def test_a_second_controller_on_its_rest_and_metrics_ports_takes_neither(controller, framework, tmp_path):
    """Our controller started again on the first one's REST and metrics ports, in its runtime
    directory: it runs on without them (it still forwards), every REST request still reaches
    the first, and the first's token file stays."""
    name, python = framework
    token = controller.token_path.read_text()
    log = tmp_path / "second.log"
    with open(log, "wb") as out:
        second = subprocess.Popen(
            [str(python), "-m", "controller", "--framework", name, "--policy", "shortest",
             "--ofp-port", str(free_port()), "--rest-port", str(controller.rest_port),
             "--metrics-port", str(controller.metrics_port)],
            cwd=ROOT, env={**user_env(), "XDG_RUNTIME_DIR": str(controller.run)}, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        off = [f"{what} off: cannot listen on 127.0.0.1:{port}: Address already in use"
               for what, port in (("REST API", controller.rest_port), ("metrics", controller.metrics_port))]
        wait_until(lambda: all(line in log.read_text() for line in off), 30,
                   what=f"the second controller to log {off}")
        assert second.poll() is None, log.read_text()
        assert {controller.policy()["policy"] for _ in range(20)} == {"bpann"}
        assert controller.token_path.read_text() == token
    finally:
        interrupt(second)


def test_a_given_token_is_used_and_no_file_written(framework, tmp_path):
    name, python = framework
    token = "operator-chosen-token-0123456789"
    ctl = Controller(tmp_path, python, "--framework", name, "--api-token", token)
    try:
        assert not ctl.token_path.exists() and token not in ctl.log()
        auth = {"Authorization": f"Bearer {token}", **JSON}
        assert ctl.rest("PUT", "/api/v1/policy", auth, b'{"policy": "least-loaded"}')[0] == 200
        assert ctl.rest("PUT", "/api/v1/policy", JSON, b'{"policy": "shortest"}')[0] == 401
        assert ctl.policy()["policy"] == "least-loaded"
    finally:
        interrupt(ctl.proc)
