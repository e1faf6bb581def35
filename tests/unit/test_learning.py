"""The learning curve's catch-up point: paired by seed and round, over moving windows (20
rounds, geometric mean), and only where the learner stays close to least-loaded to the end."""

import csv
import json

from scripts.learning import catch_up, learning
from scripts.report import RUN_COLUMNS, read_runs


def write_runs(folder, rtt_of):
    """One seed of 80 rounds; rtt_of(policy, round) -> that round's probe RTT in ms."""
    with open(folder / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS)
        for policy in ("least-loaded", "qlearning"):
            for rnd in range(80):
                w.writerow([policy, 1, "rtt", rnd, 0, 8 + 5 * rnd, "h1>h7 udp 1", "s1>s2", rtt_of(policy, rnd),
                            "", "", "", ""])
    (folder / "runs" / "qlearning-seed1").mkdir(parents=True)
    (folder / "runs" / "qlearning-seed1" / "rounds.json").write_text(
        json.dumps({"decisions": [2 * (r + 1) for r in range(80)]}))
    return read_runs(folder / "runs.csv")


def test_catches_up_from_the_first_window_that_stays_within_10_percent(tmp_path):
    rows = write_runs(tmp_path, lambda p, r: 10.0 if p == "least-loaded" else (30.0 if r < 30 else 10.5))
    result = catch_up(rows, tmp_path / "runs", "qlearning")
    # one 30 ms round among 10.5 ms ones makes a window's geometric mean 1.107 times least-loaded's:
    # the window of rounds 30-49 is the first within, it ends at the 50th round, after which the
    # policy had decided 100 times
    assert (result["within_from_round"], result["decisions"]) == (50, 100)


def test_one_slow_round_in_a_window_does_not_undo_the_catch_up(tmp_path):
    """A round is a handful of probes: one five times slower than least-loaded's is noise, not
    forgetting (its arithmetic mean over 20 rounds would be 1.2 times least-loaded's)."""
    rows = write_runs(tmp_path, lambda p, r: 50.0 if p == "qlearning" and r == 60 else 10.0)
    assert catch_up(rows, tmp_path / "runs", "qlearning")["within_from_round"] == 20


def test_a_learner_that_falls_behind_again_has_not_caught_up(tmp_path):
    rows = write_runs(tmp_path, lambda p, r: 10.0 if p == "least-loaded" or 10 <= r < 60 else 30.0)
    assert catch_up(rows, tmp_path / "runs", "qlearning")["within_from_round"] is None


def test_only_the_last_rounds_within_is_not_catching_up(tmp_path):
    rows = write_runs(tmp_path, lambda p, r: 10.0 if p == "least-loaded" or r >= 55 else 30.0)
    assert catch_up(rows, tmp_path / "runs", "qlearning")["within_from_round"] is None


def test_a_warm_table_is_compared_with_a_fresh_one_over_the_first_decisions_only(tmp_path):
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS)
        for seed in (1, 2):
            for policy, early, late in (("qlearning+warm", 10.0, 50.0), ("qlearning+fresh", 20.0, 5.0)):
                for rnd in range(10):
                    w.writerow([policy, seed, "rtt", rnd, 0, 8 + 5 * rnd, "f", "p", early if rnd < 5 else late,
                                "", "", "", ""])
                run = tmp_path / "runs" / f"{policy}-seed{seed}"
                run.mkdir(parents=True)    # 20 decisions a round: the first 100 are rounds 0-4; a table
                start = 1179 if policy.endswith("warm") else 0    # loaded from a file counts on from its own
                (run / "rounds.json").write_text(json.dumps({"start": start,
                                                             "decisions": [start + 20 * (r + 1) for r in range(10)]}))
    result = learning(tmp_path)["qlearning+warm"]["transfer"]
    assert result["seeds"] == [1, 2] and result["change"]["mean"] == -0.5     # 10 ms against 20, later rounds ignored
