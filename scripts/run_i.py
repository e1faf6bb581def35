"""Run I's figures that the result tables do not render (docs/qlearning.md, "The correction table
on run G's seeds"), from the repository's summaries and, given the experiment's --out folders
(Ia, Ib, Ic; the repository does not keep their runs), from each run's files:

    .venv/bin/python -m scripts.run_i [/work/results-17i]

A one-off analysis of one run (docs/results/qlearning-h1h7-correction-12-seeds), kept so that
its figures can be recomputed.
"""

import csv
import functools
import glob
import itertools
import json
import math
import random
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean, median, stdev, variance

from controller.core.monitor import PathFeatures
from controller.policies.qlearning import LEVELS, level, reward, state_of
from scripts.report import across, ci_text

ROOT = Path(__file__).resolve().parents[1]

RUNS = {"I": ("qlearning-h1h7-correction-12-seeds", "qlearning+warm+correction"),
        "G": ("qlearning-h1h7-busy-12-seeds", "qlearning+warm"),
        "H": ("qlearning-h1h7-relative-12-seeds", "qlearning+warm+relative")}
COMMANDS = {"": "a", "-b": "b", "-c": "c"}      # the folders of warm-up seeds 111, 112, 113


@functools.cache
def summary(run: str, suffix: str) -> dict:
    return json.loads((ROOT / "docs/results" / (RUNS[run][0] + suffix) / "summary.json").read_text())


def per_seed(run: str, suffix: str, policy: str | None = None) -> dict:
    return summary(run, suffix)[policy or RUNS[run][1]]["per_seed"]


def least_loaded_over(a: tuple[str, str], b: tuple[str, str]) -> dict:
    """Least-loaded's mean RTT in run/folder `a` over `b`, seed by seed."""
    A, B = per_seed(*a, "least-loaded"), per_seed(*b, "least-loaded")
    return {k: A[k]["rtt_mean_ms"] / B[k]["rtt_mean_ms"] for k in A if k in B}


def ratios(run: str, suffix: str, metric: str) -> dict:
    ll, q = per_seed(run, suffix, "least-loaded"), per_seed(run, suffix)
    return {k: q[k][metric] / ll[k][metric] for k in ll if k in q and q[k][metric] and ll[k][metric]}


def summaries() -> None:
    """The secondary against run H's tables (as read), each warm-up's, and least-loaded against itself."""
    for metric in ("rtt_mean_ms", "throughput_mbps"):
        r = {run: [ratios(run, s, metric) for s in COMMANDS] for run in RUNS}
        seeds = sorted(set.intersection(*(set(x) for xs in r.values() for x in xs)), key=int)
        pooled = [math.exp(mean(math.log(x[k]) for x in r["I"])) for k in seeds]
        print(f"{metric}: pooled over least-loaded {ci_text(across(pooled), 3)}; per-seed log SD "
              f"{stdev(math.log(p) for p in pooled):.2f}")
        for other in ("G", "H"):
            over = [math.exp(mean(math.log(i[k] / o[k]) for i, o in zip(r["I"], r[other]))) for k in seeds]
            each = "; ".join(ci_text(across([i[k] / o[k] for k in seeds]), 3) for i, o in zip(r["I"], r[other]))
            print(f"   over run {other}: {ci_text(across(over), 3)}; by warm-up seed {each}")
    over_g = [least_loaded_over(("I", s), ("G", s)) for s in COMMANDS]
    aa = [math.exp(mean(math.log(r[k]) for r in over_g)) for k in over_g[0]]
    print(f"least-loaded of run I over run G's, pooled as the primary: {ci_text(across(aa), 3)}")
    for a, b in itertools.combinations(COMMANDS, 2):
        print(f"least-loaded I{COMMANDS[a]} over I{COMMANDS[b]}: "
              f"{ci_text(across(list(least_loaded_over(('I', a), ('I', b)).values())), 3)}")
    for s, r in zip(COMMANDS, over_g):
        print(f"least-loaded I{COMMANDS[s]} over G{COMMANDS[s]}: {ci_text(across(list(r.values())), 3)}")


