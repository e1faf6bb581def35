"""The A/A run's figures (preregistration.md beside it): least-loaded against itself at 240 s,
two commands on seeds 801-810, from the summaries kept in docs/results/least-loaded-aa-240s (A/, B/):

    .venv/bin/python -m scripts.least_loaded_aa
"""

import json
import math
from pathlib import Path
from statistics import stdev

from scipy import stats

from scripts.report import across, ci_text

HERE = Path(__file__).resolve().parents[1] / "docs/results/least-loaded-aa-240s"

PREDICTED, AT_60_S = 0.15, 0.33


def per_seed(run: str) -> dict:
    return json.loads((HERE / run / "summary.json").read_text())["least-loaded"]["per_seed"]


if __name__ == "__main__":
    a, b = per_seed("A"), per_seed("B")
    seeds = sorted(set(a) & set(b), key=int)
    print(f"seeds in both: {len(seeds)} ({', '.join(seeds)}); only one: {sorted(set(a) ^ set(b), key=int)}")
    for metric in ("rtt_mean_ms", "throughput_mbps"):
        ratios = [a[k][metric] / b[k][metric] for k in seeds]
        sd, df = stdev(math.log(r) for r in ratios), len(seeds) - 1
        low, high = sd * math.sqrt(df / stats.chi2.ppf(0.975, df)), sd * math.sqrt(df / stats.chi2.ppf(0.025, df))
        print(f"{metric}: A over B {ci_text(across(ratios), 3)}; per-seed log ratio SD {sd:.3f} [{low:.3f}, {high:.3f}]")
        if metric == "rtt_mean_ms":
            verdict = ("REFUTED" if not low <= PREDICTED <= high else
                       "SUPPORTED" if high < AT_60_S else "undecided")
            r = across(ratios)["ci95"]
            print(f"   1/rounds scaling (predicted {PREDICTED}, {AT_60_S} at 60 s): {verdict}; within 10% of "
                  f"itself: {'shown' if 1 / 1.1 <= r[0] and r[1] <= 1.1 else 'not shown'} (unrounded {r})")
    print("mean RTT per seed, A and B: " + "; ".join(f"{k} {a[k]['rtt_mean_ms']:.2f} {b[k]['rtt_mean_ms']:.2f}"
                                                     for k in seeds))
