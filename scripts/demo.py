"""The first experiment: controller and H1-H7 network up, pingall, iperf3 h1 -> h7, the path
each flow took (read from the switches' flow tables) and the rate against that path's
bottleneck; then a host on the shortest path floods its bottleneck, and a new h1 -> h7 flow
is placed by each policy in turn, with the one-way delay it measured. Everything is torn down
at the end, also on Ctrl-C.

    sudo .venv/bin/python -m scripts.demo [--topology FILE] [--policy NAME] [--seconds N]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

import networkx as nx

from topologies.lab import Lab, default_workdir
from controller.core.spec import TopologyError


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default="topologies/h1h7.json")
    p.add_argument("--policy", default="shortest")
    p.add_argument("--src", default="h1")
    p.add_argument("--dst", default="h7")
    p.add_argument("--seconds", type=int, default=5, help="iperf3 duration (1..60)")
    args = p.parse_args()
    if not 1 <= args.seconds <= 60:
        p.error("--seconds: must be in 1..60")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the teardown on kill too

    workdir = default_workdir("demo")
    try:
        lab = Lab(args.topology, workdir, policy=args.policy)
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for host in (args.src, args.dst):
        if host not in {h.name for h in lab.spec.hosts}:
            print(f"error: --src/--dst: no host '{host}' in {args.topology}", file=sys.stderr)
            return 2
    print(f"Starting the controller ({args.policy}) and the '{lab.spec.name}' network; "
          f"logs in {workdir}")
    try:
        with lab:
            loss = run(lab, args)
    except KeyboardInterrupt:
        print("\ninterrupted: network and controller stopped")
        return 130
    print("\nnetwork and controller stopped")
    return 0 if loss == 0 else 1


def run(lab: Lab, args: argparse.Namespace) -> float:
    """Pingall, iperf3 and the paths; returns the pingall loss in %."""
    loss, seconds = lab.pingall()
    print(f"\npingall: {loss:.0f}% loss, {seconds:.1f} s for "
          f"{len(lab.spec.hosts) * (len(lab.spec.hosts) - 1)} pings")
    print(f"iperf3 TCP {args.src} -> {args.dst} for {args.seconds} s ...")
    report = lab.iperf3(args.src, args.dst, seconds=args.seconds)
    rate_mbps = report["end"]["sum_received"]["bits_per_second"] / 1e6
    port = str(report["start"]["connected"][0]["local_port"])
    forward = lab.observed_path(args.src, args.dst, tcp="1", tp_src=port)
    reverse = lab.observed_path(args.dst, args.src, tcp="1", tp_dst=port)
    ping = lab.observed_path(args.src, args.dst, icmp="1")
    print("\npaths, as the switches' flow tables route them:")
    for label, a, b, path in (("iperf3 data ", args.src, args.dst, forward),
                              ("iperf3 acks ", args.dst, args.src, reverse),
                              ("ping request", args.src, args.dst, ping)):
        print(f"  {label}  {' > '.join([a, *path, b]) if path else '(entries expired)'}")
    print(f"\nrate: {rate_mbps:.2f} Mbit/s", end="")
    if forward:
        nodes = [args.src, *forward, args.dst]
        bottleneck = lab.spec.bottleneck_mbps(nodes)
        print(f" = {100 * rate_mbps / bottleneck:.0f}% of the path's {bottleneck:g} Mbit/s bottleneck")
    print()
    congested(lab, args)
    return loss


def congested(lab: Lab, args: argparse.Namespace, policies=("shortest", "least-loaded", "bpann")) -> None:
    """Flood the shortest path's bottleneck from a host on it (twice its capacity, UDP), then
    send a probe flow from src to dst under each policy: its path and one-way delay."""
    spec = lab.spec
    path = nx.shortest_path(spec.graph(), spec.host_switch(args.src), spec.host_switch(args.dst))
    loader = next((h.name for h in spec.hosts if h.name not in (args.src, args.dst)
                   and spec.host_switch(h.name) in path[1:-1]), None)
    if loader is None:
        print("\n(no host on the shortest path to load it with: load-balancing step skipped)")
        return
    after = path[path.index(spec.host_switch(loader)):]
    capacity = spec.bottleneck_mbps(after)
    print(f"\nload balancing: {loader} floods {'>'.join(after)} with {2 * capacity:g} Mbit/s of UDP; "
          f"a new {args.src} -> {args.dst} flow under each policy:")
    with lab.udp_flood(loader, args.dst, 2 * capacity, seconds=4 + 3 * len(policies)):
        time.sleep(3)   # two polls: the controller sees the load
        for i, policy in enumerate(policies):
            lab.api("policy", method="PUT", body={"policy": policy})
            sport = 42000 + i
            probe = lab.owd_probe(args.src, args.dst, sport, count=50, interval_s=0.02)
            flow = next((f for f in lab.api("flows")[1] if f["src_port"] == sport), None)
            route = ">".join(flow["path"]) if flow else "?"
            delay = f"{probe['median_ms']:.1f} ms" if probe["received"] else "all lost"
            print(f"  {policy:>12}: via {route:<16} median one-way delay {delay}, "
                  f"{100 * (1 - probe['received'] / probe['sent']):.0f}% lost")
    lab.api("policy", method="PUT", body={"policy": args.policy})


if __name__ == "__main__":
    sys.exit(main())
