"""The BPANN model file and its forward pass: the only part of the model the controller runs.

A model is two files side by side: `<name>.npz` with the arrays and `<name>.json` with what
they mean (feature order, activation, versions, data hash, metrics) and the SHA-256 of the
.npz beside it, so that a pair of two models (an install cut between its two renames) is
refused rather than served. No pickle anywhere: both are plain data, checked on load, and a
file that does not fit raises ModelError naming the file and what is wrong.

    x = clip(x, x_min, x_max)                  x: the path's inputs, in the order meta names
    z = (x - x_mean) / x_scale
    h = logistic(z @ w1 + b1)                  one hidden layer
    y = expm1((h @ w2 + b2) * y_scale + y_mean)   the predicted path load (label units)

The network learns log(1 + label): delays are heavy-tailed (a few queues of hundreds of ms
would otherwise dominate the fit), and what the policy needs is the order of the paths.
Inputs are clipped to the range the network was trained on: outside it a logistic layer
extrapolates arbitrarily (the H1-H7 model, trained on 2-4 hops, scored an idle 1-hop path
worse than an idle 2-hop one); at the edge of what it has seen, it ties instead.

A model's inputs are one of INPUTS: the paper's four features, or those and the path's
capacity: its thinnest inter-switch link and the headroom left on it, as log(1 + Mbit/s), so
that 5 and 50 Mbit/s links differ as much as 50 and 500 (what a new flow's share scales with).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller import files

FEATURES = ("utilisation", "loss", "latency_ms", "hops")     # the paper's
CAPACITY = (*FEATURES, "log_capacity", "log_headroom")
INPUTS = {"paper": FEATURES, "capacity": CAPACITY}
FORMAT = "sdn-lb-bpann/2"   # label learned as log1p, inputs clipped to x_min..x_max, see above
MAX_NPZ_BYTES = 16 << 20    # the shipped model is 3 KB
ARRAYS = ("x_min", "x_max", "x_mean", "x_scale", "w1", "b1", "w2", "b2", "y_mean", "y_scale")


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Bpann:
    x_min: np.ndarray       # the training range of each feature
    x_max: np.ndarray
    x_mean: np.ndarray
    x_scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    y_mean: float
    y_scale: float
    meta: dict
    inputs: tuple[str, ...] = FEATURES     # one of INPUTS

    @property
    def hidden(self) -> int:
        return self.w1.shape[1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted load for each row of x (n x inputs, in their order)."""
        z = (np.clip(np.asarray(x, dtype=float), self.x_min, self.x_max) - self.x_mean) / self.x_scale
        h = 1.0 / (1.0 + np.exp(-(z @ self.w1 + self.b1)))
        return np.expm1((h @ self.w2 + self.b2)[:, 0] * self.y_scale + self.y_mean)


def input_row(inputs: tuple[str, ...], utilisation: float, loss: float, latency_ms: float, hops: float,
              capacity_mbps: float = math.inf, headroom_mbps: float = math.inf) -> list[float]:
    """A path's inputs in the order `inputs` names them. A path without an inter-switch link has
    infinite capacity: the model's clip takes it to the widest it was trained on."""
    row = [utilisation, loss, latency_ms, hops]
    return row if inputs == FEATURES else [*row, math.log1p(capacity_mbps), math.log1p(headroom_mbps)]


def save(model: Bpann, path: str | Path) -> tuple[Path, Path]:
    """Write <path>.npz and <path>.json (path given with or without a suffix)."""
    base = Path(path).with_suffix("")
    npz, meta = base.with_suffix(".npz"), base.with_suffix(".json")
    np.savez(npz, **{name: np.asarray(getattr(model, name), dtype=float) for name in ARRAYS})
    meta.write_text(json.dumps({**model.meta, "format": FORMAT, "features": list(model.inputs),
                                "activation": "logistic", "hidden": model.hidden,
                                "npz_sha256": hashlib.sha256(npz.read_bytes()).hexdigest()}, indent=1) + "\n")
    return npz, meta


