"""The per-switch assignment file a multi-controller deployment reads (docs/placement.md):
which controller each switch uses, and its backup controllers by weight. Written atomically;
read back through controller.files (regular, small, strict JSON) and validated field by field,
every error naming the file and the field. What the file claims is recomputed, not trusted: the
loads and the mean and worst latency from its own switches, and, given the network, every
latency from the network's shortest paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from controller.files import read_json, write_atomic

from .network import Network
from .problem import Placement, Problem

FORMAT = "sdn-lb-placement/1"
BACKUP_EPSILON_MS = 0.1     # keeps a backup's weight finite when it sits at the switch itself
# How far a claim may be from its recomputation: the file rounds latencies to 6 decimals and
# rates and loads to 3 (a load sums one rounding per switch)
LATENCY_TOLERANCE_MS = 2e-6
MEAN_TOLERANCE_MS = 1e-4
RATE_TOLERANCE = 1e-3
WEIGHT_TOLERANCE = 2e-5     # weights are rounded to 6 decimals, and computed from rounded latencies


class PlacementFileError(ValueError):
    """An assignment file that cannot be used; the message names the file and the field."""


def backups(problem: Problem, controllers: tuple[int, ...], site: int, switch: int,
            limit: int = 2) -> list[dict]:
    """The nearest other controllers within the latency bound, at most `limit`, weighted by
    inverse latency (weights sum to 1): the order and shares to fail over to."""
    others = [(float(problem.latency_ms[switch, c]), i) for i, c in enumerate(controllers)
              if c != site and problem.allowed[switch, c]]
    others = sorted(others)[:limit]
    return [{"controller": i, "weight": round(w, 6), "latency_ms": round(lat, 6)}
            for (lat, i), w in zip(others, backup_weights([lat for lat, _ in others]))]


def backup_weights(latencies_ms: list[float]) -> list[float]:
    """Inverse latency (+ BACKUP_EPSILON_MS), normalised to sum to 1."""
    inverse = [1.0 / (lat + BACKUP_EPSILON_MS) for lat in latencies_ms]
    return [w / sum(inverse) for w in inverse]


def to_document(network: Network, problem: Problem, placement: Placement) -> dict:
    if not placement.feasible:
        raise ValueError(f"{placement.method}: no feasible placement to write")
    controllers = placement.controllers
    index = {site: i for i, site in enumerate(controllers)}
    loads = problem.loads(placement.assign)
    return {
        "format": FORMAT,
        "network": network.name,
        "method": placement.method,
        "k": len(controllers),
        "capacity_flows_s": problem.capacity_flows_s,
        "max_latency_ms": round(float(problem.max_latency_ms), 6),
        "mean_latency_ms": round(placement.objective_ms, 6),
        "worst_latency_ms": round(problem.worst_latency(placement.assign), 6),
        "controllers": [{"switch": network.switches[site], "load_flows_s": round(float(loads[site]), 3)}
                        for site in controllers],
        "switches": [{"switch": network.switches[i], "rate_flows_s": round(float(problem.rates[i]), 3),
                      "controller": index[int(site)],
                      "latency_ms": round(float(problem.latency_ms[i, site]), 6),
                      "backups": backups(problem, controllers, int(site), i)}
                     for i, site in enumerate(placement.assign)],
    }


def write_assignment(path: str | Path, document: dict) -> None:
    write_atomic(path, (json.dumps(document, indent=1) + "\n").encode())


def _number(value, where: str, fail, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise fail(where, f"expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def _keys(obj, where: str, fail, required: dict) -> dict:
    if not isinstance(obj, dict):
        raise fail(where, f"expected an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(required))
    if unknown:
        raise fail(f"{where}.{unknown[0]}" if where else unknown[0], "unknown key")
    for key, kind in required.items():
        if key not in obj:
            raise fail(where or "file", f"missing key '{key}'")
        if isinstance(obj[key], bool) or not isinstance(obj[key], kind):
            raise fail(f"{where}.{key}" if where else key, f"wrong type {type(obj[key]).__name__}")
    return obj


_TOP = {"format": str, "network": str, "method": str, "k": int, "capacity_flows_s": (int, float),
        "max_latency_ms": (int, float), "mean_latency_ms": (int, float), "worst_latency_ms": (int, float),
        "controllers": list, "switches": list}
_CONTROLLER = {"switch": str, "load_flows_s": (int, float)}
_SWITCH = {"switch": str, "rate_flows_s": (int, float), "controller": int, "latency_ms": (int, float),
           "backups": list}
_BACKUP = {"controller": int, "weight": (int, float), "latency_ms": (int, float)}


def read_assignment(path: str | Path, network: Network | None = None) -> dict:
    """Read and validate an assignment file; with `network`, its switches must be exactly
    the network's and every latency it states must be the network's. Raises
    PlacementFileError naming the file and the field."""
    def fail(where: str, what: str) -> PlacementFileError:
        return PlacementFileError(f"{path}: {where}: {what}")

    def agree(claim: float, actual: float, where: str, tolerance: float, source: str = "its switches give") -> None:
        if not math.isclose(claim, actual, rel_tol=1e-9, abs_tol=tolerance):
            raise fail(where, f"says {claim}, {source} {actual:.6f}")

    doc = _keys(read_json(path, PlacementFileError), "", fail, _TOP)
    if doc["format"] != FORMAT:
        raise fail("format", f"expected {FORMAT!r}, got {doc['format']!r}")
    k = len(doc["controllers"])
    if doc["k"] != k or k < 1:
        raise fail("k", f"says {doc['k']}, but {k} controllers are listed")
    capacity = _number(doc["capacity_flows_s"], "capacity_flows_s", fail, 1e-9)
    bound = _number(doc["max_latency_ms"], "max_latency_ms", fail)
    sites = []
    for i, c in enumerate(doc["controllers"]):
        _keys(c, f"controllers[{i}]", fail, _CONTROLLER)
        _number(c["load_flows_s"], f"controllers[{i}].load_flows_s", fail)
        if c["switch"] in sites:
            raise fail(f"controllers[{i}].switch", f"{c['switch']} hosts two controllers")
        sites.append(c["switch"])
    loads = np.zeros(k)
    seen: set[str] = set()
    for i, s in enumerate(doc["switches"]):
        where = f"switches[{i}]"
        _keys(s, where, fail, _SWITCH)
        if s["switch"] in seen:
            raise fail(f"{where}.switch", f"{s['switch']} listed twice")
        seen.add(s["switch"])
        if not 0 <= s["controller"] < k:
            raise fail(f"{where}.controller", f"expected a controller index in 0..{k - 1}, got {s['controller']}")
        loads[s["controller"]] += _number(s["rate_flows_s"], f"{where}.rate_flows_s", fail)
        if _number(s["latency_ms"], f"{where}.latency_ms", fail) > bound * (1 + 1e-6) + 1e-9:
            raise fail(f"{where}.latency_ms", f"{s['latency_ms']} exceeds max_latency_ms {bound}")
        used = {s["controller"]}
        total = 0.0
        for j, b in enumerate(s["backups"]):
            bw = f"{where}.backups[{j}]"
            _keys(b, bw, fail, _BACKUP)
            if not 0 <= b["controller"] < k or b["controller"] in used:
                raise fail(f"{bw}.controller", f"expected another controller index in 0..{k - 1}, "
                                               f"got {b['controller']}")
            used.add(b["controller"])
            total += _number(b["weight"], f"{bw}.weight", fail, 1e-9, 1.0)
            if _number(b["latency_ms"], f"{bw}.latency_ms", fail) > bound * (1 + 1e-6) + 1e-9:
                raise fail(f"{bw}.latency_ms", f"{b['latency_ms']} exceeds max_latency_ms {bound}")
            if j and b["latency_ms"] < s["backups"][j - 1]["latency_ms"]:
                raise fail(f"{bw}.latency_ms", f"{b['latency_ms']} is nearer than backups[{j - 1}]: "
                                               "backups are listed nearest first")
        if s["backups"] and abs(total - 1.0) > 1e-3:
            raise fail(f"{where}.backups", f"weights sum to {total:.6f}, not 1")
        expected = backup_weights([b["latency_ms"] for b in s["backups"]])
        for j, (b, w) in enumerate(zip(s["backups"], expected)):
            if abs(b["weight"] - w) > WEIGHT_TOLERANCE:
                raise fail(f"{where}.backups[{j}].weight", f"says {b['weight']}, inverse latency gives {w:.6f}")
    switches = doc["switches"]
    for j, c in enumerate(doc["controllers"]):
        if c["switch"] not in seen:
            raise fail(f"controllers[{j}].switch", f"{c['switch']} is not one of the switches")
        if loads[j] > capacity * (1 + 1e-6) + 1e-6:
            raise fail(f"controllers[{j}]", f"serves {loads[j]:.1f} flows/s, over capacity_flows_s {capacity}")
        served = sum(s["controller"] == j for s in switches)
        agree(c["load_flows_s"], loads[j], f"controllers[{j}].load_flows_s", RATE_TOLERANCE * (served + 1))
    rates = np.array([s["rate_flows_s"] for s in switches], dtype=float)
    latency = np.array([s["latency_ms"] for s in switches], dtype=float)
    if switches:
        if rates.sum() > 0:
            agree(doc["mean_latency_ms"], float(rates @ latency / rates.sum()), "mean_latency_ms", MEAN_TOLERANCE_MS)
        agree(doc["worst_latency_ms"], float(latency.max()), "worst_latency_ms", LATENCY_TOLERANCE_MS)
    if network is not None:
        if doc["network"] != network.name:
            raise fail("network", f"is {doc['network']!r}, expected {network.name!r}")
        missing = sorted(set(network.switches) - seen)
        extra = sorted(seen - set(network.switches))
        if missing or extra:
            raise fail("switches", f"missing {missing[:3]} / unknown {extra[:3]} for {network.name}")
        _agree_with_network(doc, network, agree)
    return doc


def _agree_with_network(doc: dict, network: Network, agree) -> None:
    """Every latency the file states, recomputed from the network's shortest paths."""
    index = {name: i for i, name in enumerate(network.switches)}
    sites = [index[c["switch"]] for c in doc["controllers"]]
    for i, s in enumerate(doc["switches"]):
        here = index[s["switch"]]
        agree(s["latency_ms"], float(network.latency_ms[here, sites[s["controller"]]]),
              f"switches[{i}].latency_ms", LATENCY_TOLERANCE_MS, f"{network.name} gives")
        for j, b in enumerate(s["backups"]):
            agree(b["latency_ms"], float(network.latency_ms[here, sites[b["controller"]]]),
                  f"switches[{i}].backups[{j}].latency_ms", LATENCY_TOLERANCE_MS, f"{network.name} gives")
