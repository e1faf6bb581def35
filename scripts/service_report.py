"""Summaries of a service experiment (scripts/services.py): per load and policy, time to first
token and response time (mean, p50, p95, p99), SLO attainment, throughput, per-member
utilisation and Jain's fairness; changes against least connections and against the best of
round robin, least connections and weighted round robin, paired by seed with 95% intervals
(scripts/report.change_ci); the tables, the plots and the member-killed result.

    .venv/bin/python -m scripts.service_report results/services-<time>   (rewrites summary.*, *.png)

Definitions (docs/workload.md):
- response time: from the client's connect to the `done` line; TTFT: to the first token line.
  A request cut at the run's bound counts as taking until its cut (a lower bound); a failed
  one (refused, reset) has no times and counts in `failed`; both miss the SLO.
- SLO: a request meets it when it completes within  grace + c / base_speed  of its start, where
  c is its cost in token-times (topologies.inference.Workload.cost) and base_speed the 1x
  member's: no slower than an idle 1x member, plus a grace for the connection and the network.
  Attainment is over every scheduled request (a failed one misses).
- throughput: output tokens (and requests) of completed requests over the span from the
  schedule's start to the run's last completion.
- utilisation: a member's busy slot-seconds (admitted to generated, from its own log) over
  slots x span; Jain's index over the members' utilisations, 1 when all are equally busy.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from scripts import report
from scripts.report import FEW_SEEDS, ReportError, _mean, _num, _pct, _read_config, _save, change_ci, plt, \
    provenance_line, provenance_of
from topologies.inference import CUT, Workload

REQUEST_COLUMNS = ("policy", "load", "seed", "id", "client", "at_s", "start", "ttft", "end", "member",
                   "prompt_tokens", "output_tokens", "tokens", "ok", "error")
MEMBER_COLUMNS = ("policy", "load", "seed", "member", "speed", "slots", "served", "busy_s", "last_answer")
LATENCY = ("ttft_mean_s", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "rt_mean_s", "rt_p50_s", "rt_p95_s", "rt_p99_s")
METRICS = (*LATENCY, "slo", "tokens_per_s", "requests_per_s", "failed", "cut", "jain")
HIGHER_IS_BETTER = {"slo", "tokens_per_s", "requests_per_s", "jain"}
REFERENCE = "least-connections"
CLASSIC = ("round-robin", "least-connections", "weighted")
JAM = ("rt_mean_s", "rt_p95_s", "slo")      # of the requests scheduled while a jam was on


def percentiles(values, qs=(50, 95, 99)) -> list[float | None]:
    values = np.asarray([v for v in values if v is not None], dtype=float)
    return [float(np.percentile(values, q)) for q in qs] if values.size else [None] * len(qs)


def jain(values) -> float | None:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all are equal, 1/n when one has all."""
    x = np.asarray(values, dtype=float)
    return float(x.sum() ** 2 / (x.size * (x ** 2).sum())) if x.size and (x ** 2).sum() > 0 else None


def deadline_s(prompt_tokens: int, output_tokens: int, base_speed: float, grace_s: float,
               workload: Workload = Workload()) -> float:
    """The SLO's deadline of one request: grace + its service time on an idle 1x member."""
    return grace_s + workload.cost(prompt_tokens, output_tokens) / base_speed


def times(r: dict, until: float) -> tuple[float | None, float | None]:
    """(TTFT, response time) of one request row; a request cut at `until` (seconds after the
    schedule's start) counts as taking until then; a failed one has neither."""
    start = float(r["start"])
    if r["error"] == CUT:
        return (float(r["ttft"]) if r["ttft"] else until - start), until - start
    if r["ok"] != "True":
        return None, None
    return float(r["ttft"]), float(r["end"]) - start


