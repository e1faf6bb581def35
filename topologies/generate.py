"""Topology specs made by rule, for larger experiments and benchmarks; print JSON that
`--topology` (and the Mininet lab) accepts.

    python -m topologies.generate fattree --k 4          (20 switches, 16 hosts)
    python -m topologies.generate ring --switches 100 --hosts-per-switch 5
    python -m topologies.generate ring --switches 8 --capacity 20
"""

from __future__ import annotations

import argparse
import json
import sys


def _host(i: int) -> dict:
    return {"name": f"h{i + 1}", "ip": f"10.{(i + 1) >> 16 & 255}.{(i + 1) >> 8 & 255}.{(i + 1) & 255}",
            "mac": "00:00:00:{:02x}:{:02x}:{:02x}".format((i + 1) >> 16 & 255, (i + 1) >> 8 & 255, (i + 1) & 255)}


def fat_tree(k: int = 4, capacity_mbps: float = 100) -> dict:
    """The k-ary fat tree: (k/2)^2 core, k pods of k/2 aggregation and k/2 edge switches,
    k/2 hosts per edge switch. Between pods there are (k/2)^2 shortest paths."""
    if k < 2 or k % 2:
        raise ValueError("k: must be an even number >= 2")
    half = k // 2
    core = [f"c{i + 1}" for i in range(half * half)]
    agg = [[f"a{p + 1}x{i + 1}" for i in range(half)] for p in range(k)]
    edge = [[f"e{p + 1}x{i + 1}" for i in range(half)] for p in range(k)]
    switches = core + [s for pod in agg for s in pod] + [s for pod in edge for s in pod]
    links = []
    for p in range(k):
        for i, a in enumerate(agg[p]):
            links += [[a, core[i * half + j]] for j in range(half)]
            links += [[a, e] for e in edge[p]]
    hosts = []
    for e in (s for pod in edge for s in pod):
        for _ in range(half):
            hosts.append(_host(len(hosts)))
            links.append([hosts[-1]["name"], e])
    return _spec(f"fattree-k{k}", switches, hosts, links, capacity_mbps)


def ring(switches: int, hosts_per_switch: int = 1, capacity_mbps: float = 100) -> dict:
    """A ring of switches with a chord from each switch to the one opposite: two to four
    disjoint paths between any two switches, and 2 or 3 link ports per switch."""
    if switches < 3:
        raise ValueError("switches: must be at least 3")
    names = [f"s{i + 1}" for i in range(switches)]
    links = [[names[i], names[(i + 1) % switches]] for i in range(switches)]
    links += [[names[i], names[i + switches // 2]] for i in range(switches // 2) if switches // 2 > 1]
    links = [list(x) for x in dict.fromkeys(tuple(sorted(lk)) for lk in links)]
    hosts = []
    for s in names:
        for _ in range(hosts_per_switch):
            hosts.append(_host(len(hosts)))
            links.append([hosts[-1]["name"], s])
    return _spec(f"ring-{switches}", names, hosts, links, capacity_mbps)


def _spec(name: str, switches: list[str], hosts: list[dict], links: list[list[str]], capacity: float) -> dict:
    return {"name": name, "switches": [{"name": s, "dpid": i + 1} for i, s in enumerate(switches)],
            "hosts": hosts, "links": [{"nodes": lk, "capacity_mbps": capacity} for lk in links]}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m topologies.generate", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    f = sub.add_parser("fattree")
    f.add_argument("--k", type=int, default=4)
    r = sub.add_parser("ring")
    r.add_argument("--switches", type=int, required=True)
    r.add_argument("--hosts-per-switch", type=int, default=1)
    for parser in (f, r):
        parser.add_argument("--capacity", type=float, default=100, metavar="MBPS", help="of every link (default 100)")
    args = p.parse_args()
    try:
        spec = (fat_tree(args.k, args.capacity) if args.kind == "fattree"
                else ring(args.switches, args.hosts_per_switch, args.capacity))
    except ValueError as exc:
        p.error(str(exc))
    json.dump(spec, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
