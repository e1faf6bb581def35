"""Path selection policies: one small interface, chosen by name.

A policy scores each candidate path from its features (lower is better) and the lowest
score wins, ties going to the earlier candidate (fewer hops); policies that are not a score
override choose() instead. Only a `load_aware` policy is given measured features (the others
read hops alone: their utilisation, loss and latency are 0), and it does not prefer a path
because its load cannot be seen: paths with links lacking recent statistics rank after the
measured ones with headroom, before the measured ones that are full. A policy that `learns` is told, about two polls after each of its
decisions, what the candidates' features became (see Balancer.poll).
"""

from __future__ import annotations

import logging
import os
import random
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from controller.flows import FlowKey
from controller.monitor import PathFeatures
from controller.settings import ConfigError, Settings
from models import bpann, qtable

log = logging.getLogger("lb.policy")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "bpann"
MEMO_SIZE = 4096


Experience = tuple[list[PathFeatures], int, list[PathFeatures]]   # before, chosen index, after


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
        scores = self.scores(features)
        if self.load_aware:
            return min(range(len(scores)), key=lambda i: (_standing(features[i]), scores[i]))
        return min(range(len(scores)), key=scores.__getitem__)

    def learn(self, experience: list[Experience]) -> None:
        """Outcomes of earlier decisions (only called when `learns`)."""

    def describe(self) -> dict:
        return {"policy": self.name}


def _standing(f: PathFeatures) -> int:
    """0: measured, with headroom; 1: load unknown; 2: measured and full."""
    return 1 if f.unknown else 2 * (f.utilisation >= 1.0)


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


class RoundRobin(Policy):
    """Each new flow of a host pair takes the next candidate in turn."""
    name = "round-robin"

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def score(self, features: PathFeatures) -> float:
        return 0.0

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        pair = (key.src_ip, key.dst_ip) if key else ("", "")
        turn = self._next.get(pair, 0)
        self._next[pair] = turn + 1
        return turn % len(features)


class Ecmp(Policy):
    """Equal-cost multipath: a hash of the flow's 5-tuple picks among the fewest-hop
    candidates, so a flow always maps to the same path and flows spread across equals."""
    name = "ecmp"

    def score(self, features: PathFeatures) -> float:
        return features.hops

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        fewest = min(f.hops for f in features)
        equal = [i for i, f in enumerate(features) if f.hops == fewest]
        digest = zlib.crc32(repr(key).encode()) if key else 0
        return equal[digest % len(equal)]


class RandomPath(Policy):
    """A uniformly random candidate (seeded): exploration, for collecting training data."""
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)

    def score(self, features: PathFeatures) -> float:
        return 0.0

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        return self._random.randrange(len(features))


class BpannPolicy(Policy):
    """Lowest load predicted by the BPANN from the four features. Without a usable model it
    says so and behaves as least-loaded until a good model is reloaded."""
    name = "bpann"
    load_aware = True

    def __init__(self, model_path: str | Path = DEFAULT_MODEL) -> None:
        self.model_path = Path(model_path)
        # the model and its predictions, swapped as one: a reload (SIGHUP lands between any two
        # bytecodes) while candidates are scored must not clear the memo under the scoring
        self._loaded: tuple[bpann.Bpann | None, dict[PathFeatures, float]] = (None, {})
        self._fallback = LeastLoaded()
        try:
            self.reload()
        except bpann.ModelError as exc:
            log.warning("%s; using the least-loaded policy until a model loads", exc)

    def reload(self) -> None:
        """Load the model file again; on failure keep what was in use and raise ModelError."""
        self._loaded = (bpann.load(self.model_path), {})
        log.info("BPANN model %s loaded (%d hidden neurons, label %s)", self.model_path,
                 self.model.hidden, self.model.meta.get("label"))

    def score(self, features: PathFeatures) -> float:
        return self.scores([features])[0]

    def scores(self, features: list[PathFeatures]) -> list[float]:
        """Predictions are remembered per feature vector (features change once per poll, new
        flows arrive thousands of times a second); forgotten on reload and beyond 4096."""
        model, memo = self._loaded
        if model is None:
            return [self._fallback.score(f) for f in features]
        scores = [memo.get(f) for f in features]
        todo = [f for f, score in zip(features, scores) if score is None]
        if not todo:
            return scores
        x = np.array([[f.utilisation, f.loss, f.latency_ms, f.hops] for f in todo])
        new = dict(zip(todo, model.predict(x).tolist(), strict=True))
        if len(memo) > MEMO_SIZE:
            memo.clear()
        memo.update(new)
        return [new[f] if score is None else score for f, score in zip(features, scores)]

    @property
    def model(self) -> bpann.Bpann | None:
        return self._loaded[0]

    def describe(self) -> dict:
        if self.model is None:
            return {"policy": self.name, "model": None, "fallback": self._fallback.name}
        return {"policy": self.name, "model": str(self.model_path), "hidden": self.model.hidden,
                "label": self.model.meta.get("label"), "trained_at": self.model.meta.get("trained_at")}


