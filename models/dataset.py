"""Training samples: a candidate path's four features at time t, and what using that path
measured right after.

    time_s, src, dst, path, utilisation, loss, latency_ms, hops, next_delay_ms, next_loss

The features are the controller's (GET /api/v1/paths) just before a probe train is sent; the
probe flow is placed on one candidate, and `next_delay_ms` is the median one-way delay its
packets then measured from host to host (the hosts share the machine's clock), `next_loss`
the fraction of them lost. The label is a measurement, never computed from the features.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.bpann import FEATURES

LABEL = "next_delay_ms"
COLUMNS = ("time_s", "src", "dst", "path", *FEATURES, LABEL, "next_loss")
RANGES = {"utilisation": (0, 1), "loss": (0, 1), "latency_ms": (0, math.inf), "hops": (0, 1000),
          LABEL: (0, math.inf), "next_loss": (0, 1), "time_s": (0, math.inf)}
log = logging.getLogger("lb.dataset")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file, the row and the column."""


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray          # n x 4, FEATURES order
    y: np.ndarray          # n, LABEL
    paths: list[str]

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
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    x, y, paths = [], [], []
    for line_no, row in enumerate(reader, start=2):
        values = {}
        for column, (low, high) in RANGES.items():
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise DatasetError(f"{path}: row {line_no}, column {column}: "
                                   f"not a number: {row[column]!r}") from None
            if not math.isfinite(value) or not low <= value <= high:
                raise DatasetError(f"{path}: row {line_no}, column {column}: {value} is not "
                                   f"a finite value in [{low}, {high}]")
            values[column] = value
        x.append([values[f] for f in FEATURES])
        y.append(values[LABEL])
        paths.append(row["path"])
    if not y:
        raise DatasetError(f"{path}: no samples")
    return Dataset(np.array(x), np.array(y), paths)
