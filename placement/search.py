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

from .exact import assign_exactly, place_exactly
from .problem import Placement, Problem

DOUBLE_SCAN = 2_000_000  # latency entries one scan of double swaps may read (~40 ms on 143 switches)
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
    excess = np.clip(-room, 0.0, None).sum() if overload else 0.0
    shortfall = excess / problem.capacity_flows_s if np.isfinite(problem.capacity_flows_s) else 0.0
    return Evaluation(sites, assign, problem.objective(assign), shortfall, False)


def _improve(problem: Problem, sub: np.ndarray, choice: np.ndarray, room: np.ndarray,
             rounds: int = 30) -> np.ndarray:
    """Shift single switches to a nearer site that has room, and exchange two switches
    between their sites where both stay within capacity and the cost falls, while any such
    move helps (at most `rounds` rounds)."""
    rates, w = problem.rates, problem.weights
    n = len(choice)
    finite = np.where(np.isfinite(sub), sub, 1e9)
    for _ in range(rounds):
        moved = False
        for i in np.argsort(-rates):
            here = choice[i]
            better = np.flatnonzero((finite[i] < finite[i, here] - 1e-12) & (room >= rates[i] - 1e-9))
            if better.size:
                j = better[np.argmin(finite[i, better])]
                room[here] += rates[i]
                room[j] -= rates[i]
                choice[i] = j
                moved = True
        # exchanges: i goes to j's site and j to i's; delta[i, j] is the change in cost
        own = finite[np.arange(n), choice]
        cross = finite[:, choice]                                   # cross[i, j]: i at j's site
        delta = w[:, None] * (cross - own[:, None]) + w[None, :] * (cross.T - own[None, :])
        net = rates[None, :] - rates[:, None]                       # j's rate in, i's out, at i's site
        fits = (room[choice][:, None] - net >= -1e-9) & (room[choice][None, :] + net >= -1e-9)
        delta = np.where(fits & (choice[:, None] != choice[None, :]), delta, 0.0)
        i, j = np.unravel_index(np.argmin(delta), delta.shape)
        if delta[i, j] < -1e-12:
            a, b = choice[i], choice[j]
            room[a] += rates[i] - rates[j]
            room[b] += rates[j] - rates[i]
            choice[i], choice[j] = b, a
            moved = True
        if not moved:
            break
    return choice


def local_search(problem: Problem, start, method: str = "search", candidates=(), max_rounds: int = 100,
                 polish: int = 6, time_limit_s: float = 60.0) -> Placement:
    """Swap one site for another while that lowers the (penalised) cost, best swap first, from
    the sites `start`; when no single swap helps, try two sites out for two of `candidates`
    (a model's next-best sites), then single swaps again. Where capacity binds, up to `polish`
    exact assignment programs then check the result and the moves the fast assignment may have
    misjudged (`_exact_phase`). Returns a feasible placement whenever one exists (`_rescue`),
    never an infeasible assignment; none only where the exact program proves there is none or
    times out (`time_limit_s`, the limit of each exact program inside)."""
    t0 = time.perf_counter()
    latency = masked_latency(problem)
    n, k = problem.n, problem.k
    current = add_greedily(list(dict.fromkeys(int(s) for s in start))[:k], k, latency, problem)
    best = evaluate(problem, current, latency)
    rounds = doubles = 0
    for rounds in range(1, max_rounds + 1):
        swap = _best_of(problem, best, latency, *_single_moves(problem, list(best.sites), latency))
        if swap is None:
            double = _double_moves(problem, list(best.sites), latency, candidates)
            swap = _best_of(problem, best, latency, *double) if double else None
            doubles += swap is not None
        if swap is None:
            break
        best = swap
    notes = {"rounds": rounds, "double_swaps": doubles, "start": sorted(int(s) for s in start)}
    if not best.feasible:
        placement = _rescue(problem, best.sites, method, time_limit_s, notes)
        return Placement(method, placement.controllers, placement.assign, placement.objective_ms,
                         time.perf_counter() - t0, notes=notes, status=placement.status)
    placement = Placement(method, tuple(int(s) for s in best.sites), best.assign, best.objective, 0.0)
    if polish:
        placement = _exact_phase(problem, placement, best.nearest, latency, candidates, polish, notes,
                                 time_limit_s)
    return Placement(method, placement.controllers, placement.assign, placement.objective_ms,
                     time.perf_counter() - t0, notes=notes)


