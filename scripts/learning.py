"""How fast a learning policy catches up: in run order (seed after seed, its table carried
across them), the first round from which its RTT stays within 10% of least-loaded's on the same
rounds of the same seeds, and how many decisions it had taken by then. And whether a table
learnt elsewhere helps: a "+warm" run's RTT over its first FIRST decisions against its "+fresh"
twin's (empty table), seed by seed.

    .venv/bin/python -m scripts.learning results/experiment-<time>    (writes learning.json)

Rounds are compared pairwise (same seed, same round: the same background traffic), by the
geometric mean of their ratios over a moving window of WINDOW rounds, because one round's RTT is
a handful of probes with a heavy tail. Measured on H1-H7 (5 seeds of 120 s, docs/results/
qlearning-widest): one round's ratio to least-loaded's has a log standard deviation of 0.7-0.8,
so over 5-round windows even widest, which does not learn, swung between 0.46 and 1.66; over 20
rounds (100 s) it stayed within 0.64-1.05. A learner exactly as good as least-loaded would still
leave the 10% band in about a quarter of its 20-round windows: catching up is shown only by one
clearly better. "Stays" needs two windows' worth of rounds at least.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from scripts.report import ReportError, change_ci, read_runs

REFERENCE = "least-loaded"
WITHIN = 1.10
WINDOW = 20     # rounds
FIRST = 100     # decisions


def round_means(rows: list[dict], policy: str, field: str, kind: str) -> dict[tuple[int, int], float]:
    """(seed, round) -> the mean of `field` over that round's rows of `kind`."""
    values: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["policy"] == policy and r["kind"] == kind and r[field] != "":
            values[int(r["seed"]), int(r["round"])].append(float(r[field]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def ratios(mine: dict, ref: dict) -> tuple[list, list[float]]:
    """The rounds both have (positive), and over each WINDOW of them the geometric mean of
    mine/ref, the window ending at that round ([] if fewer rounds)."""
    keys = sorted(k for k in set(mine) & set(ref) if mine[k] > 0 and ref[k] > 0)
    if len(keys) < WINDOW:
        return keys, []
    logs = np.log([mine[k] / ref[k] for k in keys])
    return keys, [float(x) for x in np.exp(np.convolve(logs, np.ones(WINDOW) / WINDOW, "valid"))]


def decisions(runs_dir: Path, policy: str, seed: int, since_start: bool = False) -> list[int | None]:
    """The policy's decision count after each round of a seed's run ([] if not recorded): its
    table's count, which goes on across seeds, or with since_start those of this run alone."""
    try:
        rounds = json.loads((runs_dir / f"{policy}-seed{seed}" / "rounds.json").read_text())
        start = rounds.get("start") or 0 if since_start else 0
        return [None if n is None else n - start for n in rounds["decisions"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def catch_up(rows: list[dict], runs_dir: Path, policy: str) -> dict:
    """The paired comparison with REFERENCE for one policy."""
    keys, ratio = ratios(round_means(rows, policy, "rtt_ms", "rtt"), round_means(rows, REFERENCE, "rtt_ms", "rtt"))
    _, throughput = ratios(round_means(rows, policy, "throughput_mbps", "transfer"),
                           round_means(rows, REFERENCE, "throughput_mbps", "transfer"))
    result = {"rounds": len(keys), "window": WINDOW, "ratio_by_round": [round(x, 3) for x in ratio],
              "throughput_ratio_by_round": [round(x, 3) for x in throughput],
              "within_from_round": None, "decisions": None}
    # staying within for two windows' worth of rounds at least: the final window alone proves nothing
    stays = next((i for i in range(len(ratio) - WINDOW) if all(x <= WITHIN for x in ratio[i:])), None)
    if stays is not None:
        seed, rnd = keys[stays + WINDOW - 1]
        counts = decisions(runs_dir, policy, seed)
        result["within_from_round"] = stays + WINDOW     # 1-based position in run order
        result["decisions"] = counts[rnd] if rnd < len(counts) else None
    return result


def early_rtt(rows: list[dict], runs_dir: Path, policy: str) -> dict[int, float]:
    """Per seed, the mean probe RTT over the rounds decided within the policy's first FIRST decisions."""
    out = {}
    for seed in sorted({int(r["seed"]) for r in rows if r["policy"] == policy}):
        counts = decisions(runs_dir, policy, seed, since_start=True)
        early = {rnd for rnd, n in enumerate(counts) if n is not None and n <= FIRST}
        values = [float(r["rtt_ms"]) for r in rows if r["policy"] == policy and int(r["seed"]) == seed
                  and r["kind"] == "rtt" and r["rtt_ms"] != "" and int(r["round"]) in early]
        if values:
            out[seed] = float(np.mean(values))
    return out


def transfer(rows: list[dict], runs_dir: Path, warm: str) -> dict:
    """A +warm policy against its +fresh twin, over their first FIRST decisions, paired by seed."""
    fresh = warm.replace("+warm", "+fresh")
    a, b = early_rtt(rows, runs_dir, warm), early_rtt(rows, runs_dir, fresh)
    seeds = sorted(set(a) & set(b))
    return {"against": fresh, "seeds": seeds, "warm_rtt_ms": [a[s] for s in seeds], "fresh_rtt_ms": [b[s] for s in seeds],
            "change": change_ci([a[s] for s in seeds], [b[s] for s in seeds])}


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
        if "rounds" in r:
            when = (f"from round {r['within_from_round']} of {r['rounds']} ({r['decisions']} decisions)"
                    if r["within_from_round"] else f"not within {WITHIN - 1:.0%} by the last of {r['rounds']} rounds")
            lines.append(f"{policy}: RTT within {WITHIN - 1:.0%} of {REFERENCE} ({WINDOW}-round windows, paired, "
                         f"geometric mean) {when}")
        if "transfer" in r:
            t, change = r["transfer"], r["transfer"]["change"]
            ci = "[{:+.1%}, {:+.1%}]".format(*change["ci95"]) if change["ci95"] else "(one seed: no interval)"
            mean = f"{change['mean']:+.1%}" if change["mean"] is not None else "n/a"
            lines.append(f"{policy}: RTT over the first {FIRST} decisions vs {t['against']}: {mean} {ci}, "
                         f"{len(t['seeds'])} seeds")
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
