"""scripts.explain: recorded decisions ranked again by a rule, split by agreement, with what
each group met; plain and gzipped records; rules that do not rank by features refused."""

import gzip
import json

import pytest

from scripts.explain import compare, main, read
from controller.policies import make_policy


def candidate(utilisation, hops, chosen, capacity=10.0):
    return {"path": ["s1", "s2"], "utilisation": utilisation, "loss": 0.0, "latency_ms": 1.0, "hops": hops,
            "unknown": 0, "headroom_mbps": capacity * (1 - utilisation), "capacity_mbps": capacity, "chosen": chosen}


def placed(kind, chosen, utilisations, **outcome):
    return {"round": 0, "kind": kind, **outcome, "chosen": chosen,
            "candidates": [candidate(u, h + 2, i == chosen) for i, (h, u) in enumerate(enumerate(utilisations))]}


@pytest.fixture
def results(tmp_path):
    one = tmp_path / "runs" / "learned-seed1"
    one.mkdir(parents=True)
    (one / "decisions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in (
        placed("rtt", 1, [0.2, 0.5], sent=20, received=10),       # least-loaded would take the first
        placed("rtt", 0, [0.2, 0.5], sent=20, received=20),       # as least-loaded would
        placed("transfer", 1, [0.9, 0.1], fct_s=1.5),             # as least-loaded would
        {"round": 1, "kind": "rtt", "sent": 20, "received": 0})))  # no record of the decision
    two = tmp_path / "runs" / "learned-seed2"
    two.mkdir(parents=True)
    with gzip.open(two / "decisions.jsonl.gz", "wt") as f:
        f.write(json.dumps(placed("transfer", 0, [0.9, 0.1], fct_s=4.0)) + "\n")
    return tmp_path


def test_decisions_are_split_by_whether_the_rule_would_have_chosen_the_same(results):
    runs = read(results)
    assert sorted(runs) == ["learned-seed1", "learned-seed2"]     # the gzipped one read too
    got = compare(runs, make_policy("least-loaded"))["learned"]
    assert got["rtt"] == {"unrecorded": 1, "differed": [(10, 20)], "agreed": [(0, 20)]}
    assert got["transfer"] == {"unrecorded": 0, "differed": [4.0], "agreed": [1.5]}


def test_the_table_gives_each_groups_count_and_outcome(results, capsys):
    assert main([str(results)]) == 0
    out = capsys.readouterr().out
    assert "| learned | rtt | 2 of 3 | 1, 0.0% of probes lost | 1, 50.0% of probes lost |" in out
    assert "| learned | transfer | 2 of 2 | 1, mean 1.50 s | 1, mean 4.00 s |" in out


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
