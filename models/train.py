"""Training and evaluation of the BPANN with scikit-learn, as the paper does it: a 3-layer
network (4 inputs, one logistic hidden layer, 1 output), hidden sizes swept over 3..11 with
cross-validation (time-blocked by default, models/evaluation.py), beside two baselines. The chosen network is exported as plain arrays
(models/bpann.py); serving never needs scikit-learn."""

from __future__ import annotations

import hashlib
import platform
import time
import warnings
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.bpann import FEATURES, Bpann

SIZES = (3, 5, 7, 9, 11)
ALPHA = 0.1          # L2 penalty: a few hundred noisy samples overfit an unpenalised network
MAX_ITER = 1000
LATENCY = FEATURES.index("latency_ms")


def fit_bpann(x: np.ndarray, y: np.ndarray, hidden: int, seed: int = 0, inputs=FEATURES,
              alpha: float = ALPHA) -> Bpann:
    """Standardise the inputs and log(1 + label), fit the network by backpropagation (L-BFGS,
    L2 penalty alpha), and return it as the arrays the controller runs, with the inputs' range."""
    x_mean, x_scale = x.mean(axis=0), x.std(axis=0)
    x_scale[x_scale == 0] = 1.0
    ly = np.log1p(y)
    y_mean, y_scale = float(ly.mean()), float(ly.std()) or 1.0
    mlp = MLPRegressor(hidden_layer_sizes=(hidden,), activation="logistic", solver="lbfgs",
                       alpha=alpha, max_iter=MAX_ITER, random_state=seed)
    with warnings.catch_warnings():   # an iteration cap reached is fine: the CV scores judge the fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit((x - x_mean) / x_scale, (ly - y_mean) / y_scale)
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    return Bpann(x.min(axis=0), x.max(axis=0), x_mean, x_scale, w1, b1, w2, b2, y_mean, y_scale, meta={},
                 inputs=tuple(inputs))


def fit_linear(x: np.ndarray, y: np.ndarray):
    """The linear-regression baseline, on standardised inputs."""
    return make_pipeline(StandardScaler(), LinearRegression()).fit(x, y)


@dataclass(frozen=True)
class Score:
    name: str
    mae: float
    mae_std: float
    r2: float
    r2_std: float


def _score(name: str, maes: list[float], r2s: list[float]) -> Score:
    return Score(name, float(np.mean(maes)), float(np.std(maes)), float(np.mean(r2s)), float(np.std(r2s)))


def sweep(x: np.ndarray, y: np.ndarray, splits, sizes=SIZES, seed: int = 0, persistence: np.ndarray | None = None,
          progress=None, alpha: float = ALPHA) -> tuple[list[Score], dict[str, np.ndarray]]:
    """Every hidden size, then the persistence baseline ("the label equals its current
    measurement", by default the path's latency feature) and linear regression, on the same
    (train, test) splits (models/evaluation.py makes them): the MAE and R^2 of each over the
    folds, and each sample's prediction by the model of the fold that tested it."""
    persistence = x[:, LATENCY] if persistence is None else persistence
    results = {f"bpann-{h}": ([], []) for h in sizes}
    results.update({"persistence": ([], []), "linear": ([], [])})
    out_of_fold = {name: np.full(len(y), np.nan) for name in results}
    for train, test in splits:
        predictions = {f"bpann-{h}": fit_bpann(x[train], y[train], h, seed, alpha=alpha).predict(x[test])
                       for h in sizes}
        predictions["persistence"] = persistence[test]
        predictions["linear"] = fit_linear(x[train], y[train]).predict(x[test])
        for name, predicted in predictions.items():
            results[name][0].append(mean_absolute_error(y[test], predicted))
            results[name][1].append(r2_score(y[test], predicted))
            out_of_fold[name][test] = predicted
        if progress:
            progress()
    return [_score(name, maes, r2s) for name, (maes, r2s) in results.items()], out_of_fold


def choose(scores: list[Score], tolerance: float = 0.02) -> int:
    """The smallest hidden size whose MAE is within `tolerance` (relative) of the best one:
    a bigger network must earn its keep."""
    nets = [(int(s.name.split("-")[1]), s.mae) for s in scores if s.name.startswith("bpann-")]
    best = min(mae for _, mae in nets)
    return min(h for h, mae in nets if mae <= best * (1 + tolerance))


def metadata(data_bytes: bytes, n: int, hidden: int, scores: list[Score], label: str,
             seed: int, folds: int, cv: str = "time-blocked", alpha: float = ALPHA) -> dict:
    return {"label": label, "cv_method": cv, "alpha": alpha, "hidden_sizes_swept": sorted(int(s.name[6:]) for s in scores if s.name[:6] == "bpann-"),
            "chosen_hidden": hidden, "samples": n, "folds": folds, "seed": seed,
            "data_sha256": hashlib.sha256(data_bytes).hexdigest(),
            "cv": {s.name: {"mae": s.mae, "mae_std": s.mae_std, "r2": s.r2, "r2_std": s.r2_std} for s in scores},
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "scikit-learn": sklearn.__version__},
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