def run_metrics(requests: list[dict], members: list[dict], until: float, base_speed: float,
                grace_s: float) -> dict:
    """The metrics of one run (one policy, load and seed)."""
    ttft, rt = zip(*(times(r, until) for r in requests)) if requests else ((), ())
    done = [r for r in requests if r["ok"] == "True"]
    span = max((float(r["end"]) for r in done), default=0.0)
    met = sum(float(r["end"]) - float(r["start"]) <= deadline_s(int(r["prompt_tokens"]), int(r["output_tokens"]),
                                                               base_speed, grace_s) for r in done)
    util = {m["member"]: float(m["busy_s"]) / (int(m["slots"]) * span) if span else 0.0 for m in members}
    return {"ttft_mean_s": _mean(ttft), **dict(zip(("ttft_p50_s", "ttft_p95_s", "ttft_p99_s"), percentiles(ttft))),
            "rt_mean_s": _mean(rt), **dict(zip(("rt_p50_s", "rt_p95_s", "rt_p99_s"), percentiles(rt))),
            "slo": met / len(requests) if requests else None,
            "tokens_per_s": sum(int(r["tokens"]) for r in done) / span if span else None,
            "requests_per_s": len(done) / span if span else None,
            "failed": sum(r["ok"] != "True" and r["error"] != CUT for r in requests),
            "cut": sum(r["error"] == CUT for r in requests), "requests": len(requests),
            "jain": jain(list(util.values())), "utilisation": util}


def read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != columns:
                raise ReportError(f"{path}: header is {reader.fieldnames}, expected {list(columns)}")
            return [r for r in reader if None not in r.values()]
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror}") from None


def summarise(requests: list[dict], members: list[dict], config: dict) -> dict:
    """{load: {policy: entry}}: each metric's mean over seeds, the per-seed values, and the
    changes, seed by seed, against least connections and against the best classic policy (the
    one of CLASSIC with the best mean for that metric at that load)."""
    runs: dict[tuple, dict[str, list]] = defaultdict(lambda: {"requests": [], "members": []})
    for r in requests:
        runs[r["load"], r["policy"], int(r["seed"])]["requests"].append(r)
    for m in members:
        runs[m["load"], m["policy"], int(m["seed"])]["members"].append(m)
    until = config["duration"] + config["drain"]
    window = jam_window(config)
    order = {p: i for i, p in enumerate(config.get("policies", ()))}     # the order they ran in
    per_seed: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    ran = sorted(runs.items(), key=lambda kv: (float(kv[0][0]), order.get(kv[0][1], len(order)), kv[0][1], kv[0][2]))
    for (load, policy, seed), run in ran:
        per_seed[load][policy][seed] = run_metrics(run["requests"], run["members"], until,
                                                   config["base_speed"], config["slo_grace"])
        if window:
            per_seed[load][policy][seed]["jam"] = run_metrics(
                [r for r in run["requests"] if window[0] <= float(r["at_s"]) < window[1]], [], until,
                config["base_speed"], config["slo_grace"])
    out: dict[str, dict] = {}
    for load, policies in per_seed.items():
        means = {p: {k: _mean(v[k] for v in seeds.values()) for k in METRICS} for p, seeds in policies.items()}
        best = {k: pick_best(means, k) for k in METRICS}
        out[load] = {}
        for policy, seeds in policies.items():
            util = defaultdict(list)
            for v in seeds.values():
                for member, u in v["utilisation"].items():
                    util[member].append(u)
            out[load][policy] = {**means[policy], "seeds": sorted(seeds),
                                 "utilisation": {m: float(np.mean(u)) for m, u in sorted(util.items())},
                                 "per_seed": {str(s): v for s, v in seeds.items()},
                                 f"vs_{REFERENCE}": paired(seeds, policies.get(REFERENCE, {})),
                                 "vs_best": {k: {"of": best[k], **paired(seeds, policies[best[k]], (k,))[k]}
                                             for k in METRICS if best[k]}}
            if window:
                jam = {s: v["jam"] for s, v in seeds.items()}
                out[load][policy]["jam"] = {
                    "from_s": window[0], "to_s": window[1], **{k: _mean(v[k] for v in jam.values()) for k in JAM},
                    f"vs_{REFERENCE}": paired(jam, {s: v["jam"] for s, v in policies.get(REFERENCE, {}).items()}, JAM)}
    return out


def jam_window(config: dict) -> tuple[float, float] | None:
    """When a run's jam was on (scripts.services --jam), in seconds of its schedule."""
    return (config["duration"] / 4, config["duration"] * 3 / 4) if config.get("jam") else None


