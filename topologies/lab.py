"""A lab: our controller as a child process plus a spec's Mininet network, started together
and always torn down together. The demo, the experiments and the integration tests use it.

Everything is bounded in time, the controller listens on 127.0.0.1 only, and teardown stops
only what the lab started, by its process id.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from controller.openflow.messages import COOKIE_BASE, COOKIE_MASK
from controller.core.spec import Spec
from controller.files import load_spec

log = logging.getLogger("lb.lab")
ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "topology complete"
MAX_REPLY_BYTES = 1 << 20     # a REST reply read whole: a controller's answers are a few kB
PROBE_PORT, SINK_PORT = 7001, 7002    # where rtt_probe's echo and transfer's sink listen
UDP_PAYLOAD = 1400      # bytes a udp_flood datagram carries
UDP_FRAME = UDP_PAYLOAD + 14 + 20 + 8     # and the frame that carries it (Ethernet, IP, UDP headers)


OVS_PID = Path("/run/openvswitch/ovs-vswitchd.pid")


def cpu_s(pid: int | None) -> float | None:
    """The CPU time, user and system, a process has used (seconds); None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()   # the name may hold spaces
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(condition, timeout_s: float, interval_s: float = 0.2, what: str = "condition"):
    """Poll condition() until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def interrupt(proc: subprocess.Popen, timeout_s: float = 5, sig: int = signal.SIGINT) -> None:
    """Stop a process as Ctrl-C would (or by `sig`); kill it if it does not go in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def user_env() -> dict[str, str]:
    """This process's environment less pytest's marker: eventlet keeps quiet about locks it
    could not patch while PYTEST_CURRENT_TEST is set, so a controller started from a test
    would hide what a user's shows."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def rest_call(port: int, resource: str, method: str = "GET", body: dict | None = None,
              token: str | None = None, timeout_s: float = 10):
    """Call the REST API of the controller on 127.0.0.1:port; (HTTP status, decoded JSON), read
    up to MAX_REPLY_BYTES. PUT and POST carry the token; an unreachable port raises URLError (an
    OSError), a success that is not JSON ValueError; an error that is not JSON (a proxy's page)
    is (status, {"error": its first 200 characters})."""
    changes = {} if method == "GET" else {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/{resource}", headers=changes,
                                     method=method, data=json.dumps(body).encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read(MAX_REPLY_BYTES))
    except urllib.error.HTTPError as err:
        text = err.read(MAX_REPLY_BYTES)
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"error": text[:200].decode(errors="replace")}


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now and never handed out before by this process: bind(0) may give
    one port twice, and a second controller given it would fail to start (it holds its ports
    alone; before it did, both bound one port and a CI run's REST request reached the other's
    OpenFlow listener and read its HELLO as a status line)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class Lab:
    def __init__(self, spec_path: str | Path, workdir: str | Path, policy: str = "shortest",
                 ofp_port: int | None = None, python: str = sys.executable,
                 framework: str = "auto", controller_args: tuple[str, ...] = ()) -> None:
        self.spec_path = Path(spec_path)
        self.spec: Spec = load_spec(self.spec_path)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "controller.log"
        self.ofp_port = ofp_port or free_port()
        self.rest_port, self.metrics_port = free_port(), free_port()
        self.api_token = secrets.token_urlsafe(32)    # what api() sends with PUT and POST
        self.command = [python, "-m", "controller", "--topology", str(self.spec_path.resolve()),
                        "--policy", policy, "--ofp-port", str(self.ofp_port),
                        "--rest-port", str(self.rest_port), "--metrics-port", str(self.metrics_port),
                        "--framework", framework, *controller_args]
        self.controller: subprocess.Popen | None = None
        self.net = None    # a mininet.net.Mininet while started

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, ready_timeout_s: float = 60) -> None:
        # Mininet is imported where it is used, so that the unit tests and the reports import
        # this module on a machine without it.
        from mininet.net import Mininet

        from topologies.build import LBRemoteController, SpecTopo, capabilities, remove_stale
        log.info("%s", capabilities().describe())
        self.start_controller()
        remove_stale(self.spec)
        self.net = Mininet(topo=SpecTopo(self.spec), controller=None, build=False,
                           autoSetMacs=False, waitConnected=False)
        self.net.addController(LBRemoteController("c0", ip="127.0.0.1", port=self.ofp_port))
        self.net.build()
        self.net.start()
        wait_until(lambda: READY_LINE in self.log_text(), ready_timeout_s,
                   what=f"the controller to discover every link of '{self.spec.name}' "
                        f"(log: {self.log_path})")

    def start_controller(self, timeout_s: float = 30) -> None:
        with open(self.log_path, "ab") as out:
            # Own session: a Ctrl-C in the terminal reaches us, and we stop it in order.
            # the token in the environment, not the command line, which other users can read
            self.controller = subprocess.Popen(self.command, cwd=ROOT, stdout=out,
                                               env={**user_env(), "LB_API_TOKEN": self.api_token},
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True)

        def listening() -> bool:
            if self.controller.poll() is not None:
                raise RuntimeError(f"controller exited with {self.controller.returncode}: "
                                   f"{self.log_text()[-2000:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.ofp_port)) == 0
        wait_until(listening, timeout_s, what=f"the controller to listen on port {self.ofp_port}")

    def cpu(self) -> dict[str, tuple[int | None, float | None]]:
        """The pid of the controller and of the switches' daemon (ovs-vswitchd: where the kernel
        datapath is missing, it forwards every packet), and the CPU seconds each has used so far;
        None for one not running. Both share the machine's cores with the hosts' traffic, so
        one's work can slow the other's."""
        try:
            ovs = int(OVS_PID.read_text())
        except (OSError, ValueError):
            ovs = None
        controller = self.controller.pid if self.controller else None
        return {"controller": (controller, cpu_s(controller)), "ovs-vswitchd": (ovs, cpu_s(ovs))}

    def stop_controller(self) -> None:
        proc, self.controller = self.controller, None
        if proc is not None:
            interrupt(proc)

    def stop(self) -> None:
        """Stop the controller, then tear down the network: in that order the controller's log
        ends cleanly, where switches leaving one by one would read as a topology fault. The
        network goes down even if stopping the controller fails; survives a second Ctrl-C
        and a host shell left busy by an interrupted command."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_controller()
        finally:
            try:
                self._stop_network()
            finally:
                signal.signal(signal.SIGINT, previous)

    def _stop_network(self) -> None:
        net, self.net = self.net, None
        if net is None:
            return
        try:
            for host in net.hosts:
                _interrupt(host)
                _kill_namespace(host)
            net.stop()
            for node in net.controllers:   # Mininet leaves the c0 node's shell running
                if node.shell and node.shell.poll() is None:
                    node.shell.kill()
                    node.shell.wait()
        except Exception:
            from topologies.build import remove_stale
            remove_stale(self.spec)
            raise

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- the controller's view ------------------------------------------------------------------
    def api(self, resource: str, method: str = "GET", body: dict | None = None):
        """Call the controller's REST API; (HTTP status, decoded JSON)."""
        return rest_call(self.rest_port, resource, method, body, self.api_token)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    # -- measurements ------------------------------------------------------------------------
    def pingall(self, timeout_s: float = 1) -> tuple[float, float]:
        """Ping every ordered host pair once; (loss %, seconds taken)."""
        start = time.monotonic()
        loss = self.net.pingAll(timeout=str(timeout_s))
        return loss, time.monotonic() - start

    def iperf3(self, client: str, server: str, seconds: int = 5) -> dict:
        """Run iperf3 TCP between two hosts, bounded in time; the client's JSON report."""
        src, dst = self.net.get(client), self.net.get(server)
        port = 5201
        srv = dst.popen(["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: f":{port}" in dst.cmd("ss -ltn"), 10, what="iperf3 server")
            out = src.cmd(f"timeout {seconds + 15} iperf3 -c {dst.IP()} -p {port} -t {seconds} -J")
        finally:
            srv.kill()
            srv.wait()
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            raise RuntimeError(f"iperf3 {client}->{server} gave no report: {out[-500:]}") from None

    @contextmanager
    def udp_flood(self, src: str, dst: str, mbps: float, seconds: int, port: int = 5990, stop: bool = False):
        """UDP iperf3 (UDP_PAYLOAD-byte payloads) from src to dst in the background while the block
        runs; the block's value becomes the receiver's JSON report once the transfer ended,
        or, `stop`, the flood ends with the block and there is no report (a flood sized for a
        block's worst case then costs no wait)."""
        with self.udp_floods(src, dst, mbps, seconds, (port,), stop) as (report,):
            yield report

    @contextmanager
    def udp_floods(self, src: str, dst: str, mbps: float, seconds: int, ports: tuple[int, ...],
                   stop: bool = False):
        """One UDP iperf3 flow per port, as udp_flood, their clients started back to back
        (within milliseconds) once every server listens; one report per port."""
        receiver = self.net.get(dst)
        servers = [receiver.popen(["timeout", str(seconds + 30), "iperf3", "-s", "-1", "-J", "-p", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for port in ports]
        reports: list[dict] = [{} for _ in ports]
        clients: list = []
        try:
            wait_until(lambda: all(f":{port}" in receiver.cmd("ss -ltn") for port in ports), 10,
                       what="iperf3 servers")
            clients = [self.net.get(src).popen(
                ["timeout", str(seconds + 10), "iperf3", "-c", receiver.IP(), "-p", str(port), "-u",
                 "-b", f"{mbps}M", "-t", str(seconds), "-l", str(UDP_PAYLOAD)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
            yield reports
            if not stop:
                for client, server, report in zip(clients, servers, reports):
                    client.wait(timeout=seconds + 15)
                    report.update(json.loads(server.communicate(timeout=30)[0]))
        finally:    # stop: the flood ends here; a block that raised leaves it running, and a server
            # may block writing its report to a pipe no one reads: stop them all, killing any that stays
            for process in (*clients, *servers):
                interrupt(process, 10, signal.SIGTERM)

    def owd_probe(self, src: str, dst: str, sport: int, port: int = 7000, count: int = 20,
                  interval_s: float = 0.02) -> dict:
        """A train of UDP probes from src to dst as one flow (fixed source port); their
        one-way delays as topologies/probes.py reports them."""
        timeout_s = count * interval_s + 2
        return self._pair(dst, ["recv", "--port", str(port), "--count", str(count), "--timeout", str(timeout_s)],
                          src, ["send", "--dst", self.net.get(dst).IP(), "--port", str(port), "--sport", str(sport),
                                "--count", str(count), "--interval", str(interval_s)], timeout_s)

    def rtt_probe(self, src: str, dst: str, sport: int, port: int = PROBE_PORT, count: int = 20,
                  interval_s: float = 0.05) -> dict:
        """A train of UDP echo probes from src to dst (a new flow each way for a new sport);
        their round-trip times as topologies/probes.py reports them."""
        timeout_s = count * interval_s + 2
        return self._pair(dst, ["echo", "--port", str(port), "--count", str(count), "--timeout", str(timeout_s)],
                          src, ["rtt", "--dst", self.net.get(dst).IP(), "--port", str(port), "--sport", str(sport),
                                "--count", str(count), "--interval", str(interval_s)], timeout_s)

    def transfer(self, src: str, dst: str, size_bytes: int, sport: int, timeout_s: float,
                 port: int = SINK_PORT) -> dict:
        """One TCP transfer of size_bytes from src (port sport) to dst, bounded by timeout_s:
        {bytes, seconds from connect to the receiver's acknowledgement, complete}."""
        return self._pair(dst, ["sink", "--port", str(port), "--timeout", str(timeout_s)],
                          src, ["push", "--dst", self.net.get(dst).IP(), "--port", str(port), "--sport", str(sport),
                                "--bytes", str(size_bytes), "--timeout", str(timeout_s)], timeout_s)

    def _pair(self, server: str, server_args: list[str], client: str, client_args: list[str],
              timeout_s: float) -> dict:
        """topologies.probes's server side on one host, then its client side on another; the
        JSON that one of them prints."""
        probes = [sys.executable, "-m", "topologies.probes"]
        procs = [self.net.get(server).popen([*probes, *server_args], cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True)]
        try:
            time.sleep(0.2)   # let it bind
            procs.append(self.net.get(client).popen([*probes, *client_args], cwd=ROOT, stdout=subprocess.PIPE,
                                                    stderr=subprocess.DEVNULL, text=True))
            out = "".join(p.communicate(timeout=timeout_s + 5)[0] for p in reversed(procs))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(client_args[:1])} from {client} to {server} outlived its "
                               f"{timeout_s:g} s bound") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return json.loads(out)

    def flows(self, switch: str) -> list[dict]:
        """Our flow entries on one switch, as parsed by parse_flow()."""
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return [f for f in map(parse_flow, out.splitlines()[1:])
                if f and f["cookie"] & COOKIE_MASK == COOKIE_BASE]

    def observed_path(self, src_host: str, dst_host: str, **fields: str) -> list[str]:
        """The switches a flow's entries send it through, read from the switches themselves:
        start at the source host's switch and follow each entry's output port."""
        src, dst = self.spec.host(src_host), self.spec.host(dst_host)
        want = {"nw_src": src.ip, "nw_dst": dst.ip, **fields}
        neighbours = self.spec.neighbours()
        path, switch, in_port = [], self.spec.host_switch(src_host), None
        while switch not in path and switch in {s.name for s in self.spec.switches}:
            entries = [f for f in self.flows(switch) if all(f["match"].get(k) == v for k, v in want.items())
                       and (in_port is None or f["match"].get("in_port") == str(in_port))]
            if not entries:
                break
            path.append(switch)
            out_port = int(entries[0]["output"])
            nxt = neighbours[(switch, out_port)]
            in_port = next(p for (n, p), peer in neighbours.items() if n == nxt and peer == switch)
            switch = nxt
        return path


_FIELD = re.compile(r"([a-z_0-9]+)=([^,\s]+)")


def _interrupt(host) -> None:
    """Stop a command still running in a host's shell (Ctrl-C hit during host.cmd), so the
    shell accepts the teardown's commands; give up waiting after 5 s."""
    if not host.waiting:
        return
    host.sendInt()
    deadline = time.monotonic() + 5
    while host.waiting and time.monotonic() < deadline:
        host.monitor(timeoutms=200)
    host.waiting = False


def _kill_namespace(host) -> None:
    """Kill every process left in a host's network namespace but its shell: traffic tools
    started behind wrappers (timeout, mnexec) can outlive the network and spin on dead sockets."""
    try:
        ns = os.readlink(f"/proc/{host.pid}/ns/net")
    except OSError:
        return
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != host.pid:
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == ns:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                continue


def parse_flow(line: str) -> dict | None:
    """One line of `ovs-ofctl dump-flows` as {cookie, n_packets, priority, match, output}."""
    line = line.strip()
    if "actions=" not in line:
        return None
    head, actions = line.split("actions=", 1)
    fields = dict(_FIELD.findall(head))
    match = {k: v for k, v in fields.items() if k not in
             ("cookie", "duration", "table", "n_packets", "n_bytes", "idle_timeout",
              "hard_timeout", "idle_age", "hard_age", "priority", "send_flow_rem", "reset_counts")}
    for flag in ("arp", "tcp", "udp", "icmp", "ip", "ipv6"):
        if re.search(rf"(^|[ ,]){flag}(,|\s|$)", head):
            match[flag] = "1"
    output = re.search(r"output:(\d+)", actions)
    return {"cookie": int(fields.get("cookie", "0"), 16), "n_packets": int(fields.get("n_packets", 0)),
            "priority": int(fields.get("priority", 32768)), "match": match,
            "output": output.group(1) if output else None, "actions": actions}


def default_workdir(name: str) -> Path:
    """Results go under ./results (never /tmp/*.log, which `mn -c` deletes)."""
    path = ROOT / "results" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def provenance(module: str, argv: list[str] | None = None, root: Path = ROOT) -> dict[str, str]:
    """What produced a result, for its folder: the commit of this tree (with "-dirty" when a
    tracked file has changes; "unknown" where git or the repository is missing) and the
    command line, shell-quoted, as `<python> -m <module> <args>` (the interpreter relative to
    the tree when it is inside it, e.g. .venv/bin/python)."""
    args = sys.argv[1:] if argv is None else list(argv)
    python = Path(sys.executable)
    try:
        python = python.relative_to(root)
    except ValueError:
        python = Path("python")
    return {"commit": tree_commit(root), "command": shlex.join([str(python), "-m", module, *args])}


def tree_commit(root: Path = ROOT) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        head = git("rev-parse", "--verify", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if changed else "")


def machine() -> dict:
    """Where a benchmark ran, for its results: cores, Python, the date, and the load average
    when it started (other work on the machine moves timings)."""
    return {"cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "load_1min": round(os.getloadavg()[0], 2)}


def started(module: str, argv: list[str] | None = None) -> dict:
    """A benchmark's provenance and machine, taken as it starts (the load average then is
    the machine's other work, not the benchmark's own)."""
    return {**provenance(module, argv), "machine": machine()}


def write_results(path: str | Path, kind: str, start: dict, figures: dict) -> Path:
    """A benchmark's figures as JSON, with what produced them and where (`start`, from
    started()): what scripts/tables.py renders into the docs (docs/benchmarks.md)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": kind, **start, **figures}, indent=1, allow_nan=False) + "\n")
    return path
