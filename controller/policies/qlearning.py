"""Q-learning over paths: the state of one candidate path, the Bellman update, bounded
exploration, and a JSON file so that learning survives restarts.

State: one candidate path's own condition, so that what is learnt on one host pair, or one
network, applies to any other (a state of the whole candidate set was seen a few times at most:
391 states for 1,161 decisions on H1-H7): its hop count (capped at 8); its headroom class, the
least capacity left on its links after measured and booked load, on a log2 scale of Mbit/s (0
under 1 ... 10 at 512 and more); its load level, 0-3 by bottleneck utilisation (under 0.25,
0.5, 0.8, above), 4 when it loses packets or queues (latency over 10 ms), "u" when a link's load
is not known. Action: send the new flow along a path in that state; Q(s) is the reward flows
sent into s met, and the candidate whose state has the highest value is taken; ties (paths of
one state: equal hops, headroom class and level) go to the one reading better now, bookings
included, then to fewer hops. A path whose load is not measured is taken only when no
candidate's is, and teaches the table nothing. A state never met is worth the value of its
load level ("l3": every path seen at that level taught it), and a level never met the reward
the path's measured features give now (what least-loaded would judge it by) over 1 - gamma,
the scale learnt values settle at, or, its load not measured, the worst value learnt; never 0,
which is above any measured reward: a loaded path in a class not met before would otherwise
be tried as if it were the best (at 144bc4f,
states worth 0 until met: 152 states in 1,204 decisions, RTT 2.4x least-loaded's; a table that
had met only idle paths took one losing 20% at 80 ms). Reward: minus the chosen path's
latency in ms, 100 ms per unit of loss and 10 ms per unit of bottleneck utilisation, measured
strictly after the decision (Balancer._learn). The utilisation term is the room the path has
left once the flow is on it: latency and loss stay flat until a link is full, so a path the
flow nearly filled taught the same as an idle one (at a7f0f8b, without it: RTT 2.2x
least-loaded's, which ranks by exactly that room). Update: Q(s) <- Q(s) + step [r + gamma
Q(s') - Q(s)], s' the chosen path's state in that measurement, the step 1/visits (the mean of
what the state met: rewards are heavy-tailed) down to alpha; gamma 0 treats each flow as the
one-step decision it is (a contextual bandit). Exploration: epsilon-greedy with epsilon
decaying to a floor, or count-based: Q(s) + BONUS_MS / sqrt(1 + visits(s)), which tries the
states it knows least instead of random paths.

A linear model (--q-model linear) instead of the table: Q(path) = w . phi(path), phi the path's
own features (below), learnt by the same update as a normalised least-mean-squares step (Q(x)
moves a fraction of the way to the reward whatever the inputs' scale, 1/updates down to alpha;
each weight takes its input's share of the error). What one path teaches moves the value of
every path with similar features, where the table learns each of its states apart. Written by
hand: it is a dot product and one update line, and scikit-learn's SGDRegressor.partial_fit
costs more per decision than the whole table lookup and keeps no JSON-friendly state.

A relative table (--q-model relative, RelativeQ below) instead values a path by its standing
among the candidates of its decision: how much busier than the least utilised, how many hops
longer than the shortest, congested or not. A correction table (--q-model correction,
CorrectionQ below) learns, per path state, how much worse than its reading a path turns out,
and ranks by the reading plus that correction.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller import files
from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.core.policy import Experience, Policy
from controller.core.settings import Q_EXPLORATIONS, Settings
from controller.policies.heuristics import LeastLoaded

log = logging.getLogger("lb.policy")

FORMAT = 2
LEVELS = (0.25, 0.5, 0.8)
LOSS_PENALTY_MS = 100.0
LOAD_PENALTY_MS = 10.0      # per unit of utilisation: as much as the queue that makes a path congested
CONGESTED_LATENCY_MS = 10.0
MAX_HOPS = 8
MAX_HEADROOM_CLASS = 10
BONUS_MS = 5.0


class QTableError(ValueError):
    """A Q-table file that cannot be used; the message names the file and what is wrong."""


def level(f: PathFeatures) -> int | str:
    if f.unknown:
        return "u"
    if f.loss > 0.01 or f.latency_ms > CONGESTED_LATENCY_MS:
        return len(LEVELS) + 1
    return sum(f.utilisation >= x for x in LEVELS)


def state_of(f: PathFeatures) -> str:
    h = f.headroom_mbps     # inf: no inter-switch link (both hosts on one switch)
    headroom = 0 if not h >= 1 else MAX_HEADROOM_CLASS if h == math.inf else min(int(math.log2(h)) + 1,
                                                                                    MAX_HEADROOM_CLASS)
    return f"h{min(f.hops, MAX_HOPS)} r{headroom} l{level(f)}"


STATE = re.compile(rf"(h[0-{MAX_HOPS}] r([0-9]|{MAX_HEADROOM_CLASS}) )?l([0-{len(LEVELS) + 1}]|u)", re.ASCII)


def _level_key(state: str) -> str | None:
    """The coarse state "l<level>" a path state falls back on (None for other keys)."""
    level_part = state.rpartition(" ")[2]
    return level_part if level_part != state and level_part.startswith("l") else None


def reward(f: PathFeatures) -> float:
    return -(f.latency_ms + LOSS_PENALTY_MS * f.loss + LOAD_PENALTY_MS * f.utilisation)


FEATURES = ("bias", "utilisation", "loss", "latency", "hops", "unknown", "fill")
TYPICAL_FLOW_MBPS = 5.0     # the experiment's background flows: 2-8 Mbit/s


def phi(f: PathFeatures) -> tuple[float, ...]:
    """The linear model's inputs, each about 0..1 on any network: latency in units of the
    congestion threshold (capped at 10), hops over MAX_HOPS, and fill, the share of the path's
    headroom a typical flow would take (1 when it has none, 0 between hosts of one switch)."""
    h = f.headroom_mbps
    fill = 0.0 if h == math.inf else min(TYPICAL_FLOW_MBPS / h, 1.0) if h > 0 else 1.0    # none, or not a number
    return (1.0, f.utilisation, f.loss, min(f.latency_ms / CONGESTED_LATENCY_MS, 10.0),
            min(f.hops, MAX_HOPS) / MAX_HOPS, float(f.unknown > 0), fill)


@dataclass
class QTable:
    alpha: float                  # the least step: a state's is max(1/visits, alpha)
    gamma: float                  # discount of the next state's value
    epsilon: float                # exploration rate now; decays per decision ...
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.02     # ... down to this
    explore: str = "epsilon"      # or "count"
    q: dict[str, list[float]] = field(default_factory=dict)    # state -> [value, visits]
    decisions: int = 0
    updates: int = 0
    rewards: list[float] = field(default_factory=list)   # the last 100 targets (target_name), for describe()

    def __post_init__(self) -> None:
        for name, lo, hi in (("alpha", 0, 1), ("gamma", 0, 0.99), ("epsilon", 0, 1),
                             ("epsilon_decay", 0, 1), ("epsilon_min", 0, 1)):
            value = getattr(self, name)
            if (not (isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi)
                    or (name == "alpha" and value == 0)):
                raise QTableError(f"{name}: must be in {'(' if name == 'alpha' else '['}{lo}, {hi}], got {value!r}")
        if self.explore not in Q_EXPLORATIONS:
            raise QTableError(f"explore: must be one of {', '.join(Q_EXPLORATIONS)}, got {self.explore!r}")
        if self.explore == "count" and self.no_count:
            raise QTableError(f"explore: {self.no_count}")
        if self.bandit:
            self.gamma = 0.0

    model = "table"
    bandit = False              # gamma 0 whatever is asked (the models below say why)
    values_unmeasured = False   # a path of unknown load by its own key, and may take one (QLearningPolicy.rank)
    no_count = ""               # why the model cannot explore by count, if it cannot

    @staticmethod
    def key(f: PathFeatures) -> str:
        """What the table values a path by: its state."""
        return state_of(f)

    @classmethod
    def keys(cls, features: list[PathFeatures]) -> list:
        """Each candidate's key, given all of them (a path's own state needs none of the others)."""
        return [cls.key(f) for f in features]

    @staticmethod
    def coarse(state: str) -> str | None:
        """The coarser state one never met falls back on (and every update teaches too)."""
        return _level_key(state)

    states, states_text = STATE, "a path state (h<hops> r<headroom class> l<level>, or l<level>)"

    @classmethod
    def refused(cls, state: str, value: float) -> str | None:
        """Why a state read from a file cannot be this table's, None if it can: one of its
        states, of a value a reward can give (a positive one would draw every flow there)."""
        if not cls.states.fullmatch(state):
            return f"not {cls.states_text}"
        return None if value <= 0 else "a value above 0 (a reward is minus a latency)"

    target_name = "reward"

    def target(self, before: PathFeatures, after: PathFeatures) -> float:
        """What a decision teaches its path's state: the reward the path met after it."""
        return reward(after)

    def lesson(self, e: Experience) -> tuple[object, float] | None:
        """The key a decision teaches and its target; None if it teaches nothing."""
        return self.keys(e.before)[e.action], self.target(e.before[e.action], e.after)

    def compared(self, before: list[PathFeatures], action: int) -> tuple[int, ...]:
        """Policy.compared: none, for a model of the chosen path's own outcome."""
        return ()

    def worth(self, f: PathFeatures, value: float) -> float:
        """What a measured candidate is worth, given the value of its key (learnt, or a prior):
        that value."""
        return value

    def unmeasured(self, measured: list[float]) -> float:
        """What every candidate whose load is not measured is worth, given the measured ones'
        worths: the worst value learnt. One value for all, so that the reading, falsely idle,
        does not rank them (QLearningPolicy.rank); not the prior, a reward of about 0 then."""
        return min((row[0] for row in self.q.values()), default=0.0)

    def emptied(self, epsilon: float) -> QTable:
        """The same hyper-parameters, nothing learnt, exploring again from `epsilon`."""
        return type(self)(alpha=self.alpha, gamma=self.gamma, epsilon=epsilon, epsilon_decay=self.epsilon_decay,
                          epsilon_min=self.epsilon_min, explore=self.explore)

    def learnt(self) -> dict:
        """What GET /api/v1/policy shows of what was learnt."""
        return {"states": len(self.q)}

    def value(self, state: str, prior: float = 0.0) -> float:
        """Q(s), or for a state never met the value of its coarser state (the path table's load
        level, learnt from every path at that level), else `prior`; a read, which never adds a
        state to the table."""
        row = self.q.get(state) or self.q.get(self.coarse(state))
        return row[0] if row else prior

    def greedy(self, states: list[str], values: list[float], readings: list | None = None) -> int:
        """The candidate a decision takes when it does not explore at random: the highest value,
        with count exploration's bonus for the states visited least, ties to the best of
        `readings` if given, then to the earlier candidate; a read."""
        if self.explore == "count":
            values = [v + BONUS_MS / math.sqrt(1 + self.q.get(s, (0.0, 0))[1]) for s, v in zip(states, values)]
        keys = values if readings is None else list(zip(values, readings))
        return keys.index(max(keys))

    def choose(self, states: list[str], rng: random.Random, values: list[float] | None = None,
               readings: list | None = None) -> int:
        """The candidate to take, exploring as configured (a draw among the states the model
        may explore, greedy if none); ties as greedy's. `values`, the states' values if the
        caller has them already."""
        self.decisions += 1
        values = [self.value(s) for s in states] if values is None else values
        by_epsilon = self.explore == "epsilon"
        explore = by_epsilon and rng.random() < self.epsilon
        if by_epsilon and self.epsilon > self.epsilon_min:     # a rate set below the floor stays
            self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        pool = [i for i, s in enumerate(states) if self.explorable(s)] if explore else []
        pick = pool[rng.randrange(len(pool))] if pool else self.greedy(states, values, readings)
        self.took(states[pick], bool(pool))
        return pick

    def took(self, state: str, explored: bool) -> None:
        """A decision took a candidate in `state`, at random or not (for a model that counts)."""

    def explorable(self, state: str) -> bool:
        """Whether exploration may draw a candidate in `state`: any, for a table."""
        return True

    def step(self, visits: int) -> float:
        """The learning rate of a state's update, given its visits counting this one: 1/visits
        (the mean of what the state met) until that reaches alpha, then alpha, tracking drift.
        Rewards are heavy-tailed: on H1-H7 (at 8660e9f) the last 100 had median -3.8 ms, 5th
        percentile -29, least -159, and a constant step of 0.3 moved a value 30% of the way to
        each outlier, so a state's value was its last few rewards (docs/qlearning.md has the
        runs before and after)."""
        return max(1.0 / visits, self.alpha)

    def prior(self, r: float) -> float:
        """What a state never met whose path shows reward r now is worth: r for ever after,
        r / (1 - gamma), the scale learnt values settle at."""
        return r / (1.0 - self.gamma)

    def update(self, state: str, r: float, next_state: str) -> float:
        """Q(s) <- Q(s) + step [r + gamma Q(s') - Q(s)], Q(s') of a state never met the prior of r,
        what it showed (not read at gamma 0: `next_state` may be None); the new Q(s). A target
        that is not a finite number (an absurd measurement) teaches nothing."""
        target = r + (self.gamma * self.value(next_state, self.prior(r)) if self.gamma else 0.0)
        if not math.isfinite(target):
            return self.value(state)
        for key in filter(None, (self.coarse(state), state)):
            row = self.q.setdefault(key, [0.0, 0])
            row[1] += 1
            row[0] += self.step(row[1]) * (target - row[0])
        self._counted(r)
        return row[0]

    def _counted(self, r: float) -> None:
        self.updates += 1
        self.rewards = (self.rewards + [r])[-100:]

    # -- the file -----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "model": self.model, "alpha": self.alpha, "gamma": self.gamma,
                "epsilon": self.epsilon, "epsilon_decay": self.epsilon_decay, "epsilon_min": self.epsilon_min,
                "explore": self.explore, "decisions": self.decisions, "updates": self.updates,
                "rewards": self.rewards, "q": self.q}

    def save(self, path: str | Path) -> None:
        """Replace the file atomically, and only if it is absent or a Q-table of this kind: a path
        given by mistake, or a file put there since, is never overwritten. Checking costs a read of
        the file, as much as writing it. Raises QTableError naming the file."""
        try:
            data = (json.dumps(self.to_json(), allow_nan=False) + "\n").encode()
        except ValueError:
            raise QTableError(f"{path}: not saved: a learnt value is not a finite number") from None
        if len(data) > files.MAX_JSON_BYTES:
            raise QTableError(f"{path}: not saved: the table has outgrown the "
                              f"{files.MAX_JSON_BYTES} bytes a table file may have")
        if os.path.lexists(path):
            try:
                load(path, type(self))
            except QTableError as exc:
                raise QTableError(f"{exc}; not overwritten") from None
        try:
            files.write_atomic(path, data)
        except OSError as exc:
            raise QTableError(f"{path}: cannot write: {exc.strerror}") from None