def pick_best(means: dict[str, dict], metric: str) -> str | None:
    """The classic policy with the best mean of a metric (None if none of them ran)."""
    ran = [p for p in CLASSIC if p in means and means[p][metric] is not None]
    sign = -1 if metric in HIGHER_IS_BETTER else 1
    return min(ran, key=lambda p: sign * means[p][metric]) if ran else None


def paired(seeds: dict[int, dict], base: dict[int, dict], metrics=METRICS) -> dict:
    common = [s for s in seeds if s in base]
    return {k: change_ci([seeds[s][k] for s in common], [base[s][k] for s in common]) for k in metrics}


def markdown(summary: dict) -> str:
    """One table per load: latencies, SLO, throughput, failures, fairness, and the changes."""
    lines = []
    for load, policies in summary.items():
        lines += [f"\nLoad {float(load):.0%} of the pool's capacity:\n",
                  "| policy | seeds | TTFT mean (s) | p50 | p95 | p99 | response mean (s) | p50 | p95 | p99 | SLO met "
                  "| tokens/s | requests/s | failed | cut | Jain | response mean vs LC [95% CI] | p95 vs LC "
                  "| p95 vs best | SLO vs best |",
                  "|" + " --- |" * 20]
        for policy, m in policies.items():
            lc, best = m[f"vs_{REFERENCE}"], m["vs_best"]
            versus = lambda k: (f"{_pct(best[k])} ({best[k]['of']})"  # noqa: E731
                                if k in best and best[k]["of"] != policy else "")
            lines.append("| " + " | ".join([
                policy, str(len(m["seeds"])), *(_num(m[k]) for k in LATENCY), _num(m["slo"], 100, ".1f", "%"),
                _num(m["tokens_per_s"], fmt=".0f"), _num(m["requests_per_s"]), _num(m["failed"], fmt=".1f"),
                _num(m["cut"], fmt=".1f"), _num(m["jain"], fmt=".3f"),
                "" if policy == REFERENCE else _pct(lc.get("rt_mean_s", {})),
                "" if policy == REFERENCE else _pct(lc.get("rt_p95_s", {})), versus("rt_p95_s"), versus("slo")]) + " |")
        jammed = {policy: m["jam"] for policy, m in policies.items() if "jam" in m}
        if jammed:
            first = next(iter(jammed.values()))
            lines += [f"\nThe requests scheduled while the jam was on ({first['from_s']:g}-{first['to_s']:g} s):\n",
                      "| policy | response mean (s) | p95 | SLO met | mean vs LC [95% CI] | p95 vs LC |",
                      "|" + " --- |" * 6]
            lines += ["| " + " | ".join([policy, _num(j["rt_mean_s"]), _num(j["rt_p95_s"]), _num(j["slo"], 100, ".1f", "%"),
                                         *("" if policy == REFERENCE else _pct(j[f"vs_{REFERENCE}"].get(k, {}))
                                           for k in ("rt_mean_s", "rt_p95_s"))]) + " |"
                      for policy, j in jammed.items()]
    seeds = min((len(m["seeds"]) for p in summary.values() for m in p.values()), default=0)
    if seeds < FEW_SEEDS:
        lines.append(f"\nNote: {seeds} seed{'s' * (seeds != 1)} per policy; intervals from fewer than {FEW_SEEDS} "
                     f"seeds are too wide to conclude from (none with 1).")
    return "\n".join(lines).lstrip("\n") + "\n"


def kill_markdown(kills: list[dict]) -> str:
    if not kills:
        return ""
    lines = ["\nMember killed mid-run:\n",
             "| policy | load | member | killed at (s) | last answer (s) | requests failed | of them in flight "
             "| sent to it after its last answer | last sent after its last answer (s) | cut at the bound |",
             "|" + " --- |" * 10]
    for k in kills:
        lines.append(f"| {k['policy']} | {k['load']:.0%} | {k['member']} | {k['killed_at']:.2f} | "
                     f"{_num(k['last_answer'])} | {k['failed']} | {k['failed_in_flight']} | {k['sent_after']} | "
                     f"{_num(k['last_sent_after_s'])} | {k.get('cut', 'n/a')} |")
    return "\n".join(lines) + "\n"


