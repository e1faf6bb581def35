"""Policies that need no model: hops, load, turns, hashes, chance."""

from __future__ import annotations

import random
import zlib

from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.core.policy import Policy


class ShortestPath(Policy):
    """Fewest hops."""
    name = "shortest"

    def score(self, features: PathFeatures) -> float:
        return features.hops


class LeastLoaded(Policy):
    """Lowest bottleneck utilisation; differences under 1% are noise, so they tie (and the
    shorter path wins)."""
    name = "least-loaded"
    load_aware = True

    def score(self, features: PathFeatures) -> float:
        return round(features.utilisation, 2)


class Widest(Policy):
    """Most headroom: the capacity left on the path's thinnest link after measured and booked
    load (widest-path routing); under 1 Mbit/s apart they tie (and the shorter path wins). The
    fixed rule beside the learners that see capacity: a learner that beats least-loaded may owe
    it to seeing capacity, which this isolates."""
    name = "widest"
    load_aware = True

    def score(self, features: PathFeatures) -> float:
        return -round(min(features.headroom_mbps, 1e9))


class RoundRobin(Policy):
    """Each new flow of a host pair takes the next candidate in turn."""
    name = "round-robin"

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def score(self, features: PathFeatures) -> float:
        return 0.0

    def rank(self, key: FlowKey | None, features: list[PathFeatures]) -> tuple[int, None]:
        pair = (key.src_ip, key.dst_ip) if key else ("", "")
        turn = self._next.get(pair, 0)
        self._next[pair] = turn + 1
        return turn % len(features), None


class Ecmp(Policy):
    """Equal-cost multipath: a hash of the flow's 5-tuple picks among the fewest-hop
    candidates, so a flow always maps to the same path and flows spread across equals."""
    name = "ecmp"

    def score(self, features: PathFeatures) -> float:
        return features.hops

    def rank(self, key: FlowKey | None, features: list[PathFeatures]) -> tuple[int, None]:
        fewest = min(f.hops for f in features)
        equal = [i for i, f in enumerate(features) if f.hops == fewest]
        digest = zlib.crc32(repr(key).encode()) if key else 0
        return equal[digest % len(equal)], None


class RandomPath(Policy):
    """A uniformly random candidate (seeded): exploration, for collecting training data."""
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(f"paths:{seed}")   # not the traffic's draws of the same seed

    def score(self, features: PathFeatures) -> float:
        return 0.0

    def rank(self, key: FlowKey | None, features: list[PathFeatures]) -> tuple[int, None]:
        return self._random.randrange(len(features)), None
