"""The all-pairs experiment: TCP flows between every ordered pair of hosts, sizes from a
data-centre flow-size distribution (topologies/workload.py), each placed by the policy under
test, on a freshly started controller and network per policy and seed; the same flows for
every policy of a seed. It reports what load-balancing papers compare on: flow completion time
slowdown, small flows' mean and p99, medium and large flows' mean, paired by seed against
--reference with 95% intervals.

    sudo .venv/bin/python -m scripts.allpairs --policies least-loaded,learned --seeds 5
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

from controller.policies import POLICIES
from controller.policies.bpann import MODEL_POLICIES
from scripts.experiment import SETUP_S, check_models, run_plan, start_runs
from scripts.report import _num, _pct, change_ci
from topologies.lab import Lab, default_workdir, provenance, wait_until
from topologies.workload import CDFS, FlowPlayer, all_pairs, by_bucket, slowdowns

METRICS = (("small", "mean"), ("small", "p99"), ("medium", "mean"), ("large", "mean"))
COLUMNS = ("policy", "seed", "src", "dst", "size_bytes", "start_s", "seconds", "complete", "ideal_s", "slowdown")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.allpairs", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default="topologies/h1h7.json")
    p.add_argument("--hosts", help="comma-separated hosts that exchange flows (default every host)")
    p.add_argument("--policies", default="least-loaded,widest,learned", help="comma-separated policy names")
    p.add_argument("--reference", default="least-loaded", help="the policy the others are compared with")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds, each its own flows (1..100)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--cdf", choices=sorted(CDFS), default="web-search", help="flow sizes")
    p.add_argument("--rounds", type=int, default=2, help="flows per ordered host pair (1..20)")
    p.add_argument("--gap", type=float, default=0.5, metavar="S", help="mean seconds between flow starts (0.01..10)")
    p.add_argument("--max-bytes", type=int, default=30_000_000,
                   help="largest flow: the distribution's tail is cut there (default: web search's largest; "
                        "data mining's 1 GB needs a cut, and a cut piles the tail at it)")
    p.add_argument("--bound", type=int, default=90, metavar="S", help="a flow's longest life (5..600)")
    p.add_argument("--model", type=Path, metavar="PATH", help="BPANN model of the bpann and learned runs")
    p.add_argument("--out", type=Path, help="results folder (default results/allpairs-<time>)")
    args = p.parse_args(argv)
    args.policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    unknown = [x for x in [*args.policies, args.reference] if x not in POLICIES]
    if unknown or not args.policies:
        p.error(f"--policies/--reference: unknown {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(sorted(POLICIES))}")
    if args.reference not in args.policies:
        p.error(f"--reference: {args.reference} is not one of --policies")
    if not 1 <= args.seeds <= 100 or not 1 <= args.first_seed <= 10_000:
        p.error("--seeds: 1..100; --first-seed: 1..10000")
    if not 1 <= args.rounds <= 20 or not 0.01 <= args.gap <= 10 or not 5 <= args.bound <= 600:
        p.error("--rounds: 1..20; --gap: 0.01..10 s; --bound: 5..600 s")
    if not 1000 <= args.max_bytes <= 1 << 30:
        p.error("--max-bytes: 1000..2^30")
    check_models(p, args.policies, args.model)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = start_runs(args.topology)
    if spec is None:
        return 2
    names = [h.name for h in spec.hosts]
    hosts = [h.strip() for h in args.hosts.split(",")] if args.hosts else names
    if len(set(hosts)) < 2 or not set(hosts) <= set(names):
        print(f"error: --hosts: two or more distinct hosts of {args.topology} ({', '.join(names)})", file=sys.stderr)
        return 2
    folder = args.out or default_workdir("allpairs")
    folder.mkdir(parents=True, exist_ok=True)
    plan = run_plan(args)
    (folder / "config.json").write_text(json.dumps(
        {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "hosts": hosts, "plan": plan,
         **provenance("scripts.allpairs", argv)}, indent=2) + "\n")
    print(f"{len(plan)} runs ({len(args.policies)} policies x {args.seeds} seeds) on '{spec.name}', "
          f"{args.rounds} {args.cdf} flow(s) per ordered pair of {', '.join(hosts)}; results in {folder}")
    flows_csv, interrupted = folder / "flows.csv", False
    with open(flows_csv, "w", newline="") as f:
        csv.writer(f).writerow(COLUMNS)
    rows: list[dict] = []
    try:
        for seed, policy in plan:
            flows = all_pairs(hosts, seed, CDFS[args.cdf], args.rounds, args.gap, args.max_bytes, args.bound)
            mine = [{"policy": policy, "seed": seed, **o}
                    for o in slowdowns(spec, run_once(args, policy, seed, flows, folder / "runs" / f"{policy}-seed{seed}"))]
            with open(flows_csv, "a", newline="") as f:      # each run kept as it ends
                csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerows(mine)
            rows += mine
            done = by_bucket(mine)
            print(f"{policy} seed {seed}: {len(flows) - done['incomplete']}/{len(flows)} flows complete, small p99 "
                  f"{_num(done['small']['p99'])}, large mean {_num(done['large']['mean'])}")
    except KeyboardInterrupt:
        print("\ninterrupted: network and controller stopped; summarising the runs that completed")
        interrupted = True
    summary = summarise(rows, args.reference)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = markdown(summary, args.reference)
    (folder / "summary.md").write_text(table + "\n")
    print("\n" + table)
    return 130 if interrupted else 0 if rows else 1


def run_once(args: argparse.Namespace, policy: str, seed: int, flows, rundir: Path) -> list[dict]:
    """One policy on one seed's flows, on a fresh controller and network: each flow's outcome.
    A flow that reported nothing (its push killed at the bound, or never started) ran to its
    bound as far as anyone knows: it counts there, incomplete, so that every policy of a seed
    is judged on the same flows."""
    extra = ["--model", str(args.model.resolve())] if policy in MODEL_POLICIES and args.model else []
    with Lab(args.topology, rundir, policy=policy, controller_args=("--seed", str(seed), *extra)) as lab:
        lab.pingall()
        player = FlowPlayer(lab.net, flows, rundir / "flows").start()
        try:
            wait_until(player.done, flows[-1].start_s + args.bound + SETUP_S, what="every all-pairs flow to end")
        finally:
            player.stop()
        reported = {(o["src"], o["dst"], o["sport"]): o for o in player.outcomes()}
    return [reported.get((f.src, f.dst, f.sport)) or {**asdict(f), "seconds": float(f.bound_s), "complete": False}
            for f in flows]


def summarise(rows: list[dict], reference: str) -> dict:
    """Per policy: each bucket metric per seed and its mean over seeds, and its change against
    the reference on the seeds both ran (a seed where either had no flow of the bucket is left out)."""
    per_seed: dict[str, dict[int, dict]] = {}
    for policy in dict.fromkeys(r["policy"] for r in rows):
        seeds = sorted({r["seed"] for r in rows if r["policy"] == policy})
        per_seed[policy] = {s: by_bucket([r for r in rows if (r["policy"], r["seed"]) == (policy, s)]) for s in seeds}
    out = {}
    for policy, seeds in per_seed.items():
        base = per_seed.get(reference, {})
        entry = {"seeds": sorted(seeds), "per_seed": {str(s): v for s, v in seeds.items()},
                 "incomplete": sum(v["incomplete"] for v in seeds.values())}
        for bucket, stat in METRICS:
            values = {s: v[bucket][stat] for s, v in seeds.items() if v[bucket][stat] is not None}
            common = [s for s in values if base.get(s, {}).get(bucket, {}).get(stat) is not None]
            entry[f"{bucket}_{stat}"] = sum(values.values()) / len(values) if values else None
            entry[f"{bucket}_{stat}_vs_reference"] = change_ci([values[s] for s in common],
                                                               [base[s][bucket][stat] for s in common])
        entry["flows"] = {b: sum(v[b]["flows"] for v in seeds.values()) for b in ("small", "medium", "large")}
        out[policy] = entry
    return out


def markdown(summary: dict, reference: str) -> str:
    """Slowdowns (mean over seeds) and each one's change against the reference, paired by seed."""
    head = ["policy", "small mean", "small p99", "medium mean", "large mean", "flows s/m/l", "incomplete",
            *(f"{b} {s} vs {reference} [95% CI]" for b, s in METRICS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for policy, e in summary.items():
        cells = [policy, *(_num(e[f"{b}_{s}"]) for b, s in METRICS),
                 "/".join(str(e["flows"][b]) for b in ("small", "medium", "large")), str(e["incomplete"]),
                 *("(reference)" if policy == reference else _pct(e[f"{b}_{s}_vs_reference"]) or "n/a"
                   for b, s in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
