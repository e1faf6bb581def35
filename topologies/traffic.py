"""Seeded background traffic: a schedule of iperf3 transfers among hosts, and a player that
runs it in a lab. The same seed gives the same schedule, so policies can be compared on
identical traffic. Every transfer is bounded in time.

UDP transfers send at their rate for their duration. TCP transfers carry a fixed size
(rate x duration) paced at their rate, so a congested path shows as a longer completion time.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BASE_PORT = 5300


@dataclass(frozen=True)
class Transfer:
    start_s: float
    src: str
    dst: str
    proto: str          # "udp" or "tcp"
    rate_mbps: float
    duration_s: float
    port: int

    @property
    def size_bytes(self) -> int:
        return int(self.rate_mbps * 1e6 / 8 * self.duration_s)

    @property
    def bound_s(self) -> int:
        """Hard limit on the transfer's life: a TCP transfer may take three times its pace."""
        return int(self.duration_s * (3 if self.proto == "tcp" else 1)) + 10


def schedule(seed: int, hosts: list[str], duration_s: float, mean_gap_s: float = 2.0,
             rate_mbps: tuple[float, float] = (2, 8), length_s: tuple[float, float] = (5, 15)) -> list[Transfer]:
    """Poisson arrivals over duration_s; each between a random pair, with a random protocol,
    rate and length (uniform in the given ranges)."""
    if len(hosts) < 2:
        raise ValueError("background traffic needs at least two hosts")
    rng = random.Random(seed)
    out: list[Transfer] = []
    t = rng.expovariate(1 / mean_gap_s)
    while t < duration_s:
        src, dst = rng.sample(hosts, 2)
        # to the millisecond, but never past the end (112, 104.8186 s: 104.819)
        out.append(Transfer(min(round(t, 3), duration_s), src, dst, rng.choice(("udp", "tcp")),
                            round(rng.uniform(*rate_mbps), 2), round(rng.uniform(*length_s), 2),
                            BASE_PORT + len(out) % 2000))
        t += rng.expovariate(1 / mean_gap_s)
    return out


class Player:
    """Plays a schedule in a background thread: each transfer's server starts half a second
    before its client. stop() ends everything it started. With a logdir, each client writes
    its iperf3 JSON report there and outcomes() reads them back."""

    def __init__(self, net, transfers: list[Transfer], logdir: str | Path | None = None) -> None:
        self.net = net
        self.transfers = transfers
        self.logdir = Path(logdir) if logdir else None
        self.procs: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started: list[int] = []     # indices into transfers, in start order

    def start(self) -> Player:
        if self.logdir:
            self.logdir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def elapsed(self) -> float:
        """Seconds since start(): the schedule's clock."""
        return time.monotonic() - self._t0

    def _report(self, i: int) -> Path:
        return self.logdir / f"transfer-{i:04d}.json"

    def _run(self) -> None:
        events = sorted([(t.start_s - 0.5, 0, i) for i, t in enumerate(self.transfers)] +
                        [(t.start_s, 1, i) for i, t in enumerate(self.transfers)])
        for at, kind, i in events:
            if self._stop.wait(max(0.0, at - self.elapsed())):
                return
            t = self.transfers[i]
            bound = ["timeout", str(t.bound_s)]
            if kind == 0:
                self.procs.append(self._popen(self.net.get(t.dst), [*bound, *self._server(t)], None))
            else:
                self.procs.append(self._popen(self.net.get(t.src), [*bound, *self._client(i, t)], i))
                self.started.append(i)
            self.procs = [p for p in self.procs if p.poll() is None]

    def _server(self, t: Transfer) -> list[str]:
        return ["iperf3", "-s", "-1", "-p", str(t.port)]

    def _client(self, i: int, t: Transfer) -> list[str]:
        amount = ["-u", "-t", str(t.duration_s)] if t.proto == "udp" else ["-n", str(t.size_bytes)]
        report = ["-J", "--logfile", str(self._report(i))] if self.logdir else []
        return ["iperf3", "-c", self.net.get(t.dst).IP(), "-p", str(t.port), "-b", f"{t.rate_mbps}M", *amount, *report]

    def _popen(self, host, cmd: list[str], client: int | None) -> subprocess.Popen:
        """Start a server (client None) or the client of transfer `client` on a host."""
        return host.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """End every transfer: SIGTERM, which `timeout` passes on to iperf3 (a SIGKILL would
        orphan it), then SIGKILL whatever is left."""
        self._stop.set()
        self._thread.join(timeout=5)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def outcomes(self) -> list[dict]:
        """For every started transfer: its schedule entry and, for TCP, its completion time
        (None when it did not finish: cut short by stop() or its bound)."""
        out = []
        for i in self.started:
            t = self.transfers[i]
            fct = completion_s(self._report(i)) if t.proto == "tcp" and self.logdir else None
            out.append({**asdict(t), "size_bytes": t.size_bytes, "fct_s": fct})
        return out


def completion_s(report: Path) -> float | None:
    """A finished iperf3 TCP client's completion time, as its receiver measured it."""
    try:
        data = json.loads(report.read_text())
        return float(data["end"]["sum_received"]["seconds"]) if "error" not in data else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
