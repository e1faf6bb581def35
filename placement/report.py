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
from .problem import Placement, Problem
from .traffic import CAPACITY_FLOWS_S, LOAD_FACTOR, samples

METHODS = ("exact", "greedy", "kcenter", "tree", "logistic", "network", "tree+ls", "network+ls")
WITHIN = 0.01           # "near-optimal": within 1% of the optimum
BOUND_FACTOR = 1.5      # worst case allowed: 1.5x the best worst case k controllers can achieve
RUNTIME_SHARE = 1 / 3   # the target: NN-LS at no more than a third of the exact runtime
EXACT_LIMIT_S = 60.0    # the target: the exact program proves BICS optimal within a minute
# The documented comparison (docs/placement.md), the report's defaults. Seed 7 was never used
# while the local search was developed: seed 1's held-out samples were, so they cannot test it.
DEFAULT_NETWORKS = "Bics:160:40,TataNld:25:15"
DEFAULT_SEED = 7


@dataclass(frozen=True)
class Plan:
    network: str
    train: int
    test: int


def parse_plans(text: str) -> list[Plan]:
    """'Bics:160:40,TataNld:25:15' -> plans (network, training samples, held-out samples)."""
    plans = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or int(parts[2]) < 1:
            raise ValueError(f"--networks: {item!r}: expected NAME:TRAIN:TEST, e.g. Bics:160:40")
        plans.append(Plan(parts[0], int(parts[1]), int(parts[2])))
    return plans


