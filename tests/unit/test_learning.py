"""The learning curve: independent learners binned by decisions, each bin's ratio to
least-loaded across seeds with its interval, catching up where the mean over every later round
is shown within 10% (two bins at least); a learner carried from seed to seed gets no catch-up
point; the transfer compares the first decisions both runs took."""

import csv
import json

import pytest

from scripts.learning import BIN, catch_up, learning
from scripts.report import RUN_COLUMNS, read_runs

SEEDS = (1, 2, 3, 4, 5)
SPREAD = {1: 0.97, 2: 1.0, 3: 1.02, 4: 0.99, 5: 1.01}     # how seeds differ, the same in every round
PER_ROUND = 20      # decisions


def write_runs(folder, rtt_of, policy="qlearning+fresh", rounds=lambda seed: 40, start=lambda seed: 0):
    """rtt_of(seed, round) -> the learner's probe RTT in ms that round (least-loaded's is 10);
    PER_ROUND decisions a round, counted from `start` (a carried table counts on; a fresh one
    from the few a run takes before its first round)."""
    with open(folder / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS)
        for seed in SEEDS:
            for p in ("least-loaded", policy):
                for rnd in range(rounds(seed)):
                    ms = 10.0 if p == "least-loaded" else rtt_of(seed, rnd)
                    w.writerow([p, seed, "rtt", rnd, 0, 8 + 5 * rnd, "h1>h7 udp 1", "s1>s2", ms, "", "", "", ""])
            run = folder / "runs" / f"{policy}-seed{seed}"
            run.mkdir(parents=True)
            run.joinpath("rounds.json").write_text(json.dumps(
                {"start": start(seed), "decisions": [start(seed) + PER_ROUND * (r + 1) for r in range(rounds(seed))]}))
    return read_runs(folder / "runs.csv")


@pytest.mark.parametrize("start", [0, 30])
@pytest.mark.parametrize("ragged", [False, True], ids=["even", "ragged"])
def test_independent_learners_catch_up_where_the_rest_of_the_run_is_within_10_percent(tmp_path, start, ragged):
    """Rounds 0-9 slow; decisions counted from each run's start; a round more in two seeds (a
    bin they alone began) changes nothing."""
    rows = write_runs(tmp_path, lambda s, r: 10.0 * SPREAD[s] * (3.0 if r < 10 else 1.0),
                      rounds=lambda s: 41 if ragged and s <= 2 else 40, start=lambda s: start)
    result = catch_up(rows, tmp_path / "runs", "qlearning+fresh")
    # 5 rounds a bin: rounds 0-9 (decisions 1-200) are slow, from decision 200 on within
    assert result["within_from_decisions"] == 2 * BIN and len(result["curve"]) == 8
    first, third = result["curve"][0]["rtt"], result["curve"][2]["rtt"]
    assert 2.9 < first["ratio"] < 3.1 and first["ci95"][0] > 2.8      # there was something to catch up on
    assert third["ci95"][0] < 1.0 < third["ci95"][1] < 1.1


def test_as_good_as_least_loaded_is_not_within_when_the_seeds_disagree_too_much_to_show_it(tmp_path):
    wide = {1: 0.7, 2: 1.3, 3: 0.9, 4: 1.2, 5: 1.0}     # mean 1.0, but an interval reaching past 1.1
    rows = write_runs(tmp_path, lambda s, r: 10.0 * wide[s])
    result = catch_up(rows, tmp_path / "runs", "qlearning+fresh")
    assert result["within_from_decisions"] is None
    assert all(b["rtt"]["ci95"][1] > 1.1 for b in result["curve"])


def test_a_learner_that_falls_behind_in_its_last_decisions_has_not_caught_up(tmp_path):
    rows = write_runs(tmp_path, lambda s, r: 10.0 * SPREAD[s] * (1.5 if r >= 30 else 1.0))
    assert catch_up(rows, tmp_path / "runs", "qlearning+fresh")["within_from_decisions"] is None


def test_within_in_the_last_bin_alone_is_not_catching_up(tmp_path):
    rows = write_runs(tmp_path, lambda s, r: 10.0 * SPREAD[s] * (3.0 if r < 35 else 1.0))
    assert catch_up(rows, tmp_path / "runs", "qlearning+fresh")["within_from_decisions"] is None


def test_one_learner_carried_from_seed_to_seed_gets_its_ratio_per_seed_and_no_catch_up(tmp_path):
    rows = write_runs(tmp_path, lambda s, r: 10.0 * (2.0 if s == 1 else 1.0), policy="qlearning",
                      start=lambda seed: (seed - 1) * 40 * PER_ROUND)
    result = catch_up(rows, tmp_path / "runs", "qlearning")
    assert result["per_seed_in_run_order"] == {1: 2.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}
    assert result["within_from_decisions"] is None and "curve" not in result


def test_a_warm_table_is_compared_with_a_fresh_one_over_the_first_decisions_both_took(tmp_path):
    """The warm run decides 20 a round (its first 100: rounds 0-4), the fresh one 25 (rounds
    0-3): rounds 0-3 are compared, 10 ms against 20; round 4 and later are not."""
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS)
        for seed in (1, 2):
            for policy, early, late, per_round in (("qlearning+warm", 10.0, 50.0, 20),
                                                   ("qlearning+fresh", 20.0, 5.0, 25)):
                for rnd in range(10):
                    w.writerow([policy, seed, "rtt", rnd, 0, 8 + 5 * rnd, "f", "p", early if rnd < 4 else late,
                                "", "", "", ""])
                run = tmp_path / "runs" / f"{policy}-seed{seed}"
                run.mkdir(parents=True)    # a table loaded from a file counts on from its own
                start = 1179 if policy.endswith("warm") else 0
                (run / "rounds.json").write_text(json.dumps(
                    {"start": start, "decisions": [start + per_round * (r + 1) for r in range(10)]}))
    result = learning(tmp_path)["qlearning+warm"]["transfer"]
    assert result["per_seed"] == {1: 0.5, 2: 0.5} and result["ratio"] == 0.5
