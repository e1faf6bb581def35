"""The service experiment's metrics on hand-checked inputs (percentiles, the SLO, Jain's index,
one run's figures, the paired comparisons) and its report from a folder of made-up runs."""

from __future__ import annotations

import csv
import json

import matplotlib.image
import pytest

from scripts.service_report import (MEMBER_COLUMNS, REQUEST_COLUMNS, deadline_s, jain, markdown, percentiles,
                                    pick_best, run_metrics, summarise, write_report)
from controller.core.spec import TopologyError, parse_spec
from scripts.services import add_jammer, kill_result, parse_args, service_of
from topologies.inference import CUT
from topologies.lab import ROOT


def test_percentiles_interpolate_linearly_and_skip_missing_values():
    assert percentiles([1, 2, 3, 4, None, 5], (50, 95, 100)) == [3, 4.8, 5]
    assert percentiles([], (50,)) == [None]


def test_jain_is_one_when_equal_and_one_over_n_when_one_member_has_everything():
    assert jain([0.5, 0.5, 0.5, 0.5]) == 1
    assert jain([0.8, 0, 0, 0]) == 0.25
    assert jain([1, 3]) == pytest.approx(16 / 20)
    assert jain([0, 0]) is None


def test_the_deadline_is_a_grace_plus_the_service_time_on_an_idle_1x_member():
    assert deadline_s(2000, 100, base_speed=100, grace_s=0.5) == pytest.approx(0.5 + (2000 / 20 + 100) / 100)


def row(id, start, ttft, end, ok=True, error="", prompt=20, output=100, member="m1"):
    return {"policy": "p", "load": "0.8", "seed": "1", "id": str(id), "client": "c1", "at_s": str(start),
            "start": str(start), "ttft": "" if ttft is None else str(ttft), "end": "" if end is None else str(end),
            "member": member or "", "prompt_tokens": str(prompt), "output_tokens": str(output),
            "tokens": str(output if ok else 0), "ok": str(ok), "error": error}


def test_one_runs_metrics_by_hand():
    # deadlines at base speed 100, grace 0.5: 0.5 + (20/20 + 100)/100 = 1.51 s
    requests = [row(0, 0.0, 0.2, 1.0), row(1, 1.0, 0.5, 3.0), row(2, 2.0, 0.1, 3.5),
                row(3, 3.0, None, None, ok=False, error="ConnectionRefusedError", member=None),
                row(4, 4.0, 0.3, None, ok=False, error=CUT)]
    members = [{"member": "m1", "slots": "2", "busy_s": "4.0"}, {"member": "m2", "slots": "1", "busy_s": "0.5"}]
    m = run_metrics(requests, members, until=6.0, base_speed=100, grace_s=0.5)
    # response times 1.0, 2.0, 1.5 and the cut one's 6 - 4 = 2; TTFTs 0.2, 0.5, 0.1, 0.3
    assert m["rt_mean_s"] == pytest.approx(6.5 / 4) and m["rt_p50_s"] == pytest.approx(1.75)
    assert m["ttft_mean_s"] == pytest.approx(0.275)
    assert m["slo"] == pytest.approx(2 / 5)               # 1.0 and 1.5 met; 2.0, refused and cut missed
    assert (m["failed"], m["cut"], m["requests"]) == (1, 1, 5)
    assert m["tokens_per_s"] == pytest.approx(300 / 3.5) and m["requests_per_s"] == pytest.approx(3 / 3.5)
    assert m["utilisation"] == pytest.approx({"m1": 4 / 7, "m2": 0.5 / 3.5})
    assert m["jain"] == pytest.approx(jain([4 / 7, 1 / 7]))


def test_the_best_classic_policy_is_the_lowest_latency_or_the_highest_attainment():
    means = {"round-robin": {"rt_p95_s": 3, "slo": 0.9}, "least-connections": {"rt_p95_s": 2, "slo": 0.8},
             "weighted": {"rt_p95_s": 2.5, "slo": 0.95}, "qlearning": {"rt_p95_s": 1, "slo": 1}}
    assert (pick_best(means, "rt_p95_s"), pick_best(means, "slo")) == ("least-connections", "weighted")


