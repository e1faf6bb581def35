"""The member Q-learning on a simulated pool: the service experiment's (topologies/pool.json:
speeds 1, 1, 2, 2, 4 x 150 tokens a second, 4 slots each, a FIFO queue) with its seeded
heavy-tailed requests (topologies.inference.schedule), served by a pure-Python event
simulation instead of the lab. Response time: arrival to the last token, as the controller's
SYN-to-FIN. The learner keeps one table across schedules, as in scripts/services.py."""

from __future__ import annotations

import heapq
import statistics

from controller.core.services import MemberLoad, MemberPolicy
from controller.policies.members import LeastConnections, MemberQTable, QLearningMembers, Weighted
from topologies.inference import Member, Workload, capacity, schedule

SPEEDS = (1, 1, 2, 2, 4)
POOL = [Member(f"m{i + 1}", 150.0 * s, 4) for i, s in enumerate(SPEEDS)]
WORKLOAD = Workload()


def serve(policy: MemberPolicy, seed: int, load: float, duration_s: float = 20.0) -> tuple[list[float], list[int]]:
    """Each request's response time (s) and member, in order of completion."""
    requests = schedule(seed, load * capacity(POOL), duration_s, ["c1", "c2", "c3"])
    events = [(r.at_s, 0, r.id) for r in requests]     # (time, 0 arrival | 1 completion, request)
    heapq.heapify(events)
    active, busy, queues = [0] * len(POOL), [0] * len(POOL), [[] for _ in POOL]
    chosen: dict[int, tuple[int, MemberLoad, float]] = {}
    times, members = [], []

    def start(i: int, rid: int, now: float) -> None:
        busy[i] += 1
        r = requests[rid]
        heapq.heappush(events, (now + WORKLOAD.cost(r.prompt_tokens, r.output_tokens) / POOL[i].speed, 1, rid))

    while events:
        now, kind, rid = heapq.heappop(events)
        if kind == 0:
            loads = [MemberLoad(m.name, m.speed / 150, active[i], None, None) for i, m in enumerate(POOL)]
            i = policy.choose("llm", loads, None)
            chosen[rid] = (i, loads[i], now)
            active[i] += 1
            if busy[i] < POOL[i].slots:
                start(i, rid, now)
            else:
                queues[i].append(rid)
            continue
        i, seen, opened = chosen.pop(rid)
        active[i] -= 1
        busy[i] -= 1
        times.append(now - opened)
        members.append(i)
        if policy.learns:
            policy.learn("llm", seen, now - opened, seen._replace(active=active[i]))
        if queues[i]:
            start(i, queues[i].pop(0), now)
    return times, members


class ConstantStep(MemberQTable):
    """The member table before it averaged: the path table's constant step."""
    def step(self, visits: int) -> float:
        return self.alpha


def trained(load: float, schedules: int = 10, table: type[MemberQTable] = MemberQTable) -> QLearningMembers:
    policy = QLearningMembers()
    policy.table = table(alpha=0.3, gamma=0.0, epsilon=policy.table.epsilon)
    for seed in range(1, schedules + 1):
        serve(policy, seed, load)
    return policy


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def test_the_learnt_values_converge_to_each_members_time_with_a_free_slot():
    """With a slot free (fewer than 4 open), a response is the request's own cost over the
    member's speed: Q(member, a0..a3) should approach -E[c] / speed. Heavy tails (the output's
    p99 is 10x its median) leave a constant step's value at the last few answers' mercy."""
    errors = {}
    for table in (MemberQTable, ConstantStep):
        policy, rel = trained(0.5, table=table), []
        for m in POOL[2:]:      # the 1x members are met too rarely at this load
            expected_ms = WORKLOAD.mean_cost() / m.speed * 1e3
            for a in range(4):
                value, visits = policy.table.q.get(f"llm/{m.name} a{a}", (0.0, 0))
                if visits >= 20:
                    rel.append(abs(-value - expected_ms) / expected_ms)
        assert len(rel) >= 6, f"{table.__name__}: too few states met 20 times to judge"
        errors[table] = statistics.mean(rel)
    averaged, constant = errors[MemberQTable], errors[ConstantStep]
    assert averaged < 0.15 and averaged < constant / 1.5, errors


def test_at_half_load_the_learner_answers_sooner_than_least_connections_and_favours_faster_members():
    policy = trained(0.5)
    ours, theirs, shares = [], [], [0] * len(POOL)
    for seed in range(101, 106):        # schedules it has not met
        times, members = serve(policy, seed, 0.5)
        ours.append(statistics.mean(times))
        theirs.append(statistics.mean(serve(LeastConnections(), seed, 0.5)[0]))
        for i in members:
            shares[i] += 1
    assert all(a < b for a, b in zip(ours, theirs)), (ours, theirs)
    assert statistics.mean(ours) < 0.85 * statistics.mean(theirs), (ours, theirs)
    assert shares[4] > max(shares[2], shares[3]) and min(shares[2], shares[3]) > max(shares[0], shares[1]), shares


def test_at_80_percent_load_the_learners_p95_is_below_least_connections_and_weighted():
    """Its tail, not its mean (above least connections' here, as on the lab): it learns each
    connection's own expected response (a bandit), which at high load crowds the fast
    members' queues (docs/services.md). Paired by schedule, as the experiment is; one schedule
    of ten (a burst) is worse for it."""
    policy = trained(0.8)
    changes = []
    for seed in range(101, 111):
        ours = p95(serve(policy, seed, 0.8)[0])
        best = min(p95(serve(classic(), seed, 0.8)[0]) for classic in (LeastConnections, Weighted))
        changes.append(ours / best - 1)
    assert statistics.mean(changes) < -0.10, changes
