"""Seeded background traffic: a schedule of iperf3 transfers among hosts, and a player that
runs it in a lab. The same seed gives the same schedule, so policies can be compared on
identical traffic. Every transfer is bounded in time."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass

BASE_PORT = 5300


@dataclass(frozen=True)
class Transfer:
    start_s: float
    src: str
    dst: str
    proto: str          # "udp" or "tcp" (TCP paced at rate_mbps)
    rate_mbps: float
    duration_s: float
    port: int


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
        out.append(Transfer(round(t, 3), src, dst, rng.choice(("udp", "tcp")),
                            round(rng.uniform(*rate_mbps), 2), round(rng.uniform(*length_s), 2),
                            BASE_PORT + len(out) % 2000))
        t += rng.expovariate(1 / mean_gap_s)
    return out


class Player:
    """Plays a schedule in a background thread: each transfer's server starts half a second
    before its client. stop() ends everything it started."""

    def __init__(self, net, transfers: list[Transfer]) -> None:
        self.net = net
        self.transfers = transfers
        self.procs: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0

    def start(self) -> Player:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        events = sorted([(t.start_s - 0.5, 0, t) for t in self.transfers] +
                        [(t.start_s, 1, t) for t in self.transfers], key=lambda e: (e[0], e[1]))
        for at, kind, t in events:
            if self._stop.wait(max(0.0, at - (time.monotonic() - self._t0))):
                return
            dst = self.net.get(t.dst)
            bound = str(int(t.duration_s) + 10)
            if kind == 0:
                cmd = ["timeout", bound, "iperf3", "-s", "-1", "-p", str(t.port)]
                self.procs.append(dst.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            else:
                cmd = ["timeout", bound, "iperf3", "-c", dst.IP(), "-p", str(t.port),
                       "-t", str(t.duration_s), "-b", f"{t.rate_mbps}M"] + (["-u"] if t.proto == "udp" else [])
                self.procs.append(self.net.get(t.src).popen(cmd, stdout=subprocess.DEVNULL,
                                                            stderr=subprocess.DEVNULL))
                self.started += 1
            self.procs = [p for p in self.procs if p.poll() is None]

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
