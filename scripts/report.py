"""Summaries of an experiment's runs.csv: per-policy metrics, their change against shortest
path with a 95% confidence interval across seeds, a Markdown table and the plots, and
index.html, which shows the table and the plots on one page.

    .venv/bin/python -m scripts.report results/experiment-<time>    (rewrites summary.*, *.png, index.html)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import math
import re
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


def open_text(path: Path):
    """A results file for reading, gzipped (as the docs keep them) if its name ends in .gz."""
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def gz(path: Path) -> Path:
    """`path`, or the gzipped copy of it that the docs keep."""
    return path if path.exists() else path.with_name(path.name + ".gz")


def read_runs(path: Path) -> list[dict]:
    """The rows of runs.csv (or runs.csv.gz); a truncated last line (an interrupted run) is dropped."""
    try:
        with open_text(path) as f:
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


def across(ratios: list[float], tests: int = 1) -> dict:
    """The geometric mean of per-seed ratios and its 95% t-interval, Bonferroni-corrected for
    `tests` (None from one seed)."""
    logs = np.log(ratios)
    if logs.size == 0:
        return {"ratio": None, "ci95": None}
    mean = float(logs.mean())
    if logs.size == 1:
        return {"ratio": math.exp(mean), "ci95": None}
    half = stats.t.ppf(1 - 0.025 / tests, logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    return {"ratio": math.exp(mean), "ci95": [math.exp(mean - half), math.exp(mean + half)]}


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


FEW_SEEDS = 5     # below this many seeds a 95% t-interval is too wide to conclude from


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
    note = few_seeds_note(summary)
    return "\n".join(lines + ([f"\n{note}"] if note else [])) + "\n"


def headline(summary: dict) -> str:
    """The four figures a newcomer reads first (README): RTT mean and p95, throughput, and the
    RTT mean's change against shortest path with its interval."""
    lines = ["| policy | RTT mean (ms) | p95 (ms) | throughput (Mbit/s) | RTT mean vs shortest [95% CI] |",
             "| --- | --- | --- | --- | --- |"]
    for policy, m in summary.items():
        change = "(baseline)" if policy == BASELINE else _pct(m["vs_shortest"].get("rtt_mean_ms", {}))
        lines.append(f"| {policy} | {_num(m['rtt_mean_ms'])} | {_num(m['rtt_p95_ms'])} | "
                     f"{_num(m['throughput_mbps'])} | {change} |")
    note = few_seeds_note(summary)
    return "\n".join(lines + ([f"\n{note}"] if note else [])) + "\n"