@dataclass
class LinearQ(QTable):
    """Q(path) = w . phi(path) (the module's docstring); `q` stays empty. Always gamma 0, a
    contextual bandit: bootstrapping from the state after the decision, which the decision did
    not cause, moves Q(x') by the error times x.x'/|x|^2, and when gamma x.x' > |x|^2 (a flow
    that congests its path: the features after are larger) the error grows with every update
    (a repeated 30% -> 90% full transition, gamma 0.5: x1.096 an update, weights past 1e6 in
    100 updates). The table, one value per state, cannot diverge so."""
    model = "linear"
    values_unmeasured = True    # its input "unknown" learns what such a path is worth
    w: list[float] = field(default_factory=lambda: [0.0] * len(FEATURES))

    bandit = True
    no_count = "count exploration needs a table's visit counts; a linear model explores by epsilon"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.w) != len(FEATURES) or not all(isinstance(x, float) and math.isfinite(x) for x in self.w):
            raise QTableError(f"w: expected {len(FEATURES)} finite numbers ({', '.join(FEATURES)})")

    key = staticmethod(phi)

    @staticmethod
    def refused(state: str, value: float) -> str | None:
        return "a linear model's file has no states"

    def value(self, x: tuple[float, ...], prior: float = 0.0) -> float:
        """w . x (every input has a value: `prior` is never needed)."""
        return sum(wi * xi for wi, xi in zip(self.w, x))

    def update(self, x: tuple[float, ...], r: float, x_next: tuple[float, ...]) -> float:
        """w <- w + step [r - Q(x)] x / |x|^2, the step as a table state's over all updates: the
        error, spread over the features (|x| >= 1: the bias); the new Q(x). `x_next` is unused
        (gamma 0). A step is a convex move towards fitting r (step <= 1), so the weights stay
        within the rewards' scale; one that would not be finite (an absurd reward) is not taken."""
        error = r - self.value(x)
        norm = sum(xi * xi for xi in x)
        step = self.step(self.updates + 1)
        w = [wi + step * error * xi / norm for wi, xi in zip(self.w, x)]
        if all(math.isfinite(wi) for wi in w):
            self.w = w
            self._counted(r)
        return self.value(x)

    def learnt(self) -> dict:
        return {"weights": dict(zip(FEATURES, (round(x, 3) for x in self.w)))}

    def to_json(self) -> dict:
        return {**super().to_json(), "w": self.w}


