"""Assignment of switches to given controller sites, and the local search (swap moves) that
refines a proposed set of sites (NN-LS: the network's proposal, then this).

A set of sites is judged by a fast assignment: every switch to its nearest site within the
latency bound, which is optimal for those sites whenever no controller is then overloaded;
otherwise switches are placed greedily, the ones that lose most by not getting their nearest
site first (regret), each on the nearest site with room. The nearest-site cost is a lower
bound on any assignment's cost, so swaps are tried in order of that bound and the search stops
looking once the bound cannot beat the best swap found.
"""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np

from .exact import assign_exactly
from .problem import Placement, Problem, infeasible

PENALTY = 1e3           # ms per switch out of reach, and per controller capacity of overload


class Evaluation:
    """The fast assignment of switches to `sites`: cost (ms, penalised when infeasible)."""

    __slots__ = ("sites", "assign", "objective", "shortfall", "nearest")

    def __init__(self, sites, assign, objective, shortfall, nearest):
        self.sites, self.assign, self.objective = sites, assign, objective
        self.shortfall, self.nearest = shortfall, nearest       # shortfall 0: feasible

    @property
    def cost(self) -> float:
        return self.objective + PENALTY * self.shortfall

    @property
    def feasible(self) -> bool:
        return self.shortfall == 0


def masked_latency(problem: Problem) -> np.ndarray:
    """Latency where the bound allows the pair, infinity elsewhere."""
    return np.where(problem.allowed, problem.latency_ms, np.inf)


def evaluate(problem: Problem, sites, latency: np.ndarray | None = None) -> Evaluation:
    latency = masked_latency(problem) if latency is None else latency
    sites = np.asarray(sorted(sites), dtype=int)
    sub = latency[:, sites]                                 # (n, k)
    best = sub.argmin(axis=1)
    reach = np.isfinite(sub[np.arange(problem.n), best])
    uncovered = int((~reach).sum())
    if uncovered:                                           # no assignment exists: say how far off
        assign = np.where(reach, sites[best], sites[0])
        return Evaluation(sites, assign, problem.objective(assign), uncovered, True)
    assign = sites[best]
    loads = np.bincount(best, weights=problem.rates, minlength=len(sites))
    if (loads <= problem.capacity_flows_s * (1 + 1e-9)).all():
        return Evaluation(sites, assign, problem.objective(assign), 0.0, True)
    return _greedy(problem, sites, sub)


def _greedy(problem: Problem, sites: np.ndarray, sub: np.ndarray) -> Evaluation:
    """Regret-ordered greedy assignment under capacity; what does not fit goes to its nearest
    site and counts as overload (the shortfall, in controller capacities)."""
    n, k = sub.shape
    order = np.argsort(sub, axis=1)
    ranked = np.take_along_axis(sub, order, axis=1)
    second = ranked[:, 1] if k > 1 else np.full(n, np.inf)
    regret = np.where(np.isfinite(second), second - ranked[:, 0], 1e9)
    room = np.full(k, float(problem.capacity_flows_s))
    choice = np.empty(n, dtype=int)
    overload = 0.0
    rates = problem.rates
    for i in np.lexsort((-rates, -regret)):                 # biggest regret first, then biggest rate
        r = rates[i]
        for j in order[i]:
            if not np.isfinite(sub[i, j]):
                j = order[i, 0]
                overload += r
                room[j] -= r
                break
            if room[j] >= r - 1e-9:
                room[j] -= r
                break
        else:
            j = order[i, 0]
            overload += r
            room[j] -= r
        choice[i] = j
    choice = _improve(problem, sub, choice, room)
    assign = sites[choice]
    shortfall = overload / problem.capacity_flows_s if np.isfinite(problem.capacity_flows_s) else 0.0
    return Evaluation(sites, assign, problem.objective(assign), shortfall, False)


def _improve(problem: Problem, sub: np.ndarray, choice: np.ndarray, room: np.ndarray,
             rounds: int = 3) -> np.ndarray:
    """Shift single switches to a nearer site that has room, while any does."""
    rates = problem.rates
    for _ in range(rounds):
        moved = False
        for i in np.argsort(-rates):
            here = choice[i]
            better = np.flatnonzero((sub[i] < sub[i, here] - 1e-12) & (room >= rates[i] - 1e-9))
            if better.size:
                j = better[np.argmin(sub[i, better])]
                room[here] += rates[i]
                room[j] -= rates[i]
                choice[i] = j
                moved = True
        if not moved:
            break
    return choice


