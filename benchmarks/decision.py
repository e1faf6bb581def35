"""Decision path in process: a new flow's packet-in bytes to the OpenFlow messages that place
it (parse, learn, candidate paths, features, policy, flow-mods), per policy, on a balancer
booted against fake switches. Paths are cached per topology version, so after a warm-up
round over the sampled host pairs the figures are the steady state of new flows.

    .venv/bin/python -m benchmarks.decision [--flows 3000] [--scaling] [--json FILE]

With --json, the figures go to FILE with the commit and command (docs/benchmarks.md is
generated from it by scripts/tables.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from controller.policies import POLICIES
from controller.core.settings import Settings
from fakes.switches import SPEC, Booted
from fakes.frames import ipv4_frame
from topologies.generate import fat_tree, ring
from topologies.lab import started, write_results
from controller.core.spec import Spec, parse_spec
from controller.files import load_spec

ALL = ("shortest", "least-loaded", "round-robin", "ecmp", "bpann", "learned", "qlearning")
# on the rings: hops alone, load (features), and load scored by the model (features + the network)
SCALING = ("shortest", "least-loaded", "bpann")


def decision_times(spec: Spec, policies, flows: int, k_paths: int, seed: int = 1, sample: int = 400) -> dict:
    """Per policy, median and p99 (microseconds) of handling one new flow's first packet
    between `sample` sampled host pairs on different switches, and how many candidates it
    chose among. Each flow is timed on every policy's balancer in turn, so drift in the
    machine's speed hits every policy alike."""
    hosts, rng = spec.hosts, random.Random(seed)
    apart = [(a, b) for a in hosts for b in hosts if spec.host_switch(a.name) != spec.host_switch(b.name)]
    pairs = rng.sample(apart, min(sample, len(apart)))      # all 39,800 at 200 switches: minutes of paths
    booted = {p: Booted(spec, p, Settings(k_paths=k_paths)) for p in policies}
    for b in booted.values():
        for h in hosts:                             # every host known, as after its first ARP
            b.arp(h.name, hosts[0].name if h != hosts[0] else hosts[1].name)
    ports = {h.name: next(iter(booted.values())).host_port(h.name) for h in hosts}

    def one(b: Booted, i: int, src, dst) -> float:
        data = ipv4_frame(src.mac, dst.mac, src.ip, dst.ip, 17, 1024 + i % 60000, 7000 + i // 60000)
        dpid, port = ports[src.name]
        start = time.perf_counter_ns()
        b.balancer.packet_in(dpid, port, data, b.now)
        return (time.perf_counter_ns() - start) / 1000

    for b in booted.values():                       # warm-up: every sampled pair's paths computed once
        for i, (src, dst) in enumerate(pairs):
            one(b, i, src, dst)
    times: dict[str, list[float]] = {p: [] for p in policies}
    for i in range(flows):
        src, dst = rng.choice(pairs)
        for p in policies:
            times[p].append(one(booted[p], len(pairs) + i, src, dst))
    out = {}
    src, dst = pairs[0]
    for p, ts in times.items():
        ts.sort()
        b = booted[p].balancer
        out[p] = {"median_us": statistics.median(ts), "p99_us": ts[int(0.99 * len(ts))],
                  "candidates": len(b.paths.candidates(b.net, ports[src.name][0], ports[dst.name][0]))}
    return out


def table(name: str, spec: Spec, policies, flows: int, k_paths: int) -> dict:
    print(f"\n{name}: {len(spec.switches)} switches, {len(spec.hosts)} hosts, k={k_paths} candidate paths")
    out = decision_times(spec, policies, flows, k_paths)
    base = out.get("shortest")
    for p, r in out.items():
        ratio = f"  {r['median_us'] / base['median_us']:.2f}x shortest" if base else ""
        print(f"  {p:>12}: median {r['median_us']:7.1f} us   p99 {r['p99_us']:7.1f} us   "
              f"({r['candidates']} candidates){ratio}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decision", description=__doc__.split("\n\n")[0])
    p.add_argument("--flows", type=int, default=3000, help="timed decisions per policy")
    p.add_argument("--policies", default=",".join(ALL))
    p.add_argument("--scaling", action="store_true", help="also rings of 10, 50, 100 and 200 switches")
    p.add_argument("--json", help="also write the figures, commit and command to this file")
    args = p.parse_args(argv)
    run = started("benchmarks.decision", argv)
    policies = [x for x in args.policies.split(",") if x in POLICIES]
    runs = [("H1-H7", load_spec(SPEC), policies, 4), ("fat tree k=4", parse_spec(fat_tree(4)), policies, 8)]
    if args.scaling:
        runs += [(f"ring of {n}", parse_spec(ring(n, 1)), [x for x in SCALING if x in policies], 8)
                 for n in (10, 50, 100, 200)]
    results = [{"topology": name, "switches": len(spec.switches), "k_paths": k,
                "policies": table(name, spec, chosen, args.flows, k)} for name, spec, chosen, k in runs]
    if args.json:
        print(f"\nfigures: {write_results(args.json, 'decision', run, {'flows': args.flows, 'results': results})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
