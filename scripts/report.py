"""Summaries of an experiment's runs.csv: per-policy metrics, their change against shortest
path with a 95% confidence interval across seeds, a Markdown table and the plots.

    .venv/bin/python -m scripts.report results/experiment-<time>    (rewrites summary.*, *.png)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from scipy import stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUN_COLUMNS = ("policy", "seed", "kind", "round", "seq", "start_s", "flow", "path", "rtt_ms",
               "bytes", "fct_s", "throughput_mbps", "complete")
METRICS = ("rtt_mean_ms", "rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "throughput_mbps", "fct_mean_s", "loss")
BASELINE = "shortest"


class ReportError(ValueError):
    """A runs file that cannot be summarised; the message names the file and row."""


def read_runs(path: Path) -> list[dict]:
    """The rows of runs.csv; a truncated last line (an interrupted run) is dropped."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != RUN_COLUMNS:
                raise ReportError(f"{path}: header is {reader.fieldnames}, expected {list(RUN_COLUMNS)}")
            rows = list(reader)
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror}") from None
    if rows and None in rows[-1].values():
        rows.pop()
    for n, row in enumerate(rows, start=2):
        if None in row.values() or None in row:
            raise ReportError(f"{path}: row {n} has {len(row)} fields, expected {len(RUN_COLUMNS)}")
    return rows


def _float(row: dict, field: str) -> float | None:
    return float(row[field]) if row[field] != "" else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def seed_metrics(rows: list[dict]) -> dict:
    """The metrics of one policy on one seed (None where it measured nothing)."""
    rtt_rows = [r for r in rows if r["kind"] == "rtt"]
    rtts = np.array([_float(r, "rtt_ms") for r in rtt_rows if r["rtt_ms"] != ""])
    pct = (lambda q: float(np.percentile(rtts, q))) if rtts.size else (lambda q: None)
    return {
        "rtt_mean_ms": _mean(rtts), "rtt_p50_ms": pct(50), "rtt_p95_ms": pct(95), "rtt_p99_ms": pct(99),
        "throughput_mbps": _mean(_float(r, "throughput_mbps") for r in rows if r["kind"] == "transfer"),
        "fct_mean_s": _mean(_float(r, "fct_s") for r in rows if r["kind"] in ("transfer", "background")),
        "loss": 1 - rtts.size / len(rtt_rows) if rtt_rows else None,
    }


def change_ci(values: list[float], baseline: list[float]) -> dict:
    """Relative change against the baseline, seed by seed: mean and 95% t-interval."""
    ratios = np.array([v / b - 1 for v, b in zip(values, baseline) if b and v is not None])
    if ratios.size == 0:
        return {"mean": None, "ci95": None}
    if ratios.size == 1:
        return {"mean": float(ratios[0]), "ci95": None}
    half = stats.t.ppf(0.975, ratios.size - 1) * ratios.std(ddof=1) / math.sqrt(ratios.size)
    return {"mean": float(ratios.mean()), "ci95": [float(ratios.mean() - half), float(ratios.mean() + half)]}


def summarise(rows: list[dict]) -> dict:
    """Per policy: each metric's mean over seeds, the per-seed values, and the change against
    shortest path (on the seeds both ran)."""
    groups: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["policy"]][int(r["seed"])].append(r)
    per_seed = {p: {s: seed_metrics(rs) for s, rs in sorted(by_seed.items())} for p, by_seed in groups.items()}
    out = {}
    for policy, seeds in per_seed.items():
        entry = {m: _mean(v[m] for v in seeds.values()) for m in METRICS}
        entry["seeds"] = sorted(seeds)
        entry["per_seed"] = {str(s): v for s, v in seeds.items()}
        base = per_seed.get(BASELINE, {})
        common = [s for s in seeds if s in base]
        entry["vs_shortest"] = {m: change_ci([seeds[s][m] for s in common], [base[s][m] for s in common])
                                for m in METRICS if m != "loss"} if common else {}
        out[policy] = entry
    return out


def _pct(change: dict) -> str:
    if change.get("mean") is None:
        return ""
    ci = change.get("ci95")
    return f"{100 * change['mean']:+.1f}%" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")