def local_search(problem: Problem, start, method: str = "search", candidates=(), max_rounds: int = 100,
                 polish: bool = True) -> Placement:
    """Swap one site for another while that lowers the (penalised) cost, best swap first, from
    the sites `start`; when no single swap helps, try two sites out for two of `candidates`
    (a model's next-best sites), then single swaps again. Returns a feasible placement, or an
    infeasible result (assign None) if no feasible set was reached: never an infeasible
    assignment. When capacity forced the greedy assignment, the final sites get their exact
    best assignment (`polish`)."""
    t0 = time.perf_counter()
    latency = masked_latency(problem)
    n, k = problem.n, problem.k
    current = add_greedily(list(dict.fromkeys(int(s) for s in start))[:k], k, latency, problem)
    best = evaluate(problem, current, latency)
    rounds = doubles = 0
    for rounds in range(1, max_rounds + 1):
        swap = _best_swap(problem, best, latency)
        if swap is None and len(candidates) >= 2 and k >= 2:
            swap = _best_double_swap(problem, best, latency, candidates)
            doubles += swap is not None
        if swap is None:
            break
        best = swap
    notes = {"rounds": rounds, "double_swaps": doubles, "start": sorted(int(s) for s in start)}
    if not best.feasible:
        return infeasible(method, time.perf_counter() - t0, tuple(int(s) for s in best.sites), **notes)
    placement = Placement(method, tuple(int(s) for s in best.sites), best.assign, best.objective,
                          0.0, notes=notes)
    if polish and not best.nearest:
        exact = assign_exactly(problem, best.sites, method)
        if exact.feasible and exact.objective_ms < placement.objective_ms:
            placement = exact
    return Placement(method, placement.controllers, placement.assign, placement.objective_ms,
                     time.perf_counter() - t0, notes=notes)


def add_greedily(sites: list[int], k: int, latency: np.ndarray, problem: Problem) -> list[int]:
    """Fill a short list of sites up to k, each time with the site that cuts the nearest-site
    cost most (the greedy k-median step)."""
    while len(sites) < k:
        rest = np.setdiff1d(np.arange(problem.n), sites)
        near = latency[:, sites].min(axis=1) if sites else np.full(problem.n, np.inf)
        with np.errstate(invalid="ignore"):
            trial = np.minimum(near[:, None], latency[:, rest])
        costs = _bounded_costs(problem, trial)
        sites.append(int(rest[np.argmin(costs)]))
    return sites


def _bounded_costs(problem: Problem, nearest: np.ndarray) -> np.ndarray:
    """Nearest-site cost of each column of an (n, m) matrix of per-switch latencies, with the
    out-of-reach penalty: a lower bound on the penalised cost of that set of sites."""
    finite = np.isfinite(nearest)
    objective = problem.weights @ np.where(finite, nearest, 0.0)
    return objective + PENALTY * (~finite).sum(axis=0)


def _best_swap(problem: Problem, current: Evaluation, latency: np.ndarray) -> Evaluation | None:
    """The best improving swap (one site out, one in), or None."""
    sites = list(current.sites)
    rest = np.setdiff1d(np.arange(problem.n), sites)
    bounds, moves = [], []
    for out in sites:
        keep = [s for s in sites if s != out]
        near = latency[:, keep].min(axis=1) if keep else np.full(problem.n, np.inf)
        bounds.append(_bounded_costs(problem, np.minimum(near[:, None], latency[:, rest])))
        moves.append(keep)
    return _best_of(problem, current, latency, np.concatenate(bounds),
                    lambda flat: moves[flat // len(rest)] + [int(rest[flat % len(rest)])])


def _best_double_swap(problem: Problem, current: Evaluation, latency: np.ndarray,
                      candidates) -> Evaluation | None:
    """The best improving move of two sites out for two of `candidates`, or None."""
    sites = [int(s) for s in current.sites]
    pool = np.array([int(c) for c in candidates if int(c) not in sites])
    if len(pool) < 2:
        return None
    pairs = np.array(list(combinations(range(len(pool)), 2)))
    bounds, moves = [], []
    for out in combinations(sites, 2):
        keep = [s for s in sites if s not in out]
        near = latency[:, keep].min(axis=1) if keep else np.full(problem.n, np.inf)
        first = np.minimum(near[:, None], latency[:, pool])                     # (n, m)
        both = np.minimum(first[:, pairs[:, 0]], latency[:, pool[pairs[:, 1]]])  # (n, pairs)
        bounds.append(_bounded_costs(problem, both))
        moves.append(keep)
    return _best_of(problem, current, latency, np.concatenate(bounds),
                    lambda flat: moves[flat // len(pairs)] + pool[pairs[flat % len(pairs)]].tolist())


def _best_of(problem: Problem, current: Evaluation, latency: np.ndarray, bounds: np.ndarray,
             sites_of) -> Evaluation | None:
    """The best improving move among those whose lower bounds are given (move m makes the
    sites `sites_of(m)`), evaluating them in order of bound until none can improve; or None."""
    best = current
    for flat in np.argsort(bounds, kind="stable"):
        if bounds[flat] >= best.cost - 1e-9:
            break
        trial = evaluate(problem, sites_of(flat), latency)
        if trial.cost < best.cost - 1e-9:
            best = trial
    return None if best is current else best
