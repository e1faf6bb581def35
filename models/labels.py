"""What a path scorer learns to predict: a measured outcome of the new flow itself on the path
the controller gave it, computed from the collector's raw records.

- A probe train (the paper's label): its packets' one-way delays -> the upper median delay
  (the 11th of 20, as the shipped data's labels were taken) and the fraction lost. It sees
  queues, not capacity: an idle thin path looks as good as an idle fat one.
- A transfer of known size (the label a load balancer is judged by): its completion time,
  from connect() to the receiver's acknowledgement of the last byte, so capacity and load
  both count. A transfer cut at its time bound is kept at that bound and flagged censored:
  dropping it would hide exactly the worst paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeLabel:
    delay_ms: float
    loss: float


@dataclass(frozen=True)
class TransferLabel:
    fct_s: float
    goodput_mbps: float
    censored: bool           # cut at its bound: fct_s is a lower bound


def probe_label(delays_ms: list[float], sent: int) -> ProbeLabel | None:
    """The label of a probe train from the delays of the probes that arrived; None when none
    did (no delay to learn from) or the record is not a measurement."""
    values = sorted(d for d in delays_ms if math.isfinite(d) and d >= 0)
    if not values or sent < len(delays_ms) or len(values) != len(delays_ms):
        return None
    return ProbeLabel(values[len(values) // 2], (sent - len(values)) / sent)


def transfer_label(size_bytes: int, seconds: float, complete: bool, bound_s: float) -> TransferLabel | None:
    """The label of one transfer of size_bytes that ran `seconds` (complete or not) under a
    bound of bound_s; None for a record that cannot be a measurement."""
    if size_bytes <= 0 or not (math.isfinite(seconds) and 0 < seconds) or not 0 < bound_s < math.inf:
        return None
    fct = seconds if complete else max(seconds, bound_s)
    return TransferLabel(fct, size_bytes * 8 / fct / 1e6, not complete)