GAPS = (0.01, 0.1, 0.25)   # utilisation over the least candidate's: 1 point (least-loaded rounds to whole ones), 10, 25
MAX_EXTRA_HOPS = 3
RELATIVE_STATE = re.compile(rf"g[0-{len(GAPS)}] x[0-{MAX_EXTRA_HOPS}] c[01]", re.ASCII)


def relative_state(f: PathFeatures, least: float, fewest: int) -> str:
    """A measured path's state among its candidates: its utilisation's gap class over the least
    utilised candidate's, its hops over the fewest (capped), and whether it is congested now."""
    gap = sum(f.utilisation - least >= x - 1e-9 for x in GAPS)
    return f"g{gap} x{min(f.hops - fewest, MAX_EXTRA_HOPS)} c{int(level(f) == len(LEVELS) + 1)}"


@dataclass
class RelativeQ(QTable):
    """A table over each candidate's standing among the others (--q-model relative): how much
    busier than the least utilised candidate it is, how many hops longer than the shortest,
    and whether it is congested (loss or queueing). 32 states on any network, where the path
    table's absolute states (hops, headroom class, load level) met 140 on H1-H7 in 2,200
    decisions, most a few times, and a state's value mixed what its path met with how busy the
    whole network was when it was taken (run G, docs/qlearning.md: a warm table valued a
    congested wide 4-hop path above idle short ones and sent 80% of h1's flows there). Here a
    state says where a path stands against its alternatives, what a decision weighs; its value
    is still the reward the chosen path met, not its gain over them, so how busy the network
    was still weighs on it, less: standings a choice compares are mostly met together. Always
    gamma 0, a contextual bandit: a standing after the decision needs the alternatives
    measured after it, which a decision does not cause either. A state never met is worth the
    reward its path reads now (the table's prior); none has a coarser state to fall back on
    (the inherited coarse() finds no load level in it)."""
    model = "relative"
    states, states_text = RELATIVE_STATE, "a relative state (g<gap class> x<extra hops> c<congested>)"
    bandit = True

    @staticmethod
    def key(f: PathFeatures) -> str:
        raise TypeError("a relative state needs the decision's other candidates: keys()")

    @classmethod
    def keys(cls, features: list[PathFeatures]) -> list:
        """Relative states of the measured candidates: utilisation against the least measured
        one's, hops against the fewest of all (a path's hops are known when its load is not);
        "u" (a state never learnt) for a candidate whose load is not known."""
        least = min((f.utilisation for f in features if not f.unknown), default=0.0)
        fewest = min(f.hops for f in features)
        return ["u" if f.unknown else relative_state(f, least, fewest) for f in features]


