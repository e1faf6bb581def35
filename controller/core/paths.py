"""Candidate paths between switches: the k shortest simple paths by hop count, cached
until the switch graph changes."""

from __future__ import annotations

from itertools import islice, pairwise

import networkx as nx

from controller.core.discovery import End
from controller.core.network import Network

Path = tuple[int, ...]   # dpids from the source host's switch to the destination host's


class PathFinder:
    def __init__(self, k: int) -> None:
        self.k = k
        self._version = -1
        self._cache: dict[tuple[int, int], list[Path]] = {}

    def candidates(self, net: Network, src: int, dst: int) -> list[Path]:
        if net.version != self._version:
            self._cache.clear()
            self._version = net.version
        key = (src, dst)
        if key not in self._cache:
            self._cache[key] = _k_shortest(net.graph(), src, dst, self.k)
        return self._cache[key]


def _k_shortest(g: nx.DiGraph, src: int, dst: int, k: int) -> list[Path]:
    if src not in g or dst not in g:
        return []
    try:
        return [tuple(p) for p in islice(nx.shortest_simple_paths(g, src, dst), k)]
    except nx.NetworkXNoPath:
        return []


def is_live(net: Network, path: Path) -> bool:
    g = net.graph()
    return all(d in g for d in path) and all(g.has_edge(a, b) for a, b in pairwise(path))


def hops(net: Network, path: Path, src: End, dst: End) -> list[tuple[int, int, int]]:
    """(dpid, in_port, out_port) for each switch of a live path from host port src to dst."""
    g = net.graph()
    in_ports = [src.port] + [g.edges[a, b]["in_port"] for a, b in pairwise(path)]
    out_ports = [g.edges[a, b]["out_port"] for a, b in pairwise(path)] + [dst.port]
    return list(zip(path, in_ports, out_ports))
