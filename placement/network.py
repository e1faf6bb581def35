"""A network to place controllers in: switches, their coordinates (where known) and the
switch-to-switch latency along shortest paths.

Two sources:
- an Internet Topology Zoo network shipped by the `topohub` package (offline, MIT), whose
  nodes carry (longitude, latitude): a link's latency is its great-circle length times the
  propagation delay of fibre, 5 us/km;
- a project topology spec (controller/core/spec.py), whose links may carry `delay_ms`; a link
  without one counts `hop_ms` (the spec has no coordinates, so maps use a seeded layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from controller.core.spec import TopologyError
from controller.core.zoo import great_circle_km
from controller.files import load_spec, load_zoo

US_PER_KM = 5.0             # light in fibre: about 2/3 of c, so 5 us per km


@dataclass(frozen=True)
class Network:
    name: str
    switches: tuple[str, ...]                       # names, in index order
    graph: nx.Graph                                 # nodes are indices 0..n-1, edges carry latency_ms
    latency_ms: np.ndarray                          # (n, n) shortest-path latency, symmetric, 0 on the diagonal
    coordinates: np.ndarray | None = None           # (n, 2) longitude, latitude in degrees; None for specs
    source: str = ""

    @property
    def n(self) -> int:
        return len(self.switches)

    def distance_km(self) -> np.ndarray:
        """Great-circle distance between every two switches (needs coordinates)."""
        if self.coordinates is None:
            raise TopologyError(f"{self.source}: no coordinates")
        return great_circle_km(self.coordinates)


def _all_pairs(graph: nx.Graph, n: int) -> np.ndarray:
    out = np.full((n, n), np.inf)
    for src, lengths in nx.all_pairs_dijkstra_path_length(graph, weight="latency_ms"):
        for dst, value in lengths.items():
            out[src, dst] = value
    return out


def from_zoo(name: str) -> Network:
    """A Topology Zoo network by its topohub name (case-insensitive: bics, Bics, TataNld), its
    largest connected part (controller/core/zoo.py); a link's latency is its length in fibre."""
    zoo = load_zoo(name)
    graph = nx.Graph()
    graph.add_nodes_from(zoo.graph.nodes)
    graph.add_edges_from((a, b, {"latency_ms": km * US_PER_KM / 1000.0}) for a, b, km in zoo.graph.edges(data="km"))
    return Network(zoo.name, zoo.labels, graph, _all_pairs(graph, len(zoo.labels)), zoo.coordinates,
                   source=zoo.source)


def from_spec(path: str | Path, hop_ms: float = 1.0) -> Network:
    """A project topology spec: its switches and switch links; a link's latency is its
    `delay_ms`, or `hop_ms` where the spec gives none (0)."""
    spec = load_spec(path)
    names = tuple(s.name for s in spec.switches)
    index = {name: i for i, name in enumerate(names)}
    graph = nx.Graph()
    graph.add_nodes_from(range(len(names)))
    for link in spec.switch_links():
        graph.add_edge(index[link.a], index[link.b], latency_ms=link.delay_ms or hop_ms)
    return Network(spec.name, names, graph, _all_pairs(graph, len(names)), None, source=str(path))


def load_network(name: str, hop_ms: float = 1.0) -> Network:
    """A spec file if `name` is a path to one (ends in .json), else a Topology Zoo name."""
    if name.endswith(".json"):
        return from_spec(name, hop_ms)
    return from_zoo(name)

