"""The all-pairs workload on real Open vSwitch and Mininet: web-search-sized TCP flows between
every pair of four H1-H7 hosts, each timed by its sender from connect() to the receiver's
acknowledgement; every one completes, no faster than its size over the widest path allows, but
for the shaper's burst (workload.HTB_BURST_BYTES). The all-pairs experiment plays the same
flows for each policy and reports them paired."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from tests.integration.conftest import H1H7, require_lab, running_lab
from topologies.lab import ROOT, wait_until
from topologies.workload import HTB_BURST_BYTES, WEB_SEARCH, FlowPlayer, all_pairs, by_bucket, slowdowns

HOSTS = ["h1", "h3", "h5", "h7"]
BOUND_S = 30


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(tmp_path_factory, "allpairs", policy="least-loaded")


def test_all_pairs_flows_complete_no_faster_than_the_widest_path_and_its_burst_allow(lab, tmp_path):
    flows = all_pairs(HOSTS, seed=1, cdf=WEB_SEARCH, mean_gap_s=0.3, max_bytes=2_000_000, bound_s=BOUND_S)
    player = FlowPlayer(lab.net, flows, tmp_path / "flows").start()
    try:
        wait_until(player.done, flows[-1].start_s + BOUND_S + 5, what="every all-pairs flow to end")
    finally:
        player.stop()
    rows = slowdowns(lab.spec, player.outcomes())
    assert len(rows) == len(flows) == 12
    assert all(r["complete"] for r in rows), [r for r in rows if not r["complete"]]
    bad = [(r["src"], r["dst"], r["size_bytes"], r["seconds"], r["slowdown"]) for r in rows
           if not (math.isfinite(r["slowdown"]) and r["slowdown"] >= 1 - HTB_BURST_BYTES / r["size_bytes"])]
    assert bad == []
    report = by_bucket(rows)
    assert report["small"]["flows"] + report["medium"]["flows"] + report["large"]["flows"] == 12
    print(report)


def test_the_all_pairs_experiment_plays_each_policy_the_same_flows_and_pairs_them(tmp_path):
    require_lab()
    out = tmp_path / "allpairs"
    done = subprocess.run([sys.executable, "-m", "scripts.allpairs", "--topology", str(H1H7), "--hosts",
                           ",".join(HOSTS), "--policies", "least-loaded,widest", "--seeds", "1", "--rounds", "1",
                           "--gap", "0.2", "--max-bytes", "300000", "--bound", "20", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "flows.csv")))
    played = {p: sorted((r["src"], r["dst"], r["size_bytes"]) for r in rows if r["policy"] == p)
              for p in ("least-loaded", "widest")}
    assert len(played["widest"]) == 12 and played["widest"] == played["least-loaded"]
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["widest"]["flows"].values()) == 12
    assert summary["least-loaded"]["small_mean_vs_reference"]["mean"] == 0.0
    assert "| widest |" in (out / "summary.md").read_text() and "Traceback" not in done.stderr