def warm_tables() -> None:
    """What each warm table learnt: its level means, and its level-4 updates by headroom."""
    for s in COMMANDS:
        q = json.loads((ROOT / "docs/results" / (RUNS["I"][0] + s) / "warm-correction.json").read_text())["q"]
        states = {k: v for k, v in q.items() if " " in k}
        wide = [v for k, v in states.items() if k.endswith("l4") and int(k.split()[1][1:]) >= 4]   # >= 8 Mbit/s
        thin = [v for k, v in states.items() if k.endswith("l4") and int(k.split()[1][1:]) < 4]
        weighted = lambda vs: sum(c * n for c, n in vs) / sum(n for _, n in vs)  # noqa: E731
        print(f"warm table {COMMANDS[s]}: levels " + ", ".join(f"{q[f'l{n}'][0]:+.1f}" for n in range(len(LEVELS) + 2))
              + f"; {sum(v[0] > 0 for v in states.values())} of {len(states)} states above 0 holding "
              f"{sum(v[1] for v in states.values() if v[0] > 0)} of {sum(v[1] for v in states.values())} updates; "
              f"level 4 with 8 Mbit/s or more left: {sum(n for _, n in wide)} of {sum(n for _, n in wide + thin)} "
              f"updates at {weighted(wide):+.1f}, thinner {weighted(thin):+.1f}; largest over 20 flows: "
              + ", ".join([f"{k} {v[0]:+.1f} ({v[1]})" for k, v in sorted(states.items(), key=lambda kv: -kv[1][0])
                           if v[1] >= 20][:3])
              + f"; least over 20 flows {min(v[0] for v in states.values() if v[1] >= 20):+.1f}; "
              f"the median state met {median(v[1] for v in states.values())}")


def features(c: dict) -> PathFeatures:
    headroom = c["headroom_mbps"] if c["headroom_mbps"] is not None else math.inf
    return PathFeatures(c["utilisation"], c["loss"], c["latency_ms"], c["hops"], c["unknown"], headroom)


