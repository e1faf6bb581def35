"""Run J's figures (docs/qlearning.md, "The baseline table at 240 s, written down first";
preregistration.md in docs/results/qlearning-h1h7-baseline-240s): the table against
least-loaded per part and over the parts kept so far, from the summaries in the repository;
what the warm table learnt; and, given the experiment's --out folder (Ja, Jb, Jc under it; the
repository keeps no runs), how often each finished run's table left least-loaded's choice:

    .venv/bin/python -m scripts.run_j [/work/results-17j]

The verdict is pre-registered on all 24 seeds; on fewer, the figures are as read.
"""

import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from controller.policies.heuristics import LeastLoaded
from controller.policies.qlearning import SPREAD_MS, TRUSTED_VISITS, effective_visits
from scripts.report import across, ci_text
from scripts.run_i import features

RESULTS = Path(__file__).resolve().parents[1] / "docs/results"
PARTS = {"a": ("qlearning-h1h7-baseline-240s", 901), "b": ("qlearning-h1h7-baseline-240s-b", 909),
         "c": ("qlearning-h1h7-baseline-240s-c", 917)}
TABLE = "qlearning+warm+kept+baseline"
SEEDS_A_PART = 8


def per_seed(part: str, policy: str) -> dict:
    return json.loads((RESULTS / PARTS[part][0] / "summary.json").read_text())[policy]["per_seed"]


def ratios(part: str, metric: str) -> dict[str, float | None]:
    """The table's `metric` over its own command's least-loaded's, for each of the part's
    seeds (None for a seed without both)."""
    ll, q = per_seed(part, "least-loaded"), per_seed(part, TABLE)
    first = PARTS[part][1]
    return {str(k): q[str(k)][metric] / ll[str(k)][metric]
            if str(k) in q and str(k) in ll and q[str(k)][metric] and ll[str(k)][metric] else None
            for k in range(first, first + SEEDS_A_PART)}


def against() -> None:
    parts = [p for p in PARTS if (RESULTS / PARTS[p][0] / "summary.json").exists()]
    if not parts:
        print("no part's summary in docs/results yet")
        return
    for policy in ("least-loaded", TABLE):
        losses = [v["loss"] for p in parts for v in per_seed(p, policy).values() if v["loss"] is not None]
        print(f"{policy}: probes lost {100 * sum(losses) / len(losses):.1f}% (mean over {len(losses)} runs)")
    for metric in ("rtt_mean_ms", "throughput_mbps"):
        per_part = {p: ratios(p, metric) for p in parts}
        missing = [k for p in parts for k, r in per_part[p].items() if r is None]
        pooled = [r for p in parts for r in per_part[p].values() if r is not None]
        print(f"{metric}: " + "; ".join(
            f"part {p} {ci_text(across([r for r in per_part[p].values() if r is not None]), 3)}" for p in parts)
            + f"; parts {'+'.join(parts)} ({len(pooled)} seeds) {ci_text(across(pooled), 3)}"
            + (f"; seeds without a ratio: {', '.join(missing)}" if missing else ""))
        if len(parts) < len(PARTS) or missing:
            print(f"   no verdict: pre-registered on all {len(PARTS) * SEEDS_A_PART} seeds")
            continue
        low, high = across(pooled)["ci95"]
        shown = high <= 1.10 if metric == "rtt_mean_ms" else low >= 0.90
        print(f"   pre-registered verdict: {'SHOWN' if shown else 'not shown'} (unrounded [{low}, {high}])")


def warm_table() -> None:
    path = RESULTS / PARTS["a"][0] / "warm-baseline.json"
    if not path.exists():
        print(f"{path}: not kept yet")
        return
    warm = json.loads(path.read_text())
    print(f"warm table: {warm['decisions']} decisions, {warm['updates']} taught a pair, epsilon {warm['epsilon']:.3f}")
    for key, (mean, visits) in sorted(warm["q"].items(), key=lambda kv: -kv[1][1]):
        bound = mean - SPREAD_MS / math.sqrt(effective_visits(visits, warm["alpha"]))
        trusted = visits >= TRUSTED_VISITS and bound > 0
        print(f"   {key}: {visits} flows, mean advantage {mean:+.2f} ms, bound {bound:+.2f}"
              f"{' TRUSTED' if trusted else ''}")