def runs(policy: str, seed: int, scale: float, load: str = "0.8") -> list[dict]:
    return [{**row(i, i * 0.5, 0.1 * scale, i * 0.5 + scale * (1 + i % 3)), "policy": policy, "seed": str(seed),
             "load": load} for i in range(20)]


def members_of(policy: str, seed: int, load: str = "0.8") -> list[dict]:
    return [{"policy": policy, "load": load, "seed": str(seed), "member": m, "speed": "150", "slots": "4",
             "served": "10", "busy_s": str(b), "last_answer": "9"} for m, b in (("m1", 10), ("m2", 20))]


def test_changes_are_paired_by_seed_against_least_connections_and_the_best_classic():
    policies = {"least-connections": 1.0, "round-robin": 2.0, "weighted": 1.5, "qlearning": 0.8}
    requests = [r for p, s in policies.items() for seed in (1, 2, 3) for r in runs(p, seed, s * (1 + seed / 10))]
    members = [m for p in policies for seed in (1, 2, 3) for m in members_of(p, seed)]
    summary = summarise(requests, members, {"duration": 10, "drain": 5, "base_speed": 100, "slo_grace": 0.5})
    q = summary["0.8"]["qlearning"]
    assert q["seeds"] == [1, 2, 3]
    assert q["vs_least-connections"]["rt_mean_s"]["mean"] == pytest.approx(-0.2)   # 0.8 / 1.0 on every seed
    assert q["vs_least-connections"]["rt_mean_s"]["ci95"] == pytest.approx([-0.2, -0.2])
    assert q["vs_best"]["rt_p95_s"]["of"] == "least-connections"
    assert q["vs_best"]["rt_p95_s"]["mean"] == pytest.approx(-0.2)


def test_a_jammed_runs_requests_scheduled_while_the_jam_was_on_are_summarised_apart():
    """With --jam, the middle half of the arrivals (2.5-7.5 s of 10) has its own figures: the
    requests scheduled at 2.5..7.0 s answer in 3, 1, 2, 3, 1, 2, 3, 1, 2, 3 x scale (mean 2.1),
    all twenty in 1.95 x scale."""
    policies = {"least-connections": 1.0, "qlearning": 0.8}
    requests = [r for p, s in policies.items() for seed in (1, 2) for r in runs(p, seed, s)]
    config = {"duration": 10, "drain": 5, "base_speed": 100, "slo_grace": 0.5}
    assert "jam" not in summarise(requests, [], config)["0.8"]["qlearning"]
    summary = summarise(requests, [], {**config, "jam": "m5"})["0.8"]
    lc, q = summary["least-connections"], summary["qlearning"]
    assert (lc["rt_mean_s"], lc["jam"]["rt_mean_s"], q["jam"]["rt_mean_s"]) == pytest.approx((1.95, 2.1, 0.8 * 2.1))
    assert (q["jam"]["from_s"], q["jam"]["to_s"]) == (2.5, 7.5)
    assert q["jam"]["vs_least-connections"]["rt_p95_s"]["mean"] == pytest.approx(-0.2)
    assert "| qlearning | 1.68 | 2.40 |" in markdown({"0.8": summary})


def make_folder(folder, kill=True):
    (folder / "runs" / "rr-kill").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"duration": 10, "drain": 5, "base_speed": 100, "slo_grace": 0.5,
                                                    "commit": "0123456", "command": "python -m scripts.services"}))
    with open(folder / "requests.csv", "w", newline="") as f:
        w = csv.DictWriter(f, REQUEST_COLUMNS)
        w.writeheader()
        for load in ("0.5", "0.8"):
            for p, s in (("least-connections", 1.0), ("round-robin", 1.3)):
                for seed in (1, 2):
                    w.writerows(runs(p, seed, s * seed, load))
    with open(folder / "members.csv", "w", newline="") as f:
        w = csv.DictWriter(f, MEMBER_COLUMNS)
        w.writeheader()
        for load in ("0.5", "0.8"):
            for p in ("least-connections", "round-robin"):
                for seed in (1, 2):
                    w.writerows(members_of(p, seed, load))
    if kill:
        (folder / "runs" / "rr-kill" / "kill.json").write_text(json.dumps(
            {"policy": "round-robin", "load": 0.8, "member": "m3", "killed_at": 5.0, "last_answer": 4.9,
             "requests": 40, "failed": 6, "cut": 3, "failed_in_flight": 2, "sent_after": 4, "last_sent_after_s": 1.25}))
    return folder