def versus(summary: dict, reference: str, geometric: bool = False, pool: tuple[str, ...] = (),
           own: dict[str, str] | None = None, over: tuple[str, ...] = ()) -> str:
    """The headline's figures and each policy's change against `reference` (not shortest path),
    seed by seed on the seeds both ran: the comparison a learner's targets are set against.
    Geometric: the per-seed ratios' geometric mean and its interval, for ratios as skewed as
    a learner's (0.5x on one seed and 2x on another average +25% but are no change); a seed
    left out (a value missing or zero, or a seed one side lacks) is named in the cell. Own:
    a policy's reference when not `reference` (each command's own, when several are joined).
    Pool: runs of one formulation (tables from different warm-ups, or parts on other seeds),
    one more row taking per seed the mean of the log ratios of the runs that ran it, so that a
    seed counts once. Its interval is over seeds
    for these runs: a run better or worse overall shifts every seed alike, so it does not
    cover another run (a fourth warm-up). Over: another formulation's runs, pooled alike, and a
    row of the first pool against it, per seed its pooled ratio over the other's (two learners
    judged each against the least-loaded run beside it: the machine's drift between their
    commands cancels)."""
    own = own or {}
    against = {p: own.get(p, reference) for p in summary}
    missing = [p for p in dict.fromkeys((reference, *pool, *over, *own.values())) if p not in summary]
    if missing:
        raise ReportError(f"no policy {', '.join(missing)} in the summary")
    for runs in filter(None, (pool, over)):
        if not geometric or len(set(runs)) < len(runs) or any(against[p] == p for p in runs):
            raise ReportError(f"pool {', '.join(runs)}: geometric, of distinct policies, none a reference")
    if over and (len(over) != len(pool) or set(pool) & set(over)):   # equal: a seed's mean of differences
        raise ReportError(f"over {', '.join(over)}: against a pool of as many other runs")
    metrics = ("rtt_mean_ms", "rtt_p95_ms", "throughput_mbps")
    vs = f"ratio to {reference}{' of its run' if own else ''}" if geometric else f"vs {reference}"
    lines = [f"| policy | RTT mean (ms) | p95 (ms) | throughput (Mbit/s) | RTT mean {vs} [95% CI] "
             f"| p95 {vs} | throughput {vs} |", "| --- |" + " --- |" * 6]

    def logs(policies: tuple[str, ...], k: str) -> tuple[dict[str, float], set[str]]:
        """Per seed, the mean of the log ratios to their references of the policies whose run
        or reference ran it; the seeds left out."""
        runs = [(summary[p]["per_seed"], summary[against[p]]["per_seed"]) for p in policies]
        kept, left = {}, set()
        for s in {s for run in runs for side in run for s in side}:
            pairs = [(m.get(s, {}).get(k), base.get(s, {}).get(k)) for m, base in runs if s in m or s in base]
            if all(v and b for v, b in pairs):
                kept[s] = sum(math.log(v / b) for v, b in pairs) / len(pairs)
            else:
                left.add(s)
        return kept, left

    def change(policies: tuple[str, ...], k: str, minus: tuple[str, ...] = ()) -> str:
        if not geometric:
            (m, base), = [(summary[p]["per_seed"], summary[against[p]]["per_seed"]) for p in policies]
            common = [s for s in m if s in base]
            return _pct(change_ci([m[s][k] for s in common], [base[s][k] for s in common]))
        kept, left = logs(policies, k)
        if minus:
            theirs, also_left = logs(minus, k)
            left |= also_left | (kept.keys() ^ theirs.keys())
            kept = {s: v - theirs[s] for s, v in kept.items() if s in theirs}
        ratios = [math.exp(kept[s]) for s in sorted(kept, key=int)]
        left_out = f" (left out: seed {', '.join(sorted(left, key=int))})" if left else ""
        return ci_text(across(ratios), 3) + left_out

    for policy, m in summary.items():
        changes = (["(reference)"] * 3 if against[policy] == policy else
                   [change((policy,), k) for k in metrics])
        lines.append("| " + " | ".join([policy, *(_num(m[k]) for k in metrics), *changes]) + " |")
    for runs in filter(None, (pool, over)):
        lines.append("| " + " | ".join([f"pooled: {' + '.join(runs)}", *["-"] * 3,
                                         *(change(runs, k) for k in metrics)]) + " |")
    if over:
        lines.append("| " + " | ".join([f"pooled {pool[0]} over pooled {over[0]}", *["-"] * 3,
                                         *(change(pool, k, over) for k in metrics)]) + " |")
    note = few_seeds_note(summary, reference)
    return "\n".join(lines + ([f"\n{note}"] if note else [])) + "\n"


def ci_text(r: dict, digits: int = 2) -> str:
    """A geometric mean ratio and its interval (across()), as 0.95x [0.85, 1.06]."""
    if r["ratio"] is None:
        return "n/a"
    ci = f" [{r['ci95'][0]:.{digits}f}, {r['ci95'][1]:.{digits}f}]" if r["ci95"] else " (one seed: no interval)"
    return f"{r['ratio']:.{digits}f}x{ci}"


def few_seeds_note(summary: dict, reference: str = BASELINE) -> str:
    """Why the intervals of a short experiment say nothing ('' when every policy has enough seeds
    in common with the reference): with 2 seeds the t factor alone is 12.7."""
    if reference not in summary:
        return ""
    base = set(summary[reference]["seeds"])
    counts = [len(base & set(m["seeds"])) for p, m in summary.items() if p != reference]
    n = min(counts, default=FEW_SEEDS)
    if n >= FEW_SEEDS or n == 0:     # 0: no seed in common, no change computed
        return ""
    some = " for some policies" if len(set(counts)) > 1 else ""
    against = "shortest path" if reference == BASELINE else reference
    if n == 1:
        return (f"Note: the changes against {against} rest on 1 seed{some}: a single measurement, "
                f"with no 95% interval; run --seeds {FEW_SEEDS} or more to conclude.")
    return (f"Note: the changes against {against} rest on {n} seeds{some}; 95% intervals from fewer "
            f"than {FEW_SEEDS} seeds are too wide to conclude from; run --seeds {FEW_SEEDS} or more.")


