"""The service experiment's pool, simulated: member policies compared without the lab, in
seconds. The pool of topologies/pool.json (speeds 1, 1, 2, 2, 4 x 150 tokens a second, 4 slots
each, a FIFO queue) serves the experiment's seeded heavy-tailed schedules
(topologies.inference.schedule); a response is from arrival to the last token, as the
controller's SYN-to-FIN. No network, no controller: what it tells is the member choice alone.

    .venv/bin/python -m scripts.member_sim                (50%, 80%, 95% load; about 2 s)

Q-learning keeps one table: it learns on schedules 1..--learn, then every policy is measured on
--test schedules it has not met (--first-test.., 101..), paired by schedule; with --learners K,
K independent learners (each its own random stream), their figures averaged per schedule.
`sed` is a reference rule, not a policy of the project: shortest expected delay,
(open + 1) / speed, knowing the speeds as weighted round robin does. `clairvoyant` is another:
it knows every request's length and every member's queue, which no controller sees, and so
shows what a choice made before the length is known gives up; "prompt only" knows the queues
and the prompt (what a gateway reading the request would), "queue only" the queues alone.
"""

from __future__ import annotations

import argparse
import heapq
import statistics

from controller.core.services import MemberLoad, MemberPolicy
from controller.policies.members import LeastConnections, QLearningMembers, Weighted
from scripts.report import LOADS, change_ci, load_fractions
from topologies.inference import Member, Request, Workload, capacity, schedule

SPEEDS = (1, 1, 2, 2, 4)
BASE_SPEED = 150.0
POOL = [Member(f"m{i + 1}", BASE_SPEED * s, 4) for i, s in enumerate(SPEEDS)]
WORKLOAD = Workload()
DURATION_S = 20.0       # of arrivals, as the experiment's runs


class ShortestExpectedDelay(MemberPolicy):
    """(open + 1) / weight, least first; ties to the heavier (faster) member."""
    name = "sed"

    def choose(self, service: str, members: list[MemberLoad], key) -> int:
        return min(range(len(members)), key=lambda i: ((members[i].active + 1) / members[i].weight, -members[i].weight))


def requests(seed: int, load: float) -> list[Request]:
    """The experiment's seeded schedule of one seed at `load` of the pool's capacity."""
    return schedule(seed, load * capacity(POOL), DURATION_S, ["c1", "c2", "c3"])


def serve(policy: MemberPolicy, seed: int, load: float) -> tuple[list[float], list[int]]:
    """Each request's response time (s) and member, in order of completion; a learning policy
    learns each at its completion, as at the member's FIN."""
    arrivals = requests(seed, load)
    events = [(r.at_s, 0, r.id) for r in arrivals]     # (time, 0 arrival | 1 completion, request)
    heapq.heapify(events)
    active, busy, queues = [0] * len(POOL), [0] * len(POOL), [[] for _ in POOL]
    chosen: dict[int, tuple[int, MemberLoad, float]] = {}
    times, members = [], []

    def start(i: int, rid: int, now: float) -> None:
        busy[i] += 1
        r = arrivals[rid]
        heapq.heappush(events, (now + WORKLOAD.cost(r.prompt_tokens, r.output_tokens) / POOL[i].speed, 1, rid))

    while events:
        now, kind, rid = heapq.heappop(events)
        if kind == 0:
            loads = [MemberLoad(m.name, m.speed / BASE_SPEED, active[i], None, None) for i, m in enumerate(POOL)]
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


KNOWS = {"length": "its cost", "prompt": "its prompt (the output's mean for the rest)",
         "queue": "nothing of it (the mean cost)"}     # what a clairvoyant choice knows of the new request


def clairvoyant(seed: int, load: float, knows: str = "length") -> list[float]:
    """Response times when each request goes to the member where it would finish first,
    every slot's next free time known (FIFO slots, as serve() runs them) and of the request
    what KNOWS[knows] says: "prompt" is what a gateway that reads the request sees, "queue"
    separates what the queues' work alone is worth."""
    free = [[0.0] * m.slots for m in POOL]      # per member, a heap of when each slot is next free
    output = WORKLOAD.output.mean()
    times = []
    for r in requests(seed, load):      # in arrival order
        cost = WORKLOAD.cost(r.prompt_tokens, r.output_tokens)
        known = {"length": cost, "prompt": WORKLOAD.cost(r.prompt_tokens, output), "queue": WORKLOAD.mean_cost()}[knows]
        _, i = min((max(r.at_s, slots[0]) + known / m.speed, i) for i, (m, slots) in enumerate(zip(POOL, free)))
        finish = max(r.at_s, free[i][0]) + cost / POOL[i].speed
        heapq.heapreplace(free[i], finish)
        times.append(finish - r.at_s)
    return times


