"""How a service picks a member for a new connection (controller.core.services.MemberPolicy):
round robin, least connections, smooth weighted round robin, random, and Q-learning.

Q-learning. A decision is one step (a contextual bandit, gamma 0): what follows from it is the
connection's response and the delay it adds to the other connections at its member.
State of a candidate: the service and member, its open connections (binned: 0, 1, 2, 3, 4,
5-6, 7-9, 10-14, 15+) and the load level of the round trip to it (the path the path policy
would take there and its answers' way back) by traffic that is not the member's own: 0-3 by
its busiest link's utilisation by other flows (as the path Q-learning's levels), u unknown. Reward: minus the
connection's cost in ms (cost_ms: its response time, and SHARED_COST of it for each
connection its member still holds at its FIN), so the member with the highest Q is the one
where a connection is expected to cost least: with its identity in the state it learns each
member's speed, with its connections its queue, with the path's level a fast member behind a
congested link. A state's value is the mean of the costs it met (step 1/visits) down to
--q-alpha, as the path table's: a response is heavy-tailed with the answer's length, so a
constant step let a few long answers decide; and a choice weighs it with its coarse state's
(the member and count on every path level) as its visits against POOLED, for the same reason.
A state never met falls back, pessimistically, on what is known: its member and connection
count (the path level ignored), else the member's nearest lower count learnt, scaled as if the
member shared itself among its connections (_shared: n open, (n + 1)(1 + SHARED_COST n) /
((m + 1)(1 + SHARED_COST m)) times the value learnt with m open), else its nearest higher
count learnt, unscaled (fewer connections answer no later), else the
mean of the service's learnt values; 0 only while nothing of the service is learnt. (An unmet
state worth 0 beat every measured value, and the table changes only at a FIN: every new
connection went to the first member until the first responses came back; and a lower count's
value unscaled piled a burst into the fast member's queue.) Ties are broken at random (seeded),
and a connection counts in its member's state from its SYN, not its FIN. Exploration as the
path table's (epsilon decaying to a floor, or a count bonus). The table is the path
Q-learning's (qlearning.QTable, its file format and handling), kept apart in its own file
(--service-q-table) of its own model, "members": neither table loads the other's file.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from controller.core.flows import FlowKey
from controller.core.services import MemberLoad, MemberPolicy
from controller.core.settings import SERVICE_POLICIES, ConfigError, Settings
from controller.policies.qlearning import LEVELS, QLearningPolicy, QTable, level

ACTIVE_BINS = (1, 2, 3, 4, 5, 7, 10, 15)    # lower edges of bins 1.. (bin 0: no connection open)
BIN_EDGES = (0, *ACTIVE_BINS)                # each bin's fewest open connections
SHARED_COST = 0.2     # of a connection's response time, per connection still open at its member at its FIN
# A member state's value is its own mean and its coarse state's (every path level's) weighed as
# its visits against these many: one path level's few heavy-tailed costs are mostly noise (in the
# lab at 80% load, c243a58, states with the level of the day, the whole link's, and no pooling
# made the p95 15% worse [+0.4, +29.8] than states without it, docs/services.md).
POOLED = 20
STATE = re.compile(rf"[A-Za-z][\w-]{{0,31}}/[A-Za-z][\w-]{{0,14}} a[0-{len(ACTIVE_BINS)}]"
                   rf"( p[0-{len(LEVELS) + 1}u])?", re.ASCII)     # member_state's, or its coarse state


class RoundRobin(MemberPolicy):
    """Each new connection takes the next healthy member in turn."""
    name = "round-robin"

    def __init__(self) -> None:
        self._turn: dict[str, int] = {}

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        turn = self._turn.get(service, 0)
        self._turn[service] = turn + 1
        return turn % len(members)


class LeastConnections(MemberPolicy):
    """The member with the fewest open connections; ties go to the one chosen least recently."""
    name = "least-connections"

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._decisions = 0

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        self._decisions += 1
        best = min(range(len(members)), key=lambda i: (members[i].active, self._last.get((service, members[i].host), 0)))
        self._last[service, members[best].host] = self._decisions
        return best


class Weighted(MemberPolicy):
    """Smooth weighted round robin, as nginx's: every member gains its weight, the one with the
    most is taken and loses the total. Weights 5, 1, 1 give a a b a c a a, not a a a a a b c."""
    name = "weighted"

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], float] = {}

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        for m in members:
            self._current[service, m.host] = self._current.get((service, m.host), 0.0) + m.weight
        best = max(range(len(members)), key=lambda i: (self._current[service, members[i].host], -i))
        self._current[service, members[best].host] -= sum(m.weight for m in members)
        return best


class RandomMember(MemberPolicy):
    """A uniformly random healthy member (seeded)."""
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(f"members:{seed}")

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        return self._random.randrange(len(members))


def cost_ms(response_s: float, after: MemberLoad) -> float:
    """What a connection cost: its own response, and the delay it added to the `after.active`
    connections its member still held when it ended (some of them waited for its slot),
    counted as SHARED_COST of its response each: a heuristic, since the controller
    counts connections, not slots or queues. With its response alone, each connection took the
    member that would answer it soonest and crowded the fast members' queues: in
    scripts.member_sim, on schedules not used to choose the share (301-320, 3 learners), 8%
    above least connections' mean at 80% load and 22% at 95%; with 0.2, 9% below and 1% below
    (docs/services.md has the scan of shares from 0.1 to 0.5)."""
    return response_s * 1e3 * (1 + SHARED_COST * after.active)


def _shared(n: int) -> float:
    """How a connection's cost grows with the `n` open at its member, as if the member shared
    itself among them: its response n + 1 times one alone's, and about as many left at its FIN."""
    return (n + 1) * (1 + SHARED_COST * n)