def correction_bound(state: str) -> float:
    """The most a correction of a state's load level can be: reward(after) <= 0, and a path
    at levels 0-3 reads at worst 10 ms, 1% loss and its level's top utilisation; none at level
    4 (a reading's latency has no top) or of unknown load."""
    n = (_level_key(state) or state)[1:]
    if not n.isdigit() or int(n) > len(LEVELS):
        return math.inf
    top = (LEVELS + (1.0,))[int(n)]
    return CONGESTED_LATENCY_MS + LOSS_PENALTY_MS * 0.01 + LOAD_PENALTY_MS * top


@dataclass
class CorrectionQ(QTable):
    """A table of corrections to the reading (--q-model correction): a measured candidate is
    worth the reward its features give now plus C(s), at most 0 (no outcome is better), s its
    path state (the path table's: hops, headroom class, load level), C(s) the mean of
    reward(after) - reward(reading at the decision) over the flows sent into that state; a
    state never met takes its load level's, if below 0 (a level's mean can be above 0, its
    queues having drained, which a congested state never met is not promised), else none.
    Nothing learnt, it ranks by the reading (with no link delays, the bottleneck's utilisation
    plus what queues and loss show). The path and relative tables learn the reward a state's
    flows met, which carries how busy the whole network was when the state was met (run H: a
    state of a congested short path learnt at calm times was valued above an idle long one);
    here the chosen path's reading at the decision is in both terms, and what is left is the
    change from the decision to the outcome: the load the flow adds, which its path's capacity
    (the headroom class) decides; a queue read at one moment that drains; the background's
    drift meanwhile, over the whole flow with --q-window flow; the chosen reading being the best
    of several (so the change leans below 0); and the reading's latency, the least of three
    probes a link, against the outcome's, of the probes after the decision. Gamma 0 whatever is
    asked, as the linear and relative models: the state after a decision is not its doing."""
    model = "correction"
    target_name = "correction"
    bandit = True

    @classmethod
    def refused(cls, state: str, value: float) -> str | None:
        """A path state, its correction no more than its level allows (correction_bound): one
        may be above 0 (a queue read at the decision that drained), not above any reading."""
        if not cls.states.fullmatch(state):
            return f"not {cls.states_text}"
        bound = correction_bound(state)
        return None if value <= bound else f"a correction above {bound:g}, more than its load level's reading can be"

    def value(self, state: str, prior: float = 0.0) -> float:
        """C(s), else its load level's if below 0, else `prior`; a read."""
        row = self.q.get(state)
        level = self.q.get(self.coarse(state))
        return row[0] if row else min(level[0], 0.0) if level else prior

    def prior(self, r: float) -> float:
        """A state never met (nor its load level) corrects nothing: its reading is taken as it is."""
        return 0.0

    def target(self, before: PathFeatures, after: PathFeatures) -> float:
        return reward(after) - reward(before)

    def worth(self, f: PathFeatures, value: float) -> float:
        return min(reward(f) + value, 0.0)

    def unmeasured(self, measured: list[float]) -> float:
        """The least measured candidate's worth (the reading of a path of unknown load is
        falsely idle, and a correction is not a worth), else 0."""
        return min(measured, default=0.0)