def provenance_of(record: dict) -> dict | None:
    """The commit and command that produced a results folder, from its config.json (or a
    benchmark's results.json): as recorded by the run itself (`commit`, `command`), or added
    afterwards to a folder older than that recording (a `provenance` object, whose `note` says
    so); None when neither is there."""
    given = record.get("provenance")
    if isinstance(given, dict) and {"commit", "command"} <= given.keys():
        return given
    if {"commit", "command"} <= record.keys():
        return {"commit": record["commit"], "command": record["command"]}
    return None


def provenance_line(prov: dict) -> str:
    """'Measured at commit `abc1234` by `command`.', and the note of a provenance added by hand."""
    commit = str(prov["commit"])
    head, dirty = commit.removesuffix("-dirty"), commit.endswith("-dirty")
    at = (f"commit `{head[:7]}{'-dirty' if dirty else ''}`" if re.fullmatch(r"[0-9a-f]{7,40}", head)
          else "an unknown commit")
    note = f" {prov['note']}" if prov.get("note") else ""
    return f"Measured at {at} by `{prov['command']}`.{note}"


def probe_label(rows: list[dict]) -> str:
    """The probed pair as 'h1 to h7', from the flow column of the rtt and transfer rows (so an
    old folder re-renders right); 'probe' when the rows name none or disagree."""
    pairs = {r["flow"].split(" ")[0] for r in rows if r["kind"] in ("rtt", "transfer")}
    return pairs.pop().replace(">", " to ") if len(pairs) == 1 and ">" in next(iter(pairs)) else "probe"


def plot_rtt_cdf(rows: list[dict], probe: str, out: Path) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        rtts = np.sort([float(r["rtt_ms"]) for r in rows if r["policy"] == policy and r["kind"] == "rtt"
                        and r["rtt_ms"] != ""])
        if rtts.size:
            ax.plot(rtts, np.arange(1, rtts.size + 1) / rtts.size, label=policy)
    ax.set(xscale="symlog", xlabel=f"{probe} round-trip time (ms)", ylabel="fraction of probes",
           title="RTT CDF, all seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out)


def plot_throughput(summary: dict, probe: str, out: Path) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, m in enumerate(summary.values()):
        values = [v["throughput_mbps"] for v in m["per_seed"].values() if v["throughput_mbps"] is not None]
        ax.bar(i, m["throughput_mbps"] or 0, color="C0", alpha=0.6)
        ax.scatter([i] * len(values), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(summary)), list(summary), rotation=20)
    ax.set(ylabel="transfer throughput (Mbit/s)", title=f"{probe} transfers: mean over seeds (dots: seeds)")
    return _save(fig, out)


def round_means(rows: list[dict], policy: str, field: str, kind: str) -> dict[tuple[int, int], float]:
    """(seed, round) -> the mean of `field` over that round's rows of `kind`."""
    values: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["policy"] == policy and r["kind"] == kind and r[field] != "":
            values[int(r["seed"]), int(r["round"])].append(float(r[field]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def plot_rtt_over_time(rows: list[dict], probe: str, out: Path) -> plt.Figure:
    """Each round's mean RTT (top) and transfer throughput (bottom) in the order the rounds ran
    (seed after seed): the learning curve of a policy that learns online, beside those that do
    not, each with its mean over the run as a dashed horizontal reference. Rounds share one x
    position across policies; dotted lines show where each seed starts."""
    order = {k: i for i, k in enumerate(sorted({(int(r["seed"]), int(r["round"])) for r in rows
                                                if r["kind"] == "rtt"}), start=1)}
    window = max(1, min(10, len(order) // 5))
    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 2))
    for ax, kind, field, label in ((axes[0], "rtt", "rtt_ms", f"{probe} RTT, round mean (ms)"),
                                   (axes[1], "transfer", "throughput_mbps", "transfer (Mbit/s)")):
        for policy in dict.fromkeys(r["policy"] for r in rows):
            rounds = round_means(rows, policy, field, kind)
            keys = sorted(k for k in rounds if k in order)
            means = [rounds[k] for k in keys]
            if len(means) >= window:
                learner = policy.startswith("qlearning")
                smooth = np.convolve(means, np.ones(window) / window, "valid")
                line, = ax.plot([order[k] for k in keys[window - 1:]], smooth, label=policy, lw=2 if learner else 1)
                if not learner:     # the fixed rules' level over the whole run: what a learner must reach
                    ax.axhline(float(np.mean(means)), color=line.get_color(), ls="--", lw=0.8, label="_mean")
        for start in seed_starts(order).values():
            if start > 1:
                ax.axvline(start - 0.5, color="0.4", ls=":", lw=1)
        ax.set(ylabel=label)
        ax.grid(alpha=0.3)
    for seed, start in seed_starts(order).items():
        axes[0].text(start - 0.5, 1.01, f" seed {seed}", transform=axes[0].get_xaxis_transform(), fontsize=8,
                     va="bottom")
    smoothing = f"moving average over {window} rounds" if window > 1 else "no smoothing"
    axes[0].set(yscale="log", title=f"RTT and throughput over the experiment ({smoothing})\n")
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))   # 20, not 2x10^1
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(minor_thresholds=(1, 0.4)))
    axes[0].legend(fontsize=8)
    axes[1].set(xlim=(0.5, max(len(order), 1) + 0.5), xlabel="round (in run order, seeds one after another)")
    return _save(fig, out)


