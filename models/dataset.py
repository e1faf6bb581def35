"""Training samples: a candidate path's features at time t, and what the new flow placed on that
path measured right after (models/labels.py). Two kinds of file, told apart by their header:

    time_s, src, dst, path, utilisation, loss, latency_ms, hops, next_delay_ms, next_loss
    time_s, network, src, dst, path, utilisation, loss, latency_ms, hops, bottleneck_mbps,
        headroom_mbps, transfer_bytes, fct_s, censored

The first is the paper's: a probe train's median one-way delay and loss (`next_delay_ms`,
`next_loss`); its inputs are the paper's four. The second labels a transfer of known size by
its completion time `fct_s` (`censored` 1: cut at its bound, so a lower bound) and adds the
path's bottleneck capacity and headroom, so that capacity can be learnt: its inputs are
models.bpann's CAPACITY. The features are the controller's
(GET /api/v1/paths) just before the flow starts; the label is a measurement, never computed
from the features. A file without a `network` column is the network its name says (h1h7.csv: h1h7).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.bpann import CAPACITY, FEATURES, input_row

LABEL = "next_delay_ms"
COLUMNS = ("time_s", "src", "dst", "path", *FEATURES, LABEL, "next_loss")
TRANSFER_LABEL = "fct_s"
TRANSFER_COLUMNS = ("time_s", "network", "src", "dst", "path", *FEATURES, "bottleneck_mbps", "headroom_mbps",
                    "transfer_bytes", TRANSFER_LABEL, "censored")
_COMMON = {"utilisation": (0, 1), "loss": (0, 1), "latency_ms": (0, math.inf), "hops": (0, 1000),
           "time_s": (0, math.inf)}
RANGES = {**_COMMON, LABEL: (0, math.inf), "next_loss": (0, 1)}
TRANSFER_RANGES = {**_COMMON, "bottleneck_mbps": (0, 100_000), "headroom_mbps": (0, 100_000),
                   "transfer_bytes": (1, 1 << 40), TRANSFER_LABEL: (0, math.inf), "censored": (0, 1)}
log = logging.getLogger("lb.dataset")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file, the row and the column."""


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray          # n x len(inputs)
    y: np.ndarray          # n, the label
    paths: list[str]
    times: np.ndarray      # n, seconds since the epoch: what time-blocked folds split by
    networks: list[str]    # n, the network each sample was measured on
    persistence: np.ndarray  # n, the baseline "the label equals its current measurement"
    label: str = LABEL
    inputs: tuple[str, ...] = FEATURES

    def __len__(self) -> int:
        return len(self.y)


def load_dataset(path: str | Path) -> Dataset:
    """Read and check a samples file. A last line without its newline (a collector killed
    mid-write) is skipped with a warning; any other bad row is an error naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        log.warning("%s: last line %d is incomplete (interrupted write): skipped", path, len(lines))
        lines = lines[:-1]
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    transfer = TRANSFER_LABEL in header
    columns, ranges, label = ((TRANSFER_COLUMNS, TRANSFER_RANGES, TRANSFER_LABEL) if transfer
                              else (COLUMNS, RANGES, LABEL))
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(columns)})")
    rows = []
    for line_no, row in enumerate(reader, start=2):
        values = {}
        for column, (low, high) in ranges.items():
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise DatasetError(f"{path}: row {line_no}, column {column}: "
                                   f"not a number: {row[column]!r}") from None
            if not math.isfinite(value) or not low <= value <= high:
                raise DatasetError(f"{path}: row {line_no}, column {column}: {value} is not "
                                   f"a finite value in [{low}, {high}]")
            values[column] = value
        rows.append((values, row["path"], row.get("network") or path.stem))
    if not rows:
        raise DatasetError(f"{path}: no samples")
    inputs = CAPACITY if transfer else FEATURES
    x = np.array([input_row(inputs, *(v[f] for f in FEATURES), v.get("bottleneck_mbps", math.inf),
                            v.get("headroom_mbps", math.inf)) for v, _, _ in rows])
    y = np.array([v[label] for v, _, _ in rows])
    times = np.array([v["time_s"] for v, _, _ in rows])
    paths, networks = [p for _, p, _ in rows], [n for _, _, n in rows]
    persistence = (_last_on_path(times, networks, paths, y, [v for v, _, _ in rows]) if transfer
                   else x[:, FEATURES.index("latency_ms")])
    return Dataset(x, y, paths, times, networks, persistence, label, inputs)


def _last_on_path(times, networks, paths, fct, values) -> np.ndarray:
    """The transfer label's persistence baseline: the completion time of the last transfer on
    the same path before this one; a path's first, the transfer's idle time (size over the
    bottleneck capacity), all the baseline can know of it."""
    last: dict[tuple[str, str], float] = {}
    out = np.empty(len(fct))
    for i in np.argsort(times, kind="stable"):
        key = (networks[i], paths[i])
        out[i] = last.get(key, values[i]["transfer_bytes"] * 8 / values[i]["bottleneck_mbps"] / 1e6)
        last[key] = fct[i]
    return out


def concat(sets: list[Dataset]) -> Dataset:
    """Samples of several files, as one; they must share a label."""
    labels = {s.label for s in sets}
    if len(labels) != 1:
        raise DatasetError(f"files with different labels ({', '.join(sorted(labels))}) cannot be trained on together")
    return Dataset(np.vstack([s.x for s in sets]), np.concatenate([s.y for s in sets]),
                   [p for s in sets for p in s.paths], np.concatenate([s.times for s in sets]),
                   [n for s in sets for n in s.networks], np.concatenate([s.persistence for s in sets]),
                   labels.pop(), sets[0].inputs)