def left(out: Path) -> None:
    """Per finished run: the decisions that left least-loaded's choice, as the table counted
    them (every flow's), and the --src trains' and transfers' decisions, both directions,
    placed off least-loaded's choice on the readings logged; then, over the parts, how full
    the paths those placements took read, each policy's probes (those that came back) per
    path: their share and mean RTT, and what the trains the table moved (either way) met, and
    the mean RTT ratio without their rounds, dropped from both policies (a post-hoc split,
    fair in that exploration draws at random)."""
    off_paths, moved = [], set()      # moved: (seed, round) of the table's trains off least-loaded's
    for part in PARTS:
        for run in sorted((out / f"J{part}" / "runs").glob(f"{TABLE}-seed*")):
            if not (run / "rounds.json").exists():
                print(f"part {part} {run.name}: not finished")
                continue
            policy = json.loads((run / "rounds.json").read_text()).get("policy") or {}
            off = total = 0
            for line in open(run / "decisions.jsonl"):
                d = json.loads(line)
                for decision in (d, d.get("reply") or {}):
                    if decision.get("candidates"):
                        total += 1
                        candidates = list(map(features, decision["candidates"]))
                        baseline = LeastLoaded().rank(None, candidates)[0]
                        if decision["chosen"] != baseline:
                            off += 1
                            if d["kind"] == "rtt":
                                moved.add((run.name.rsplit("seed", 1)[1], d["round"]))
                            off_paths.append((candidates[decision["chosen"]].utilisation,
                                              candidates[baseline].utilisation))
            print(f"part {part} {run.name}: {policy.get('decisions')} decisions, left the baseline "
                  f"{policy.get('left')}, trusted pairs at the end {policy.get('trusted')}; "
                  f"logged placements off least-loaded's choice {off} of {total}")
    if off_paths:
        taken, base = zip(*off_paths)
        print(f"those {len(off_paths)} placements: the path taken read {statistics.median(taken):.2f} full "
              f"(median; {sum(u >= 1.0 for u in taken)} full), least-loaded's {statistics.median(base):.2f}")
    rtts, kept = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    in_moved: dict[str, list[float]] = defaultdict(list)
    for part in PARTS:
        if (out / f"J{part}" / "runs.csv").exists():
            for r in csv.DictReader(open(out / f"J{part}" / "runs.csv")):
                if r["kind"] == "rtt" and r["rtt_ms"]:
                    rtts[r["policy"]][r["path"]].append(float(r["rtt_ms"]))
                    (in_moved[r["policy"]] if (r["seed"], int(r["round"])) in moved else
                     kept[r["policy"]][r["seed"]]).append(float(r["rtt_ms"]))
    for policy, paths in rtts.items():
        n = sum(map(len, paths.values()))
        print(f"{policy}, probes per path: " + "; ".join(
            f"{p} {100 * len(v) / n:.0f}% at {statistics.fmean(v):.2f} ms" for p, v in sorted(paths.items())))
    if moved and kept["least-loaded"]:
        seeds = sorted(set(kept[TABLE]) & set(kept["least-loaded"]), key=int)
        print(f"the {len(moved)} trains the table moved: their probes {statistics.fmean(in_moved[TABLE]):.1f} ms, "
              f"least-loaded's in those rounds {statistics.fmean(in_moved['least-loaded']):.1f}; mean RTT "
              f"without those rounds in both: " + ci_text(across(
                  [statistics.fmean(kept[TABLE][s]) / statistics.fmean(kept["least-loaded"][s]) for s in seeds]), 3)
              + f" over {len(seeds)} seeds")


if __name__ == "__main__":
    against()
    warm_table()
    if len(sys.argv) > 1:
        left(Path(sys.argv[1]))