def seed_starts(order: dict[tuple[int, int], int]) -> dict[int, int]:
    """Each seed's first round position in run order."""
    starts: dict[int, int] = {}
    for (seed, _), pos in sorted(order.items(), key=lambda kv: kv[1]):
        starts.setdefault(seed, pos)
    return starts


def read_links(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Inter-switch link -> (time, utilisation) samples of one run's capture (empty if none)."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if path.exists():
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if None in r.values() or r["src"].startswith("h") or r["dst"].startswith("h"):
                    continue
                series[f"{r['src']}>{r['dst']}"].append((float(r["time_s"]), float(r["utilisation"])))
    return series


def path_links(rows: list[dict]) -> list[str]:
    """The links of the probe's paths, in the order they first appear in runs.csv."""
    links = []
    for r in rows:
        if r["kind"] in ("rtt", "transfer") and r["path"]:
            hops = r["path"].split(">")
            links += [f"{a}>{b}" for a, b in zip(hops, hops[1:])]
    return list(dict.fromkeys(links))


def link_order(rows: list[dict], links) -> list[str]:
    """The links on the probe's paths first, then the rest by name (s2 before s10): the links
    that decide the probe's RTT sit together at the top."""
    first = [lk for lk in path_links(rows) if lk in links]
    natural = lambda name: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]  # noqa: E731
    return first + sorted(set(links) - set(first), key=natural)


def plot_utilisation(rows: list[dict], runs_dir: Path, seed: int, policies: list[str], out: Path) -> plt.Figure:
    """Heatmap of every inter-switch link (rows) over time (columns), one panel per policy, for
    one seed: stays readable at 50 links, where one line per link would not."""
    series = {p: read_links(runs_dir / f"{p}-seed{seed}" / "capture" / "links.csv") for p in policies}
    links = link_order(rows, {lk for s in series.values() for lk in s})
    n_path = len(set(path_links(rows)) & set(links))
    fig, axes = plt.subplots(1, len(policies), figsize=(1.2 + 2.6 * len(policies), max(2.5, 0.16 * len(links) + 1.4)),
                             sharey=True, squeeze=False, layout="constrained")
    norm, cmap = matplotlib.colors.Normalize(0, 1), plt.get_cmap("viridis").with_extremes(bad="0.85")
    for ax, policy in zip(axes[0], policies):
        ax.set(title=policy if series[policy] else f"{policy} (no capture)", xlabel="seconds since first poll")
        if series[policy]:
            data = resample(series[policy], links)
            ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm,
                      extent=(-0.5, data.shape[1] - 0.5, len(links) - 0.5, -0.5))
        if 0 < n_path < len(links):
            ax.axhline(n_path - 0.5, color="w", lw=1.5)
    axes[0, 0].set_ylim(max(len(links), 1) - 0.5, -0.5)
    axes[0, 0].set_yticks(range(len(links)), links, fontsize=max(7, min(9, 300 / max(len(links), 1))))
    axes[0, 0].set_ylabel("link (above the white line: on the probe's paths)" if n_path else "link")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=axes[0], label="utilisation (fraction of capacity)", fraction=0.04, pad=0.02)
    fig.suptitle(f"Inter-switch link utilisation, seed {seed}")
    return _save(fig, out)


def resample(series: dict[str, list[tuple[float, float]]], links: list[str]) -> np.ndarray:
    """Links x seconds since the run's first poll: each second shows the last sample taken by
    then (NaN before a link's first), so a late or early poll leaves no gap."""
    t0 = min(t for pts in series.values() for t, _ in pts)
    grid = np.arange(0, max(t - t0 for pts in series.values() for t, _ in pts) + 1)
    data = np.full((len(links), grid.size), np.nan)
    for i, lk in enumerate(links):
        if lk in series:
            t, u = np.array(sorted(series[lk])).T
            at = np.searchsorted(t - t0, grid, side="right") - 1
            data[i, at >= 0] = u[at[at >= 0]]
    return data