PAIR_STATE = re.compile(rf"g[0-{len(GAPS)}] x(-[1-{MAX_EXTRA_HOPS}]|[0-{MAX_EXTRA_HOPS}]) c[01][01]", re.ASCII)
BASELINE = "b"          # the baseline's own key: no advantage over itself, never learnt
SPREAD_MS = 20.0        # a fixed scale: twice the largest spread of run I's corrections (SD 5.3-10.1 ms)
TRUSTED_VISITS = 10     # SPIBB's N-wedge: a pair met fewer times keeps the baseline whatever its mean
MAX_ADVANTAGE_MS = 1000.0
EXPLORED_GAPS = 2       # exploration leaves the baseline for gap classes g0 and g1: under 10 points busier


_LEAST_LOADED = LeastLoaded()      # stateless: one for every decision


def baseline(features: list[PathFeatures]) -> int:
    """The candidate least-loaded takes."""
    return _LEAST_LOADED.rank(None, features)[0]


def pair_state(f: PathFeatures, base: PathFeatures) -> str:
    """A measured candidate's standing against the baseline's: its utilisation's gap class over
    the baseline's (which is the least, to a point), its hops over the baseline's (fewer is
    below 0), whether it is congested, whether the baseline is."""
    gap = sum(f.utilisation - base.utilisation >= x - 1e-9 for x in GAPS)
    extra = max(-MAX_EXTRA_HOPS, min(f.hops - base.hops, MAX_EXTRA_HOPS))
    congested = len(LEVELS) + 1
    return f"g{gap} x{extra} c{int(level(f) == congested)}{int(level(base) == congested)}"


