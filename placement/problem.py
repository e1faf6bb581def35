"""The placement problem (docs/placement.md): open k controllers at switches and assign every
switch to one of them, minimising the mean switch-to-controller latency a flow setup sees
(weighted by each switch's flow arrivals), such that every controller's load (the flow setups
per second of the switches it serves) stays within its capacity and no switch is farther than
`max_latency_ms` from its controller."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TOLERANCE = 1e-6    # relative slack on capacity and latency bound, for floating point


@dataclass(frozen=True, eq=False)
class Problem:
    latency_ms: np.ndarray          # (n, n) shortest-path latency between switches
    rates: np.ndarray               # (n,) flow setups per second arriving at each switch
    k: int                          # controllers to place
    capacity_flows_s: float         # what one controller sustains
    max_latency_ms: float = np.inf  # worst case allowed between a switch and its controller

    @property
    def n(self) -> int:
        return len(self.rates)

    @property
    def weights(self) -> np.ndarray:
        """Each switch's share of the flow setups: the objective's weights."""
        return self.rates / self.rates.sum()

    @property
    def allowed(self) -> np.ndarray:
        """(n, n) bool: switch i may be served from site j (within the latency bound)."""
        return self.latency_ms <= self.max_latency_ms * (1 + TOLERANCE)

    def objective(self, assign: np.ndarray) -> float:
        """Mean latency over flow setups (ms) when switch i is served from site assign[i]."""
        return float(self.weights @ self.latency_ms[np.arange(self.n), assign])

    def worst_latency(self, assign: np.ndarray) -> float:
        return float(self.latency_ms[np.arange(self.n), assign].max())

    def loads(self, assign: np.ndarray) -> np.ndarray:
        """(n,) flow setups per second each site serves (0 where no controller is)."""
        return np.bincount(assign, weights=self.rates, minlength=self.n)

    def violations(self, controllers: tuple[int, ...], assign: np.ndarray) -> list[str]:
        """What makes an assignment infeasible (empty: feasible)."""
        out = []
        if len(set(controllers)) != self.k:
            out.append(f"{len(set(controllers))} controllers, not {self.k}")
        if assign.shape != (self.n,):
            return out + [f"assignment of {assign.shape}, not ({self.n},)"]
        stray = sorted(set(assign.tolist()) - set(controllers))
        if stray:
            out.append(f"switches served from {stray}, where no controller is")
        loads = self.loads(assign)
        for site in controllers:
            if loads[site] > self.capacity_flows_s * (1 + TOLERANCE):
                out.append(f"controller at {site} carries {loads[site]:.0f} flows/s > {self.capacity_flows_s:.0f}")
        far = np.flatnonzero(~self.allowed[np.arange(self.n), assign])
        if far.size:
            out.append(f"switches {far.tolist()} beyond {self.max_latency_ms:.3f} ms of their controller")
        return out


# What a method's answer proves. Only the exact program proves anything: "optimal" and
# "infeasible" (no placement meets capacity and bound) are HiGHS's proofs; "time-out" is its
# time limit, with the best placement found so far or none, which proves nothing either way.
# A heuristic's answer is "feasible" or "none found" (which is not a proof that none exists).
STATUSES = ("optimal", "feasible", "time-out", "infeasible", "none found")


@dataclass(frozen=True, eq=False)
class Placement:
    """A method's answer: controller sites and each switch's site; `assign` is None when the
    method found no feasible placement, and `status` says whether that is proven (STATUSES)."""
    method: str
    controllers: tuple[int, ...]
    assign: np.ndarray | None
    objective_ms: float
    runtime_s: float
    proven_optimal: bool = False
    notes: dict = field(default_factory=dict)
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            status = "optimal" if self.proven_optimal else "feasible" if self.feasible else "none found"
            object.__setattr__(self, "status", status)
        if self.status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {self.status!r}")

    @property
    def feasible(self) -> bool:
        return self.assign is not None


def infeasible(method: str, runtime_s: float, controllers: tuple[int, ...] = (), status: str = "none found",
               **notes) -> Placement:
    return Placement(method, controllers, None, float("inf"), runtime_s, notes=notes, status=status)
