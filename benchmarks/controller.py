"""Benchmarks of a running controller process against the switch emulator (no Mininet):

1. flow setup through the real app over TCP: new flows set up per second with W packet-ins
   outstanding, and setup latency (p50/p99) one flow at a time; the same, on the same
   emulator, for a minimal reactive L2 learning app, and our figures as a ratio of its;
2. polling cost: the controller's CPU share (of one core) while it polls N emulated
   switches of 8 ports every second, with and without its LLDP probing;
3. scaling: the polling share for 10, 50, 100 and 200 switches.

    .venv/bin/python -m benchmarks.controller [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

from benchmarks.emulator import Emulator
from topologies.generate import ring
from topologies.lab import ROOT, free_port, interrupt
from topologies.spec import Spec, parse_spec

PYTHON = Path(sys.executable)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@asynccontextmanager
async def app(kind: str, raw: dict, *extra: str):
    """Our controller (kind 'sdn-lb') or the L2 reference ('l2') on a free port, for the
    topology `raw` (a spec as JSON data); yields (the emulator, connected to it; the process)."""
    spec, port, rest = parse_spec(raw), free_port(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    if kind == "sdn-lb":
        spec_file = folder / "spec.json"
        spec_file.write_text(json.dumps(raw))
        cmd = [str(PYTHON), "-m", "controller", "--topology", str(spec_file), "--ofp-port", str(port),
               "--rest-port", str(rest), "--metrics-port", "0", "--log-level", "WARNING", *extra]
    else:
        cmd = [str(PYTHON.parent / "osken-manager"), "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port",
               str(port), str(ROOT / "benchmarks" / "l2_learning.py")]
    log = open(folder / "controller.log", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    emulator = Emulator(spec, port)
    try:
        for _ in range(200):
            try:
                await emulator.connect()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{kind} exited: {(folder / 'controller.log').read_text()[-1500:]}") from None
                await asyncio.sleep(0.1)
        else:
            raise TimeoutError(f"{kind} did not listen on port {port}")
        if kind == "sdn-lb":
            await wait_complete(rest)
        else:
            await asyncio.sleep(1)
        yield emulator, proc
    finally:
        await emulator.close()
        interrupt(proc, 10)
        log.close()


async def wait_complete(rest: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(
                f"http://127.0.0.1:{rest}/api/v1/topology", timeout=5).read())
            if json.loads(body)["complete"]:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the controller did not discover every link")


def flow_pairs(spec: Spec, emulator: Emulator) -> list[tuple[str, str]]:
    return [(a.name, b.name) for a in spec.hosts for b in spec.hosts
            if emulator.edge[a.name][0] != emulator.edge[b.name][0]]


async def flow_setup(kind: str, raw: dict, seconds: float, window: int, sequential: int) -> dict:
    spec = parse_spec(raw)
    async with app(kind, raw) as (emu, _):
        for h in spec.hosts:
            emu.announce(h.name) if kind == "sdn-lb" else emu.teach(h.name)
        await asyncio.sleep(1)
        pairs, rng, n = flow_pairs(spec, emu), random.Random(1), 0

        def start_one() -> None:
            nonlocal n
            emu.new_flow(*rng.choice(pairs), sport=1024 + n % 64000, dport=7000 + n // 64000)
            n += 1

        for _ in range(sequential):                   # latency: one flow at a time
            start_one()
            await asyncio.wait_for(emu.done.wait(), 10)
        latency = sorted(emu.setup_s)
        emu.setup_s.clear()
        start = time.monotonic()                      # throughput: `window` flows outstanding
        while time.monotonic() - start < seconds:
            while len(emu.waiting) < window:
                start_one()
            await asyncio.sleep(0)
            await asyncio.sleep(0.0005)
        elapsed = time.monotonic() - start
        return {"flows_per_s": len(emu.setup_s) / elapsed, "p50_ms": 1000 * statistics.median(latency),
                "p99_ms": 1000 * latency[int(0.99 * (len(latency) - 1))], "flow_mods": emu.counters.flow_mods,
                "completed": len(emu.setup_s)}


async def polling_share(switches: int, seconds: float, probing: bool) -> float:
    """CPU seconds per second of the controller over `seconds`, once discovery is done."""
    extra = () if probing else ("--probe-interval", "60")
    async with app("sdn-lb", ring(switches, 5), *extra) as (emu, proc):
        await asyncio.sleep(2)
        before, t0, polls = cpu_seconds(proc.pid), time.monotonic(), emu.counters.stats_requests
        await asyncio.sleep(seconds)
        share = (cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)
        if emu.counters.stats_requests - polls < switches * 2 * (seconds - 2):
            raise RuntimeError("the controller did not poll every switch every second")
        return share


async def main_async(args) -> int:
    raw = ring(args.switches, 1)
    spec = parse_spec(raw)
    print(f"flow setup: {len(spec.switches)} emulated switches (ring with chords), {len(spec.hosts)} hosts; "
          f"{args.window} outstanding for {args.seconds:g} s; latency from {args.sequential} flows one at a time")
    results = {}
    for kind in ("l2", "sdn-lb"):
        r = results[kind] = await flow_setup(kind, raw, args.seconds, args.window, args.sequential)
        print(f"  {kind:>7}: {r['flows_per_s']:8.0f} flows/s   setup p50 {r['p50_ms']:6.2f} ms   "
              f"p99 {r['p99_ms']:6.2f} ms   ({r['completed']} flows, {r['flow_mods']} flow-mods)")
    print(f"  ratio sdn-lb / l2: {results['sdn-lb']['flows_per_s'] / results['l2']['flows_per_s']:.2f} of the "
          f"rate, {results['sdn-lb']['p50_ms'] / results['l2']['p50_ms']:.2f}x the p50 latency")
    print(f"\npolling cost, {args.poll_seconds:g} s each, ring of N switches with 8 ports (share of one core):")
    for n in args.scaling:
        polling = await polling_share(n, args.poll_seconds, probing=False)
        both = await polling_share(n, args.poll_seconds, probing=True)
        print(f"  {n:>4} switches: polling {100 * polling:5.1f}%   polling + LLDP probing {100 * both:5.1f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.controller", description=__doc__.split("\n\n")[0])
    p.add_argument("--switches", type=int, default=8, help="emulated switches for flow setup")
    p.add_argument("--seconds", type=float, default=10, help="throughput window")
    p.add_argument("--window", type=int, default=64, help="packet-ins outstanding")
    p.add_argument("--sequential", type=int, default=500, help="flows timed one at a time")
    p.add_argument("--poll-seconds", type=float, default=20)
    p.add_argument("--scaling", default="10,50,100,200", help="switch counts for the polling cost")
    p.add_argument("--quick", action="store_true", help="a few switches, a second or two: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.switches, args.seconds, args.sequential, args.poll_seconds, args.scaling = 4, 1, 20, 3, "5"
    args.scaling = [int(x) for x in str(args.scaling).split(",")]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
