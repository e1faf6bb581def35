"""Where a policy chose otherwise than a fixed rule would have, and what those flows met: from
the decisions an experiment recorded (runs/*/decisions.jsonl, as scripts.experiment writes it,
or gzipped), each probe train's and transfer's candidates are ranked again by the rule, on the
features the policy saw. A learned policy that beats a rule should differ from it, and the
flows where it differs should fare better; on a network where it loses, those flows say
whether its own choices cost it or the network's state did.

    .venv/bin/python -m scripts.explain RESULTS_DIR [--rule least-loaded]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from controller.core.monitor import PathFeatures
from controller.core.settings import ConfigError
from controller.policies import make_policy

FIELDS = ("utilisation", "loss", "latency_ms", "hops", "unknown", "headroom_mbps", "capacity_mbps")


def features(candidate: dict) -> PathFeatures:
    """A recorded candidate's features (null headroom or capacity: no inter-switch link)."""
    values = {k: candidate.get(k) for k in FIELDS}
    for k in ("headroom_mbps", "capacity_mbps"):
        values[k] = math.inf if values[k] is None else values[k]
    for k in ("utilisation", "loss", "latency_ms"):      # a policy given hops alone was shown 0
        values[k] = values[k] or 0.0
    values["unknown"] = values["unknown"] or 0
    return PathFeatures(**values)


def read(results: Path) -> dict[str, list[dict]]:
    """Per run (its folder's name, e.g. learned-seed3), its recorded decisions in order."""
    runs = {}
    for path in sorted((results / "runs").glob("*/decisions.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            runs[path.parent.name] = [json.loads(line) for line in f if line.strip()]
    return runs


def compare(runs: dict[str, list[dict]], rule) -> dict[str, dict]:
    """Per policy (a run's name without -seedN), per kind: how many decisions were recorded,
    how many the rule would have taken elsewhere, and the outcome of each group (probe loss,
    transfer completion time)."""
    out: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: {"unrecorded": 0, "differed": [], "agreed": []}))
    for run, placed in runs.items():
        policy = run.rsplit("-seed", 1)[0]
        for p in placed:
            group = out[policy][p["kind"]]
            if not p.get("candidates"):
                group["unrecorded"] += 1
                continue
            choice, _ = rule.rank(None, [features(c) for c in p["candidates"]])
            outcome = (p["sent"] - p["received"], p["sent"]) if p["kind"] == "rtt" else p["fct_s"]
            group["differed" if choice != p["chosen"] else "agreed"].append(outcome)
    return out


def describe(outcomes: list, kind: str) -> str:
    if not outcomes:
        return "none"
    if kind == "rtt":
        lost, sent = map(sum, zip(*outcomes))
        return f"{len(outcomes)}, {100 * lost / sent:.1f}% of probes lost"
    return f"{len(outcomes)}, mean {statistics.mean(outcomes):.2f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.explain", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="an experiment's results folder (it has runs/)")
    p.add_argument("--rule", default="least-loaded", help="a policy that ranks by the features alone")
    args = p.parse_args(argv)
    try:
        rule = make_policy(args.rule)
    except ConfigError as exc:
        p.error(f"--rule: {exc}")
    probe = rule.rank(None, [PathFeatures(0.0, 0.0, 0.0, 1)])[1]
    if rule.learns or probe is None:
        p.error(f"--rule: '{args.rule}' does not rank by the features alone (it learns, or draws)")
    runs = read(args.results)
    if not runs:
        p.error(f"{args.results}: no runs/*/decisions.jsonl (recorded by scripts.experiment since 93ce78c)")
    print(f"| policy | flows | recorded | chosen as {args.rule} would | chosen otherwise |")
    print("| --- | --- | --- | --- | --- |")
    for policy, kinds in compare(runs, rule).items():
        for kind, g in kinds.items():
            recorded = len(g["agreed"]) + len(g["differed"])
            print(f"| {policy} | {kind} | {recorded} of {recorded + g['unrecorded']} | "
                  f"{describe(g['agreed'], kind)} | {describe(g['differed'], kind)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
