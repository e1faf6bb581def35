"""scripts.explain: recorded decisions ranked again by a rule in both directions, each flow
grouped by agreement, with what it met; plain and gzipped records; features rebuilt as the
controller had them; rules that do not rank by features refused."""

import csv
import gzip
import json

import pytest

from controller.core.monitor import PathFeatures
from controller.policies import make_policy
from controller.service.rest import features_json
from scripts.explain import compare, features, main, read
from scripts.report import RUN_COLUMNS


def candidate(utilisation, hops, chosen, capacity=10.0):
    return {"path": ["s1", "s2"], "utilisation": utilisation, "loss": 0.0, "latency_ms": 1.0, "hops": hops,
            "unknown": 0, "headroom_mbps": capacity * (1 - utilisation), "capacity_mbps": capacity, "chosen": chosen}


def placed(kind, chosen, utilisations, capacities=(10.0, 10.0), **outcome):
    return {"round": outcome.pop("round", 0), "kind": kind, **outcome, "measured": True, "chosen": chosen,
            "candidates": [candidate(u, i + 2, i == chosen, c) for i, (u, c) in enumerate(zip(utilisations, capacities))]}


@pytest.fixture
def results(tmp_path):
    one = tmp_path / "runs" / "learned-seed1"
    one.mkdir(parents=True)
    (one / "decisions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in (
        {**placed("rtt", 0, [0.2, 0.5], sent=20, received=10),            # as least-loaded would ...
         "reply": placed("rtt", 0, [0.6, 0.3])},                            # ... but not its reply
        {**placed("rtt", 0, [0.2, 0.5], sent=20, received=20, round=1),   # both as least-loaded would
         "reply": placed("rtt", 1, [0.6, 0.3])},
        {**placed("rtt", 0, [0.2, 0.5], sent=20, received=20, round=2), "reply": {}},   # no reply: the request's
        {**placed("rtt", 1, [0.2, 0.5], sent=20, received=0, round=3), "candidates": []},   # no record at all
        {**placed("transfer", 1, [0.9, 0.1], fct_s=1.5), "reply": placed("transfer", 0, [0.1, 0.1])},
        {**placed("transfer", 0, [0.0, 0.0], fct_s=9.0), "measured": False})))         # hops alone: not ranked
    rows = [("rtt", 0, "4.0"), ("rtt", 0, ""), ("rtt", 1, "1.0"), ("rtt", 1, "2.0"), ("transfer", 0, "")]
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, RUN_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows({"policy": "learned", "seed": "1", "kind": k, "round": n, "rtt_ms": rtt} for k, n, rtt in rows)
    two = tmp_path / "runs" / "learned-seed2"
    two.mkdir(parents=True)
    with gzip.open(two / "decisions.jsonl.gz", "wt") as f:    # recorded before replies were
        f.write(json.dumps(placed("transfer", 0, [0.9, 0.1], fct_s=4.0)) + "\n")
    return tmp_path


def test_a_flow_counts_as_otherwise_when_either_direction_was(results):
    runs = read(results)
    assert sorted(runs) == ["learned-seed1", "learned-seed2"]     # the gzipped one read too
    got = compare(runs, make_policy("least-loaded"))["learned"]
    assert got["rtt"] == {"unranked": 1, "differed": [(10, 20, [4.0])], "agreed": [(0, 20, [1.0, 2.0]), (0, 20, [])]}
    assert got["transfer"] == {"unranked": 1, "differed": [4.0], "agreed": [1.5]}


def test_another_rule_ranks_the_same_records_by_its_own_measure():
    # the thin idle path and the wide busy one: least-loaded takes the first, widest the second
    flow = {**placed("transfer", 1, [0.1, 0.5], capacities=(5.0, 50.0), fct_s=2.0), "rtt_ms": None}
    for rule, group in (("least-loaded", "differed"), ("widest", "agreed")):
        assert compare({"learned-seed1": [flow]}, make_policy(rule))["learned"]["transfer"][group] == [2.0]


@pytest.mark.parametrize("f", [PathFeatures(0.25, 0.01, 3.5, 4, 1, 12.5, 50.0), PathFeatures(0.0, 0.0, 0.0, 0)])
def test_the_features_are_rebuilt_as_the_decisions_api_wrote_them(f):
    assert features(json.loads(json.dumps(features_json(f)))) == f     # inf == inf: null read back as inf


def test_the_table_gives_each_groups_count_and_outcome(results, capsys):
    assert main([str(results)]) == 0
    out = capsys.readouterr().out
    assert ("| learned | rtt | 3 of 4 | 2: 0.0% of probes lost, RTT mean 1.50 ms | "
            "1: 50.0% of probes lost, RTT mean 4.00 ms |") in out
    assert "| learned | transfer | 2 of 3 | 1: mean 1.50 s | 1: mean 4.00 s |" in out


@pytest.mark.parametrize("rule, says", [("round-robin", "does not rank by the features alone"),
                                        ("qlearning", "does not rank by the features alone"),
                                        ("nope", "unknown 'nope'")])
def test_a_rule_that_is_not_a_ranking_of_features_is_refused(results, rule, says, capsys):
    with pytest.raises(SystemExit):
        main([str(results), "--rule", rule])
    assert says in capsys.readouterr().err


def test_a_folder_without_recorded_decisions_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert f"{tmp_path}: no runs/*/decisions.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("line, says", [
    ("{not json", "line 1: not JSON"),
    ('["a list"]', "line 1: not a probe train's or transfer's record"),
    ('{"kind": "rtt", "round": 0, "sent": 20, "received": 21}', "line 1: sent, received: not counts of a train"),
    ('{"kind": "transfer", "round": 0, "fct_s": "fast"}', "line 1: fct_s: not a number"),
    ('{"kind": "transfer", "round": 0, "fct_s": 1.0, "measured": true, "chosen": 5, "candidates": [{}]}',
     "line 1: chosen: not the index of a candidate"),
    ('{"kind": "transfer", "round": 0, "fct_s": 1.0, "measured": true, "chosen": 0, "candidates": '
     '[{"utilisation": "high"}]}', "line 1: candidate field utilisation: not a number"),
    ('{"kind": "transfer", "round": 0, "fct_s": 1.0, "reply": {"candidates": 3}}', "line 1: candidates: not a list")])
def test_a_broken_record_is_refused_naming_file_line_and_field(tmp_path, line, says, capsys):
    run = tmp_path / "runs" / "learned-seed1"
    run.mkdir(parents=True)
    (run / "decisions.jsonl").write_text(line + "\n")
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    err = capsys.readouterr().err
    assert f"{run / 'decisions.jsonl'}: {says}" in err and "Traceback" not in err


@pytest.mark.parametrize("table, says", [("policy,seed\nlearned,1\n", "header is"),
                                         (",".join(RUN_COLUMNS) + "\n" + ",".join({"policy": "learned", "seed": "1", "kind": "rtt", "round": "zero",
                                                                 "rtt_ms": "3.0"}.get(c, "") for c in RUN_COLUMNS) + "\n",
                                          "row 2: round or rtt_ms not a number")])
def test_a_broken_runs_table_is_refused_by_name(results, table, says, capsys):
    (results / "runs.csv").write_text(table)
    with pytest.raises(SystemExit):
        main([str(results)])
    assert f"{results / 'runs.csv'}: {says}" in capsys.readouterr().err