def _num(value: float | None, scale: float = 1, fmt: str = ".2f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value * scale:{fmt}}{unit}"


def markdown(summary: dict) -> str:
    head = ("| policy | seeds | RTT mean (ms) | p50 | p95 | p99 | throughput (Mbit/s) | FCT mean (s) | loss "
            "| RTT mean vs shortest [95% CI] | p95 vs shortest | throughput vs shortest | FCT vs shortest |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for policy, m in summary.items():
        vs = m["vs_shortest"]
        cells = [policy, str(len(m["seeds"])),
                 *(_num(m[k]) for k in ("rtt_mean_ms", "rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "throughput_mbps",
                                        "fct_mean_s")),
                 _num(m["loss"], 100, ".1f", "%"),
                 *(_pct(vs.get(k, {})) for k in ("rtt_mean_ms", "rtt_p95_ms", "throughput_mbps", "fct_mean_s"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_rtt_cdf(rows: list[dict], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        rtts = np.sort([float(r["rtt_ms"]) for r in rows if r["policy"] == policy and r["kind"] == "rtt"
                        and r["rtt_ms"] != ""])
        if rtts.size:
            ax.plot(rtts, np.arange(1, rtts.size + 1) / rtts.size, label=policy)
    ax.set(xscale="symlog", xlabel="h1 to h7 round-trip time (ms)", ylabel="fraction of probes",
           title="RTT CDF, all seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_throughput(summary: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, m in enumerate(summary.values()):
        values = [v["throughput_mbps"] for v in m["per_seed"].values() if v["throughput_mbps"] is not None]
        ax.bar(i, m["throughput_mbps"] or 0, color="C0", alpha=0.6)
        ax.scatter([i] * len(values), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(summary)), list(summary), rotation=20)
    ax.set(ylabel="transfer throughput (Mbit/s)", title="h1 to h7 transfers: mean over seeds (dots: seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_rtt_over_time(rows: list[dict], out: Path) -> None:
    """Each round's mean RTT in the order the rounds ran (seed after seed): the learning curve
    of a policy that learns online, beside the flat lines of those that do not."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        rounds: dict[tuple[int, int], list[float]] = defaultdict(list)
        for r in rows:
            if r["policy"] == policy and r["kind"] == "rtt" and r["rtt_ms"] != "":
                rounds[int(r["seed"]), int(r["round"])].append(float(r["rtt_ms"]))
        means = [float(np.mean(v)) for _, v in sorted(rounds.items())]
        window = max(1, min(10, len(means) // 5))
        smooth = np.convolve(means, np.ones(window) / window, mode="valid") if means else []
        ax.plot(range(window, len(means) + 1), smooth, label=policy, lw=2 if policy == "qlearning" else 1)
    ax.set(yscale="symlog", xlabel="round (in run order, seeds one after another)",
           ylabel="h1 to h7 RTT, round mean (ms)", title="RTT over the experiment (moving average)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_utilisation(runs_dir: Path, seed: int, policies: list[str], out: Path) -> None:
    """Each inter-switch link's utilisation over time, one panel per policy, for one seed."""
    fig, axes = plt.subplots(len(policies), 1, figsize=(7, 2.2 * len(policies)), sharex=True, squeeze=False)
    colours = plt.get_cmap("tab20").colors    # 18 directed links on H1-H7: no colour twice
    for ax, policy in zip(axes[:, 0], policies):
        series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        path = runs_dir / f"{policy}-seed{seed}" / "capture" / "links.csv"
        if path.exists():
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    if r["src"].startswith("h") or r["dst"].startswith("h") or None in r.values():
                        continue
                    series[f"{r['src']}>{r['dst']}"].append((float(r["time_s"]), float(r["utilisation"])))
        t0 = min((pts[0][0] for pts in series.values()), default=0)
        for i, (name, pts) in enumerate(sorted(series.items())):
            ax.plot([t - t0 for t, _ in pts], [u for _, u in pts], lw=0.8, label=name, color=colours[i % 20])
        ax.set(ylabel="utilisation", ylim=(0, 1.05), title=f"{policy}, seed {seed}")
    axes[-1, 0].set_xlabel("seconds since the controller's first poll")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=6)
        fig.subplots_adjust(right=0.8)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_report(folder: Path) -> dict:
    """Read folder/runs.csv; write summary.json, summary.md and the plots; return the summary."""
    rows = read_runs(folder / "runs.csv")
    if not rows:
        raise ReportError(f"{folder / 'runs.csv'}: no completed run")
    summary = summarise(rows)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    (folder / "summary.md").write_text(markdown(summary))
    plot_rtt_cdf(rows, folder / "rtt_cdf.png")
    plot_throughput(summary, folder / "throughput.png")
    plot_rtt_over_time(rows, folder / "rtt_over_time.png")
    plot_utilisation(folder / "runs", min(int(r["seed"]) for r in rows), list(summary), folder / "utilisation.png")
    return summary


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.report", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    args = p.parse_args()
    try:
        write_report(args.folder)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((args.folder / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