def _save(fig: plt.Figure, out: Path) -> plt.Figure:
    """Write the figure and release it from pyplot; the caller may still read its artists."""
    if not fig.get_layout_engine():
        fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return fig


def index_html(folder: Path, summary: dict, plots: list[str]) -> str:
    """One page, nothing from elsewhere: the summary table (summary.md's rows) and the plots."""
    rows = [[html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            for line in markdown(summary).splitlines() if line.startswith("|")]
    note = few_seeds_note(summary)
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Experiment {html.escape(folder.name)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}"
        "img{max-width:100%;display:block;margin:1em 0}</style></head><body>",
        f"<h1>Experiment {html.escape(folder.name)}</h1>", "<table>",
        "<tr>" + "".join(f"<th>{c}</th>" for c in rows[0]) + "</tr>",
        *("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[2:]), "</table>",
        f"<p>{html.escape(note)}</p>" if note else "",
        *(f'<img src="{html.escape(p)}" alt="{html.escape(p)}">' for p in plots), "</body></html>", ""])


def write_report(folder: Path) -> dict[str, plt.Figure]:
    """Read folder/runs.csv; write summary.json, summary.md, the plots and index.html; return
    the plots' figures by file name, for a caller to check what they show."""
    rows = read_runs(folder / "runs.csv")
    if not rows:
        raise ReportError(f"{folder / 'runs.csv'}: no completed run")
    config = _read_config(folder)
    order = config.get("policies") if isinstance(config.get("policies"), list) else []
    # the policies in the order asked for, not the order they ran in (the first seed's, drawn by the seed)
    summary = dict(sorted(summarise(rows).items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    prov = provenance_of(config)
    (folder / "summary.md").write_text(markdown(summary) + (f"\n{provenance_line(prov)}\n" if prov else ""))
    probe = probe_label(rows)
    seed = min(int(r["seed"]) for r in rows)
    figures = {"rtt_cdf.png": plot_rtt_cdf(rows, probe, folder / "rtt_cdf.png"),
               "throughput.png": plot_throughput(summary, probe, folder / "throughput.png"),
               "rtt_over_time.png": plot_rtt_over_time(rows, probe, folder / "rtt_over_time.png"),
               "utilisation.png": plot_utilisation(rows, folder / "runs", seed, list(summary),
                                                   folder / "utilisation.png")}
    (folder / "index.html").write_text(index_html(folder, summary, list(figures)))
    return figures


def _read_config(folder: Path) -> dict:
    """The experiment's config.json ({} if absent or unreadable: a summary does not need it)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def parse_quick(parser: argparse.ArgumentParser, argv: list[str] | None, quick: dict) -> argparse.Namespace:
    """Both experiments' command lines: with --quick, `quick`'s values stand in for the options
    not given (an option given wins, whether before or after --quick)."""
    given = {a.lstrip("-").split("=")[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in quick.items():
            if key not in given:
                setattr(args, key, value)
    return args


LOADS = (0.05, 1.5)     # the fractions of a pool's capacity the service experiments run at, at least and most


def load_fractions(parser: argparse.ArgumentParser, text: str) -> list[float]:
    """--loads of the service experiment and its simulation: comma-separated fractions of the
    pool's capacity, each in LOADS; else the parser's usage error, naming the option."""
    try:
        loads = [float(x) for x in text.split(",")]
    except ValueError:
        parser.error(f"--loads: not a comma-separated list of numbers: {text!r}")
    if not all(LOADS[0] <= x <= LOADS[1] for x in loads):
        parser.error(f"--loads: each in {LOADS[0]}..{LOADS[1]}, got {text!r}")
    return loads


def print_summary(folder: Path, write=write_report) -> bool:
    """Rewrite a results folder's summary with `write` and print it; False, with the reason on
    stderr, when the folder cannot be summarised (the experiments end with this too)."""
    try:
        write(folder)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    print("\n" + (folder / "summary.md").read_text())
    return True


def main(module: str = "scripts.report", doc: str = __doc__, write=write_report) -> int:
    """`python -m <module> FOLDER`: print_summary (the service report's command too)."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    return 0 if print_summary(p.parse_args().folder, write) else 2


if __name__ == "__main__":
    sys.exit(main())
