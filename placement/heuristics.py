"""The classic heuristics, for comparison: greedy k-median (add the site that cuts the mean
latency most, k times) and k-center (Gonzalez's farthest-first traversal from the network's
centre: a 2-approximation of the smallest worst case). Both choose sites without looking at
capacity; the sites then get their best assignment, like every other method's."""

from __future__ import annotations

import time

import numpy as np

from .exact import assign_exactly
from .problem import Placement, Problem
from .search import add_greedily, evaluate, masked_latency


def best_assignment(problem: Problem, sites, method: str, time_limit_s: float = 60.0) -> Placement:
    """The best assignment for fixed sites: nearest site when that fits every capacity
    (optimal then), else the exact assignment program (within `time_limit_s`)."""
    start = time.perf_counter()
    fast = evaluate(problem, sites)
    if fast.feasible and fast.nearest:
        return Placement(method, tuple(int(s) for s in fast.sites), fast.assign, fast.objective,
                         time.perf_counter() - start)
    exact = assign_exactly(problem, sites, method, time_limit_s)
    return Placement(method, exact.controllers, exact.assign, exact.objective_ms,
                     time.perf_counter() - start)


def greedy_sites(problem: Problem) -> list[int]:
    return add_greedily([], problem.k, masked_latency(problem), problem)


def k_center_sites(problem: Problem) -> list[int]:
    latency = problem.latency_ms
    sites = [int(latency.max(axis=1).argmin())]
    while len(sites) < problem.k:
        sites.append(int(latency[:, sites].min(axis=1).argmax()))
    return sites


def greedy_k_median(problem: Problem, time_limit_s: float = 60.0) -> Placement:
    return _timed(problem, greedy_sites, "greedy", time_limit_s)


def k_center(problem: Problem, time_limit_s: float = 60.0) -> Placement:
    return _timed(problem, k_center_sites, "kcenter", time_limit_s)


def _timed(problem: Problem, choose, method: str, time_limit_s: float) -> Placement:
    start = time.perf_counter()
    placed = best_assignment(problem, choose(problem), method, time_limit_s)
    return Placement(method, placed.controllers, placed.assign, placed.objective_ms,
                     time.perf_counter() - start)