class QLearningPolicy(Policy):
    """Q-learning online (models/qtable.py): epsilon-greedy on the table's values for the
    current state, updated from the chosen path's measured latency and loss after the
    decision. With a table file, learning continues across restarts; a bad file warns and
    an empty table is used, kept in memory only: a file that is not a Q-table is never
    overwritten."""
    name = "qlearning"
    learns = True
    load_aware = True

    def __init__(self, table_path: str | Path | None = None, alpha: float = Settings.q_alpha,
                 gamma: float = Settings.q_gamma, epsilon: float = Settings.q_epsilon, seed: int = 0) -> None:
        self.table_path = Path(table_path) if table_path else None
        self._rng = random.Random(seed)
        self._save_failed = False
        self.table = qtable.QTable(alpha=alpha, gamma=gamma, epsilon=epsilon)
        if self.table_path and os.path.lexists(self.table_path):
            try:
                self.table = qtable.load(self.table_path, alpha=alpha, gamma=gamma)
                log.info("Q-table %s loaded: %d states, %d updates so far", self.table_path,
                         len(self.table.q), self.table.updates)
            except qtable.QTableError as exc:
                log.warning("%s; starting from an empty Q-table, not saved over that file", exc)
                self._save_failed = True     # said: saving will fail until the file is moved

    def scores(self, features: list[PathFeatures]) -> list[float]:
        return [-v for v in self.table.values(qtable.state_of(features), len(features))[:len(features)]]

    def score(self, features: PathFeatures) -> float:
        return self.scores([features])[0]

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        if key is None:       # a look (REST), not a decision: no exploration, nothing counted
            return super().choose(key, features)
        return self.table.choose(qtable.state_of(features), len(features), self._rng)

    def learn(self, experience: list[Experience]) -> None:
        for before, action, after in experience:
            self.table.update(qtable.state_of(before), action, qtable.reward(after[action]),
                              qtable.state_of(after), len(after))
        if experience:
            self.save()

    def reset(self) -> None:
        """Empty the table and its file; QTableError if the file cannot be replaced, and
        then nothing is reset."""
        empty = replace(self.table, q={}, rewards=[], decisions=0, updates=0)
        if self.table_path:
            empty.save(self.table_path)
        self.table, self._save_failed = empty, False
        log.info("Q-table reset")

    def save(self) -> None:
        if self.table_path is None:
            return
        try:
            self.table.save(self.table_path)
            self._save_failed = False
        except qtable.QTableError as exc:
            if not self._save_failed:   # say it once, not every poll
                log.warning("Q-table not saved: %s", exc)
            self._save_failed = True

    def describe(self) -> dict:
        t = self.table
        return {"policy": self.name, "table": str(self.table_path) if self.table_path else None,
                "states": len(t.q), "decisions": t.decisions, "updates": t.updates,
                "alpha": t.alpha, "gamma": t.gamma, "epsilon": round(t.epsilon, 4),
                "mean_reward": round(sum(t.rewards) / len(t.rewards), 3) if t.rewards else None}


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (ShortestPath, LeastLoaded, RoundRobin, Ecmp,
                                                          BpannPolicy, QLearningPolicy, RandomPath)}


def make_policy(name: str, settings: Settings | None = None) -> Policy:
    settings = settings or Settings()
    if name not in POLICIES:
        raise ConfigError(f"policy: unknown '{name}' (known: {', '.join(sorted(POLICIES))})")
    if name == BpannPolicy.name:
        return BpannPolicy(settings.model or DEFAULT_MODEL)
    if name == QLearningPolicy.name:
        return QLearningPolicy(settings.q_table, settings.q_alpha, settings.q_gamma, settings.q_epsilon)
    return POLICIES[name]()