def load(path: str | Path) -> Bpann:
    """Read and check a model; raise ModelError naming the file and what does not fit."""
    base = Path(path).with_suffix("")
    npz, meta_path = base.with_suffix(".npz"), base.with_suffix(".json")
    meta = files.read_json(meta_path, ModelError)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: format is not '{FORMAT}'")
    if meta.get("features") not in [list(names) for names in INPUTS.values()]:
        raise ModelError(f"{meta_path}: features {meta.get('features')} are not one of "
                         f"{' or '.join(str(list(names)) for names in INPUTS.values())}")
    if meta.get("activation") != "logistic":
        raise ModelError(f"{meta_path}: activation '{meta.get('activation')}' is not 'logistic'")
    data = files.read_bytes(npz, MAX_NPZ_BYTES, ModelError)
    arrays = _read_arrays(npz, data)
    n, h = len(meta["features"]), arrays["w1"].shape[-1] if arrays["w1"].ndim == 2 else -1
    expected = {"x_min": (n,), "x_max": (n,), "x_mean": (n,), "x_scale": (n,), "w1": (n, h), "b1": (h,),
                "w2": (h, 1), "b2": (1,), "y_mean": (), "y_scale": ()}
    for name, shape in expected.items():
        if arrays[name].shape != shape or h < 1:
            raise ModelError(f"{npz}: array {name} has shape {arrays[name].shape}, expected {shape}")
        if not np.all(np.isfinite(arrays[name])):
            raise ModelError(f"{npz}: array {name} has NaN or infinite values")
    if np.any(arrays["x_scale"] <= 0) or arrays["y_scale"] <= 0:
        raise ModelError(f"{npz}: scales must be positive")
    if np.any(arrays["x_min"] > arrays["x_max"]):
        raise ModelError(f"{npz}: x_min is above x_max")
    if meta.get("hidden") != h:
        raise ModelError(f"{meta_path}: hidden {meta.get('hidden')} does not match the weights ({h})")
    if "npz_sha256" in meta and hashlib.sha256(data).hexdigest() != meta["npz_sha256"]:   # older models lack it
        raise ModelError(f"{npz}: its SHA-256 is not the npz_sha256 of {meta_path.name}: the two files are "
                         f"of different models")
    scalars = {"y_mean": float(arrays.pop("y_mean")), "y_scale": float(arrays.pop("y_scale"))}
    model = Bpann(**arrays, **scalars, meta=meta, inputs=tuple(meta["features"]))
    _probe(model, npz)
    return model


def _read_arrays(npz: Path, data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a .npz's bytes (read as a regular file of bounded size) that, uncompressed,
    are no larger than the cap either (a small zip can inflate to gigabytes); never a pickle."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            size = sum(info.file_size for info in archive.infolist())
        if size > MAX_NPZ_BYTES:
            raise ModelError(f"{npz}: arrays of {size} bytes, over the {MAX_NPZ_BYTES} allowed")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = [name for name in ARRAYS if name not in archive.files]
            if missing:
                raise ModelError(f"{npz}: missing array(s) {', '.join(missing)}")
            return {name: np.array(archive[name], dtype=float) for name in ARRAYS}
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and numpy raise a dozen types on bad bytes
        raise ModelError(f"{npz}: not a readable .npz ({type(exc).__name__}: {exc})") from None


def _probe(model: Bpann, npz: Path) -> None:
    """Finite weights can still overflow (every score of weights near 1e308 is inf): the
    model must score every point of a grid over its input range (5 values per input, 4 for
    the capacity model's six: 4,096 points, corners included) finitely, or it is refused."""
    axes = [np.linspace(lo, hi, 5 if len(model.x_min) <= 4 else 4) for lo, hi in zip(model.x_min, model.x_max, strict=True)]
    grid = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, len(axes))
    with np.errstate(all="ignore"):      # the overflow is reported below, as one line
        finite = np.isfinite(model.predict(grid))
    if not finite.all():
        at = ", ".join(f"{name}={x:g}" for name, x in zip(model.inputs, grid[finite.argmin()], strict=True))
        raise ModelError(f"{npz}: scores are not finite on the input range (at {at})")