def member_state(service: str, m: MemberLoad) -> str:
    load = "u" if m.path is None else level(m.path)
    return f"{service}/{m.host} a{bisect.bisect_right(ACTIVE_BINS, m.active)} p{load}"


class MemberQTable(QTable):
    """The path table's, with member states and their fallbacks (the module's docstring)."""

    model = "members"       # its file is refused for paths, a path table's for members

    @staticmethod
    def refused(state: str, value: float) -> str | None:
        """A file's state that member_state cannot have made, or a value no response gives."""
        if not STATE.fullmatch(state):
            return "not a member state (<service>/<member> a<bin>, optionally p<level>)"
        return None if value <= 0 else "a value above 0 (a reward is minus a cost)"

    @staticmethod
    def coarse(state: str) -> str | None:
        """A member state without its path level: what the member's speed and queue tell alone."""
        head, _, last = state.rpartition(" ")
        return head if head and last.startswith("p") else None

    def value(self, state: str, prior: float = 0.0) -> float:
        """Q(s), shrunk towards its coarse state's (POOLED); else the fallbacks of the module's
        docstring, pessimistic, else `prior`; a read."""
        row, pooled = self.q.get(state), self.q.get(self.coarse(state) or "")
        if row and pooled:
            return (row[1] * row[0] + POOLED * pooled[0]) / (row[1] + POOLED)
        if row or pooled:
            return (row or pooled)[0]
        member, _, rest = state.partition(" ")
        count = int(rest.split(" ")[0][1:])
        met = [b for b in range(len(BIN_EDGES)) if f"{member} a{b}" in self.q]
        lower = max((b for b in met if b < count), default=None)
        higher = min((b for b in met if b > count), default=None)
        if lower is not None:
            return self.q[f"{member} a{lower}"][0] * _shared(BIN_EDGES[count]) / _shared(BIN_EDGES[lower])
        if higher is not None:
            return self.q[f"{member} a{higher}"][0]
        service = member.partition("/")[0] + "/"
        learnt = [v for k, (v, _) in self.q.items() if k.startswith(service) and self.coarse(k) is None]
        return sum(learnt) / len(learnt) if learnt else prior


class QLearningMembers(QLearningPolicy):
    """Q-learning over members (the module's docstring); the table's file handling is the path
    policy's. Load-aware: it is given each candidate's path features (unless blind)."""
    table_kind = MemberQTable
    stream = "members"

    def __init__(self, table_path: str | Path | None = None, alpha: float = Settings.q_alpha,
                 epsilon: float = Settings.q_epsilon, explore: str = Settings.q_explore, seed: int = 0,
                 paths: bool = True) -> None:
        super().__init__(table_path, alpha, 0.0, epsilon, explore, seed)
        self.load_aware = paths     # False (--service-q-blind): states without the path level
        self._changed = False

    def _state(self, service: str, m: MemberLoad) -> str:
        state = member_state(service, m)
        return state if self.load_aware else MemberQTable.coarse(state)

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        """The table's choice among the members in a random order: ties go to any of them."""
        order = self._rng.sample(range(len(members)), len(members))
        return order[self.table.choose([self._state(service, members[i]) for i in order], self._rng)]

    def scores(self, service: str, members: list[MemberLoad]) -> list[float]:
        """Each member's value now (a read: the table is unchanged)."""
        return [self.table.value(self._state(service, m)) for m in members]

    def describe(self) -> dict:
        return {**super().describe(), "paths": self.load_aware}

    def learn(self, service: str, chosen: MemberLoad, response_s: float, after: MemberLoad) -> None:
        self.table.update(self._state(service, chosen), -cost_ms(response_s, after), self._state(service, after))
        self._changed = True

    def save(self) -> None:
        if self._changed:
            self._changed = False
            super().save()


# the names settings.SERVICE_POLICIES lists (the core cannot import these), in its order
SERVICE_POLICY_TYPES = {p.name: p for p in (RoundRobin, LeastConnections, Weighted, RandomMember, QLearningMembers)}


def member_policy_factory(name: str, settings: Settings,
                          in_use: Iterable[MemberPolicy] = ()) -> Callable[[], MemberPolicy]:
    """What makes each service's policy of that name: a new one per service, but one Q-learning
    policy for all (its states name the service; one table, one file) and one random picker
    (seeded: services would draw the same members): the one `in_use` if a service has it
    already, else two tables would overwrite each other's file."""
    if name not in SERVICE_POLICY_TYPES:
        raise ConfigError(f"service policy: unknown '{name}' (known: {', '.join(SERVICE_POLICIES)})")
    kind = SERVICE_POLICY_TYPES[name]
    if kind not in (QLearningMembers, RandomMember):
        return kind
    shared = next((p for p in in_use if type(p) is kind), None)
    if shared is None:
        shared = (QLearningMembers(settings.service_q_table, settings.q_alpha, settings.q_epsilon,
                                   settings.q_explore, settings.seed, not settings.service_q_blind)
                  if kind is QLearningMembers
                  else RandomMember(settings.seed))
    return lambda: shared