def plot_response_cdf(summary: dict, requests: list[dict], until: float, out: Path) -> plt.Figure:
    loads = list(summary)
    fig, axes = plt.subplots(1, len(loads), figsize=(4.5 * len(loads), 4), squeeze=False, sharey=True)
    for ax, load in zip(axes[0], loads):
        for policy in summary[load]:
            rt = np.sort([t for r in requests if r["load"] == load and r["policy"] == policy
                          for t in [times(r, until)[1]] if t is not None])
            if rt.size:
                ax.plot(rt, np.arange(1, rt.size + 1) / rt.size, label=policy)
        ax.set(xscale="log", xlabel="response time (s)", title=f"load {float(load):.0%}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("fraction of requests (all seeds)")
    axes[0, -1].legend(fontsize=8)
    return _save(fig, out)


def plot_by_load(summary: dict, metric: str, label: str, out: Path) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    policies = list(dict.fromkeys(p for per in summary.values() for p in per))
    for policy in policies:
        xs = [float(load) for load in summary if policy in summary[load]]
        ax.plot(xs, [summary[load][policy][metric] for load in summary if policy in summary[load]],
                marker="o", label=policy)
    ax.set(xlabel="offered load (fraction of capacity)", ylabel=label, title=f"{label}, mean over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_utilisation(summary: dict, out: Path) -> plt.Figure:
    loads = list(summary)
    fig, axes = plt.subplots(1, len(loads), figsize=(4.5 * len(loads), 4), squeeze=False, sharey=True)
    for ax, load in zip(axes[0], loads):
        policies = list(summary[load])
        members = sorted({m for p in policies for m in summary[load][p]["utilisation"]})
        width = 0.8 / max(len(policies), 1)
        for i, policy in enumerate(policies):
            util = summary[load][policy]["utilisation"]
            ax.bar(np.arange(len(members)) + i * width, [util.get(m, 0) for m in members], width, label=policy)
        ax.set_xticks(np.arange(len(members)) + 0.4 - width / 2, members)
        ax.set(title=f"load {float(load):.0%}", ylim=(0, 1))
    axes[0, 0].set_ylabel("utilisation (busy slots / slots)")
    axes[0, -1].legend(fontsize=7)
    return _save(fig, out)


def write_report(folder: Path) -> dict[str, plt.Figure]:
    """Read requests.csv, members.csv, config.json and any runs/*/kill.json; write summary.json,
    summary.md and the plots; return the figures by file name."""
    config = _read_config(folder)
    if not {"duration", "drain", "base_speed", "slo_grace"} <= config.keys():
        raise ReportError(f"{folder / 'config.json'}: missing or without the run's settings")
    requests = read_csv(folder / "requests.csv", REQUEST_COLUMNS)
    members = read_csv(folder / "members.csv", MEMBER_COLUMNS)
    if not requests:
        raise ReportError(f"{folder / 'requests.csv'}: no completed run")
    summary = summarise(requests, members, config)
    kills = [json.loads(p.read_text()) for p in sorted(folder.glob("runs/*/kill.json"))]
    (folder / "summary.json").write_text(json.dumps({"loads": summary, "killed": kills}, indent=1,
                                                    allow_nan=False) + "\n")
    prov = provenance_of(config)
    (folder / "summary.md").write_text(markdown(summary) + kill_markdown(kills)
                                       + (f"\n{provenance_line(prov)}\n" if prov else ""))
    until = config["duration"] + config["drain"]
    return {"response_cdf.png": plot_response_cdf(summary, requests, until, folder / "response_cdf.png"),
            "p95_by_load.png": plot_by_load(summary, "rt_p95_s", "p95 response time (s)", folder / "p95_by_load.png"),
            "slo_by_load.png": plot_by_load(summary, "slo", "SLO attainment", folder / "slo_by_load.png"),
            "utilisation.png": plot_utilisation(summary, folder / "utilisation.png")}


if __name__ == "__main__":
    sys.exit(report.main("scripts.service_report", __doc__, write_report))
