"""The comparison: per network and k, every method against the exact program on held-out
traffic samples (optimality gap, feasibility, runtime), the learned models trained on the
exact placements of the training samples; a table (JSON, the Markdown rendered from it) and a
map of one placement.

Every method is timed on the same held-out problems, one after another, in this process; the
learned methods' time is their prediction plus what follows it (assignment or local search),
not their training, which is reported apart (per network and k, with the time the training
labels took to solve).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.files import write_atomic

from .exact import k_center_radius, place_exactly
from .heuristics import greedy_k_median, k_center
from .learned import MODELS, PlacementModel, features, labels, place_with_model
from .network import Network, load_network
from .problem import Problem
from .traffic import CAPACITY_FLOWS_S, LOAD_FACTOR, samples

METHODS = ("exact", "greedy", "kcenter", "tree", "logistic", "network", "tree+ls", "network+ls")
WITHIN = 0.01           # "near-optimal": within 1% of the optimum
BOUND_FACTOR = 1.5      # worst case allowed: 1.5x the best worst case k controllers can achieve


@dataclass(frozen=True)
class Plan:
    network: str
    train: int
    test: int


def parse_plans(text: str) -> list[Plan]:
    """'Bics:200:40,TataNld:30:15' -> plans (network, training samples, held-out samples)."""
    plans = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or int(parts[2]) < 1:
            raise ValueError(f"--networks: {item!r}: expected NAME:TRAIN:TEST, e.g. Bics:200:40")
        plans.append(Plan(parts[0], int(parts[1]), int(parts[2])))
    return plans


def problems_for(network: Network, rates: np.ndarray, k: int, capacity: float,
                 bound_factor: float) -> tuple[float, list[Problem]]:
    bound = bound_factor * k_center_radius(network.latency_ms, k)
    return bound, [Problem(network.latency_ms, r, k, capacity, bound) for r in rates]


def run_network(plan: Plan, ks: list[int], seed: int, capacity: float = CAPACITY_FLOWS_S,
                load_factor: float = LOAD_FACTOR, bound_factor: float = BOUND_FACTOR,
                time_limit_s: float = 60.0, progress=lambda text: None,
                keep: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Per-sample rows and per-k training facts for one network. `keep` collects
    (network, k) -> (network, problem, placements) of the first held-out sample, for maps."""
    network = load_network(plan.network)
    rates = samples(network, plan.train + plan.test, seed, load_factor * capacity)
    rows, training = [], []
    for k in ks:
        bound, problems = problems_for(network, rates, k, capacity, bound_factor)
        start = time.perf_counter()
        exact = [place_exactly(p, time_limit_s) for p in problems]
        labelled = [i for i in range(plan.train) if exact[i].feasible]
        models = {}
        if labelled:
            x, y = features(rates[labelled]), labels(network.n, [exact[i].controllers for i in labelled])
            models = {kind: PlacementModel(kind, seed).fit(x, y) for kind in MODELS}
        training.append({"network": network.name, "k": k, "max_latency_ms": bound,
                         "train_samples": len(labelled), "labels_s": sum(e.runtime_s for e in exact[:plan.train]),
                         "fit_s": {kind: m.fit_s for kind, m in models.items()}})
        for sample in range(plan.train, plan.train + plan.test):
            problem, best = problems[sample], exact[sample]
            found = [best, greedy_k_median(problem), k_center(problem)]
            found += [place_with_model(problem, models[kind]) for kind in MODELS if kind in models]
            found += [place_with_model(problem, models[kind], search=True) for kind in ("tree", "network")
                      if kind in models]
            for placed in found:
                if placed.feasible and problem.violations(placed.controllers, placed.assign):
                    raise AssertionError(f"{placed.method}: {problem.violations(placed.controllers, placed.assign)}")
                rows.append({
                    "network": network.name, "k": k, "sample": sample, "method": placed.method,
                    "feasible": placed.feasible, "objective_ms": placed.objective_ms if placed.feasible else None,
                    "optimum_ms": best.objective_ms if best.feasible else None,
                    "gap": (placed.objective_ms / best.objective_ms - 1) if placed.feasible and best.feasible else None,
                    "runtime_s": placed.runtime_s, "exact_runtime_s": best.runtime_s,
                    "proven_optimal": best.proven_optimal,
                    "worst_latency_ms": problem.worst_latency(placed.assign) if placed.feasible else None,
                    "max_load": float(problem.loads(placed.assign).max() / capacity) if placed.feasible else None,
                    "controllers": list(placed.controllers)})
            if keep is not None and sample == plan.train:
                keep[(network.name, k)] = (network, problem, found)
        progress(f"{network.name} k={k}: {len(problems)} exact placements and {plan.test} held-out "
                 f"comparisons in {time.perf_counter() - start:.1f} s")
    return rows, training