def trained(load: float, schedules: int, policy: QLearningMembers | None = None) -> QLearningMembers:
    """A Q-learning policy (default settings) after learning on schedules 1..`schedules`."""
    policy = policy or QLearningMembers()
    for seed in range(1, schedules + 1):
        serve(policy, seed, load)
    return policy


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def compare(load: float, learn: int, test: int, first: int = 101,
            learners: int = 1) -> dict[str, list[tuple[float, float]]]:
    """Per policy, (mean, p95) response time on each test schedule (first.., `test` of them);
    Q-learning's the average over `learners` independent learners (random streams 0..), so
    that each schedule is one pair whatever their number."""
    tables = [trained(load, learn, QLearningMembers(seed=k)) for k in range(learners)]   # they go on learning
    out: dict[str, list[tuple[float, float]]] = {}
    for seed in range(first, first + test):
        for name, make in (("least-connections", LeastConnections), ("weighted", Weighted),
                           ("sed", ShortestExpectedDelay)):
            times = serve(make(), seed, load)[0]
            out.setdefault(name, []).append((statistics.mean(times), p95(times)))
        for knows in KNOWS:
            times = clairvoyant(seed, load, knows)
            name = "clairvoyant" + ("" if knows == "length" else f", {knows} only")
            out.setdefault(name, []).append((statistics.mean(times), p95(times)))
        runs = [serve(learner, seed, load)[0] for learner in tables]
        out.setdefault("qlearning", []).append((statistics.mean(statistics.mean(t) for t in runs),
                                                statistics.mean(p95(t) for t in runs)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.member_sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--loads", default="0.5,0.8,0.95", help=f"fractions of the pool's capacity ({LOADS[0]}..{LOADS[1]})")
    p.add_argument("--learn", type=int, default=10, help="schedules Q-learning learns on first")
    p.add_argument("--test", type=int, default=10, help="schedules every policy is measured on (at least 1)")
    p.add_argument("--first-test", type=int, default=101, help="the first of them (after the learning ones)")
    p.add_argument("--learners", type=int, default=1, help="independent Q-learners, each trained and measured")
    args = p.parse_args(argv)
    for wrong, message in ((args.test < 1, "--test: at least 1"), (args.learn < 0, "--learn: at least 0"),
                           (args.learners < 1, "--learners: at least 1"),
                           (args.first_test <= args.learn, "--first-test: above --learn (a schedule learnt on)")):
        if wrong:
            p.error(message)
    print("| load | policy | mean (s) | p95 (s) | mean vs least-connections [95% CI] | p95 vs best of LC, weighted |")
    print("| --- | --- | --- | --- | --- | --- |")
    for load in load_fractions(p, args.loads):
        result = compare(load, args.learn, args.test, args.first_test, args.learners)
        lc = [m for m, _ in result["least-connections"]]
        best = [min(a[1], b[1]) for a, b in zip(result["least-connections"], result["weighted"])]
        for name, rows in result.items():
            means, tails = [m for m, _ in rows], [t for _, t in rows]
            cells = [fmt(change_ci(means, lc)) if name != "least-connections" else "",
                     fmt(change_ci(tails, best)) if name not in ("least-connections", "weighted") else ""]
            print(f"| {load:.0%} | {name} | {statistics.mean(means):.2f} | {statistics.mean(tails):.2f} | "
                  f"{cells[0]} | {cells[1]} |")
    return 0


def fmt(change: dict) -> str:
    if change["ci95"] is None:      # one schedule has no interval
        return f"{change['mean']:+.1%} (one schedule)"
    lo, hi = change["ci95"]
    return f"{change['mean']:+.1%} [{lo:+.1%}, {hi:+.1%}]"


if __name__ == "__main__":
    raise SystemExit(main())
