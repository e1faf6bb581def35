"""How fast a learning policy catches up: in run order (seed after seed, its table carried
across them), the first round from which its RTT stays within 10% of least-loaded's on the same
rounds of the same seeds, and how many decisions it had taken by then.

    .venv/bin/python -m scripts.learning results/experiment-<time>    (writes learning.json)

Rounds are compared pairwise (same seed, same round: the same background traffic), over a
moving window, because one round's RTT is a handful of probes; "stays" needs the last 10 rounds
at least.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from scripts.report import ReportError, read_runs

REFERENCE = "least-loaded"
WITHIN = 1.10
WINDOW = 5      # rounds


def round_means(rows: list[dict], policy: str, field: str, kind: str) -> dict[tuple[int, int], float]:
    """(seed, round) -> the mean of `field` over that round's rows of `kind`."""
    values: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["policy"] == policy and r["kind"] == kind and r[field] != "":
            values[int(r["seed"]), int(r["round"])].append(float(r[field]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def decisions(runs_dir: Path, policy: str, seed: int) -> list[int | None]:
    """The policy's decision count after each round of a seed's run ([] if not recorded)."""
    try:
        return json.loads((runs_dir / f"{policy}-seed{seed}" / "rounds.json").read_text())["decisions"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def catch_up(rows: list[dict], runs_dir: Path, policy: str) -> dict:
    """The paired comparison with REFERENCE for one policy."""
    mine, ref = round_means(rows, policy, "rtt_ms", "rtt"), round_means(rows, REFERENCE, "rtt_ms", "rtt")
    keys = sorted(set(mine) & set(ref))
    if len(keys) < WINDOW:
        return {"rounds": len(keys), "within_from_round": None, "decisions": None}
    ratio = [np.mean([mine[k] for k in keys[i - WINDOW + 1:i + 1]]) /
             np.mean([ref[k] for k in keys[i - WINDOW + 1:i + 1]]) for i in range(WINDOW - 1, len(keys))]
    # staying within means for the last 2 windows at least: the final window alone proves nothing
    stays = next((i for i in range(len(ratio) - 2 * WINDOW + 1) if all(x <= WITHIN for x in ratio[i:])), None)
    result = {"rounds": len(keys), "ratio_by_round": [round(float(x), 3) for x in ratio],
              "within_from_round": None, "decisions": None}
    if stays is not None:
        seed, rnd = keys[stays + WINDOW - 1]
        counts = decisions(runs_dir, policy, seed)
        result["within_from_round"] = stays + WINDOW     # 1-based position in run order
        result["decisions"] = counts[rnd] if rnd < len(counts) else None
    return result


def learning(folder: Path) -> dict:
    rows = read_runs(folder / "runs.csv")
    policies = sorted({r["policy"] for r in rows if r["policy"].startswith("qlearning")})
    if not policies or REFERENCE not in {r["policy"] for r in rows}:
        raise ReportError(f"{folder}: needs a qlearning policy and {REFERENCE} to compare")
    return {p: catch_up(rows, folder / "runs", p) for p in policies}


def write(folder: Path) -> list[str]:
    """Write folder/learning.json; one line per learning policy saying when it caught up."""
    result = learning(folder)
    (folder / "learning.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = []
    for policy, r in result.items():
        when = (f"from round {r['within_from_round']} of {r['rounds']} ({r['decisions']} decisions)"
                if r["within_from_round"] else f"not within {WITHIN - 1:.0%} by the last of {r['rounds']} rounds")
        lines.append(f"{policy}: RTT within {WITHIN - 1:.0%} of {REFERENCE} ({WINDOW}-round windows, paired) {when}")
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