def traffic_split(network: Network, plan: Plan, seed: int, total_flows_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The training and the held-out traffic samples: one seeded stream, the first `train`
    draws to train on, the next `test` held out (so no held-out sample is a training one)."""
    rates = samples(network, plan.train + plan.test, seed, total_flows_s)
    return rates[:plan.train], rates[plan.train:]


def problems_for(network: Network, rates: np.ndarray, k: int, capacity: float,
                 bound_factor: float, time_limit_s: float = 60.0) -> tuple[float, list[Problem]]:
    bound = bound_factor * k_center_radius(network.latency_ms, k, time_limit_s)
    return bound, [Problem(network.latency_ms, r, k, capacity, bound) for r in rates]


def reference_ms(exact: Placement) -> float | None:
    """What a held-out sample's gaps are measured against: the proven optimum; after a
    time-out, HiGHS's lower bound on the optimum (so the gap is an upper bound on the true
    one); None where no placement exists (proven) or nothing is known."""
    if exact.status == "optimal":
        return exact.objective_ms
    bound = exact.notes.get("bound_ms", np.nan)
    return float(bound) if exact.status == "time-out" and np.isfinite(bound) and bound > 0 else None


def sample_row(network: str, k: int, sample: int, problem: Problem, placed: Placement, exact: Placement) -> dict:
    """One method on one held-out sample. `within_1pct` is False for a method that placed
    nothing and for a gap that cannot be measured (exact timed out with no bound): a miss;
    None only where HiGHS proved that no placement exists (nothing to be within 1% of)."""
    reference = reference_ms(exact)
    gap = placed.objective_ms / reference - 1 if placed.feasible and reference is not None else None
    return {"network": network, "k": k, "sample": sample, "method": placed.method, "status": placed.status,
            "feasible": placed.feasible, "objective_ms": placed.objective_ms if placed.feasible else None,
            "exact_status": exact.status, "reference_ms": reference, "gap": gap,
            "within_1pct": None if exact.status == "infeasible" else gap is not None and gap <= WITHIN + 1e-9,
            "runtime_s": placed.runtime_s, "exact_runtime_s": exact.runtime_s,
            "worst_latency_ms": problem.worst_latency(placed.assign) if placed.feasible else None,
            "max_load": float(problem.loads(placed.assign).max() / problem.capacity_flows_s) if placed.feasible else None,
            "controllers": list(placed.controllers),
            **{note: placed.notes.get(note) for note in SEARCH_NOTES}}


# What the local search did (its notes): the rescue it needed ("exact assignment", "exact
# program" or None), how many exact assignment programs checked its result, how many double swaps
SEARCH_NOTES = ("rescue", "exact_assignments", "double_swaps")


def run_network(plan: Plan, ks: list[int], seed: int, capacity: float = CAPACITY_FLOWS_S,
                load_factor: float = LOAD_FACTOR, bound_factor: float = BOUND_FACTOR,
                time_limit_s: float = 60.0, progress=lambda text: None,
                keep: dict | None = None, hop_ms: float = 1.0) -> tuple[list[dict], list[dict]]:
    """Per-sample rows and per-k training facts for one network. `keep` collects
    (network, k) -> (network, problem, placements) of the first held-out sample, for maps.
    The models learn from the proven optima of the training samples only."""
    network = load_network(plan.network, hop_ms)
    train, test = traffic_split(network, plan, seed, load_factor * capacity)
    rows, training = [], []
    for k in ks:
        bound, problems = problems_for(network, np.concatenate([train, test]), k, capacity, bound_factor,
                                       time_limit_s)
        start = time.perf_counter()
        exact = [place_exactly(p, time_limit_s) for p in problems]
        labelled = [i for i in range(plan.train) if exact[i].status == "optimal"]
        models = {}
        if labelled:
            x, y = features(train[labelled]), labels(network.n, [exact[i].controllers for i in labelled])
            models = {kind: PlacementModel(kind, seed).fit(x, y) for kind in MODELS}
        training.append({"network": network.name, "k": k, "max_latency_ms": bound,
                         "train_samples": len(labelled),
                         "train_statuses": {s: sum(e.status == s for e in exact[:plan.train])
                                            for s in ("optimal", "time-out", "infeasible")},
                         "labels_s": sum(e.runtime_s for e in exact[:plan.train]),
                         "fit_s": {kind: m.fit_s for kind, m in models.items()}})
        for sample in range(plan.train, plan.train + plan.test):
            problem, best = problems[sample], exact[sample]
            found = [best, greedy_k_median(problem, time_limit_s), k_center(problem, time_limit_s)]
            found += [place_with_model(problem, models[kind], time_limit_s=time_limit_s)
                      for kind in MODELS if kind in models]
            found += [place_with_model(problem, models[kind], search=True, time_limit_s=time_limit_s)
                      for kind in ("tree", "network") if kind in models]
            for placed in found:
                if placed.feasible and problem.violations(placed.controllers, placed.assign):
                    raise AssertionError(f"{placed.method}: {problem.violations(placed.controllers, placed.assign)}")
                rows.append(sample_row(network.name, k, sample, problem, placed, best))
            if keep is not None and sample == plan.train:
                keep[(network.name, k)] = (network, problem, found)
        progress(f"{network.name} k={k}: {len(problems)} exact placements and {plan.test} held-out "
                 f"comparisons in {time.perf_counter() - start:.1f} s")
    return rows, training


def _mean(values) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict]) -> list[dict]:
    """One line per network, k and method, over ALL its held-out samples: `within_1pct` counts
    a sample the method placed nothing for as a miss, over the samples where a placement exists
    (all but those HiGHS proved infeasible); `feasible` is the share placed; the gap mean and
    maximum are over the feasibly placed samples only (`gap_samples` of them), which favours a
    method that gives up on hard samples: read them with `feasible`."""
    out = []
    keys = sorted({(r["network"], r["k"]) for r in rows}, key=lambda nk: (nk[0] != "Bics", nk))
    for network, k in keys:
        for method in METHODS:
            mine = [r for r in rows if (r["network"], r["k"], r["method"]) == (network, k, method)]
            if not mine:
                continue
            solvable = [r for r in mine if r["within_1pct"] is not None]
            gaps = [r["gap"] for r in mine if r["gap"] is not None]
            runtime = float(np.mean([r["runtime_s"] for r in mine]))
            out.append({
                "network": network, "k": k, "method": method, "samples": len(mine),
                "solvable": len(solvable), "within": sum(r["within_1pct"] for r in solvable),
                "within_1pct": _mean(r["within_1pct"] for r in solvable),
                "feasible": float(np.mean([r["feasible"] for r in mine])),
                "gap_samples": len(gaps), "gap_mean": _mean(gaps),
                "gap_max": float(np.max(gaps)) if gaps else None,
                "runtime_ms": 1000 * runtime,
                "runtime_max_ms": 1000 * float(np.max([r["runtime_s"] for r in mine])),
                "runtime_vs_exact": runtime / float(np.mean([r["exact_runtime_s"] for r in mine])),
                "search": {"rescued": sum(r["rescue"] is not None for r in mine),
                           "exact_assignments": sum(r["exact_assignments"] or 0 for r in mine),
                           "double_swaps": sum(r["double_swaps"] or 0 for r in mine)}
                if method.endswith("+ls") else None,
                "exact": {s: sum(r["exact_status"] == s for r in mine) for s in ("optimal", "time-out", "infeasible")}})
    return out


def render(table: list[dict]) -> str:
    """The Markdown table of a summary."""
    lines = ["| network | k | method | within 1% (of all held-out) | feasible | gap mean / max (feasible only) "
             "| runtime ms (mean / max) | vs exact | exact: proven / time-out / infeasible "
             "| search: rescued / exact assignments / double swaps |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        gap = "-" if t["gap_mean"] is None else f"{100 * t['gap_mean']:.2f}% / {100 * t['gap_max']:.2f}%"
        within = "-" if t["within_1pct"] is None else f"{t['within']}/{t['solvable']} ({100 * t['within_1pct']:.0f}%)"
        proof = " / ".join(str(t["exact"][s]) for s in ("optimal", "time-out", "infeasible")) \
            if t["method"] == "exact" else ""
        search = " / ".join(str(t["search"][f]) for f in ("rescued", "exact_assignments", "double_swaps")) \
            if t.get("search") else ""
        lines.append(f"| {t['network']} | {t['k']} | {t['method']} | {within} | {100 * t['feasible']:.0f}% | {gap} "
                     f"| {t['runtime_ms']:.1f} / {t['runtime_max_ms']:.1f} | {t['runtime_vs_exact']:.3f} | {proof} "
                     f"| {search} |")
    return "\n".join(lines) + "\n"


def _ratio(rows: list[dict]) -> float | None:
    return float(np.sum([r["runtime_s"] for r in rows]) / np.sum([r["exact_runtime_s"] for r in rows])) if rows else None


def _versus(tree: dict, net: dict) -> str:
    """Which of two summary lines is better: more samples within 1% (infeasible ones count as
    misses); at equal counts and equal feasibility, the lower gap mean; else a tie."""
    if tree["within"] != net["within"]:
        return "tree" if tree["within"] > net["within"] else "network"
    if tree["feasible"] == net["feasible"] and tree["gap_mean"] is not None and net["gap_mean"] is not None \
            and abs(tree["gap_mean"] - net["gap_mean"]) > 1e-6:
        return "tree" if tree["gap_mean"] < net["gap_mean"] else "network"
    return "tie"


def targets(rows: list[dict], table: list[dict]) -> dict:
    """The issue's targets, measured per network: NN-LS within 1% on >= 95% of the held-out
    samples pooled over all k (a sample it placed nothing for is a miss; the table's network+ls
    lines hold the per-k counts, and one k can fall short while the pool holds), at
    <= 1/3 of the exact program's runtime at every k; the exact program proving every held-out problem optimal
    within a minute; and, per k, whether the tree or the network is better (`_versus`), alone
    and after local search."""
    out = {}
    for network in sorted({r["network"] for r in rows}):
        mine = [r for r in rows if r["network"] == network]
        nn = [r for r in mine if r["method"] == "network+ls" and r["within_1pct"] is not None]
        ex = [r for r in mine if r["method"] == "exact"]
        by_k = {k: _ratio([r for r in nn if r["k"] == k]) for k in sorted({r["k"] for r in nn})}
        hits = sum(r["within_1pct"] for r in nn)
        lines = {(t["k"], t["method"]): t for t in table if t["network"] == network}
        out[network] = {
            "nn_ls_within_1pct": hits / len(nn) if nn else None,
            "nn_ls_within": f"{hits}/{len(nn)}",
            "nn_ls_none_found": sum(not r["feasible"] for r in nn),
            "nn_ls_runtime_vs_exact": _ratio(nn),
            "nn_ls_runtime_vs_exact_by_k": by_k,
            "exact": {s: sum(r["exact_status"] == s for r in ex) for s in ("optimal", "time-out", "infeasible")},
            "exact_runtime_max_s": float(np.max([r["runtime_s"] for r in ex])) if ex else None,
            "met": {"nn_ls_within_1pct_on_95pct": bool(nn) and hits / len(nn) >= 0.95,
                    "nn_ls_third_of_exact_runtime_every_k": bool(by_k) and all(v <= RUNTIME_SHARE for v in by_k.values()),
                    "exact_proven_within_1_min_every_k": bool(ex) and all(
                        r["exact_status"] == "optimal" and r["runtime_s"] <= EXACT_LIMIT_S for r in ex)},
            "tree_vs_network": [
                {"k": k, "versus": plain, "better": _versus(lines[(k, tree_m)], lines[(k, net_m)]),
                 **{side: {f: lines[(k, m)][f] for f in ("within", "solvable", "feasible", "gap_mean")}
                    for side, m in (("tree", tree_m), ("network", net_m))}}
                for plain, tree_m, net_m in (("models alone", "tree", "network"),
                                             ("with local search", "tree+ls", "network+ls"))
                for k in sorted({t["k"] for t in table if t["network"] == network})
                if (k, tree_m) in lines and (k, net_m) in lines]}
    return out


KIND = "controller-placement"    # results.json's kind: how scripts.tables renders the folder


def write_results(folder: Path, config: dict, rows: list[dict], training: list[dict], keep: dict,
                  map_of: tuple[str, int] | None = ("Bics", 3)) -> dict:
    """results.json (the run's commit and command, configuration, table, training facts and
    targets), table.md rendered from it, samples.json (every row), and the maps of `map_of`."""
    from .maps import draw
    folder.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    document = {"kind": KIND, "commit": config["commit"], "command": config["command"], "config": config,
                "table": table, "training": training, "targets": targets(rows, table)}
    write_atomic(folder / "samples.json", (json.dumps(rows) + "\n").encode())
    write_atomic(folder / "results.json", (json.dumps(document, indent=1) + "\n").encode())
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
