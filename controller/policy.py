"""Path selection policies: one small interface, chosen by name."""

from __future__ import annotations

from controller.flows import FlowKey
from controller.network import Network
from controller.paths import Path
from controller.settings import ConfigError


class Policy:
    """Picks one of a flow's candidate paths (never called with an empty list)."""
    name = ""

    def choose(self, key: FlowKey, candidates: list[Path], net: Network) -> Path:
        raise NotImplementedError


class ShortestPath(Policy):
    """Fewest hops; among equals, the first candidate (candidates come in a stable order)."""
    name = "shortest"

    def choose(self, key: FlowKey, candidates: list[Path], net: Network) -> Path:
        return min(candidates, key=len)


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (ShortestPath,)}


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(f"policy: unknown '{name}' (known: {', '.join(sorted(POLICIES))})") from None
