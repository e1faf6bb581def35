"""Benchmarks of the BPANN (printed figures, not tests):

1. decision time: choosing among 8 candidate paths with the shipped model, beside shortest
   path on the same features (median and p99 per decision, and the ratio); every decision
   sees new features, so none is answered from the policy's memory of earlier ones;
2. training time: the full hidden-size sweep (3..11, 5 folds) on N synthetic samples.

    .venv/bin/python -m scripts.bench_bpann [--samples 50000] [--skip-sweep] [--json FILE]

With --json, the figures go to FILE with the commit and command (docs/benchmarks.md is
generated from it by scripts/tables.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from controller.core.monitor import PathFeatures
from controller.policies import BpannPolicy, ShortestPath
from models.evaluation import shuffled_folds
from models.train import sweep
from topologies.lab import started, write_results


def decision_times(policy, feature_sets) -> list[float]:
    times = []
    for features in feature_sets:
        start = time.perf_counter()
        policy.choose(None, features)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench_bpann", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=20_000)
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--json", help="also write the figures, commit and command to this file")
    args = p.parse_args(argv)
    run = started("scripts.bench_bpann", argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    rng = np.random.default_rng(0)
    feature_sets = [[PathFeatures(*rng.uniform(0, 1, 2), rng.uniform(0, 50), int(rng.integers(1, 6)))
                     for _ in range(8)] for _ in range(args.repeats + 1000)]
    bpann = BpannPolicy()
    if bpann.model is None:
        print("no usable model at models/bpann: train one first (docs/models.md)")
        return 1
    results = {}
    for name, policy in (("shortest", ShortestPath()), ("bpann", bpann)):
        decision_times(policy, feature_sets[:1000])   # warm up
        t = sorted(decision_times(policy, feature_sets[1000:]))
        results[name] = (statistics.median(t), t[int(0.99 * len(t))])
        print(f"decision among 8 candidates, {name:>8}: median {results[name][0] * 1e6:7.1f} us, "
              f"p99 {results[name][1] * 1e6:7.1f} us")
    print(f"ratio bpann / shortest (median): {results['bpann'][0] / results['shortest'][0]:.1f}x")
    figures = {"numpy": np.__version__, "candidates": 8, "decisions": args.repeats, "sweep_samples": None, "sweep_s": None,
               "decision_us": {name: {"median": m * 1e6, "p99": p99 * 1e6} for name, (m, p99) in results.items()}}
    if not args.skip_sweep:
        x = np.column_stack([rng.uniform(0, 0.95, args.samples), rng.uniform(0, 0.2, args.samples),
                             rng.uniform(0, 50, args.samples), rng.integers(1, 5, args.samples)])
        y = 2 * x[:, 3] + 5 / (1 - x[:, 0]) + 40 * x[:, 1] + rng.normal(0, 0.3, args.samples)
        start = time.perf_counter()
        sweep(x, y, shuffled_folds(len(y), 5))     # synthetic samples have no time to block by
        figures["sweep_samples"], figures["sweep_s"] = args.samples, time.perf_counter() - start
        print(f"hidden-size sweep (3, 5, 7, 9, 11 x 5 folds + baselines) on {args.samples} samples: "
              f"{figures['sweep_s']:.1f} s wall")
    if args.json:
        print(f"figures: {write_results(args.json, 'bpann', run, figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
