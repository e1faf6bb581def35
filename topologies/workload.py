"""The all-pairs workload: TCP flows between every ordered pair of hosts, their sizes drawn from
the heavy-tailed flow-size distributions data-centre load-balancing papers compare on, and the
metric they compare: flow completion time (FCT) slowdown by size bucket.

Flow-size CDFs, (bytes, cumulative probability), sampled by linear interpolation between the
points as the reference generator does (github.com/datacenter/empirical-traffic-gen, files
DCTCP_CDF and VL2_CDF, the points pFabric, CONGA and HULA simulate with):
- web search: Alizadeh et al., "Data Center TCP (DCTCP)", SIGCOMM 2010, Fig. 4 (query and
  background traffic of a production search cluster);
- data mining: Greenberg et al., "VL2: a scalable and flexible data center network",
  SIGCOMM 2009, Fig. 2 (a data-mining cluster: most flows tiny, most bytes in 100 MB+ flows).

Slowdown = FCT / the ideal FCT on an idle network, size over the capacity of the widest path
between the two hosts (the path a flow alone would best get). The capacity of the path the flow
actually took would flatter a policy that sends flows down thin paths. A flow can beat that ideal
by the shaper's burst: Mininet's htb class lets HTB_BURST_BYTES through at line rate once its
bucket is full (measured: 50,719 bytes in 15.1 ms over a 20 Mbit/s path, slowdown 0.74, where
size less burst over capacity gives 14.1 ms), so a slowdown under 1 is real, not an error.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np

from controller.core.spec import Spec
from topologies.lab import ROOT
from topologies.traffic import Player

WEB_SEARCH = ((0, 0.0), (10_000, 0.15), (20_000, 0.2), (30_000, 0.3), (50_000, 0.4), (80_000, 0.53),
              (200_000, 0.6), (1_000_000, 0.7), (2_000_000, 0.8), (5_000_000, 0.9), (10_000_000, 0.97),
              (30_000_000, 1.0))
DATA_MINING = ((0, 0.0), (180, 0.1), (216, 0.2), (560, 0.3), (900, 0.4), (1_100, 0.5), (1_870, 0.6),
               (3_160, 0.7), (10_000, 0.8), (400_000, 0.9), (3_160_000, 0.95), (100_000_000, 0.98),
               (1_000_000_000, 1.0))
CDFS = {"web-search": WEB_SEARCH, "data-mining": DATA_MINING}
SMALL_BYTES = 100_000         # small flows: under 100 kB (the latency-sensitive ones)
LARGE_BYTES = 10_000_000      # large flows: 10 MB and more (pFabric's buckets)
BASE_PORT, BASE_SPORT = 6000, 40000


@dataclass(frozen=True)
class Flow:
    start_s: float
    src: str
    dst: str
    size_bytes: int
    port: int           # the sink's
    sport: int          # the sender's: one flow, one decision of the balancer
    bound_s: int        # hard limit on its life (Player's `timeout`)


def sample_sizes(cdf, n: int, rng: np.random.Generator, max_bytes: int | None = None) -> np.ndarray:
    """n sizes by inverse transform: a uniform draw mapped through the piecewise-linear CDF;
    at least 1 byte, and at most max_bytes when given (a lab cannot wait for a 1 GB flow: the
    cut changes the tail, so say so when using it)."""
    sizes, probabilities = np.array(cdf, dtype=float).T
    if not (np.all(np.diff(probabilities) >= 0) and probabilities[0] == 0 and probabilities[-1] == 1):
        raise ValueError("a CDF must rise from 0 to 1")
    drawn = np.interp(rng.uniform(0, 1, n), probabilities, sizes)
    drawn = np.maximum(np.ceil(drawn), 1)
    return (np.minimum(drawn, max_bytes) if max_bytes else drawn).astype(np.int64)


def all_pairs(hosts: list[str], seed: int, cdf=WEB_SEARCH, rounds: int = 1, mean_gap_s: float = 0.2,
              max_bytes: int | None = None, bound_s: int = 60) -> list[Flow]:
    """`rounds` flows between every ordered pair of distinct hosts, in a seeded random order,
    starting at Poisson arrivals `mean_gap_s` apart on average, sizes drawn from `cdf`."""
    if len(hosts) < 2 or rounds < 1 or mean_gap_s <= 0 or bound_s < 3:
        raise ValueError("all-pairs needs two hosts or more, one round or more, a positive gap and a bound of 3 s or more")
    rng = np.random.default_rng(seed)
    order = random.Random(seed)
    pairs = [(a, b) for _ in range(rounds) for a in hosts for b in hosts if a != b]
    order.shuffle(pairs)
    starts = np.cumsum(rng.exponential(mean_gap_s, len(pairs)))
    sizes = sample_sizes(cdf, len(pairs), rng, max_bytes)
    return [Flow(round(float(t), 3), a, b, int(size), BASE_PORT + i % 2000, BASE_SPORT + i % 20000, bound_s)
            for i, ((a, b), t, size) in enumerate(zip(pairs, starts, sizes))]


def widest_mbps(spec: Spec, src: str, dst: str) -> float:
    """The largest bottleneck capacity of any path between two hosts: the bottleneck of their
    path in a maximum spanning tree (which holds a widest path between every two nodes)."""
    graph = nx.Graph()
    graph.add_edges_from((lk.a, lk.b, {"capacity_mbps": lk.capacity_mbps}) for lk in spec.links)
    tree = nx.maximum_spanning_tree(graph, weight="capacity_mbps")
    path = nx.shortest_path(tree, src, dst)
    return min(tree.edges[a, b]["capacity_mbps"] for a, b in zip(path, path[1:]))


HTB_BURST_BYTES = 15 * 1024     # mininet/link.py TCIntf.bwCmds: 'htb rate ... burst 15k'


def ideal_fct_s(size_bytes: int, capacity_mbps: float) -> float:
    return size_bytes * 8 / (capacity_mbps * 1e6)


def slowdowns(spec: Spec, outcomes: list[dict]) -> list[dict]:
    """Each outcome (a Flow's fields, `seconds` and `complete`) with its ideal FCT and its
    slowdown; a flow cut at its bound counts at the time it ran (a lower bound), flagged."""
    widest: dict[tuple[str, str], float] = {}
    out = []
    for o in outcomes:
        key = (o["src"], o["dst"])
        if key not in widest:
            widest[key] = widest_mbps(spec, *key)
        ideal = ideal_fct_s(o["size_bytes"], widest[key])
        out.append({**o, "ideal_s": ideal, "slowdown": o["seconds"] / ideal})
    return out


def by_bucket(rows: list[dict]) -> dict:
    """The comparison load balancers report: small flows' mean and p99 slowdown, medium and
    large flows' mean, each with its count, and how many flows did not complete."""
    def pick(low, high):
        return np.array([r["slowdown"] for r in rows if low <= r["size_bytes"] < high])

    small, medium, large = pick(0, SMALL_BYTES), pick(SMALL_BYTES, LARGE_BYTES), pick(LARGE_BYTES, np.inf)

    def mean(a):
        return float(a.mean()) if len(a) else None

    return {"small": {"flows": len(small), "mean": mean(small),
                      "p99": float(np.percentile(small, 99)) if len(small) else None},
            "medium": {"flows": len(medium), "mean": mean(medium)},
            "large": {"flows": len(large), "mean": mean(large)},
            "incomplete": sum(not r["complete"] for r in rows)}


class FlowPlayer(Player):
    """Plays all-pairs flows as Player plays transfers (sink half a second before its sender),
    with topologies/probes.py's sink and push: a push's time runs from connect() to the
    sink's acknowledgement of its last byte, what the user of the flow waits."""

    def _server(self, t: Flow) -> list[str]:
        return [sys.executable, "-m", "topologies.probes", "sink", "--port", str(t.port), "--timeout", str(t.bound_s)]

    def _client(self, i: int, t: Flow) -> list[str]:
        return [sys.executable, "-m", "topologies.probes", "push", "--dst", self.net.get(t.dst).IP(),
                "--port", str(t.port), "--sport", str(t.sport), "--bytes", str(t.size_bytes),
                "--timeout", str(t.bound_s - 2)]       # the push gives up, and reports, before `timeout` kills it

    def _popen(self, host, cmd: list[str], client: int | None) -> subprocess.Popen:
        if client is None:
            return host.popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(self._report(client), "w") as report:
            return host.popen(cmd, cwd=ROOT, stdout=report, stderr=subprocess.DEVNULL)

    def done(self) -> bool:
        """Every flow started and every process it started has exited."""
        return not self._thread.is_alive() and all(p.poll() is not None for p in self.procs)

    def outcomes(self) -> list[dict]:
        """For every started flow: its fields, `seconds` and `complete` as its push reported;
        a push that printed nothing (killed) is left out and counted by the caller."""
        out = []
        for i in self.started:
            try:
                result = json.loads(self._report(i).read_text())
            except (OSError, ValueError):
                continue
            out.append({**asdict(self.transfers[i]), "seconds": float(result["seconds"]),
                        "complete": bool(result["complete"])})
        return out