def _rescue(problem: Problem, sites, method: str, time_limit_s: float, notes: dict) -> Placement:
    """The search converged on sites the fast assignment cannot fit (its greedy packing fails
    where capacity is tight: 2% of small random problems with a feasible placement). The exact
    assignment of those sites may fit; if not, the exact program decides, so that the search
    gives up only where no placement exists (proven) or the program times out. Rare, and
    timed with the search."""
    exact = assign_exactly(problem, sites, method, time_limit_s)
    notes["rescue"] = "exact assignment"
    if exact.feasible:          # optimal for these sites, which proves nothing about the placement
        return Placement(method, exact.controllers, exact.assign, exact.objective_ms, exact.runtime_s)
    notes["rescue"] = "exact program"
    whole = place_exactly(problem, time_limit_s)
    return Placement(method, whole.controllers, whole.assign, whole.objective_ms, whole.runtime_s,
                     status="feasible" if whole.feasible else whole.status)


def _exact_phase(problem: Problem, placement: Placement, nearest: bool, latency: np.ndarray,
                 candidates, budget: int, notes: dict, time_limit_s: float) -> Placement:
    """Where capacity binds, the fast assignment can misjudge a set of sites. Once the search
    has converged, give the final sites their exact assignment, then try the moves whose lower
    bound still beats it (only sets whose nearest assignment overloads a controller can), in
    order of bound, each with its exact assignment: at most `budget` programs in all."""
    used = 0
    if not nearest:
        exact = assign_exactly(problem, placement.controllers, placement.method, time_limit_s)
        used += 1
        if exact.feasible and exact.objective_ms < placement.objective_ms:
            placement = exact
    improved = True
    while improved and used < budget:
        improved = False
        sites = list(placement.controllers)
        found = [m for m in (_single_moves(problem, sites, latency),
                             _double_moves(problem, sites, latency, candidates)) if m]
        bounds = np.concatenate([b for b, _ in found])
        starts = np.cumsum([0] + [len(b) for b, _ in found])
        for flat in np.argsort(bounds, kind="stable"):
            if bounds[flat] >= placement.objective_ms - 1e-9 or used >= budget:
                break
            part = int(np.searchsorted(starts, flat, side="right") - 1)
            trial = assign_exactly(problem, found[part][1](int(flat - starts[part])), placement.method,
                                   time_limit_s)
            used += 1
            if trial.feasible and trial.objective_ms < placement.objective_ms - 1e-9:
                placement, improved = trial, True
                break
    notes["exact_assignments"] = used
    return placement


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


def _single_moves(problem: Problem, sites: list[int], latency: np.ndarray):
    """Every swap of one site out and one in: (lower bounds, move index -> its sites)."""
    rest = np.setdiff1d(np.arange(problem.n), sites)
    bounds, moves = [], []
    for out in sites:
        keep = [s for s in sites if s != out]
        near = latency[:, keep].min(axis=1) if keep else np.full(problem.n, np.inf)
        bounds.append(_bounded_costs(problem, np.minimum(near[:, None], latency[:, rest])))
        moves.append(keep)
    return np.concatenate(bounds), lambda flat: moves[flat // len(rest)] + [int(rest[flat % len(rest)])]


def _double_moves(problem: Problem, sites: list[int], latency: np.ndarray, candidates):
    """Every move of two sites out for two of the first `candidates` (None if there are none):
    as many as keep the scan within DOUBLE_SCAN latency entries."""
    pool = np.array([int(c) for c in candidates if int(c) not in sites])
    outs = len(sites) * (len(sites) - 1) // 2
    m = len(pool)
    while m > 2 and m * (m - 1) // 2 * outs * problem.n > DOUBLE_SCAN:
        m -= 1
    pool = pool[:m]
    if len(pool) < 2 or len(sites) < 2:
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
    return np.concatenate(bounds), lambda flat: moves[flat // len(pairs)] + pool[pairs[flat % len(pairs)]].tolist()


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