def effective_visits(visits: int, alpha: float) -> float:
    """How many flows a value learnt by QTable.step weighs, 1 / sum of the squared weights:
    `visits` while the step is 1/visits (a mean), then an exponential mean's, which tends to
    2 / alpha - 1 (39 at 0.05) and shrinks its spread no further."""
    k0 = min(visits, math.floor(1 / alpha))
    q = (1 - alpha) ** 2
    m = visits - k0
    return 1 / (q ** m / k0 + alpha ** 2 * (1 - q ** m) / (1 - q)) if m else float(k0)


def lower_bound(mean: float, visits: int, alpha: float) -> float:
    """A pair's advantage less SPREAD_MS over the root of the flows its mean weighs: what the
    baseline table takes it for once it is met TRUSTED_VISITS times."""
    return mean - SPREAD_MS / math.sqrt(effective_visits(visits, alpha))


@dataclass
class BaselineQ(QTable):
    """Least-loaded, left only where the table has shown a gain (--q-model baseline), after
    safe policy improvement with baseline bootstrapping (SPIBB, Laroche et al., ICML 2019):
    the baseline's choice is kept for every pair met fewer than TRUSTED_VISITS times, and
    elsewhere unless a lower bound of the pair's advantage is above 0. Q(k) is the mean
    advantage of sending a flow to a candidate of pair state k (its standing against
    least-loaded's choice) instead of to least-loaded's choice: the chosen path's reward minus
    the baseline path's, both measured at the same poll after the decision, so that the moment
    (how busy the whole network was, a burst that drained everywhere) is in both terms, where
    a table of rewards (runs G, H) or of corrections to the reading (run I) carried it. A
    candidate is worth Q(k) - SPREAD_MS / sqrt(n), n the flows the value weighs
    (effective_visits: at least 3.2 ms of advantage at alpha 0.05), or -SPREAD_MS if the pair
    is not trusted; the baseline 0, and ties go to it. Its sign is not promised: the chosen
    path carries the flow and the baseline's does not, if the flow sends by then, but flows
    decided meanwhile go to the baseline path; and deviations within one poll share one
    moment. Only a decision that left the baseline teaches, by exploration (epsilon, only to a
    candidate under 10 points busier than the baseline and not congested: explorable) or to a
    trusted pair, and only one whose baseline was measured at the same poll as the chosen
    path (the balancer waits for one that measures both, until the outcome's deadline). Gamma 0
    whatever is asked, as the other models of a decision's own outcome. A candidate of unknown
    load, or any when the baseline's is unknown, is worth -SPREAD_MS ("u", never learnt, nor
    explored: it would teach nothing), and the baseline's choice stands wherever least-loaded
    ranks it: a path of unknown load after the measured ones with headroom, before the full
    ones."""
    model = "baseline"
    states, states_text = PAIR_STATE, "a pair state (g<gap class> x<hops over the baseline's> c<congested: it, the baseline>)"
    target_name = "advantage"
    bandit = True
    values_unmeasured = True
    no_count = ("count exploration: a bonus smaller than a baseline table's pessimism never takes a flow off "
                "the baseline, a larger one undoes it; it explores by epsilon")
    left: dict[str, int] = field(default_factory=lambda: {"explored": 0, "trusted": 0})    # decisions off the baseline
    unpaired: int = 0       # of those, measured without the baseline's path by the outcome's deadline (or it broke)

    @staticmethod
    def key(f: PathFeatures) -> str:
        raise TypeError("a pair state needs the decision's baseline candidate: keys()")

    @classmethod
    def keys(cls, features: list[PathFeatures]) -> list:
        """Each candidate's pair state against least-loaded's choice ("b"), "u" for a candidate
        whose load, or the baseline's, is not known (a key never learnt)."""
        b = baseline(features)
        return [BASELINE if i == b else "u" if f.unknown or features[b].unknown else pair_state(f, features[b])
                for i, f in enumerate(features)]

    @classmethod
    def refused(cls, state: str, value: float) -> str | None:
        """A pair state, its advantage of either sign but within MAX_ADVANTAGE_MS (a hostile
        1e300 would draw every flow to its pair for thousands of updates)."""
        if not cls.states.fullmatch(state):
            return f"not {cls.states_text}"
        return None if abs(value) <= MAX_ADVANTAGE_MS else f"an advantage beyond {MAX_ADVANTAGE_MS:g} ms either way"

    def value(self, state: str, prior: float = 0.0) -> float:
        """The lower bound of a trusted pair's advantage, 0 for the baseline, `prior` for a pair
        not trusted; a read."""
        if state == BASELINE:
            return 0.0
        row = self.q.get(state)
        if not row or row[1] < TRUSTED_VISITS:
            return prior
        return lower_bound(row[0], row[1], self.alpha)

    def prior(self, r: float) -> float:
        return -SPREAD_MS

    def greedy(self, states: list[str], values: list[float], readings: list | None = None) -> int:
        """The table's, ties to the baseline first."""
        firsts = [s == BASELINE for s in states]
        return super().greedy(states, values, firsts if readings is None else list(zip(firsts, readings)))

    def explorable(self, state: str) -> bool:
        """The baseline, or a candidate not congested whose gap class is below EXPLORED_GAPS
        (under 10 points busier than the baseline). In run J, where exploration drew from every
        candidate, the paths it took read far fuller than least-loaded's and the probe trains
        it moved met about four times their delay (docs/qlearning.md); a pair never explored
        is never trusted, so the table leaves the baseline only where trying costs little.
        Never a candidate of unknown load ("u"): it would teach nothing."""
        return state == BASELINE or (bool(PAIR_STATE.fullmatch(state)) and int(state[1]) < EXPLORED_GAPS
                                     and state[-2] == "0")

    def took(self, state: str, explored: bool) -> None:
        """Counts the decisions that left the baseline: drawn at random, or to a trusted pair."""
        if state != BASELINE:
            self.left["explored" if explored else "trusted"] += 1

    def learnt(self) -> dict:
        trusted = sorted(k for k in self.q if self.value(k, -1.0) > 0)
        return {"pairs": len(self.q), "trusted": trusted, "left": dict(self.left), "unpaired": self.unpaired}

    def compared(self, before: list[PathFeatures], action: int) -> tuple[int, ...]:
        """The baseline's candidate, for a decision that left it to a pair state."""
        keys = self.keys(before)
        return () if keys[action] in (BASELINE, "u") else (keys.index(BASELINE),)

    def lesson(self, e: Experience) -> tuple[object, float] | None:
        """A decision that left the baseline, both measured at one poll: its pair state, and
        the chosen path's reward minus the baseline's, within MAX_ADVANTAGE_MS (a path read at
        1.5 s would otherwise teach a value its own file refuses). One whose baseline was not
        measured with it is counted in `unpaired`."""
        keys = self.keys(e.before)
        if keys[e.action] in (BASELINE, "u"):
            return None
        baseline = e.alternatives.get(keys.index(BASELINE))
        if baseline is None:
            self.unpaired += 1
            return None
        advantage = reward(e.alternatives[e.action]) - reward(baseline)
        return keys[e.action], max(-MAX_ADVANTAGE_MS, min(advantage, MAX_ADVANTAGE_MS))    # a file's bound


