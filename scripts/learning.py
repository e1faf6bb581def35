"""How fast a learning policy catches up with least-loaded, and whether a table learnt
elsewhere helps, from an experiment's runs:

    .venv/bin/python -m scripts.learning results/experiment-<time>    (writes learning.json)

The learning curve needs independent learners: a "+fresh" (or "+warm") policy, every seed
starting from its own copy of a table. Each seed's decisions are cut into bins of BIN, a round
going to the bin its first decision falls in; a bin counts only where every seed completed it.
In each bin and seed, the policy's mean RTT over its rounds against least-loaded's over the same
rounds (same seed, same round: the same background traffic); across seeds, the geometric mean of
those ratios with a 95% t-interval. It catches up at the first bin from which its mean RTT over
all later rounds, seed by seed, is within 10% of least-loaded's: the upper end of that ratio's
interval, Bonferroni-corrected for the bins tried, at most 1.10, over two bins at least. So a
catch-up point is one the data show, not a lucky stretch: demanding every later bin's interval
apart almost never found one with 5 seeds of 2 minutes, and a moving window over one learner
carried from seed to seed found one for policies that did not learn (one round's ratio has a log
standard deviation of 0.7-0.8 on H1-H7). A carried learner is one learner: it gets its ratio per
seed in run order and no catch-up point. Throughput is binned the same way. Few seeds or short
runs leave "not shown" the likely answer: that is the measurement's power, not the learner's.

Transfer: a "+warm" policy (every seed from a copy of a table learnt elsewhere) against its
"+fresh" twin, over the rounds both decided within their first FIRST decisions, as the same
ratio per seed and across seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from scripts.report import ReportError, across, ci_text, read_runs, round_means

REFERENCE = "least-loaded"
WITHIN = 1.10
BIN = 100       # decisions
FIRST = 100     # decisions


def recorded(runs_dir: Path, policy: str, seed: int) -> tuple[int, list[int | None]]:
    """From a run's rounds.json: its table's decision count at the start (a carried table counts
    on from the seeds before) and, per round, the decisions since the start; (0, []) if not
    recorded."""
    try:
        rounds = json.loads((runs_dir / f"{policy}-seed{seed}" / "rounds.json").read_text())
        start = rounds.get("start") or 0
        return start, [None if n is None else n - start for n in rounds["decisions"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0, []


def ratio_of_means(mine: dict, ref: dict, keys) -> float | None:
    """sum of mine over keys / sum of ref over them (the keys both have; None if none)."""
    both = [k for k in keys if k in mine and k in ref]
    total = sum(ref[k] for k in both)
    return sum(mine[k] for k in both) / total if both and total > 0 else None


def seeds_of(rows: list[dict], policy: str) -> list[int]:
    return sorted({int(r["seed"]) for r in rows if r["policy"] == policy})


def binned(runs_dir: Path, policy: str, seeds: list[int]) -> tuple[dict[int, dict[int, list]], int, list[int]]:
    """bin -> seed -> the (seed, round) keys decided in it; the number of bins every seed
    completed; the seeds without a record of their decisions (left out)."""
    rounds: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    complete, missing = None, []
    for seed in seeds:
        counts = recorded(runs_dir, policy, seed)[1]
        if not counts or counts[-1] is None:
            missing.append(seed)
            continue
        for rnd, n in enumerate(counts):
            before = counts[rnd - 1] if rnd else 0      # the round's first decision is the next one
            if n is not None and before is not None:
                rounds[before // BIN][seed].append((seed, rnd))
        complete = min(complete if complete is not None else counts[-1] // BIN, counts[-1] // BIN)
    return rounds, complete or 0, missing


def catch_up(rows: list[dict], runs_dir: Path, policy: str) -> dict:
    """The learning curve against REFERENCE for one policy (the module's docstring)."""
    means = {(p, field): round_means(rows, p, field, kind) for p in (policy, REFERENCE)
             for field, kind in (("rtt_ms", "rtt"), ("throughput_mbps", "transfer"))}
    mine, ref = means[policy, "rtt_ms"], means[REFERENCE, "rtt_ms"]
    seeds = seeds_of(rows, policy)
    order = sorted(seeds, key=lambda s: (recorded(runs_dir, policy, s)[0], s))     # a carried table's start grows
    per_seed = {s: ratio_of_means(mine, ref, [k for k in mine if k[0] == s]) for s in order}
    result = {"per_seed_in_run_order": {s: round(r, 3) for s, r in per_seed.items() if r is not None},
              "within_from_decisions": None}
    if not {"fresh", "warm"} & set(policy.split("+")):
        return {**result, "why_no_curve": "one learner, carried from seed to seed: no interval to judge by"}
    rounds, complete, missing = binned(runs_dir, policy, seeds)
    bins = []
    for b in range(complete):
        entry: dict = {"decisions": [b * BIN, (b + 1) * BIN]}
        for name, field in (("rtt", "rtt_ms"), ("throughput", "throughput_mbps")):
            ratios = {s: ratio_of_means(means[policy, field], means[REFERENCE, field], keys)
                      for s, keys in rounds[b].items()}
            ratios = {s: round(r, 3) for s, r in ratios.items() if r is not None and r > 0}
            entry[name] = {**across(list(ratios.values())), "per_seed": ratios}
        bins.append(entry)
    tried = range(max(complete - 1, 0))      # a tail of two bins at least
    for i in tried:
        tail = [ratio_of_means(mine, ref, [k for b in range(i, complete) for k in rounds[b].get(s, [])])
                for s in seeds if s not in missing]
        ratios = [r for r in tail if r is not None and r > 0]
        bound = across(ratios, len(tried))["ci95"]
        if bound is not None and bound[1] <= WITHIN:
            result["within_from_decisions"] = i * BIN
            break
    return {**result, "bin": BIN, "curve": bins, "seeds_left_out": missing}


def transfer(rows: list[dict], runs_dir: Path, warm: str) -> dict:
    """A +warm policy against its +fresh twin over the rounds both decided within their first
    FIRST decisions, paired by seed."""
    fresh = warm.replace("+warm", "+fresh")
    a, b = round_means(rows, warm, "rtt_ms", "rtt"), round_means(rows, fresh, "rtt_ms", "rtt")
    per_seed, left_out = {}, []
    for seed in sorted(set(seeds_of(rows, warm)) & set(seeds_of(rows, fresh))):
        early = [{rnd for rnd, n in enumerate(recorded(runs_dir, p, seed)[1]) if n is not None and n <= FIRST}
                 for p in (warm, fresh)]
        ratio = ratio_of_means(a, b, [(seed, rnd) for rnd in sorted(early[0] & early[1])])
        if ratio is not None and ratio > 0:
            per_seed[seed] = round(ratio, 3)
        else:
            left_out.append(seed)
    return {"against": fresh, **across(list(per_seed.values())), "per_seed": per_seed, "seeds_left_out": left_out}


def learning(folder: Path) -> dict:
    rows = read_runs(folder / "runs.csv")
    names = {r["policy"] for r in rows}
    policies = sorted(p for p in names if p.startswith("qlearning"))
    if not policies:
        raise ReportError(f"{folder}: no qlearning run")
    out = {p: catch_up(rows, folder / "runs", p) for p in policies if REFERENCE in names}
    for p in policies:
        if p.endswith("+warm") and p.replace("+warm", "+fresh") in names:
            out.setdefault(p, {})["transfer"] = transfer(rows, folder / "runs", p)
    return out


def write(folder: Path) -> list[str]:
    """Write folder/learning.json; one line per learning policy saying when it caught up."""
    result = learning(folder)
    (folder / "learning.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = []
    for policy, r in result.items():
        if "curve" in r:
            when = (f"from decision {r['within_from_decisions']}" if r["within_from_decisions"] is not None
                    else "not shown")
            bins = ", ".join(ci_text(b["rtt"]) for b in r["curve"])
            lines.append(f"{policy}: RTT within {WITHIN - 1:.0%} of {REFERENCE}: {when} (per {BIN} decisions: {bins})")
        elif "per_seed_in_run_order" in r:
            seeds = ", ".join(f"{x:.2f}" for x in r["per_seed_in_run_order"].values())
            lines.append(f"{policy}: RTT against {REFERENCE} per seed in run order {seeds} ({r['why_no_curve']})")
        if "transfer" in r:
            t = r["transfer"]
            lines.append(f"{policy}: RTT over the first {FIRST} decisions against {t['against']}: {ci_text(t)}, "
                         f"{len(t['per_seed'])} seeds")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.learning", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    args = p.parse_args()
    try:
        print("\n".join(write(args.folder)))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