def test_the_report_writes_a_table_per_load_the_kill_result_and_the_plots(tmp_path):
    folder = make_folder(tmp_path / "exp")
    write_report(folder)
    md = (folder / "summary.md").read_text()
    assert "Load 50% of the pool's capacity" in md and "Load 80% of the pool's capacity" in md
    assert md.count("| round-robin | 2 |") == 2 and "2 seeds per policy" in md
    assert "| round-robin | 80% | m3 | 5.00 | 4.90 | 6 | 2 | 4 | 1.25 | 3 |" in md
    assert "Measured at commit `0123456` by `python -m scripts.services`." in md
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["loads"]) == {"0.5", "0.8"} and summary["killed"][0]["failed"] == 6
    for plot in ("response_cdf.png", "p95_by_load.png", "slo_by_load.png", "utilisation.png"):
        assert matplotlib.image.imread(folder / plot).shape[0] > 100


def test_the_kill_result_counts_failures_and_connections_after_the_last_answer(tmp_path):
    t0 = 1000.0
    (tmp_path / "m3.jsonl").write_text("\n".join([json.dumps({"status": "listening", "at": t0 - 1}),
                                                  json.dumps({"status": "ok", "generated": t0 + 4.0}),
                                                  '{"status": "ok", "gener']))      # a line cut by the kill
    (tmp_path / "c1.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"ok": True, "member": "m3", "last": 3.0, "error": None},
        {"ok": False, "member": "m3", "last": 4.5, "error": "IncompleteReadError"},      # in flight
        {"ok": False, "member": None, "last": None, "error": "ConnectionRefusedError"},
        {"ok": False, "member": "m1", "last": 9.0, "error": CUT})))
    (tmp_path / "m3-syn.jsonl").write_text("\n".join(json.dumps(s) for s in (
        {"syn": t0 + 4.0, "src": "10.0.0.1"}, {"syn": t0 + 5.0, "src": "10.0.0.2"},
        {"syn": t0 + 6.2, "src": "10.0.0.1"}, {"syn": t0 + 8.0, "src": "10.0.0.99"})))     # not a client
    k = kill_result(tmp_path, "round-robin", 0.8, "m3", t0, 4.6, ["10.0.0.1", "10.0.0.2"])
    assert (k["last_answer"], k["failed"], k["failed_in_flight"], k["syns"], k["sent_after"], k["cut"]) == (4.5, 2, 1, 3, 2, 1)
    assert k["last_sent_after_s"] == pytest.approx(1.7) and k["seen_until"] == pytest.approx(8.0)


def test_the_pool_spec_names_its_service_and_the_options_are_checked(tmp_path):
    service = service_of(ROOT / "topologies" / "pool.json", "llm")
    assert service == {"vip": "10.0.0.100", "port": 8000,
                       "members": [("m1", 1), ("m2", 1), ("m3", 2), ("m4", 2), ("m5", 4)]}
    quick = parse_args(["--quick"])
    assert (quick.policies, quick.seeds, quick.loads) == (["round-robin", "least-connections", "weighted", "qlearning"], 1, [0.8])
    assert parse_args(["--direct"]).policies == ["client-rr"]
    assert parse_args(["--policies", "qlearning,qlearning+blind"]).policies == ["qlearning", "qlearning+blind"]
    raw = json.loads((ROOT / "topologies" / "pool.json").read_text())
    add_jammer(raw, "m5")
    spec = parse_spec(raw)      # a valid spec: the jammer's address and name are free
    assert [(link.a, link.b, link.capacity_mbps) for link in spec.links if "jam" in (link.a, link.b)] == [("jam", "s4", 100)]
    with pytest.raises(TopologyError, match="--jam: 's1' is not on exactly one link"):
        add_jammer(raw, "s1")
    for bad in (["--policies", "fastest"], ["--policies", "weighted+blind"], ["--jam-mbps", "0"], ["--loads", "0.8,x"], ["--loads", "3"], ["--seeds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
