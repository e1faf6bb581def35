"""Honest evaluation of a path scorer: which samples may train a model that is tested on which,
and the errors it makes beside two baselines.

One-second samples are correlated in time: the background transfers last 5-15 s and a
feature reads the last two 1 s polls, so a sample's neighbours nearly repeat it. Shuffled
k-fold puts those neighbours on both sides and flatters every model (the shipped sweep's R^2
0.44 was measured that way). Here a test block is a run of consecutive time, and no training
sample lies within `gap_s` of any of its samples. Error on networks never trained on is
leave-one-network-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

GAP_S = 5.0     # > the features' window (two 1 s polls) plus a probe train or a transfer label


def time_blocked_folds(times: np.ndarray, folds: int, gap_s: float = GAP_S) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays: `folds` test blocks of consecutive time (equal counts, in
    time order), each trained on the samples more than gap_s away from the block's span.
    A ValueError when a block leaves fewer than two samples to train on."""
    times = np.asarray(times, dtype=float)
    if not 2 <= folds <= len(times):
        raise ValueError(f"folds: must be in 2..{len(times)} (the samples), got {folds}")
    out = []
    for test in np.array_split(np.argsort(times, kind="stable"), folds):
        low, high = times[test].min(), times[test].max()
        train = np.flatnonzero((low - times > gap_s) | (times - high > gap_s))     # distances: low - gap_s rounds
        if len(train) < 2:
            raise ValueError(f"the samples span {np.ptp(times):.0f} s: too short for {folds} time blocks "
                             f"{gap_s:g} s apart (collect for longer, or use fewer folds)")
        out.append((train, np.sort(test)))
    return out


def shuffled_folds(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The paper's (and the shipped model's) k-fold over shuffled samples: kept only to
    reproduce that model; it mixes neighbouring seconds."""
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros((n, 1))))


def network_folds(networks: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave one network out: each network's samples tested on a model trained on the others'."""
    networks = np.asarray(networks)
    names = sorted(set(networks.tolist()))
    if len(names) < 2:
        raise ValueError("held-out networks need samples from at least two networks")
    return [(np.flatnonzero(networks != name), np.flatnonzero(networks == name)) for name in names]


def mae(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - y)))


def mean_relative_error(y: np.ndarray, predicted: np.ndarray) -> float:
    """mean(|predicted - y| / y) over the samples with a positive label (a zero delay or
    completion time is not a measurement a ratio can be taken of); NaN when there are none."""
    positive = y > 0
    return float(np.mean(np.abs(predicted[positive] - y[positive]) / y[positive])) if positive.any() else float("nan")


@dataclass(frozen=True)
class NetworkError:
    network: str
    model: str
    samples: int
    mae: float
    mre: float


def per_network(y: np.ndarray, networks: list[str], predicted: dict[str, np.ndarray]) -> list[NetworkError]:
    """Each model's out-of-fold predictions scored on each network's samples, network by network."""
    networks = np.asarray(networks)
    rows = []
    for name in sorted(set(networks.tolist())):
        mine = networks == name
        rows += [NetworkError(name, model, int(mine.sum()), mae(y[mine], p[mine]), mean_relative_error(y[mine], p[mine]))
                 for model, p in predicted.items()]
    return rows
