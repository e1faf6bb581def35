"""Smoke run of the experiment harness, as a user runs it: one seed, two policies, short
runs on H1-H7. Every output file exists and parses, both policies saw the same traffic, every
measured flow's decision is recorded as the controller took it, and the controller logs of a
clean run hold no warning, from start-up to teardown."""

import csv
import json
import subprocess
import sys

import matplotlib.image

from controller.policies import make_policy
from scripts.explain import compare, read
from scripts.report import METRICS, RUN_COLUMNS
from tests.integration.conftest import H1H7, require_lab
from topologies.lab import ROOT
from topologies.traffic import schedule


def test_smoke_run_writes_every_output_and_replays_one_schedule(tmp_path):
    require_lab()
    out = tmp_path / "exp"
    done = subprocess.run([sys.executable, "-m", "scripts.experiment", "--topology", str(H1H7),
                           "--policies", "shortest,least-loaded", "--seeds", "1", "--duration", "20",
                           "--warmup", "4", "--round", "4", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert tuple(rows[0]) == RUN_COLUMNS
    for policy in ("shortest", "least-loaded"):
        mine = [r for r in rows if r["policy"] == policy]
        assert {r["kind"] for r in mine} >= {"rtt", "transfer"}
        assert len({r["round"] for r in mine if r["kind"] == "transfer"}) == 4   # rounds at 4, 8, 12, 16 s
        assert all(r["path"].startswith("s1>") and r["path"].endswith(">s7")
                   for r in mine if r["kind"] in ("rtt", "transfer"))

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"shortest", "least-loaded"}
    for policy, m in summary.items():
        assert all(m[k] is not None and m[k] >= 0 for k in METRICS), (policy, m)
        assert m["rtt_p50_ms"] <= m["rtt_p95_ms"] <= m["rtt_p99_ms"]
    md = (out / "summary.md").read_text()
    assert len([line for line in md.splitlines() if line.startswith("|")]) == 4 and "| least-loaded | 1 |" in md
    assert "rest on 1 seed" in md
    for plot in ("rtt_cdf.png", "throughput.png", "utilisation.png", "rtt_over_time.png"):
        assert matplotlib.image.imread(out / plot).shape[0] > 100

    played = [json.loads((out / "runs" / f"{p}-seed1" / "schedule.json").read_text())
              for p in ("shortest", "least-loaded")]
    expected = [t.__dict__ for t in schedule(1, ["h2", "h3", "h4", "h5", "h6", "h7"], 20)]
    assert played[0] == played[1] == expected

    for policy, measured in (("shortest", False), ("least-loaded", True)):
        placed = [json.loads(line) for line in open(out / "runs" / f"{policy}-seed1" / "decisions.jsonl")]
        assert [(p["round"], p["kind"]) for p in placed] == [(r, k) for r in range(4) for k in ("rtt", "transfer")]
        paths = {(int(r["round"]), r["kind"]): r["path"] for r in rows if r["policy"] == policy and r["kind"] != "background"}
        for p in placed:
            proto, sport, dport = ("udp", 40000, 7001) if p["kind"] == "rtt" else ("tcp", 45000, 7002)
            assert p["flow"] == f"{proto} 10.0.0.1:{sport + p['round']} > 10.0.0.7:{dport}"
            assert p["reply"]["flow"] == f"{proto} 10.0.0.7:{dport} > 10.0.0.1:{sport + p['round']}"
            assert (p["src"], p["dst"], p["reply"]["src"], p["reply"]["dst"]) == ("h1", "h7", "h7", "h1")
            for d in (p, p["reply"]):
                assert d["policy"] == policy and d["measured"] is measured
                chosen = [c for c in d["candidates"] if c["chosen"]]
                assert len(chosen) == 1 and len(d["candidates"]) >= 2
                assert all(("utilisation" in c) is measured and c["score"] is not None for c in d["candidates"])
            assert ">".join(next(c["path"] for c in p["candidates"] if c["chosen"])) == paths[p["round"], p["kind"]]
            assert next(c["path"] for c in p["reply"]["candidates"] if c["chosen"])[-1] == "s1"
    # the record is faithful: least-loaded's rule, given the recorded features, chooses as the controller did
    again = compare(read(out), make_policy("least-loaded"))["least-loaded"]
    assert {kind: (len(g["agreed"]), g["differed"], g["unranked"]) for kind, g in again.items()} == \
        {"rtt": (4, [], 0), "transfer": (4, [], 0)}
    assert "Traceback" not in done.stderr
    for policy in ("shortest", "least-loaded"):
        log = (out / "runs" / f"{policy}-seed1" / "controller.log").read_text()
        noise = [line for line in log.splitlines()
                 if " WARNING " in line or " ERROR " in line or "not greened" in line]
        assert noise == [], f"{policy}: a clean run's log has:\n" + "\n".join(noise[:10])
        assert "topology complete" in log
