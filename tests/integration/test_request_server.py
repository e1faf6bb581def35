"""The LLM-like workload on real Mininet hosts: the request server's token timing across the
network, and the service experiment end to end through the virtual IP (a trimmed --quick:
two policies, one seed, one load, and a member killed halfway)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import matplotlib.image
import pytest

from scripts.service_report import REQUEST_COLUMNS
from tests.integration.conftest import require_lab, running_lab
from topologies.inference import PREFILL_FACTOR, TICK_S, Request, write_schedule
from topologies.lab import ROOT, wait_until

POOL = ROOT / "topologies" / "pool.json"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(tmp_path_factory, "inference")


def test_the_request_servers_token_timing_across_the_network(lab, tmp_path):
    """A server at 200 tokens a second on h7 streams 100-token answers to h1 across s1-s2-s7:
    each arrives 100/200 s after its first token, and the first comes after the prefill. The
    slack over the in-process test's is for the network (two userspace switches, a 10 Mbit/s
    link: under 5 ms for these few kB) and a flow's first packets visiting the controller."""
    server = lab.net.get("h7").popen(
        [sys.executable, "-m", "topologies.inference", "serve", "--name", "h7", "--speed", "200", "--slots", "1",
         "--log", str(tmp_path / "h7.jsonl"), "--lifetime", "30"], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: ":8000 " in lab.net.get("h7").cmd("ss -ltn"), 10, what="the request server")
        write_schedule(tmp_path / "s.json", [Request(i, 0.2 + i, "h1", 400, 100) for i in range(5)])
        t0 = time.time()
        done = lab.net.get("h1").popen(
            ["timeout", "30", sys.executable, "-m", "topologies.inference", "client", "--schedule",
             str(tmp_path / "s.json"), "--client", "h1", "--target", lab.spec.host("h7").ip, "--t0", repr(t0),
             "--until", repr(t0 + 15), "--out", str(tmp_path / "h1.jsonl")], cwd=ROOT, stderr=subprocess.PIPE)
        assert done.wait(timeout=40) == 0, done.stderr.read()
    finally:
        server.terminate()
        server.wait(timeout=5)
    results = [json.loads(line) for line in (tmp_path / "h1.jsonl").read_text().splitlines()]
    assert [(r["ok"], r["member"], r["tokens"]) for r in results] == [(True, "h7", 100)] * 5
    prefill, late = 400 / PREFILL_FACTOR / 200 + 1 / 200, TICK_S + 0.1
    for r in results:
        assert prefill <= r["ttft"] <= prefill + late, r
        assert 99 / 200 - 0.01 <= r["end"] - r["start"] - r["ttft"] <= 99 / 200 + late, r


def test_the_quick_service_experiment_runs_end_to_end_through_the_vip(tmp_path):
    require_lab()
    out = tmp_path / "svc"
    done = subprocess.run([sys.executable, "-m", "scripts.services", "--quick", "--policies",
                           "round-robin,least-connections", "--duration", "8", "--drain", "6", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "requests.csv")))
    assert tuple(rows[0]) == REQUEST_COLUMNS
    for policy in ("round-robin", "least-connections"):
        mine = [r for r in rows if r["policy"] == policy]
        assert len(mine) > 50 and sum(r["ok"] == "True" for r in mine) >= 0.9 * len(mine), policy
        assert {r["member"] for r in mine if r["ok"] == "True"} == {"m1", "m2", "m3", "m4", "m5"}, policy
        log = (out / "runs" / f"{policy}-load0.8-seed1" / "controller.log").read_text()
        assert "Traceback" not in log and " ERROR " not in log, policy
    played = [(out / "runs" / f"{p}-load0.8-seed1" / "schedule.json").read_text()
              for p in ("round-robin", "least-connections")]
    assert played[0] == played[1]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["loads"]["0.8"]) == {"round-robin", "least-connections"}
    for policy, m in summary["loads"]["0.8"].items():      # every scheduled request, as the clients logged it
        run = out / "runs" / f"{policy}-load0.8-seed1"
        logged = sum(len(c.read_text().splitlines()) for c in run.glob("c*.jsonl"))
        assert m["per_seed"]["1"]["requests"] == logged == len(json.loads((run / "schedule.json").read_text()))
    kills = summary["killed"]
    assert [k["policy"] for k in kills] == ["least-connections", "round-robin"]
    for k in kills:      # the health check takes the member out within 2 s of its last answer
        assert k["member"] == "m3" and 3 <= k["killed_at"] <= 5 and k["last_answer"] is not None
        assert k["syns"] > 0 and k["seen_until"] > k["killed_at"] + 1, k    # its capture saw clients, and lived on
        assert k["last_sent_after_s"] is None or k["last_sent_after_s"] <= 2, k
    for plot in ("response_cdf.png", "p95_by_load.png", "slo_by_load.png", "utilisation.png"):
        assert matplotlib.image.imread(out / plot).shape[0] > 100
