"""An Internet Topology Zoo network as plain values: its PoPs' labels and (longitude, latitude),
its links with their great-circle length, reduced to its largest connected part.

Both offline users of the Zoo read it through here (controller/files.py reads topohub's file):
placement measures latency on it, topologies/zoo.py turns it into a spec for the lab. Parsing
is kept apart from reading so that a malformed or disconnected network can be tested as a dict.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import networkx as nx
import numpy as np

from controller.core.spec import TopologyError

EARTH_RADIUS_KM = 6371.0
ZOO_PREFIX = "topozoo/"


@dataclass(frozen=True)
class ZooNetwork:
    name: str                     # topohub's file name, e.g. Abilene
    labels: tuple[str, ...]       # PoP names, made unique, in the Zoo's node order
    coordinates: np.ndarray       # (n, 2) longitude, latitude in degrees
    graph: nx.Graph               # nodes 0..n-1 (index into labels), edges carry km
    dropped: tuple[str, ...] = ()  # labels of the nodes outside the largest connected part

    @property
    def source(self) -> str:
        return ZOO_PREFIX + self.name


def great_circle_km(lon_lat: np.ndarray) -> np.ndarray:
    """Haversine distance between every two (longitude, latitude) points, in km."""
    lon, lat = np.radians(lon_lat[:, 0]), np.radians(lon_lat[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def parse_zoo(raw: object, name: str) -> ZooNetwork:
    """topohub's node-link dict -> ZooNetwork. Self-loops and repeated links collapse; a node
    without coordinates or a link to an unknown node is an error naming the network; islands
    (a few Zoo networks have them) are dropped, since one network needs one connected part."""
    where = ZOO_PREFIX + name
    try:
        nodes, edges = raw["nodes"], raw["edges"]
        ids = [str(node["id"]) for node in nodes]
    except (TypeError, KeyError) as exc:
        raise TopologyError(f"{where}: not a node-link network (missing {exc})") from None
    if len(set(ids)) != len(ids):
        raise TopologyError(f"{where}: duplicate node ids")
    try:
        coords = np.array([node.get("pos") for node in nodes], dtype=float)
    except (TypeError, ValueError):
        coords = np.empty(0)
    if coords.shape != (len(ids), 2) or not np.isfinite(coords).all():
        raise TopologyError(f"{where}: a node without coordinates")
    # names may repeat in the Zoo (two PoPs in one city): suffix the id to keep them apart
    labels = [str(node.get("name") or f"n{node_id}") for node, node_id in zip(nodes, ids)]
    counts = Counter(labels)
    labels = [f"{label}#{node_id}" if counts[label] > 1 else label for label, node_id in zip(labels, ids)]
    index = {node_id: i for i, node_id in enumerate(ids)}
    km = great_circle_km(coords)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(ids)))
    for edge in edges:
        try:
            a, b = index[str(edge["source"])], index[str(edge["target"])]
        except (TypeError, KeyError):
            raise TopologyError(f"{where}: a link to an unknown node ({edge!r:.80})") from None
        if a != b:
            graph.add_edge(a, b, km=float(km[a, b]))
    if not graph.number_of_edges():
        raise TopologyError(f"{where}: no links")
    keep = sorted(max(nx.connected_components(graph), key=lambda part: (len(part), -min(part))))
    dropped = tuple(labels[i] for i in sorted(set(range(len(labels))) - set(keep)))
    if dropped:
        graph = nx.convert_node_labels_to_integers(graph.subgraph(keep).copy(), ordering="sorted")
    return ZooNetwork(name, tuple(labels[i] for i in keep), coords[keep], graph, dropped)
