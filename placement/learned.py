"""Learned placement, as in He et al.: from a traffic distribution (each switch's share of the
flow setups) predict which switches host a controller (one binary label per switch, a
multi-label output), trained on the exact program's placements for many sampled distributions
of the same network and the same k. Three models: a decision tree, logistic regression (one
per switch) and a neural network trained on binary cross-entropy with Adam. A model's
proposal is the k switches it scores highest; the sites then get their best assignment, or,
for NN-LS, go through the local search first (placement.search)."""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from .heuristics import best_assignment
from .problem import Placement, Problem
from .search import local_search

MODELS = ("tree", "logistic", "network")
HIDDEN = (64,)


def features(rates: np.ndarray) -> np.ndarray:
    """(m, n) shares of the flow setups per switch: the models see where traffic is, not how
    much (the total is one of the problem's givens, like the capacity)."""
    rates = np.atleast_2d(rates)
    return rates / rates.sum(axis=1, keepdims=True)


def labels(n: int, placements: list[tuple[int, ...]]) -> np.ndarray:
    """(m, n) 0/1: switch j hosts a controller in placement i."""
    out = np.zeros((len(placements), n), dtype=int)
    for row, sites in enumerate(placements):
        out[row, list(sites)] = 1
    return out


class PlacementModel:
    """One of the three models for one network and one k, with the scores of its outputs."""

    def __init__(self, kind: str, seed: int) -> None:
        if kind not in MODELS:
            raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {kind!r}")
        self.kind, self.seed = kind, seed
        if kind == "tree":
            self.estimator = DecisionTreeClassifier(random_state=seed)
        elif kind == "logistic":
            self.estimator = make_pipeline(StandardScaler(), OneVsRestClassifier(
                LogisticRegression(max_iter=2000, random_state=seed)))
        else:
            self.estimator = make_pipeline(StandardScaler(), MLPClassifier(
                hidden_layer_sizes=HIDDEN, solver="adam", learning_rate_init=1e-3, alpha=1e-3,
                max_iter=2000, random_state=seed))
        self.prior = None
        self.fit_s = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> PlacementModel:
        start = time.perf_counter()
        self.prior = y.mean(axis=0)
        with warnings.catch_warnings():     # a switch that never (or always) hosts one is a constant label
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimator.fit(x, y)
        self.fit_s = time.perf_counter() - start
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(m, n): how strongly each switch is predicted to host a controller; ties (a tree's
        leaves are mostly 0 or 1) go to the switch that hosted one more often in training."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            proba = self.estimator.predict_proba(x)
        if isinstance(proba, list):         # the tree: one (m, classes) array per switch
            proba = np.column_stack([p[:, list(c).index(1)] if 1 in c else np.zeros(len(p))
                                     for p, c in zip(proba, self.estimator.classes_)])
        return np.asarray(proba, dtype=float) + 1e-6 * self.prior

    def propose(self, x: np.ndarray, k: int) -> np.ndarray:
        """(m, k) the k highest-scored switches of each row."""
        return np.argsort(-self.scores(x), axis=1, kind="stable")[:, :k]


def place_with_model(problem: Problem, model: PlacementModel, search: bool = False,
                     time_limit_s: float = 60.0) -> Placement:
    """The model's proposal for this traffic, assigned as well as those sites allow, or
    (`search`) refined by local search to a feasible, near-optimal placement; the search's
    notes (rounds, double swaps, exact assignments, rescue) and status (a proof of
    infeasibility, a time-out) are kept. `time_limit_s` bounds each exact program inside."""
    start = time.perf_counter()
    ranked = model.propose(features(problem.rates), problem.n)[0]       # every switch, best first
    sites = ranked[:problem.k]
    method = model.kind + ("+ls" if search else "")
    placed = local_search(problem, sites, method, candidates=ranked, time_limit_s=time_limit_s) if search \
        else best_assignment(problem, sites, method, time_limit_s)
    return Placement(method, placed.controllers, placed.assign, placed.objective_ms,
                     time.perf_counter() - start, status=placed.status,
                     notes={**placed.notes, "proposal": sorted(int(s) for s in sites)})
