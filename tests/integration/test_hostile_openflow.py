"""Hostile peers on the OpenFlow port of a real controller process, with the real bytes on
real sockets and emulated switches (benchmarks/emulator.py) as the network that must go on
being served: looping framing, a wrong version, a second connection claiming a connected
datapath id, idle connections by the hundred and running out of file descriptors. Each test
asserts what the attack must not achieve (a busy, growing or dead process, another switch
dropped, a switch taken over) and what the operator sees (one line naming the peer, a
counter). No Mininet: these run wherever the controller does."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import resource
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.emulator import HELLO, MP_PORT_DESC, MP_PORT_STATS, MULTIPART_REPLY, Emulator, features_reply, message
from tests.integration.conftest import H1H7, RYU_PYTHON
from tests.prerequisites import venv_problem
from topologies.lab import ROOT, cpu_s, free_port, user_env, wait_until
from controller.files import load_spec

A_FEW_S = 8                      # "within a few seconds": the bound every closing is held to
HELLO_ZERO_ELEMENT = bytes.fromhex("04 00 00 0c 00 00 00 01 00 01 00 00")
FRAMEWORKS = ["os_ken", "ryu"]           # the tests on a shared controller run under both


class Controller:
    """`python -m controller` for the H1-H7 spec on free ports, its output in a log file."""

    def __init__(self, workdir: Path, framework: str = "os_ken", open_files: int | None = None):
        python = sys.executable if framework == "os_ken" else RYU_PYTHON
        self.ofp_port, self.rest_port, self.metrics_port = free_port(), free_port(), free_port()
        self.log_path = workdir / f"controller-{framework}-{self.ofp_port}.log"
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))) if open_files else None
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [str(python), "-m", "controller", "--framework", framework, "--topology", str(H1H7),
                 "--ofp-port", str(self.ofp_port), "--rest-port", str(self.rest_port),
                 "--metrics-port", str(self.metrics_port), "--probe-interval", "0.3", "--poll-interval", "0.5"],
                # a token given: no generated token file, which SIGTERM would leave behind
                cwd=ROOT, env={**user_env(), "LB_API_TOKEN": secrets.token_urlsafe(32)},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=limit)

        def listening() -> bool:
            assert self.proc.poll() is None, f"controller exited: {self.log()[-1500:]}"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.ofp_port)) == 0
        wait_until(listening, 30, what="the controller to listen")
        self.rss_at_start_mb = self.rss_mb()

    def stop(self) -> None:
        """SIGTERM: these tests need no orderly stop, and a SIGINT that lands in one of the
        framework's green threads is swallowed there ('hub: uncaught exception:
        KeyboardInterrupt'), which would cost the 5 s interrupt() waits before killing."""
        self.proc.terminate()
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, pattern: str) -> list[str]:
        return [line for line in self.log().splitlines() if re.search(pattern, line)]

    def topology(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/api/v1/topology", timeout=5) as r:
            return json.loads(r.read())

    def counters(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return {k: float(v) for k, v in re.findall(r"^lb_(\w+)_total (\S+)$", r.read().decode(), re.M)}

    def counter(self, name: str) -> float:
        return self.counters()[name]

    def cpu_s(self) -> float:
        return cpu_s(self.proc.pid)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def assert_alive_and_idle(self) -> None:
        """Running, with CPU time over half a second near zero (a parser loop takes all of it,
        serving eight switches ~2%) and memory near its level at start (a looping parser grows
        it ~140 MB/s)."""
        assert self.proc.poll() is None, f"controller exited: {self.log()[-1500:]}"
        before = self.cpu_s()
        time.sleep(0.5)
        assert self.cpu_s() - before < 0.1, "the controller is busy"
        assert self.rss_mb() < self.rss_at_start_mb + 40, f"RSS {self.rss_mb():.0f} MB"

    def assert_no_framework_error(self) -> None:
        assert "Traceback" not in self.log() and self.counter("framework_errors") == 0, self.log()[-3000:]


class Network:
    """Emulated switches of the H1-H7 spec, served by an asyncio loop in a thread of its own."""

    def __init__(self, port: int):
        self.emulator = Emulator(load_spec(H1H7), port)
        self.sports = itertools.count(4000)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro, timeout_s: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def do(self, fn, *args):
        """fn(*args) on the emulator's loop (its writers are not thread-safe)."""
        async def call():
            return fn(*args)
        return self.run(call())

    def connected(self, dpid: int) -> bool:
        return self.emulator.switches[dpid].writer is not None

    def send(self, dpid: int, data: bytes) -> None:
        self.do(lambda: self.emulator.switches[dpid].writer.write(data))

    def close(self) -> None:
        self.run(self.emulator.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def flow(ctl: Controller, net: Network, src: str, dst: str) -> None:
    """A new flow from src to dst (both announced first), set up by the controller within 5 s."""
    for host in (src, dst):
        net.do(net.emulator.announce, host)
    wait_until(lambda: {src, dst} <= {net.emulator.spec.host_by_ip(h["ip"]).name for h in ctl.topology()["hosts"]},
               5, what=f"the controller to learn {src} and {dst}")
    net.do(net.emulator.new_flow, src, dst, next(net.sports))
    net.run(asyncio.wait_for(net.emulator.done.wait(), 5))


def complete(ctl: Controller) -> bool:
    return ctl.topology()["complete"] is True


def wait_complete(ctl: Controller, net: Network) -> None:
    net.run(net.emulator.connect())              # again, for any switch the controller closed
    wait_until(lambda: complete(ctl), 15, what="the topology to be complete")


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the controller has closed this connection (what it sent before is read away)."""
    sock.setblocking(False)
    try:
        while data := sock.recv(65536):
            del data
        return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def established(ctl: Controller) -> int:
    """The controller's established connections on its OpenFlow port."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{ctl.ofp_port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return len(out.splitlines())


def running(workdir: Path, framework: str):
    """Body of a fixture: a controller and the emulated network, topology complete."""
    ctl = Controller(workdir, framework)
    net = Network(ctl.ofp_port)
    try:
        wait_complete(ctl, net)
        yield ctl, net
    finally:
        net.close()
        ctl.stop()


@pytest.fixture(scope="module")
def os_ken(tmp_path_factory):
    yield from running(tmp_path_factory.mktemp("hostile-ofp"), "os_ken")


@pytest.fixture(scope="module")
def ryu(tmp_path_factory):
    problem = venv_problem("ryu")
    if problem:
        pytest.fail(f"{problem}; rebuild it with: sudo scripts/setup.sh --with-ryu", pytrace=False)
    yield from running(tmp_path_factory.mktemp("hostile-ofp-ryu"), "ryu")


@pytest.fixture
def rig(request):
    """The framework's controller and network, complete again after the test."""
    ctl, net = request.getfixturevalue(request.param)
    yield ctl, net
    wait_complete(ctl, net)


# -- item 1: framing that loops the framework's parsers ---------------------------------------
@pytest.mark.parametrize("rig", FRAMEWORKS, indirect=True)
def test_hello_with_a_zero_length_element_closes_that_connection_only(rig):
    ctl, net = rig
    bad_before = ctl.counters().get("ofp_bad_messages", 0)
    with socket.create_connection(("127.0.0.1", ctl.ofp_port), timeout=5) as sock:
        sock.sendall(HELLO_ZERO_ELEMENT)
        peer = "127.0.0.1:%d" % sock.getsockname()[1]
        wait_until(lambda: closed_by_peer(sock), A_FEW_S, what="the controller to close the connection")
    ctl.assert_alive_and_idle()
    assert len(ctl.lines(rf"WARNING .*{peer} closed: HELLO element of length 0")) == 1, ctl.log()[-2000:]
    assert ctl.counter("ofp_bad_messages") == bad_before + 1
    ctl.assert_no_framework_error()
    assert complete(ctl)
    flow(ctl, net, "h1", "h7")


def flow_entry(rest: bytes, length: int | None = None) -> bytes:
    """One flow-statistics entry (OpenFlow 1.3, 48 fixed bytes) followed by `rest`."""
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(rest) if length is None else length, 0, 5, 0, 100, 10, 0, 0,
                       0x7E00000000000001, 3, 300) + rest


EMPTY_MATCH = struct.pack("!HH4x", 1, 4)
STATS_REPLIES = {   # multipart replies a connected switch could send in answer to the statistics polls
    "flow-stats-entry-of-length-0": (1, flow_entry(EMPTY_MATCH, length=0), "flow statistics entry of length 0"),
    "instruction-of-length-0": (1, flow_entry(EMPTY_MATCH + struct.pack("!HH4x", 4, 0)), "instruction of length 0"),
    "set-field-action-of-length-0": (1, flow_entry(EMPTY_MATCH + struct.pack("!HH4x", 4, 24) + struct.pack(
        "!HHII4x", 25, 0, 0x80000004, 1)), "set-field action of length 0"),
    "flow-stats-entry-longer-than-the-reply": (1, flow_entry(EMPTY_MATCH, length=4000), "runs past the end"),
    "port-stats-cut-mid-entry": (MP_PORT_STATS, bytes(112 + 50), "not a whole number of 112-byte entries"),
    "port-desc-cut-mid-entry": (MP_PORT_DESC, bytes(100), "not a whole number of 64-byte entries"),
}
STATS_CASES = [pytest.param("os_ken", k, id=k) for k in STATS_REPLIES] + [
    pytest.param("ryu", "flow-stats-entry-of-length-0", id="ryu-flow-stats-entry-of-length-0")]


@pytest.mark.parametrize("rig, case", STATS_CASES, indirect=["rig"])
def test_malformed_statistics_reply_closes_that_switch_only(rig, case):
    ctl, net = rig
    kind, body, reason = STATS_REPLIES[case]
    net.send(3, message(MULTIPART_REPLY, 99, struct.pack("!HH4x", kind, 0) + body))
    wait_until(lambda: not net.connected(3), A_FEW_S, what="the controller to close s3's connection")
    ctl.assert_alive_and_idle()
    assert len(ctl.lines(rf"WARNING .*\(s3, dpid 0x3\) closed: .*{re.escape(reason)}")) == 1, ctl.log()[-2000:]
    assert {s["name"] for s in ctl.topology()["switches"]} == {f"s{i}" for i in range(1, 9)} - {"s3"}
    ctl.assert_no_framework_error()
    flow(ctl, net, "h1", "h7")        # the others are still served


# -- item 4: a message of another version on a 1.3 connection -----------------------------------
@pytest.mark.parametrize("rig", FRAMEWORKS, indirect=True)
def test_openflow_1_0_packet_in_on_a_1_3_connection_gives_one_line(rig):
    ctl, net = rig
    frame = bytes(60)
    net.send(2, struct.pack("!BBHIIHHBx", 1, 10, 18 + len(frame), 0, 0xFFFFFFFF, len(frame), 1, 0) + frame)
    wait_until(lambda: not net.connected(2), A_FEW_S, what="the controller to close s2's connection")
    assert len(ctl.lines(r"WARNING .*\(s2, dpid 0x2\) closed: OpenFlow 1.0 message \(type 10\) on an "
                         r"OpenFlow 1.3 connection")) == 1, ctl.log()[-2000:]
    ctl.assert_no_framework_error()


# -- item 2: a second connection claiming a connected datapath id ---------------------------------
@pytest.mark.parametrize("rig", FRAMEWORKS, indirect=True)
def test_connections_claiming_connected_datapath_ids_take_nothing_over(rig):
    ctl, net = rig
    closed_before = ctl.counters().get("ofp_connections_closed", 0)
    impostors = Network(ctl.ofp_port)            # all eight datapath ids again, from other connections
    try:
        impostors.run(impostors.emulator.connect())
        wait_until(lambda: not any(impostors.connected(d) for d in impostors.emulator.switches), A_FEW_S,
                   what="the controller to close every impostor")
        for dpid in impostors.emulator.switches:
            assert len(ctl.lines(rf"WARNING .*\(s{dpid}, dpid {dpid:#x}\) closed: datapath id already held by "
                                 r"127\.0\.0\.1:\d+, which answers")) == 1, ctl.log()[-3000:]
        assert ctl.counter("ofp_connections_closed") == closed_before + 8
        flow(ctl, net, "h1", "h7")
        flow(ctl, net, "h7", "h5")
        assert impostors.emulator.counters.flow_mods == impostors.emulator.counters.packet_outs == 0
    finally:
        impostors.close()
    for _ in range(5):                           # the switches stay, whichever connection left
        assert complete(ctl) and len(ctl.topology()["switches"]) == 8
        time.sleep(0.3)
    assert established(ctl) == 8
    ctl.assert_no_framework_error()


@pytest.mark.parametrize("rig", FRAMEWORKS, indirect=True)
def test_one_connection_claiming_two_datapath_ids_is_closed(rig):
    ctl, net = rig
    with socket.create_connection(("127.0.0.1", ctl.ofp_port), timeout=5) as sock:
        sock.sendall(message(HELLO, 1) + features_reply(0x99, 2) + features_reply(0x98, 3))
        peer = "127.0.0.1:%d" % sock.getsockname()[1]
        wait_until(lambda: closed_by_peer(sock), A_FEW_S, what="the controller to close the connection")
    assert len(ctl.lines(rf"WARNING .*{peer} \(s153, dpid 0x99\) closed: a second FEATURES_REPLY")) == 1, \
        ctl.log()[-2000:]
    assert 0x98 not in {s["dpid"] for s in ctl.topology()["switches"]}
    ctl.assert_no_framework_error()


@pytest.mark.parametrize("rig", FRAMEWORKS, indirect=True)
def test_a_switch_reconnecting_behind_a_half_open_connection_replaces_it(rig):
    ctl, net = rig
    net.run(net.emulator.reconnect(5))           # the old connection stays open, never answers again
    wait_until(lambda: ctl.lines(r"WARNING .*\(s5, dpid 0x5\) replaces 127\.0\.0\.1:\d+, which did not answer "
                                 r"an echo"), A_FEW_S, what="the new connection to replace the old")
    wait_until(lambda: established(ctl) == 8, A_FEW_S, what="the old connection to be closed")
    wait_until(lambda: complete(ctl), A_FEW_S, what="s5's links to be found again")
    flow(ctl, net, "h5", "h1")
    ctl.assert_no_framework_error()


# -- item 3: connections that never finish the handshake, and no descriptors left -------------------
def open_idle(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
        except OSError:
            pass                                  # the backlog is full: that one never got in
    return socks


@contextmanager
def flooded(workdir: Path, open_files: int, count: int):
    """A controller under an open-files limit, `count` idle connections to it, and the network.
    The REST and metrics servers are asked nothing until the idle connections are gone: the
    framework's WSGI server stops for good when an accept fails for want of descriptors."""
    ctl = Controller(workdir, open_files=open_files)
    net = Network(ctl.ofp_port)
    idle = open_idle(ctl.ofp_port, count)
    try:
        yield ctl, net, idle
    finally:
        for s in idle:
            s.close()
        net.close()
        ctl.stop()


def switches_get_in(ctl: Controller, net: Network) -> None:
    net.run(net.emulator.connect())
    wait_until(lambda: ctl.lines("topology complete"), A_FEW_S, what="the switches to connect")


def test_idle_connections_by_the_hundred_neither_stop_switches_nor_the_process(tmp_path):
    with flooded(tmp_path, open_files=150, count=200) as (ctl, net, idle):   # the limit
        assert len(idle) >= 150 and ctl.proc.poll() is None, ctl.log()[-1500:]
        switches_get_in(ctl, net)
        assert not ctl.lines(r"closed: no handshake within"), "the switches got in only after the flood"
        wait_until(lambda: all(closed_by_peer(s) for s in idle), A_FEW_S, what="every idle connection to be closed")
        assert ctl.lines(r"WARNING .* closed: more than \d+ connections in handshake: closing the oldest")
        assert ctl.lines(r"WARNING .* closed: no handshake within \d+ s")
        assert ctl.counter("ofp_connections_closed") >= len(idle)
        assert complete(ctl)
        ctl.assert_alive_and_idle()
        assert len(os.listdir(f"/proc/{ctl.proc.pid}/fd")) < 50
        ctl.assert_no_framework_error()
        flow(ctl, net, "h1", "h7")


def test_running_out_of_file_descriptors_refuses_connections_and_recovers(tmp_path):
    with flooded(tmp_path, open_files=40, count=60) as (ctl, net, idle):     # the flood takes them all
        wait_until(lambda: ctl.proc.poll() is not None or ctl.lines(r"WARNING .* closed: no file descriptor free"),
                   A_FEW_S, what="the controller to run out of descriptors")
        assert ctl.proc.poll() is None, ctl.log()[-1500:]
        switches_get_in(ctl, net)                 # each in place of the oldest idle connection
        for s in idle:
            s.close()
        wait_until(lambda: len(os.listdir(f"/proc/{ctl.proc.pid}/fd")) < 30, A_FEW_S, what="descriptors to be freed")
        assert ctl.counter("ofp_accept_errors") > 0
        assert complete(ctl)
        ctl.assert_alive_and_idle()
        ctl.assert_no_framework_error()
