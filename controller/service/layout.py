"""Where to draw each switch and host on the web page (GET /api/v1/layout): a layout of the
spec's network and whatever was discovered beyond it, in the unit square.

Positions stay put while the network changes: they are computed again only when a node or
link appears that was never placed (a link going down must not move the picture). Computing
blocks the controller's loop, so the method is bounded by size: Kamada-Kawai (the clearest,
0.2 s at 100 nodes), then a seeded spring layout (0.3 s at 400), then a circle.
"""

from __future__ import annotations

import networkx as nx

from controller.core.balancer import Balancer

KAMADA_KAWAI_NODES = 100
SPRING_NODES = 400
MAX_PLACED = 4096       # nodes ever placed, beyond which the picture starts again from what is there
MARGIN = 0.05


def picture(balancer: Balancer) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """The nodes to draw (name -> {kind, ip?}) and the undirected links (sorted name pair ->
    {kind, capacity_mbps}): the spec's, then the discovered ones it does not list."""
    net, spec = balancer.net, balancer.net.spec
    nodes: dict[str, dict] = {}
    links: dict[tuple[str, str], dict] = {}
    if spec is not None:
        nodes.update((s.name, {"kind": "switch"}) for s in spec.switches)
        nodes.update((h.name, {"kind": "host", "ip": h.ip}) for h in spec.hosts)
        for link in spec.links:
            kind = "host" if "host" in (nodes[link.a]["kind"], nodes[link.b]["kind"]) else "switch"
            links[tuple(sorted((link.a, link.b)))] = {"kind": kind, "capacity_mbps": link.capacity_mbps}
    for dpid in net.ports:
        nodes.setdefault(net.name(dpid), {"kind": "switch"})
    for src, dst in net.links.links():
        pair = tuple(sorted((net.name(src.dpid), net.name(dst.dpid))))
        links.setdefault(pair, {"kind": "switch", "capacity_mbps": balancer.capacity_mbps(src.dpid, dst.dpid)})
    for host in net.hosts.values():
        name, switch = net.host_name(host), net.name(host.at.dpid)
        nodes.setdefault(name, {"kind": "host", "ip": host.ip})
        nodes.setdefault(switch, {"kind": "switch"})
        links.setdefault(tuple(sorted((name, switch))),
                         {"kind": "host", "capacity_mbps": balancer.access_capacity_mbps(host)})
    return nodes, links


def positions(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Each node of g at a point of [MARGIN, 1 - MARGIN]^2 (a lone node in the middle)."""
    if len(g) == 0:
        return {}
    if len(g) <= KAMADA_KAWAI_NODES:
        raw = nx.kamada_kawai_layout(g)
    elif len(g) <= SPRING_NODES:
        raw = nx.spring_layout(g, seed=1)
    else:
        raw = nx.circular_layout(sorted(g))
    xs, ys = [p[0] for p in raw.values()], [p[1] for p in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = (1 - 2 * MARGIN) / span
    # centred in the square, keeping the layout's proportions
    dx = MARGIN + ((1 - 2 * MARGIN) - (max(xs) - min(xs)) * scale) / 2 - min(xs) * scale
    dy = MARGIN + ((1 - 2 * MARGIN) - (max(ys) - min(ys)) * scale) / 2 - min(ys) * scale
    return {n: (round(float(p[0]) * scale + dx, 4), round(float(p[1]) * scale + dy, 4)) for n, p in raw.items()}


class Layout:
    """GET /api/v1/layout: the picture with a position for every node, kept across calls."""

    def __init__(self) -> None:
        self._placed = nx.Graph()
        self._positions: dict[str, tuple[float, float]] = {}

    def __call__(self, balancer: Balancer) -> dict:
        nodes, links = picture(balancer)
        if not (nodes.keys() <= self._positions.keys() and all(self._placed.has_edge(*p) for p in links)):
            if len(self._placed) + len(nodes) > MAX_PLACED:
                self._placed = nx.Graph()
            self._placed.add_nodes_from(nodes)
            self._placed.add_edges_from(links)
            self._positions = positions(self._placed)
        spec = balancer.net.spec
        return {"spec": spec.name if spec is not None else None,
                "nodes": [{"name": n, **attrs, "x": self._positions[n][0], "y": self._positions[n][1]}
                          for n, attrs in sorted(nodes.items())],
                "links": [{"a": a, "b": b, **attrs} for (a, b), attrs in sorted(links.items())]}
