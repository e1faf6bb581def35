"""Where a policy chose otherwise than a fixed rule would have, and what those flows met: from
the decisions an experiment recorded (runs/*/decisions.jsonl, as scripts.experiment writes it,
or gzipped), each probe train's and transfer's candidates are ranked again by the rule, on the
features the policy saw, in both directions (a reply is a decision of its own). A flow counts
as chosen otherwise when either direction was. A learned policy that beats a rule should
differ from it, and the flows where it differs should fare better; on a network where it
loses, those flows say whether its own choices cost it or the network's state did.

    .venv/bin/python -m scripts.explain RESULTS_DIR [--rule least-loaded]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from controller.core.monitor import PathFeatures
from controller.core.settings import ConfigError
from controller.policies import make_policy
from scripts.report import ReportError, gz, open_text, read_runs

FIELDS = ("utilisation", "loss", "latency_ms", "hops", "unknown", "headroom_mbps", "capacity_mbps")


def features(candidate: dict) -> PathFeatures:
    """A recorded candidate's features (GET /api/v1/decisions writes an infinite headroom or
    capacity, a path without inter-switch links, as null)."""
    values = {k: candidate[k] for k in FIELDS}
    for k in ("headroom_mbps", "capacity_mbps"):
        values[k] = math.inf if values[k] is None else values[k]
    return PathFeatures(**values)


def read(results: Path) -> dict[str, list[dict]]:
    """Per run (its folder's name, e.g. learned-seed3), its recorded decisions in order, each
    probe train given the mean RTT of its probes that came back (runs.csv, if it is there)."""
    rtts: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    table = gz(results / "runs.csv")
    for n, r in enumerate(read_runs(table) if table.exists() else [], start=2):
        if r["kind"] == "rtt" and r["rtt_ms"]:
            try:
                rtts[r["policy"], r["seed"], int(r["round"])].append(float(r["rtt_ms"]))
            except ValueError:
                raise ReportError(f"{table}: row {n}: round or rtt_ms not a number") from None
    runs = {}
    for path in sorted((results / "runs").glob("*/decisions.jsonl*")):
        policy, _, seed = path.parent.name.rpartition("-seed")
        with open_text(path) as f:
            placed = [_record(path, n, line) for n, line in enumerate(f, start=1)]
        runs[path.parent.name] = [{**p, "rtt_ms": rtts.get((policy, seed, p["round"]))} for p in placed]
    return runs


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _decision_problem(d: dict) -> str | None:
    """What makes a recorded decision unusable ({} is usable: no record of it)."""
    if not isinstance(d, dict):
        return "a decision is not an object"
    candidates = d.get("candidates", [])
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        return "candidates: not a list of objects"
    if candidates and not (isinstance(d.get("chosen"), int) and 0 <= d["chosen"] < len(candidates)):
        return "chosen: not the index of a candidate"
    for c in candidates if d.get("measured") else ():
        bad = [k for k in FIELDS if not (_number(c.get(k)) or (k in ("headroom_mbps", "capacity_mbps") and c.get(k) is None))]
        if bad:
            return f"candidate field {bad[0]}: not a number"
    return None


def _record(path: Path, n: int, line: str) -> dict:
    """One line of decisions.jsonl, checked for what compare() reads; ReportError names the
    file, line and field otherwise (a hand-edited or truncated file must not end in a traceback)."""
    try:
        p = json.loads(line)
    except ValueError:
        raise ReportError(f"{path}: line {n}: not JSON") from None
    problem = None
    if not isinstance(p, dict) or p.get("kind") not in ("rtt", "transfer") or not isinstance(p.get("round"), int):
        problem = "not a probe train's or transfer's record (kind, round)"
    elif p["kind"] == "rtt" and not (isinstance(p.get("sent"), int) and isinstance(p.get("received"), int)
                                     and 0 <= p["received"] <= p["sent"] and p["sent"] > 0):
        problem = "sent, received: not counts of a train"
    elif p["kind"] == "transfer" and not _number(p.get("fct_s")):
        problem = "fct_s: not a number"
    else:
        problem = next(filter(None, (_decision_problem(d) for d in (p, p.get("reply", {})))), None)
    if problem:
        raise ReportError(f"{path}: line {n}: {problem}")
    return p


def compare(runs: dict[str, list[dict]], rule) -> dict[str, dict]:
    """Per policy (a run's name without -seedN), per kind of flow: how many were recorded with
    their features, and each flow's outcome, grouped by whether the rule would have taken both
    its directions where the policy did (probe trains: probes lost and sent, and their RTTs;
    transfers: completion time). A record without features (a policy given hops alone) or
    without the request's decision is counted, not ranked."""
    out: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: {"unranked": 0, "differed": [], "agreed": []}))
    for run, placed in runs.items():
        policy = run.rsplit("-seed", 1)[0]
        for p in placed:
            group = out[policy][p["kind"]]
            # a reply with no decision: none was needed (a transfer whose SYN went unanswered) or
            # it was recorded before replies were (e63544a); the flow is ranked on its request's
            directions = [p, *([p["reply"]] if p.get("reply") else [])]
            if not all(d.get("measured") and d.get("candidates") for d in directions):
                group["unranked"] += 1
                continue
            otherwise = any(rule.rank(None, [features(c) for c in d["candidates"]])[0] != d["chosen"] for d in directions)
            outcome = (p["sent"] - p["received"], p["sent"], p["rtt_ms"] or []) if p["kind"] == "rtt" else p["fct_s"]
            group["differed" if otherwise else "agreed"].append(outcome)
    return out


def describe(outcomes: list, kind: str) -> str:
    if not outcomes:
        return "none"
    if kind == "rtt":
        lost, sent = (sum(o[i] for o in outcomes) for i in (0, 1))
        rtts = [x for o in outcomes for x in o[2]]
        rtt = f", RTT mean {statistics.mean(rtts):.2f} ms" if rtts else ""
        return f"{len(outcomes)}: {100 * lost / sent:.1f}% of probes lost{rtt}"
    return f"{len(outcomes)}: mean {statistics.mean(outcomes):.2f} s"


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
    try:
        runs = read(args.results)
    except ReportError as exc:
        p.error(str(exc))
    if not runs:
        p.error(f"{args.results}: no runs/*/decisions.jsonl (recorded by scripts.experiment since 93ce78c)")
    print(f"| policy | flows | ranked | both directions as {args.rule} would | either otherwise |")
    print("| --- | --- | --- | --- | --- |")
    for policy, kinds in compare(runs, rule).items():
        for kind, g in kinds.items():
            ranked = len(g["agreed"]) + len(g["differed"])
            print(f"| {policy} | {kind} | {ranked} of {ranked + g['unranked']} | "
                  f"{describe(g['agreed'], kind)} | {describe(g['differed'], kind)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
