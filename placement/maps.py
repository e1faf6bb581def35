"""A placement on the map: links in grey, each switch coloured by its controller, controllers
as stars (matplotlib, Agg). Topology Zoo networks are drawn at their (longitude, latitude);
project specs have no coordinates and get a seeded spring layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .network import Network
from .problem import Placement


def draw(network: Network, placement: Placement, path: str | Path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    if network.coordinates is not None:
        xy = network.coordinates
    else:
        layout = nx.spring_layout(network.graph, seed=1)
        xy = np.array([layout[i] for i in range(network.n)])
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=90)
    for a, b in network.graph.edges():
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.8", lw=0.8, zorder=1)
    colours = plt.get_cmap("tab10")
    index = {site: i for i, site in enumerate(placement.controllers)}
    ctrl = np.array([index[int(s)] for s in placement.assign])
    ax.scatter(xy[:, 0], xy[:, 1], c=[colours(c % 10) for c in ctrl], s=28, zorder=2,
               edgecolors="k", linewidths=0.3)
    for site, i in index.items():
        ax.scatter(*xy[site], marker="*", s=320, color=colours(i % 10), edgecolors="k", linewidths=0.8,
                   zorder=3, label=f"controller {i}: {network.switches[site]}")
    if network.coordinates is not None:
        ax.set_xlabel("longitude (deg)")
        ax.set_ylabel("latitude (deg)")
        ax.set_aspect(1 / np.cos(np.radians(xy[:, 1].mean())))
    else:
        ax.set_axis_off()
    ax.set_title(title or f"{network.name}: {placement.method}, k={len(placement.controllers)}, "
                          f"mean {placement.objective_ms:.2f} ms", fontsize=10)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
