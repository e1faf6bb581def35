"""The interface every path policy implements (the policies are in controller/policies/).

A policy scores each candidate path from its features (lower is better) and the lowest
score wins, ties going to the earlier candidate (fewer hops); policies that are not a score
override rank() instead. rank() gives the choice with the scores it was made by, from one
scoring, so that a decision can be explained (GET /api/v1/decisions) at no extra cost. Only a `load_aware` policy is given measured features (the others
read hops alone: their utilisation, loss and latency are 0), and it does not prefer a path
because its load cannot be seen: paths with links lacking recent statistics rank after the
measured ones with headroom, before the measured ones that are full. A policy that `learns` is
told, once it is measured, what the path it chose showed after each of its decisions (see
Balancer._learn), and what the candidates it `compared` the chosen one with showed at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.core.settings import ConfigError


class Experience(NamedTuple):
    before: list[PathFeatures]      # the candidates' features at the decision
    action: int                     # the chosen one's index
    after: PathFeatures             # the chosen path measured after the decision
    # by index, the chosen candidate and those Policy.compared names, all measured at one poll
    # after the decision (a compared one None if not measured with the chosen one by the
    # outcome's deadline, left out if its path broke); empty for a policy that compares none.
    # The chosen one's is `after` but with --q-window flow, where `after` is a mean of windows
    alternatives: Mapping[int, PathFeatures | None] = MappingProxyType({})


class Policy:
    name = ""
    learns = False
    load_aware = False

    def score(self, features: PathFeatures) -> float:
        raise NotImplementedError

    def scores(self, features: list[PathFeatures]) -> list[float]:
        return [self.score(f) for f in features]

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        """Index of the chosen candidate (never called with an empty list)."""
        return self.rank(key, features)[0]

    def rank(self, key: FlowKey | None, features: list[PathFeatures]) -> tuple[int, list[float] | None]:
        """The chosen candidate's index and every candidate's score as the choice saw them;
        None for the scores of a policy that does not choose by score (round robin, a hash, chance)."""
        scores = self.scores(features)
        if self.load_aware:
            return min(range(len(scores)), key=lambda i: (_standing(features[i]), scores[i])), scores
        return min(range(len(scores)), key=scores.__getitem__), scores

    def learn(self, experience: list[Experience]) -> None:
        """Outcomes of earlier decisions (only called when `learns`)."""

    def compared(self, before: list[PathFeatures], action: int) -> tuple[int, ...]:
        """The candidates a decision's lesson compares the chosen one with (a policy that
        learns): its outcome waits, until its deadline, for a poll that measures them and the
        chosen path alike, so that both terms hold the same moment. None, by default."""
        return ()

    def reload(self) -> None:
        """Load the policy's model file again (a policy without one refuses)."""
        raise ConfigError(f"policy is '{self.name}', not 'bpann' or 'learned': no model to reload")

    def reset(self) -> None:
        """Forget what the policy learnt (a policy that learns nothing refuses)."""
        raise ConfigError(f"policy is '{self.name}', not 'qlearning': no Q-table to reset")

    def describe(self) -> dict:
        return {"policy": self.name}


def _standing(f: PathFeatures) -> int:
    """0: measured, with headroom; 1: load unknown; 2: measured and full."""
    return 1 if f.unknown else 2 * (f.utilisation >= 1.0)
