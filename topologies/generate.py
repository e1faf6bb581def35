"""Topology specs made by rule, for larger experiments, benchmarks and training; print JSON
that `--topology` (and the Mininet lab) accepts.

    python -m topologies.generate fattree --k 4          (20 switches, 16 hosts)
    python -m topologies.generate ring --switches 100 --hosts-per-switch 5
    python -m topologies.generate ring --switches 8 --capacity 20
    python -m topologies.generate zoo Abilene --seed 1 --hosts 4      (a Topology Zoo network)
    python -m topologies.generate family --seed 7                     (one training network)
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import networkx as nx

from controller.core.spec import TopologyError, parse_spec
from controller.core.zoo import ZooNetwork
from controller.files import load_zoo

ACCESS_MBPS = 100                       # host links: never the bottleneck of a path
ZOO_CAPACITIES = (10, 20, 50)           # Mbit/s, by edge betweenness tercile (low to high)
US_PER_KM = 5.0                         # light in fibre: 5 us per km
FAMILY_CAPACITIES = (5, 10, 20, 50)     # Mbit/s, drawn per link
FAMILY_HOPS = range(1, 9)               # switch-to-switch links on a candidate path


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


def zoo(network: ZooNetwork, seed: int = 0, hosts: int = 4, capacities=ZOO_CAPACITIES,
        delay: bool = False) -> dict:
    """A Topology Zoo network as a spec, by a fixed rule:
    - switches s1..sN are its PoPs in the Zoo's node order (largest connected part only);
    - a link's capacity is its edge-betweenness tercile's class in `capacities` (ties broken by
      the link's switch numbers): the links most shortest paths cross are the core, and WANs
      provision their core fattest;
    - `hosts` hosts h1..hK hang off K distinct switches drawn by `seed` (so one network gives
      many experiments), each by a 100 Mbit/s access link;
    - with `delay`, a link's delay_ms is its great-circle length in fibre (5 us/km); off by
      default, as the lab's userspace datapath cannot emulate delay without tc netem."""
    graph, n = network.graph, network.graph.number_of_nodes()
    if not 2 <= hosts <= n:
        raise ValueError(f"hosts: must be in 2..{n} (the switches of {network.source})")
    switches = [f"s{i + 1}" for i in range(n)]
    between = nx.edge_betweenness_centrality(graph)
    edges = sorted(graph.edges, key=lambda e: (between[e], min(e), max(e)))
    links = []
    for rank, (a, b) in enumerate(edges):
        link = {"nodes": [switches[min(a, b)], switches[max(a, b)]],
                "capacity_mbps": capacities[rank * len(capacities) // len(edges)]}
        if delay:
            link["delay_ms"] = round(graph.edges[a, b]["km"] * US_PER_KM / 1000, 3)
        links.append(link)
    attached = random.Random(seed).sample(switches, hosts)
    host_list = [_host(i) for i in range(hosts)]
    links += [{"nodes": [h["name"], s], "capacity_mbps": ACCESS_MBPS} for h, s in zip(host_list, attached)]
    pops = ", ".join(f"s{i + 1}={label}" for i, label in enumerate(network.labels))
    dropped = f" Dropped (not connected to the rest): {', '.join(network.dropped)}." if network.dropped else ""
    return {"name": f"zoo-{network.name}-{seed}",
            "description": f"{network.source}, seed {seed}: capacities {'/'.join(f'{c:g}' for c in capacities)} Mbit/s "
                           f"by edge-betweenness tercile; hosts on {', '.join(attached)}.{dropped} PoPs: {pops}",
            "switches": [{"name": s, "dpid": i + 1} for i, s in enumerate(switches)],
            "hosts": host_list, "links": links}


def family(seed: int, hosts: int = 6) -> dict:
    """One network of the training family: h1 (on s1) and h2 (on s2) are joined by 2 to 4
    candidate paths of distinct lengths drawn from 1..8 hops; each path after the first shares
    its first links with an earlier one half the time (so candidates share a bottleneck), and
    half the networks are mirrored so that the shared links sit at h2's end instead. Every link
    draws its capacity from FAMILY_CAPACITIES; h3.. hang off random switches and load the
    paths with their traffic. The paths between s1 and s2 are exactly these candidates: every
    path branches off an earlier one and never rejoins it before s2."""
    if hosts < 2:
        raise ValueError("hosts: at least 2 (the probe pair)")
    rng = random.Random(seed)
    src, dst = "s1", "s2"
    switches = [src, dst]
    routes: list[list[str]] = []
    for length in rng.sample(FAMILY_HOPS, rng.randint(2, 4)):
        # links shared with an earlier route: a proper prefix, and never all but the last link
        # of a route that already ends there (that link would be a duplicate)
        earlier = rng.choice(routes) if routes and rng.random() < 0.5 else None
        top = min(length, len(earlier) - 1) - 1 if earlier else 0
        shared = rng.randint(1, top) if top >= 1 else 0
        if shared and length - shared == 1 and shared == len(earlier) - 2:
            shared -= 1
        route = earlier[:shared + 1] if shared else [src]
        while len(route) < length:
            switches.append(f"s{len(switches) + 1}")
            route.append(switches[-1])
        routes.append(route + [dst])
    ends = list(dict.fromkeys(tuple(sorted(pair)) for r in routes for pair in zip(r, r[1:])))
    links = [{"nodes": list(pair), "capacity_mbps": rng.choice(FAMILY_CAPACITIES)} for pair in ends]
    host_list = [_host(i) for i in range(hosts)]
    attached = [src, dst] + [rng.choice(switches) for _ in range(hosts - 2)]
    if rng.random() < 0.5:
        attached[:2] = [dst, src]
    links += [{"nodes": [h["name"], s], "capacity_mbps": ACCESS_MBPS} for h, s in zip(host_list, attached)]
    hops = sorted(len(r) - 1 for r in routes)
    return {"name": f"family-{seed}",
            "description": f"Training family, seed {seed}: h1 on {attached[0]} and h2 on {attached[1]} joined by "
                           f"{len(routes)} paths of {', '.join(map(str, hops))} hops; capacities drawn from "
                           f"{'/'.join(map(str, FAMILY_CAPACITIES))} Mbit/s.",
            "switches": [{"name": s, "dpid": i + 1} for i, s in enumerate(switches)],
            "hosts": host_list, "links": links}


def _spec(name: str, switches: list[str], hosts: list[dict], links: list[list[str]], capacity: float) -> dict:
    return {"name": name, "switches": [{"name": s, "dpid": i + 1} for i, s in enumerate(switches)],
            "hosts": hosts, "links": [{"nodes": lk, "capacity_mbps": capacity} for lk in links]}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m topologies.generate", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    z = sub.add_parser("zoo", help="a Topology Zoo network (topohub), by the rule in zoo()")
    z.add_argument("name", help="topohub's name, e.g. Abilene, Bics, GtsCe")
    z.add_argument("--seed", type=int, default=0, help="draws the switches the hosts hang off")
    z.add_argument("--hosts", type=int, default=4)
    z.add_argument("--capacities", default=",".join(map(str, ZOO_CAPACITIES)), metavar="MBPS,...",
                   help="capacity classes, lowest edge betweenness first (default %(default)s)")
    z.add_argument("--delay", action="store_true", help="link delay from great-circle length (needs tc netem)")
    m = sub.add_parser("family", help="one network of the training family")
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--hosts", type=int, default=6)
    f = sub.add_parser("fattree")
    f.add_argument("--k", type=int, default=4)
    r = sub.add_parser("ring")
    r.add_argument("--switches", type=int, required=True)
    r.add_argument("--hosts-per-switch", type=int, default=1)
    for parser in (f, r):
        parser.add_argument("--capacity", type=float, default=100, metavar="MBPS", help="of every link (default 100)")
    args = p.parse_args()
    try:
        if args.kind == "zoo":
            try:
                capacities = tuple(float(c) for c in args.capacities.split(","))
            except ValueError:
                p.error(f"--capacities: numbers separated by commas, got '{args.capacities}'")
            spec = zoo(load_zoo(args.name), args.seed, args.hosts, capacities, args.delay)
        elif args.kind == "family":
            spec = family(args.seed, args.hosts)
        elif args.kind == "fattree":
            spec = fat_tree(args.k, args.capacity)
        else:
            spec = ring(args.switches, args.hosts_per_switch, args.capacity)
        parse_spec(spec, f"generate {args.kind}")     # what we print must load
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        p.error(str(exc))
    json.dump(spec, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
