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
from controller.files import load_spec

US_PER_KM = 5.0             # light in fibre: about 2/3 of c, so 5 us per km
EARTH_RADIUS_KM = 6371.0
ZOO_PREFIX = "topozoo/"


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


def great_circle_km(lon_lat: np.ndarray) -> np.ndarray:
    """Haversine distance between every two (longitude, latitude) points, in km."""
    lon, lat = np.radians(lon_lat[:, 0]), np.radians(lon_lat[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _all_pairs(graph: nx.Graph, n: int) -> np.ndarray:
    out = np.full((n, n), np.inf)
    for src, lengths in nx.all_pairs_dijkstra_path_length(graph, weight="latency_ms"):
        for dst, value in lengths.items():
            out[src, dst] = value
    return out


def zoo_names() -> list[str]:
    """The Topology Zoo networks topohub ships, by file name (e.g. Bics, TataNld)."""
    import importlib.resources

    import topohub
    folder = importlib.resources.files(topohub) / "data" / "topozoo"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def from_zoo(name: str) -> Network:
    """A Topology Zoo network by its topohub name (case-insensitive: bics, Bics, TataNld)."""
    import topohub
    known = {n.lower(): n for n in zoo_names()}
    key = known.get(name.removeprefix(ZOO_PREFIX).lower())
    if key is None:
        raise TopologyError(f"{ZOO_PREFIX}{name}: not a Topology Zoo network topohub ships "
                            f"(try one of {', '.join(sorted(known.values())[:8])}, ...)")
    raw = topohub.get(ZOO_PREFIX + key)
    ids = [node["id"] for node in raw["nodes"]]
    index = {node_id: i for i, node_id in enumerate(ids)}
    coords = np.array([node["pos"] for node in raw["nodes"]], dtype=float)
    if coords.shape != (len(ids), 2) or not np.isfinite(coords).all():
        raise TopologyError(f"{ZOO_PREFIX}{key}: a node without coordinates")
    # names may repeat in the Zoo (two PoPs in one city): suffix the id to keep them apart
    names = [node.get("name") or f"n{node['id']}" for node in raw["nodes"]]
    seen: dict[str, int] = {}
    for name_ in names:
        seen[name_] = seen.get(name_, 0) + 1
    names = [f"{nm}#{node_id}" if seen[nm] > 1 else nm for nm, node_id in zip(names, ids)]
    km = great_circle_km(coords)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(ids)))
    for edge in raw["edges"]:
        a, b = index[edge["source"]], index[edge["target"]]
        if a != b:
            graph.add_edge(a, b, latency_ms=km[a, b] * US_PER_KM / 1000.0)
    if not nx.is_connected(graph):
        # a few Zoo networks have islands; placement over one network needs the largest part
        keep = sorted(max(nx.connected_components(graph), key=len))
        graph = nx.convert_node_labels_to_integers(graph.subgraph(keep).copy(), ordering="sorted")
        names, coords = [names[i] for i in keep], coords[keep]
    return Network(key, tuple(names), graph, _all_pairs(graph, len(names)), coords,
                   source=f"{ZOO_PREFIX}{key}")


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