MODELS: dict[str, type[QTable]] = {m.model: m for m in (QTable, LinearQ, RelativeQ, CorrectionQ, BaselineQ)}


def model_of(data: dict) -> object:
    """The model a table file's object says it holds: files from before the linear model hold tables."""
    return data.get("model", QTable.model)


def load(path: str | Path, kind: type[QTable] = QTable, **overrides) -> QTable:
    """A saved table (of class `kind`), with the given hyper-parameters overriding the saved ones."""
    data = files.read_json(path, QTableError)
    if (version := data.get("format") if isinstance(data, dict) else None) != FORMAT:
        raise QTableError(f"{path}: field 'format': expected {FORMAT}, not {str(version)[:20]} (format 1 "
                          "valued whole candidate sets, not paths; 3 kept a reading per state, tried at "
                          "deb5aa8 and replaced): move that file away")
    found = model_of(data)
    if found != kind.model:
        raise QTableError(f"{path}: field 'model': the file holds a {found!r} model, not a "
                          f"{kind.model!r} one (--q-model; --q-table and --service-q-table hold different tables)")
    q = data.get("q")
    if not isinstance(q, dict) or not all(isinstance(k, str) and isinstance(v, list) and len(v) == 2 and
                                          isinstance(v[0], (int, float)) and not isinstance(v[0], bool) and
                                          type(v[1]) is int and v[1] >= 0 for k, v in q.items()):
        raise QTableError(f"{path}: field 'q': expected an object of state -> [value, visits]")
    for k, v in q.items():
        if why := kind.refused(k, v[0]):
            raise QTableError(f"{path}: field 'q': state {k[:60]!r}: {why}")
    rewards = data.get("rewards", [])
    if not isinstance(rewards, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                for x in rewards):
        raise QTableError(f"{path}: field 'rewards': expected a list of numbers")
    fields = {}
    missing = [name for name in ("alpha", "gamma", "epsilon") if name not in data]
    if missing:
        raise QTableError(f"{path}: field '{missing[0]}' is missing")
    for name in ("alpha", "gamma", "epsilon", "epsilon_decay", "epsilon_min", "explore", "decisions", "updates"):
        if name in data:
            fields[name] = data[name]
    for name in ("decisions", "updates"):
        if type(fields.get(name, 0)) is not int or fields.get(name, 0) < 0:
            raise QTableError(f"{path}: field '{name}': expected a count")
    if kind.model == LinearQ.model:
        w = data.get("w")
        if not isinstance(w, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w):
            raise QTableError(f"{path}: field 'w': expected a list of numbers")
        fields["w"] = [float(x) for x in w]
    try:
        table = kind(q={k: [float(v[0]), int(v[1])] for k, v in q.items()}, rewards=[float(x) for x in rewards],
                       **fields)
    except QTableError as exc:
        raise QTableError(f"{path}: field {exc}") from None
    return replace(table, **{k: v for k, v in overrides.items() if v is not None})


