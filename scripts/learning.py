"""How fast a learning policy catches up with least-loaded, and whether a table learnt
elsewhere helps, from an experiment's runs:

    .venv/bin/python -m scripts.learning results/experiment-<time>    (writes learning.json)

The learning curve needs independent learners: a "+fresh" policy, every seed starting from an
empty table. Its decisions, counted from each seed's start, are cut into bins of BIN; in each
bin and seed, the policy's mean RTT over the rounds it decided in that bin against least-loaded's
over the same rounds (same seed, same round: the same background traffic); across seeds, the
geometric mean of those ratios with a 95% t-interval. It catches up at the first bin from which
every later bin's interval lies below 1.10 (two bins at least): "within 10%" shown, not assumed
from a lucky stretch. A learner carried from seed to seed is one learner: its ratio per seed in
run order is reported, and no catch-up point. (A moving window over one carried learner found
one for learners that did not learn: on H1-H7 one round's ratio has a log standard deviation of
0.7-0.8, and in a simulation of such noise a policy exactly as good as least-loaded "stayed
within" from some round in 34% of runs; even widest, a fixed rule, did on the measured rounds.)
Throughput is binned the same way.

Transfer: a "+warm" policy (every seed from a copy of a table learnt elsewhere) against its
"+fresh" twin, over the rounds both decided within their first FIRST decisions, as the same
ratio per seed and across seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from scripts.report import ReportError, read_runs

REFERENCE = "least-loaded"
WITHIN = 1.10
BIN = 100       # decisions
FIRST = 100     # decisions


def round_means(rows: list[dict], policy: str, field: str, kind: str) -> dict[tuple[int, int], float]:
    """(seed, round) -> the mean of `field` over that round's rows of `kind`."""
    values: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["policy"] == policy and r["kind"] == kind and r[field] != "":
            values[int(r["seed"]), int(r["round"])].append(float(r[field]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def decisions(runs_dir: Path, policy: str, seed: int, since_start: bool = False) -> list[int | None]:
    """The policy's decision count after each round of a seed's run ([] if not recorded): its
    table's count, which goes on across seeds, or with since_start those of this run alone."""
    try:
        rounds = json.loads((runs_dir / f"{policy}-seed{seed}" / "rounds.json").read_text())
        start = rounds.get("start") or 0 if since_start else 0
        return [None if n is None else n - start for n in rounds["decisions"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def ratio_of_means(mine: dict, ref: dict, keys) -> float | None:
    """sum of mine over keys / sum of ref over them (the keys both have; None if none)."""
    both = [k for k in keys if k in mine and k in ref]
    total = sum(ref[k] for k in both)
    return sum(mine[k] for k in both) / total if both and total > 0 else None


def across(ratios: list[float]) -> dict:
    """The geometric mean of per-seed ratios and its 95% t-interval (None from one seed)."""
    logs = np.log([r for r in ratios if r > 0])
    if logs.size == 0:
        return {"ratio": None, "ci95": None}
    mean = float(logs.mean())
    if logs.size == 1:
        return {"ratio": math.exp(mean), "ci95": None}
    half = stats.t.ppf(0.975, logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    return {"ratio": math.exp(mean), "ci95": [math.exp(mean - half), math.exp(mean + half)]}


def seeds_of(rows: list[dict], policy: str) -> list[int]:
    return sorted({int(r["seed"]) for r in rows if r["policy"] == policy})


def curve(rows: list[dict], runs_dir: Path, policy: str) -> list[dict]:
    """Per bin of BIN decisions from each seed's start: RTT and throughput against REFERENCE,
    per seed and across seeds."""
    means = {(p, field): round_means(rows, p, field, kind) for p in (policy, REFERENCE)
             for field, kind in (("rtt_ms", "rtt"), ("throughput_mbps", "transfer"))}
    rounds: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for seed in seeds_of(rows, policy):
        for rnd, n in enumerate(decisions(runs_dir, policy, seed, since_start=True)):
            if n is not None:
                rounds[max(n - 1, 0) // BIN][seed].append((seed, rnd))
    out = []
    for b in sorted(rounds):
        entry: dict = {"decisions": [b * BIN, (b + 1) * BIN]}
        for name, field in (("rtt", "rtt_ms"), ("throughput", "throughput_mbps")):
            per_seed = {s: ratio_of_means(means[policy, field], means[REFERENCE, field], keys)
                        for s, keys in rounds[b].items()}
            per_seed = {s: round(r, 3) for s, r in per_seed.items() if r is not None}
            entry[name] = {**across(list(per_seed.values())), "per_seed": per_seed}
        out.append(entry)
    return out


def catch_up(rows: list[dict], runs_dir: Path, policy: str) -> dict:
    """The learning curve against REFERENCE for one policy (the module's docstring)."""
    rtt = round_means(rows, policy, "rtt_ms", "rtt"), round_means(rows, REFERENCE, "rtt_ms", "rtt")
    per_seed = {s: ratio_of_means(*rtt, [k for k in rtt[0] if k[0] == s]) for s in seeds_of(rows, policy)}
    result = {"per_seed_in_run_order": {s: round(r, 3) for s, r in per_seed.items() if r is not None},
              "within_from_decisions": None}
    if not {"fresh", "warm"} & set(policy.split("+")):
        return {**result, "why_no_curve": "one learner, carried from seed to seed: no interval to judge by"}
    bins = curve(rows, runs_dir, policy)
    judged = [b for b in bins if b["rtt"]["ci95"] is not None]
    stays = next((i for i in range(len(judged) - 1) if all(b["rtt"]["ci95"][1] <= WITHIN for b in judged[i:])), None)
    if stays is not None:
        result["within_from_decisions"] = judged[stays]["decisions"][0]
    return {**result, "bin": BIN, "curve": bins}


def transfer(rows: list[dict], runs_dir: Path, warm: str) -> dict:
    """A +warm policy against its +fresh twin over the rounds both decided within their first
    FIRST decisions, paired by seed."""
    fresh = warm.replace("+warm", "+fresh")
    a, b = round_means(rows, warm, "rtt_ms", "rtt"), round_means(rows, fresh, "rtt_ms", "rtt")
    per_seed = {}
    for seed in sorted(set(seeds_of(rows, warm)) & set(seeds_of(rows, fresh))):
        early = [{rnd for rnd, n in enumerate(decisions(runs_dir, p, seed, since_start=True))
                  if n is not None and n <= FIRST} for p in (warm, fresh)]
        ratio = ratio_of_means(a, b, [(seed, rnd) for rnd in sorted(early[0] & early[1])])
        if ratio is not None:
            per_seed[seed] = round(ratio, 3)
    return {"against": fresh, **across(list(per_seed.values())), "per_seed": per_seed}


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


def ci_text(r: dict) -> str:
    if r["ratio"] is None:
        return "n/a"
    ci = " [{:.2f}, {:.2f}]".format(*r["ci95"]) if r["ci95"] else " (one seed: no interval)"
    return f"{r['ratio']:.2f}x{ci}"


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
