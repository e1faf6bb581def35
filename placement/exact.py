"""The exact optimum by a mixed-integer program (scipy.optimize.milp, HiGHS): the capacitated
k-median with a latency bound, in its strong formulation (each assignment variable bounded by
its site's open variable, which makes the LP relaxation tighter than the aggregated form, so
branch and bound stays small).

    minimise    sum_ij w_i d_ij x_ij                       (w_i: switch i's share of flow setups)
    subject to  sum_j x_ij = 1                  for each switch i
                x_ij <= y_j                     for each allowed pair (d_ij <= bound)
                sum_i r_i x_ij <= C y_j         for each site j (r_i: flow setups/s, C: capacity)
                sum_j y_j = k
                x_ij, y_j in {0, 1}; x_ij exists only where d_ij <= bound

`assign_exactly` solves the same program for a fixed set of sites (k columns): it is how every
other method's sites get their best assignment, so methods differ only in where they put the
controllers.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .problem import Placement, Problem, infeasible

MIP_REL_GAP = 1e-6      # proven within a millionth of the optimum: "optimal" in the tables
OPTIMAL, TIME_LIMIT, INFEASIBLE, UNBOUNDED = 0, 1, 2, 3   # scipy.optimize.milp's status codes


def _solve(problem: Problem, sites: np.ndarray, fixed: bool, time_limit_s: float):
    """Solve over candidate `sites` (all open when `fixed`). Returns (x pairs, values, result)."""
    n, m = problem.n, len(sites)
    allowed = problem.allowed[:, sites]
    pi, pj = np.nonzero(allowed)                        # pair p: switch pi[p] from site sites[pj[p]]
    npairs = len(pi)
    if np.any(~allowed.any(axis=1)):                    # a switch out of reach of every site
        return pi, pj, None
    w, r = problem.weights, problem.rates
    cost = w[pi] * problem.latency_ms[pi, sites[pj]]
    rows, cols, vals, lo, hi = [], [], [], [], []

    def row(c, v, low, high):
        rows.append(np.full(len(c), len(lo)))
        cols.append(np.asarray(c))
        vals.append(np.asarray(v, dtype=float))
        lo.append(low)
        hi.append(high)

    # one site per switch
    order = np.argsort(pi, kind="stable")
    starts = np.searchsorted(pi[order], np.arange(n + 1))
    for i in range(n):
        row(order[starts[i]:starts[i + 1]], np.ones(starts[i + 1] - starts[i]), 1.0, 1.0)
    if fixed:
        c = cost
        integrality = np.ones(npairs)
        for j in range(m if np.isfinite(problem.capacity_flows_s) else 0):
            members = np.flatnonzero(pj == j)
            row(members, r[pi[members]], -np.inf, problem.capacity_flows_s)
        bounds = Bounds(np.zeros(npairs), np.ones(npairs))
    else:
        c = np.concatenate([cost, np.zeros(m)])
        integrality = np.ones(npairs + m)
        # x_ij - y_j <= 0, all pairs at once
        base = len(lo)
        rows.append(base + np.arange(npairs))
        cols.append(np.arange(npairs))
        vals.append(np.ones(npairs))
        rows.append(base + np.arange(npairs))
        cols.append(npairs + pj)
        vals.append(-np.ones(npairs))
        lo.extend([-np.inf] * npairs)
        hi.extend([0.0] * npairs)
        for j in range(m if np.isfinite(problem.capacity_flows_s) else 0):
            members = np.flatnonzero(pj == j)
            row(np.append(members, npairs + j), np.append(r[pi[members]], -problem.capacity_flows_s),
                -np.inf, 0.0)
        row(npairs + np.arange(m), np.ones(m), problem.k, problem.k)
        bounds = Bounds(np.zeros(npairs + m), np.ones(npairs + m))
    matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(len(lo), len(c))).tocsr()
    result = milp(c, integrality=integrality, bounds=bounds,
                  constraints=LinearConstraint(matrix, np.array(lo), np.array(hi)),
                  options={"time_limit": time_limit_s, "mip_rel_gap": MIP_REL_GAP, "disp": False})
    return pi, pj, result


class SolverError(RuntimeError):
    """HiGHS neither solved the program nor stopped at a limit (status 3, unbounded, which
    these bounded binary programs cannot be, or 4, a solver failure): a bug to see, not a
    placement outcome."""


def _status(result) -> str:
    """What HiGHS proved: optimal, infeasible, or (time or iteration limit) nothing."""
    if result is None or result.status == INFEASIBLE:
        return "infeasible"
    if result.status == OPTIMAL:
        return "optimal"
    if result.status == TIME_LIMIT:
        return "time-out"
    raise SolverError(f"HiGHS status {result.status} ({'unbounded' if result.status == UNBOUNDED else 'failure'}): "
                      f"{result.message}")


def place_exactly(problem: Problem, time_limit_s: float = 600.0) -> Placement:
    """The optimum, proven (status "optimal") unless the time limit stops HiGHS first: then
    status "time-out", with the best placement found (or none) and HiGHS's lower bound on the
    optimum (`notes["bound_ms"]`), which proves nothing about feasibility. Status "infeasible"
    only where HiGHS proved that no placement meets capacity and bound."""
    start = time.perf_counter()
    sites = np.arange(problem.n)
    pi, pj, result = _solve(problem, sites, fixed=False, time_limit_s=time_limit_s)
    elapsed = time.perf_counter() - start
    status = _status(result)
    dual = getattr(result, "mip_dual_bound", None)
    bound = np.nan if dual is None else float(dual)
    if result is None or result.x is None:
        return infeasible("exact", elapsed, status=status, bound_ms=bound,
                          message=getattr(result, "message", "a switch out of reach of every site"))
    x = result.x[:len(pi)] > 0.5
    assign = np.empty(problem.n, dtype=int)
    assign[pi[x]] = sites[pj[x]]
    controllers = tuple(int(j) for j in np.flatnonzero(result.x[len(pi):] > 0.5))
    return Placement("exact", controllers, assign, problem.objective(assign), elapsed,
                     proven_optimal=status == "optimal", status=status,
                     notes={"mip_gap": float(getattr(result, "mip_gap", np.nan) or 0.0), "bound_ms": bound})


def k_center_radius(latency_ms: np.ndarray, k: int, time_limit_s: float = 60.0) -> float:
    """The smallest worst-case latency any k controllers achieve, capacity aside (the optimal
    k-center): a binary search over the distinct latencies, each step a set-cover program
    (can k sites cover every switch within r?). A cover of at most k sites proves "yes"; "no"
    needs the program's proven minimum: a step that stops short of one raises TimeoutError
    rather than be read as "cannot cover", which would make the radius, and every latency
    bound built on it, too large."""
    n = len(latency_ms)
    radii = np.unique(latency_ms)
    lo, hi = 0, len(radii) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        cover = (latency_ms <= radii[mid]).astype(float)          # cover[i, j]: site j reaches i
        result = milp(np.ones(n), integrality=np.ones(n), bounds=Bounds(0, 1),
                      constraints=LinearConstraint(cover, np.ones(n), np.inf),
                      options={"time_limit": time_limit_s, "disp": False})
        if result.x is not None and round(result.fun) <= k:
            hi = mid
        elif result.status != OPTIMAL:
            raise TimeoutError(f"k-center radius, k={k}: the set cover within {radii[mid]:.6f} ms was not "
                               f"solved within {time_limit_s:g} s (HiGHS: {result.message})")
        else:
            lo = mid + 1
    return float(radii[lo])


def assign_exactly(problem: Problem, controllers, method: str = "assign",
                   time_limit_s: float = 60.0) -> Placement:
    """The best assignment of every switch to the given controller sites (a small program of
    n x k binaries); infeasible when capacity and bound admit none."""
    start = time.perf_counter()
    sites = np.array(sorted(set(int(c) for c in controllers)))
    pi, pj, result = _solve(problem, sites, fixed=True, time_limit_s=time_limit_s)
    elapsed = time.perf_counter() - start
    controllers = tuple(int(s) for s in sites)
    if result is None or result.x is None:
        return infeasible(method, elapsed, controllers, status=_status(result))
    x = result.x > 0.5
    assign = np.empty(problem.n, dtype=int)
    assign[pi[x]] = sites[pj[x]]
    return Placement(method, controllers, assign, problem.objective(assign), elapsed,
                     proven_optimal=result.status == OPTIMAL, status=_status(result))
