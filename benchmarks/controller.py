"""Benchmarks of a running controller process against the switch emulator (no Mininet):

1. flow setup through the real app over TCP: new flows set up per second with W packet-ins
   outstanding, and setup latency (p50/p99) one flow at a time; the same, on the same
   emulator, for a minimal reactive L2 learning app, and our figures as a ratio of its;
2. polling cost: the controller's CPU share (of one core) while it polls N emulated
   switches of 8 ports every second, with and without its LLDP probing;
3. scaling: the polling share for 10, 50, 100 and 200 switches.

    .venv/bin/python -m benchmarks.controller [--quick] [--json FILE]

With --json, the figures go to FILE with the commit and command (docs/benchmarks.md is
generated from it by scripts/tables.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
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
from topologies.lab import ROOT, free_port, interrupt, started, write_results
from controller.core.spec import Spec, parse_spec

PYTHON = Path(sys.executable)


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's threads, in nanoseconds (schedstat): its clock ticks (10 ms)
    read 0 for 3 s of polling five switches on a fast machine."""
    return sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9


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
    emulator, ok = Emulator(spec, port), False
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
        ok = True
    finally:
        await emulator.close()
        interrupt(proc, 10)
        log.close()
        if ok:                          # kept, with the controller's log, when something failed
            shutil.rmtree(folder, ignore_errors=True)


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
    """Setup latency one flow at a time, then throughput with `window` flows outstanding; with
    the controller's CPU time per flow, which the machine's speed moves less than the rate."""
    spec = parse_spec(raw)
    async with app(kind, raw) as (emu, proc):
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
        cpu, start = cpu_seconds(proc.pid), time.monotonic()    # throughput: `window` flows outstanding
        while time.monotonic() - start < seconds:
            while len(emu.waiting) < window:
                start_one()
            await asyncio.sleep(0)
            await asyncio.sleep(0.0005)
        elapsed, completed = time.monotonic() - start, len(emu.setup_s)
        return {"flows_per_s": completed / elapsed, "p50_ms": 1000 * statistics.median(latency),
                "p99_ms": 1000 * latency[int(0.99 * (len(latency) - 1))], "flow_mods": emu.counters.flow_mods,
                "completed": completed, "cpu_us": 1e6 * (cpu_seconds(proc.pid) - cpu) / completed}


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


async def flow_setup_section(args) -> dict:
    raw = ring(args.switches, 1)
    spec = parse_spec(raw)
    print(f"flow setup: {len(spec.switches)} emulated switches (ring with chords), {len(spec.hosts)} hosts; "
          f"{args.window} outstanding for {args.seconds:g} s; latency from {args.sequential} flows one at a time; "
          f"{args.repeat} runs of each app, alternated so that drift in the machine's speed hits both")
    runs = {"l2": [], "sdn-lb": []}
    for i in range(args.repeat):
        for kind, done in runs.items():
            r = await flow_setup(kind, raw, args.seconds, args.window, args.sequential)
            done.append(r)
            print(f"  {i + 1}. {kind:>6}: {r['flows_per_s']:6.0f} flows/s   {r['cpu_us']:4.0f} us CPU per flow   "
                  f"setup p50 {r['p50_ms']:5.2f} ms   p99 {r['p99_ms']:5.2f} ms   "
                  f"({r['completed']} flows, {r['flow_mods']} flow-mods)")
    med = {kind: {k: statistics.median(r[k] for r in done) for k in ("flows_per_s", "cpu_us", "p50_ms", "p99_ms")}
           for kind, done in runs.items()}
    for kind, m in med.items():
        print(f"  median {kind:>6}: {m['flows_per_s']:6.0f} flows/s   {m['cpu_us']:4.0f} us CPU per flow   "
              f"setup p50 {m['p50_ms']:5.2f} ms   p99 {m['p99_ms']:5.2f} ms")
    ours, ref = med["sdn-lb"], med["l2"]
    print(f"  ratio sdn-lb / l2: {ours['flows_per_s'] / ref['flows_per_s']:.2f} of the rate, "
          f"{ours['cpu_us'] / ref['cpu_us']:.2f}x the CPU per flow, "
          f"{ours['p50_ms'] / ref['p50_ms']:.2f}x the p50 latency")
    return {"switches": len(spec.switches), "hosts": len(spec.hosts), "window": args.window, "seconds": args.seconds,
            "sequential": args.sequential, "runs": runs, "median": med}


async def polling_section(args) -> dict:
    print(f"polling cost, {args.poll_seconds:g} s each, ring of N switches with 8 ports (share of one core):")
    rows = []
    for n in args.scaling:
        polling = await polling_share(n, args.poll_seconds, probing=False)
        both = await polling_share(n, args.poll_seconds, probing=True)
        rows.append({"switches": n, "polling": polling, "probing": both})
        print(f"  {n:>4} switches: polling {100 * polling:5.1f}%   polling + LLDP probing {100 * both:5.1f}%")
    return {"seconds": args.poll_seconds, "rows": rows}


async def main_async(args) -> dict:
    """The figures of each section run, by section."""
    figures = {}
    if args.repeat:
        figures["flow_setup"] = await flow_setup_section(args)
    if args.scaling:
        figures["polling"] = await polling_section(args)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.controller", description=__doc__.split("\n\n")[0])
    p.add_argument("--switches", type=int, default=8, help="emulated switches for flow setup")
    p.add_argument("--seconds", type=float, default=10, help="throughput window")
    p.add_argument("--window", type=int, default=64, help="packet-ins outstanding")
    p.add_argument("--sequential", type=int, default=500, help="flows timed one at a time")
    p.add_argument("--repeat", type=int, default=3, help="flow-setup runs of each app, alternated (0: none)")
    p.add_argument("--poll-seconds", type=float, default=20)
    p.add_argument("--scaling", default="10,50,100,200", help="switch counts for the polling cost ('': none)")
    p.add_argument("--quick", action="store_true", help="a few switches, a second or two: a smoke run")
    p.add_argument("--json", help="also write the figures, commit and command to this file")
    args = p.parse_args(argv)
    run = started("benchmarks.controller", argv)
    if args.quick:
        args.switches, args.seconds, args.sequential, args.poll_seconds, args.scaling = 4, 1, 20, 3, "5"
        args.repeat = 1
    args.scaling = [int(x) for x in str(args.scaling).split(",") if x.strip()]
    figures = asyncio.run(main_async(args))
    if args.json:
        print(f"figures: {write_results(args.json, 'controller', run, figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