class QLearningPolicy(Policy):
    """Q-learning online (the table above), learning from each decision's measured outcome.
    With a table file, learning continues across restarts; a bad file warns and an empty
    table is used, kept in memory only: a file that is not a Q-table is never overwritten."""
    name = "qlearning"
    learns = True
    load_aware = True
    table_kind = QTable
    stream = "paths"      # its random draws: not the member learner's, nor the traffic's, of one seed

    def __init__(self, table_path: str | Path | None = None, alpha: float = Settings.q_alpha,
                 gamma: float = Settings.q_gamma, epsilon: float = Settings.q_epsilon,
                 explore: str = Settings.q_explore, seed: int = 0, model: str = Settings.q_model) -> None:
        self.table_path = Path(table_path) if table_path else None
        self._rng = random.Random(f"{self.stream}:{seed}")
        self._save_failed = False
        if model != QTable.model:
            self.table_kind = MODELS[model]
        self.table = self.table_kind(alpha=alpha, gamma=gamma, epsilon=epsilon, explore=explore)
        self._epsilon = epsilon     # a reset starts exploring again from here
        self.unlearnt = 0           # decisions that taught nothing: on a path of unknown load, or (baseline) no pair
        if self.table_path and os.path.lexists(self.table_path):
            try:
                self.table = load(self.table_path, self.table_kind, alpha=alpha, gamma=gamma, explore=explore)
                log.info("Q-table %s loaded: %s, %d updates so far", self.table_path, self.table.learnt(),
                         self.table.updates)
            except QTableError as exc:
                log.warning("%s; starting from an empty Q-table, not saved over that file", exc)
                self._save_failed = True     # said: saving will fail until the file is moved

    def worths(self, features: list[PathFeatures], keys: list) -> list[float]:
        """What each candidate is worth to the model, from the value of its key (its fallbacks,
        else the table's prior of the reward its features give now); every path whose load is
        not measured alike for the tables, which learn no state of unknown load
        (QTable.unmeasured)."""
        t = self.table
        worths = [None if f.unknown and not t.values_unmeasured else t.worth(f, t.value(k, t.prior(reward(f))))
                  for f, k in zip(features, keys)]
        if None not in worths:      # every candidate measured, or a model that values the others itself
            return worths
        blind = t.unmeasured([w for w in worths if w is not None])
        return [blind if w is None else w for w in worths]

    def scores(self, features: list[PathFeatures]) -> list[float]:
        return [-v for v in self.worths(features, self.table.keys(features))]

    def rank(self, key: FlowKey | None, features: list[PathFeatures]) -> tuple[int, list[float]]:
        """A decision explores as configured; a look (REST, a member policy's, key None) takes
        the choice a decision would when it does not explore at random, counting nothing. The
        table chooses among the candidates whose load is measured, if any: one that is not
        reads idle, falsely, and teaches it nothing (the linear and baseline models value such
        a path by its key and choose among all). Candidates of equal value (one state, or
        states that fall back on one level's value) go to the one reading better now, the
        reward its features give, bookings included (one value per state took the first
        candidate, also for flows decided within one poll), then to fewer hops; among paths of
        unknown load, to fewer unknown links first (such a link reads idle). Exploration draws
        from the same candidates, those its model may explore (QTable.explorable). The scores
        are minus each candidate's worth: the chosen one is not always the lowest (a tie, or a
        candidate of unknown load left out)."""
        keys = self.table.keys(features)
        values = self.worths(features, keys)
        pool = [] if self.table.values_unmeasured else [i for i, f in enumerate(features) if not f.unknown]
        pool = pool or list(range(len(features)))
        states = [keys[i] for i in pool]
        args = ([values[i] for i in pool], [(-features[i].unknown, reward(features[i])) for i in pool])
        pick = (self.table.greedy(states, *args) if key is None else
                self.table.choose(states, self._rng, *args))
        return pool[pick], [0.0 - v for v in values]

    def compared(self, before: list[PathFeatures], action: int) -> tuple[int, ...]:
        return self.table.compared(before, action)

    def learn(self, experience: list[Experience]) -> None:
        t = self.table
        for e in experience:
            lesson = None if e.before[e.action].unknown and not t.values_unmeasured else t.lesson(e)
            if lesson is None:
                self.unlearnt += 1
            else:
                t.update(*lesson, t.key(e.after) if t.gamma else None)
        if experience:
            self.save()

    def reset(self) -> None:
        """Empty the table and its file; QTableError if the file cannot be replaced, and
        then nothing is reset."""
        empty = self.table.emptied(self._epsilon)
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
        return {"policy": self.name, "model": t.model, "table": str(self.table_path) if self.table_path else None,
                **t.learnt(), "decisions": t.decisions, "updates": t.updates, "unlearnt": self.unlearnt,
                "alpha": t.alpha, "gamma": t.gamma, "epsilon": round(t.epsilon, 4), "explore": t.explore,
                f"mean_{t.target_name}": round(sum(t.rewards) / len(t.rewards), 3) if t.rewards else None}
