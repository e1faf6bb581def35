"""Path selection policies: one small interface, chosen by name.

A policy scores each candidate path from its features (lower is better) and the lowest
score wins, ties going to the earlier candidate; policies that are not a score (round robin,
hashing) override choose() instead.
"""

from __future__ import annotations

from controller.flows import FlowKey
from controller.monitor import PathFeatures
from controller.settings import ConfigError


class Policy:
    name = ""

    def score(self, features: PathFeatures) -> float:
        raise NotImplementedError

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        """Index of the chosen candidate (never called with an empty list)."""
        scores = [self.score(f) for f in features]
        return min(range(len(scores)), key=scores.__getitem__)


class ShortestPath(Policy):
    """Fewest hops."""
    name = "shortest"

    def score(self, features: PathFeatures) -> float:
        return features.hops


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (ShortestPath,)}


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(f"policy: unknown '{name}' (known: {', '.join(sorted(POLICIES))})") from None