def summarise(rows: list[dict]) -> list[dict]:
    """One line per network, k and method."""
    out = []
    keys = sorted({(r["network"], r["k"]) for r in rows}, key=lambda nk: (nk[0] != "Bics", nk))
    for network, k in keys:
        for method in METHODS:
            mine = [r for r in rows if (r["network"], r["k"], r["method"]) == (network, k, method)]
            if not mine:
                continue
            gaps = [r["gap"] for r in mine if r["gap"] is not None]
            within = [r["gap"] is not None and r["gap"] <= WITHIN + 1e-9 for r in mine]
            runtime = float(np.mean([r["runtime_s"] for r in mine]))
            exact_runtime = float(np.mean([r["exact_runtime_s"] for r in mine]))
            out.append({
                "network": network, "k": k, "method": method, "samples": len(mine),
                "feasible": float(np.mean([r["feasible"] for r in mine])),
                "within_1pct": float(np.mean(within)),
                "gap_mean": float(np.mean(gaps)) if gaps else None,
                "gap_max": float(np.max(gaps)) if gaps else None,
                "runtime_ms": 1000 * runtime,
                "runtime_max_ms": 1000 * float(np.max([r["runtime_s"] for r in mine])),
                "runtime_vs_exact": runtime / exact_runtime,
                "exact_proven": float(np.mean([r["proven_optimal"] for r in mine]))})
    return out


def render(table: list[dict]) -> str:
    """The Markdown table of a summary."""
    lines = ["| network | k | method | gap mean | gap max | within 1% | feasible | runtime ms (mean / max) | vs exact |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        gap = "-" if t["gap_mean"] is None else f"{100 * t['gap_mean']:.2f}%"
        gmax = "-" if t["gap_max"] is None else f"{100 * t['gap_max']:.2f}%"
        lines.append(f"| {t['network']} | {t['k']} | {t['method']} | {gap} | {gmax} | {100 * t['within_1pct']:.0f}% "
                     f"| {100 * t['feasible']:.0f}% | {t['runtime_ms']:.1f} / {t['runtime_max_ms']:.1f} "
                     f"| {t['runtime_vs_exact']:.3f} |")
    return "\n".join(lines) + "\n"


def targets(rows: list[dict], table: list[dict]) -> dict:
    """The issue's targets, measured: NN-LS within 1% on >= 95% of held-out samples at <= 1/3
    of the exact program's runtime (per network, all k); the exact program proving optimality
    within a minute on every BICS problem; where the tree beats the network."""
    out = {}
    for network in sorted({r["network"] for r in rows}):
        nn = [r for r in rows if r["network"] == network and r["method"] == "network+ls"]
        ex = [r for r in rows if r["network"] == network and r["method"] == "exact"]
        within = [r["gap"] is not None and r["gap"] <= WITHIN + 1e-9 for r in nn]
        out[network] = {
            "nn_ls_within_1pct": float(np.mean(within)) if nn else None,
            "nn_ls_runtime_vs_exact": (float(np.sum([r["runtime_s"] for r in nn])
                                             / np.sum([r["exact_runtime_s"] for r in nn])) if nn else None),
            "exact_proven": float(np.mean([r["proven_optimal"] for r in ex])) if ex else None,
            "exact_runtime_max_s": float(np.max([r["runtime_s"] for r in ex])) if ex else None,
            "tree_beats_network": [
                {"k": t["k"], "versus": plain,
                 "tree_gap": t["gap_mean"], "network_gap": n["gap_mean"]}
                for plain, tree_m, net_m in (("models alone", "tree", "network"), ("with local search", "tree+ls", "network+ls"))
                for t in table if t["network"] == network and t["method"] == tree_m
                for n in table if n["network"] == network and n["method"] == net_m and n["k"] == t["k"]
                if t["gap_mean"] is not None and n["gap_mean"] is not None and t["gap_mean"] < n["gap_mean"]]}
    return out


def write_results(folder: Path, config: dict, rows: list[dict], training: list[dict], keep: dict,
                  map_of: tuple[str, int] | None = ("Bics", 3)) -> dict:
    from .maps import draw
    folder.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    document = {"config": config, "table": table, "training": training, "targets": targets(rows, table)}
    write_atomic(folder / "config.json", (json.dumps(config, indent=1) + "\n").encode())
    write_atomic(folder / "samples.json", (json.dumps(rows) + "\n").encode())
    write_atomic(folder / "table.json", (json.dumps(document, indent=1) + "\n").encode())
    write_atomic(folder / "table.md", render(table).encode())
    if map_of in keep:
        network, problem, found = keep[map_of]
        for placed in found:
            if placed.method in ("exact", "network+ls") and placed.feasible:
                name = f"{network.name.lower()}-k{problem.k}-{placed.method.replace('+', '-')}.png"
                draw(network, placed, folder / name)
    return document


def environment() -> dict:
    import scipy
    import sklearn
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "machine": platform.machine()}
