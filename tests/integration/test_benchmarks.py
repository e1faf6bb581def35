"""Smoke runs of the benchmarks (figures produced and sane, no timing thresholds): the
decision path in process, and a real controller process against the switch emulator."""

import asyncio
import math

import pytest

from benchmarks.controller import flow_setup, polling_share
from benchmarks.decision import decision_times
from topologies.generate import fat_tree, ring
from controller.core.spec import parse_spec


def sane(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_decision_benchmark_on_the_fat_tree_has_eight_candidates():
    out = decision_times(parse_spec(fat_tree(4)), ("shortest", "bpann"), flows=50, k_paths=8)
    for r in out.values():
        assert r["candidates"] == 8 and sane(r["median_us"]) and r["p99_us"] >= r["median_us"]


@pytest.mark.parametrize("kind", ["sdn-lb", "l2"])
def test_flow_setup_through_the_emulator_completes_flows(kind):
    r = asyncio.run(flow_setup(kind, ring(4, 1), seconds=1, window=16, sequential=10))
    assert r["completed"] > 10 and sane(r["flows_per_s"]) and sane(r["p50_ms"]) and r["p99_ms"] >= r["p50_ms"]
    assert sane(r["cpu_us"])
    assert r["flow_mods"] >= r["completed"]      # every flow got at least one entry


def test_polling_cost_is_measured_while_every_switch_is_polled():
    share = asyncio.run(polling_share(5, seconds=3, probing=True))
    assert sane(share) and share < 1.5
