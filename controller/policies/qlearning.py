"""The Q-learning policy and its table: states from a coarse view of the candidate paths, the
Bellman update, decaying epsilon, and a JSON file so that learning survives restarts.

State: for each candidate (in candidate order) its hop count and a load level: 0-3 by
bottleneck utilisation (under 0.25, 0.5, 0.8, above), raised to 3 when the path loses packets
or queues (latency over 10 ms). Action: the index of the chosen candidate. Reward: minus the
chosen path's latency in ms, minus 100 ms per unit of loss, measured over the polling window
after the decision.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller import files
from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.core.policy import Experience, Policy
from controller.core.settings import Settings

log = logging.getLogger("lb.policy")

FORMAT = 1
LEVELS = (0.25, 0.5, 0.8)
LOSS_PENALTY_MS = 100.0
CONGESTED_LATENCY_MS = 10.0


class QTableError(ValueError):
    """A Q-table file that cannot be used; the message names the file and what is wrong."""


def level(f: PathFeatures) -> int:
    if f.loss > 0.01 or f.latency_ms > CONGESTED_LATENCY_MS:
        return len(LEVELS)
    return sum(f.utilisation >= x for x in LEVELS)


def state_of(features: list[PathFeatures]) -> str:
    return " ".join(f"{f.hops}:{level(f)}" for f in features)


def reward(f: PathFeatures) -> float:
    return -(f.latency_ms + LOSS_PENALTY_MS * f.loss)


@dataclass
class QTable:
    alpha: float                  # learning rate
    gamma: float                  # discount of the next state's value
    epsilon: float                # exploration rate now; decays per decision ...
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.02     # ... down to this
    q: dict[str, list[float]] = field(default_factory=dict)
    decisions: int = 0
    updates: int = 0
    rewards: list[float] = field(default_factory=list)   # the last 100, for the learning curve

    def __post_init__(self) -> None:
        for name, lo, hi in (("alpha", 0, 1), ("gamma", 0, 0.99), ("epsilon", 0, 1),
                             ("epsilon_decay", 0, 1), ("epsilon_min", 0, 1)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and lo <= value <= hi) or (name == "alpha" and value == 0):
                raise QTableError(f"{name}: must be in {'(' if name == 'alpha' else '['}{lo}, {hi}], got {value!r}")

    def values(self, state: str, n: int) -> list[float]:
        row = self.q.setdefault(state, [0.0] * n)
        if len(row) < n:
            row.extend([0.0] * (n - len(row)))
        return row

    def choose(self, state: str, n: int, rng: random.Random) -> int:
        """Epsilon-greedy; ties go to the earlier candidate (fewer hops). Zero-initialised
        values with negative rewards make untried actions look best: they get tried."""
        self.decisions += 1
        explore = rng.random() < self.epsilon
        if self.epsilon > self.epsilon_min:     # a rate set below the floor (0: greedy) stays
            self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        if explore:
            return rng.randrange(n)
        row = self.values(state, n)[:n]
        return row.index(max(row))

    def update(self, state: str, action: int, r: float, next_state: str, n_next: int) -> float:
        """Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)]; the new Q(s,a)."""
        row = self.values(state, action + 1)
        best_next = max(self.values(next_state, n_next)[:n_next]) if n_next else 0.0
        row[action] += self.alpha * (r + self.gamma * best_next - row[action])
        self.updates += 1
        self.rewards = (self.rewards + [r])[-100:]
        return row[action]

    # -- the file -----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "alpha": self.alpha, "gamma": self.gamma, "epsilon": self.epsilon,
                "epsilon_decay": self.epsilon_decay, "epsilon_min": self.epsilon_min,
                "decisions": self.decisions, "updates": self.updates, "rewards": self.rewards, "q": self.q}

    def save(self, path: str | Path) -> None:
        """Replace the file atomically, and only if it is absent or a Q-table: a path given by
        mistake, or a file put there since, is never overwritten. Checking costs a read of
        the file, as much as writing it. Raises QTableError naming the file."""
        data = (json.dumps(self.to_json(), allow_nan=False) + "\n").encode()
        if len(data) > files.MAX_JSON_BYTES:
            raise QTableError(f"{path}: not saved: the table has outgrown the "
                              f"{files.MAX_JSON_BYTES} bytes a table file may have")
        if os.path.lexists(path):
            try:
                load(path)
            except QTableError as exc:
                raise QTableError(f"{exc}; not a Q-table, so not overwritten") from None
        try:
            files.write_atomic(path, data)
        except OSError as exc:
            raise QTableError(f"{path}: cannot write: {exc.strerror}") from None


def load(path: str | Path, **overrides) -> QTable:
    """A saved table, with the given hyper-parameters overriding the saved ones."""
    data = files.read_json(path, QTableError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise QTableError(f"{path}: field 'format': expected {FORMAT}")
    q = data.get("q")
    if not isinstance(q, dict) or not all(isinstance(k, str) and isinstance(v, list) and v and
                                          all(isinstance(x, (int, float)) for x in v) for k, v in q.items()):
        raise QTableError(f"{path}: field 'q': expected an object of state -> list of numbers")
    rewards = data.get("rewards", [])
    if not isinstance(rewards, list) or not all(isinstance(x, (int, float)) for x in rewards):
        raise QTableError(f"{path}: field 'rewards': expected a list of numbers")
    fields = {}
    missing = [name for name in ("alpha", "gamma", "epsilon") if name not in data]
    if missing:
        raise QTableError(f"{path}: field '{missing[0]}' is missing")
    for name in ("alpha", "gamma", "epsilon", "epsilon_decay", "epsilon_min", "decisions", "updates"):
        if name in data:
            fields[name] = data[name]
    for name in ("decisions", "updates"):
        if not isinstance(fields.get(name, 0), int) or fields.get(name, 0) < 0:
            raise QTableError(f"{path}: field '{name}': expected a count")
    try:
        table = QTable(q={k: [float(x) for x in v] for k, v in q.items()}, rewards=[float(x) for x in rewards],
                       **fields)
    except QTableError as exc:
        raise QTableError(f"{path}: field {exc}") from None
    return replace(table, **{k: v for k, v in overrides.items() if v is not None})


class QLearningPolicy(Policy):
    """Q-learning online (the table above): epsilon-greedy on the table's values for the
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
        self.table = QTable(alpha=alpha, gamma=gamma, epsilon=epsilon)
        if self.table_path and os.path.lexists(self.table_path):
            try:
                self.table = load(self.table_path, alpha=alpha, gamma=gamma)
                log.info("Q-table %s loaded: %d states, %d updates so far", self.table_path,
                         len(self.table.q), self.table.updates)
            except QTableError as exc:
                log.warning("%s; starting from an empty Q-table, not saved over that file", exc)
                self._save_failed = True     # said: saving will fail until the file is moved

    def scores(self, features: list[PathFeatures]) -> list[float]:
        return [-v for v in self.table.values(state_of(features), len(features))[:len(features)]]

    def score(self, features: PathFeatures) -> float:
        return self.scores([features])[0]

    def choose(self, key: FlowKey | None, features: list[PathFeatures]) -> int:
        if key is None:       # a look (REST), not a decision: no exploration, nothing counted
            return super().choose(key, features)
        return self.table.choose(state_of(features), len(features), self._rng)

    def learn(self, experience: list[Experience]) -> None:
        for before, action, after in experience:
            self.table.update(state_of(before), action, reward(after[action]),
                              state_of(after), len(after))
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
        except QTableError as exc:
            if not self._save_failed:   # say it once, not every poll
                log.warning("Q-table not saved: %s", exc)
            self._save_failed = True

    def describe(self) -> dict:
        t = self.table
        return {"policy": self.name, "table": str(self.table_path) if self.table_path else None,
                "states": len(t.q), "decisions": t.decisions, "updates": t.updates,
                "alpha": t.alpha, "gamma": t.gamma, "epsilon": round(t.epsilon, 4),
                "mean_reward": round(sum(t.rewards) / len(t.rewards), 3) if t.rewards else None}
