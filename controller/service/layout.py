"""Where to draw each switch and host on the web page (GET /api/v1/layout): a layout of the
spec's network and whatever was discovered beyond it, in the unit square.

Positions stay put while the network changes: they are computed again only when a node or
link appears that was never placed (a link going down must not move the picture), and at most
once every RELAYOUT_S: computing blocks the controller's loop (Kamada-Kawai took 0.59 s at 100
nodes, a seeded spring layout 0.32 s at 400; beyond, a circle), and without a spec any host that
sends from a new address is a new node. Until the next layout a new node is drawn beside a
placed neighbour. Only the nodes and links there are now are laid out.
"""

from __future__ import annotations

import time

import networkx as nx

from controller.core.balancer import Balancer

KAMADA_KAWAI_NODES = 100
SPRING_NODES = 400
RELAYOUT_S = 30.0
MARGIN = 0.05
NUDGE = 0.03            # how far beside its neighbour a node placed between layouts goes


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

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._edges: set[tuple[str, str]] = set()
        self._positions: dict[str, tuple[float, float]] = {}
        self._laid_out = -float("inf")

    def __call__(self, balancer: Balancer) -> dict:
        nodes, links = picture(balancer)
        new = [n for n in sorted(nodes) if n not in self._positions]
        if new or not links.keys() <= self._edges:
            if self._clock() - self._laid_out >= RELAYOUT_S:
                g = nx.Graph()
                g.add_nodes_from(nodes)
                g.add_edges_from(links)
                self._positions, self._edges, self._laid_out = positions(g), set(links), self._clock()
            else:
                for n in new:
                    self._positions[n] = self._beside(n, links)
        spec = balancer.net.spec
        return {"spec": spec.name if spec is not None else None,
                "nodes": [{"name": n, **attrs, "x": self._positions[n][0], "y": self._positions[n][1]}
                          for n, attrs in sorted(nodes.items())],
                "links": [{"a": a, "b": b, **attrs} for (a, b), attrs in sorted(links.items())]}

    def _beside(self, node: str, links) -> tuple[float, float]:
        """Near a placed neighbour (the middle of the square if it has none)."""
        placed = [self._positions[m] for pair in links if node in pair for m in pair
                  if m != node and m in self._positions]
        x, y = placed[0] if placed else (0.5, 0.5)
        return (round(min(max(x + NUDGE, 0.0), 1.0), 4), round(min(max(y + NUDGE, 0.0), 1.0), 4))