def trains(out: Path) -> None:
    """h1's probe trains: the paths they took (answered probes by hops) and what each path adds to
    the difference in mean RTT; on the least utilised measured candidate or not, their mean RTT
    and why not; the thin path's congested states; and the decisions 4e06446's rules would change."""
    met, why, changed = defaultdict(list), defaultdict(int), defaultdict(int)
    for s, c in COMMANDS.items():
        rtt, hops = defaultdict(list), defaultdict(lambda: defaultdict(list))
        with open(out / f"I{c}" / "runs.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r["kind"] == "rtt" and r["rtt_ms"]:
                    rtt[(r["policy"], r["seed"], r["round"])].append(float(r["rtt_ms"]))
                    hops[r["policy"]][r["path"].count(">")].append(float(r["rtt_ms"]))
        n = {policy: sum(len(v) for v in by.values()) for policy, by in hops.items()}
        for policy, by in hops.items():
            print(f"I{c} {policy}: " + "; ".join(f"{h} hops {len(v) / n[policy]:.0%} at {mean(v):.1f} ms"
                                                   for h, v in sorted(by.items())))
        part = {h: sum(hops[RUNS["I"][1]][h]) / n[RUNS["I"][1]] - sum(hops["least-loaded"][h]) / n["least-loaded"]
                for h in sorted(hops["least-loaded"])}
        print(f"I{c} mean RTT difference {sum(part.values()):+.2f} ms, by path: "
              + ", ".join(f"{h} hops {v:+.2f}" for h, v in part.items()))
        warm = json.loads((ROOT / "docs/results" / (RUNS["I"][0] + s) / "warm-correction.json").read_text())["q"]
        thin = defaultdict(int)
        for run in sorted((out / f"I{c}" / "runs").iterdir()):
            policy, seed = run.name.rsplit("-seed", 1)
            for line in open(run / "decisions.jsonl"):
                d = json.loads(line)
                for x in (d, d.get("reply")):
                    if x and policy == RUNS["I"][1]:
                        cs = x["candidates"]       # score: minus the worth
                        changed["decisions"] += 1
                        changed["with every candidate of unknown load"] += all(k["unknown"] for k in cs)
                        changed["with a state not in the warm table"] += any(
                            state_of(features(k)) not in warm for k in cs)
                        changed["with two worths above 0"] += sum(k["score"] < 0 for k in cs) > 1
                        for k in cs:
                            if k["hops"] == 2 and level(features(k)) == 4:
                                thin[state_of(features(k))] += 1
                cs = d["candidates"]
                measured = [i for i, k in enumerate(cs) if not k["unknown"]]
                if d["kind"] != "rtt" or not measured or not rtt.get((policy, seed, str(d["round"]))):
                    continue
                least = min(measured, key=lambda i: cs[i]["utilisation"])
                met[(policy, d["chosen"] == least)].append(mean(rtt[(policy, seed, str(d["round"]))]))
                if policy == RUNS["I"][1] and d["chosen"] != least:
                    chosen = cs[d["chosen"]]
                    if chosen["score"] > min(k["score"] for k in cs):
                        why["explored"] += 1
                    elif max(measured, key=lambda i: reward(features(cs[i]))) == d["chosen"]:
                        why["the reading alone preferred it"] += 1
                    else:
                        why[f"the correction overturned the reading, to level {level(features(chosen))}"] += 1
        state, times = max(thin.items(), key=lambda kv: kv[1])
        print(f"I{c}: the 2-hop path read congested most often as {state} ({times} readings), "
              f"worth {warm[state][0]:+.1f} over {warm[state][1]} flows in the warm table")
    for (policy, least), v in sorted(met.items()):
        print(f"{policy}: {len(v)} trains {'on the least utilised' if least else 'elsewhere'}, mean RTT {mean(v):.2f} ms")
    print(f"{RUNS['I'][1]}'s trains elsewhere: " + ", ".join(f"{k} {v}" for k, v in sorted(why.items())))
    print(f"{RUNS['I'][1]}'s decisions, both directions: " + ", ".join(f"{k} {v}" for k, v in changed.items()))


def warm_ups(out: Path) -> None:
    """How much of each warm table the logged h1 <-> h7 decisions (both directions) taught."""
    for run in sorted((out / "warm" / "runs").iterdir()):
        logged = sum(1 + bool(json.loads(line).get("reply")) for line in open(run / "decisions.jsonl"))
        print(f"{run.name}: {logged} logged decisions, {json.loads((run / 'qtable.json').read_text())['updates']} updates")


def noise(out: Path) -> None:
    """Where least-loaded's run-to-run noise comes from: the variance of a run's log mean RTT
    resampling its rounds (bootstrap, 500 draws a run), against half the variance of the log
    ratio of two of its runs on one seed (the three commands, pairwise)."""
    rng, rounds = random.Random(1), defaultdict(lambda: defaultdict(list))
    for c in COMMANDS.values():
        with open(out / f"I{c}" / "runs.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r["policy"] == "least-loaded" and r["kind"] == "rtt" and r["rtt_ms"]:
                    rounds[(c, r["seed"])][r["round"]].append(float(r["rtt_ms"]))
    within = []
    for run in rounds.values():
        trains = list(run.values())
        within.append(variance([math.log(mean([x for t in rng.choices(trains, k=len(trains)) for x in t]))
                                for _ in range(500)]))
    logs = {k: math.log(mean(x for t in v.values() for x in t)) for k, v in rounds.items()}
    pairs = [logs[(a, s)] - logs[(b, s)] for s in {s for _, s in logs}
             for a, b in itertools.combinations(COMMANDS.values(), 2)]
    print(f"least-loaded's log mean RTT, variance a run: {mean(within):.4f} resampling its "
          f"{mean(len(v) for v in rounds.values()):.0f} rounds, {variance(pairs) / 2:.4f} between its runs of one seed")


def reversion(out: Path) -> None:
    """How a path's reward changes from one poll to the next by the level it read, over every host
    pair's candidate paths in least-loaded's runs (no decision of a learner in them)."""
    change = {1: defaultdict(list), 2: defaultdict(list)}
    for name in glob.glob(str(out / "I?/runs/least-loaded-seed*/capture/paths.csv")):
        series = defaultdict(set)
        with open(name, newline="") as f:
            for r in csv.DictReader(f):
                p = PathFeatures(float(r["utilisation"]), float(r["loss"]), float(r["latency_ms"]), int(r["hops"]))
                series[r["path"]].add((float(r["time_s"]), level(p), reward(p)))
        for readings in series.values():
            readings = sorted(readings)
            for lag, by in change.items():
                for (_, lv, r0), (_, _, r1) in zip(readings, readings[lag:]):
                    by[lv].append(r1 - r0)
    for lag, by in change.items():
        print(f"{lag} poll(s) later: " + "; ".join(f"level {lv} {mean(v):+.2f} ms over {len(v)}"
                                                    for lv, v in sorted(by.items())))


if __name__ == "__main__":
    summaries()
    warm_tables()
    if len(sys.argv) > 1:
        trains(Path(sys.argv[1]))
        warm_ups(Path(sys.argv[1]))
        noise(Path(sys.argv[1]))
        reversion(Path(sys.argv[1]))
