"""Honest evaluation: time-blocked folds never put a training sample within the gap of a test
sample, every sample is tested once; held-out networks are left out whole; the baselines and
error measures compute what they say on data whose answers are known; the labels come out of
synthetic collector records as defined; a transfer dataset loads with its persistence baseline;
and the training command reports per network, time-blocked and held out."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import bpann
from models.bpann import CAPACITY
from models.dataset import TRANSFER_COLUMNS, DatasetError, concat, load_dataset
from models.evaluation import (mae, mean_relative_error, network_folds, per_network, shuffled_folds,
                               time_blocked_folds)
from models.labels import ProbeLabel, probe_label, transfer_label
from models.train import sweep
from scripts import train as train_script

times_strategy = st.lists(st.floats(0, 2000, allow_nan=False), min_size=40, max_size=300)


@settings(max_examples=200, deadline=None)
@given(times=times_strategy, folds=st.integers(2, 8), gap=st.floats(0, 20))
def test_time_blocked_folds_never_train_within_the_gap_of_a_test_sample(times, folds, gap):
    times = np.array(times)
    try:
        splits = time_blocked_folds(times, folds, gap)
    except ValueError as exc:
        assert "too short" in str(exc)
        return
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(len(times)))           # each sample tested exactly once
    for train, test in splits:
        assert len(train) >= 2 and not set(train) & set(test)
        assert np.min(np.abs(times[train][:, None] - times[test][None, :])) > gap


def test_a_sample_exactly_the_gap_from_a_test_block_is_not_trained_on():
    """Hypothesis found it: 1.0 - 0.99 rounds to just above 0.01, so a sample 0.99 s from a
    block starting at 1.0 passed `t < low - gap`; distances are what the gap bounds."""
    times = np.array([0.0, 0.0, 0.01, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    (_, _), (train, test), (_, _) = time_blocked_folds(times, 3, 0.99)
    assert test.tolist() == [3, 4, 5] and 2 not in train.tolist()


@settings(max_examples=50, deadline=None)
@given(times=times_strategy)
def test_a_test_block_is_a_run_of_consecutive_time(times):
    times = np.array(times)
    try:
        splits = time_blocked_folds(times, 4, 1.0)
    except ValueError:
        return
    for _, test in splits:
        low, high = times[test].min(), times[test].max()
        inside = np.flatnonzero((times > low) & (times < high))
        assert set(inside) <= set(test)


def test_shuffled_folds_do_mix_neighbouring_seconds():
    """Why the time blocks exist: the paper's k-fold puts a test second's neighbours in training."""
    times = np.arange(600.0)
    train, test = shuffled_folds(600, 5)[0]
    assert np.min(np.abs(times[train][:, None] - times[test][None, :])) <= 1


def test_too_short_a_collection_for_the_folds_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="span 9 s: too short for 5 time blocks 5 s apart"):
        time_blocked_folds(np.arange(10.0), 5, 5.0)


def test_held_out_networks_leave_each_network_out_whole():
    networks = ["a", "b", "a", "c", "b", "a"]
    splits = network_folds(networks)
    assert [sorted({networks[i] for i in test}) for _, test in splits] == [["a"], ["b"], ["c"]]
    assert all(networks[i] != networks[test[0]] for train, test in splits for i in train)
    with pytest.raises(ValueError, match="at least two networks"):
        network_folds(["a", "a"])


def test_mae_and_mean_relative_error_by_hand():
    y, p = np.array([2.0, 4.0, 0.0]), np.array([3.0, 2.0, 1.0])
    assert mae(y, p) == pytest.approx((1 + 2 + 1) / 3)
    assert mean_relative_error(y, p) == pytest.approx((1 / 2 + 2 / 4) / 2)     # the zero label has no ratio
    assert math.isnan(mean_relative_error(np.zeros(2), np.ones(2)))


def test_the_baselines_are_what_they_say_on_synthetic_data():
    """A label exactly linear in the features: linear regression is exact out of fold; the
    persistence baseline predicts exactly the array it is given, and its error is computed by hand."""
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.uniform(0, 1, 200), rng.uniform(0, 0.1, 200), rng.uniform(1, 9, 200),
                         rng.integers(1, 9, 200)])
    y = 3 * x[:, 0] + 10 * x[:, 1] + 0.5 * x[:, 2] + x[:, 3] + 2
    times = np.arange(200.0)
    splits = time_blocked_folds(times, 4, 5.0)
    scores, predicted = sweep(x, y, splits, sizes=(3,))
    assert np.allclose(predicted["linear"], y, atol=1e-9)
    assert np.array_equal(predicted["persistence"], x[:, 2])          # default: the latency feature
    networks = ["n1"] * 100 + ["n2"] * 100
    rows = {(r.network, r.model): r for r in per_network(y, networks, predicted)}
    assert rows["n2", "persistence"].mae == pytest.approx(np.mean(np.abs(x[100:, 2] - y[100:])))
    assert rows["n1", "persistence"].mre == pytest.approx(np.mean(np.abs(x[:100, 2] - y[:100]) / y[:100]))
    assert rows["n1", "linear"].mae < 1e-9 and rows["n1", "linear"].samples == 100
    own = np.full(200, 7.0)
    _, given_persistence = sweep(x, y, splits, sizes=(3,), persistence=own)
    assert np.array_equal(given_persistence["persistence"], own)


def test_a_probe_train_is_labelled_by_its_upper_median_delay_and_loss():
    assert probe_label([5.0, 1.0, 3.0, 2.0], sent=5) == ProbeLabel(3.0, 0.2)     # sorted 1,2,3,5: the 3rd
    assert probe_label([], sent=20) is None
    assert probe_label([1.0, float("nan")], sent=2) is None
    assert probe_label([1.0, 2.0, 3.0], sent=2) is None                # more arrived than were sent


def test_a_transfer_is_labelled_by_its_completion_time_and_a_cut_one_by_its_bound():
    done = transfer_label(1_000_000, 0.8, complete=True, bound_s=10)
    assert (done.fct_s, done.goodput_mbps, done.censored) == (0.8, pytest.approx(10.0), False)
    cut = transfer_label(1_000_000, 9.7, complete=False, bound_s=10)
    assert (cut.fct_s, cut.goodput_mbps, cut.censored) == (10, pytest.approx(0.8), True)
    assert transfer_label(0, 1.0, True, 10) is None
    assert transfer_label(1000, float("nan"), True, 10) is None


def transfer_rows(network, start, n, rng):
    """Two paths; the fat one finishes a 1 MB transfer in 0.1 s plus load, the thin one in 0.8 s."""
    rows = []
    for i in range(n):
        thin = i % 2
        util = rng.uniform(0, 0.9)
        fct = (0.8 if thin else 0.1) / (1 - util)
        rows.append([start + i, network, "h1", "h2", "s1>s2" if thin else "s1>s3>s2", util, 0.0,
                     1.0, 1 if thin else 2, 10 if thin else 80, 10 * (1 - util), 1_000_000, round(fct, 5), 0])
    return rows


def write_csv(path, rows, header=TRANSFER_COLUMNS):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))


def test_a_transfer_dataset_loads_with_the_last_completion_on_the_same_path_as_persistence(tmp_path):
    rows = transfer_rows("net", 1000, 6, np.random.default_rng(0))
    write_csv(tmp_path / "t.csv", rows)
    data = load_dataset(tmp_path / "t.csv")
    assert data.label == "fct_s" and data.networks == ["net"] * 6
    assert data.persistence[:2].tolist() == [pytest.approx(1e6 * 8 / 80e6), pytest.approx(1e6 * 8 / 10e6)]
    assert data.persistence[2:].tolist() == [r[12] for r in rows[:4]]
    assert data.inputs == CAPACITY
    assert data.x[0].tolist() == [*rows[0][5:9], pytest.approx(math.log1p(80)), pytest.approx(math.log1p(rows[0][10]))]
    write_csv(tmp_path / "p.csv", [(1.0, "h1", "h7", "s1>s2", 0, 0, 1, 1, 1, 0)],
              header=("time_s", "src", "dst", "path", "utilisation", "loss", "latency_ms", "hops",
                      "next_delay_ms", "next_loss"))
    with pytest.raises(DatasetError, match="different labels"):
        concat([data, load_dataset(tmp_path / "p.csv")])
    rows[3][13] = 2
    write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetError, match="row 5, column censored"):
        load_dataset(tmp_path / "bad.csv")


def test_training_reports_each_network_time_blocked_and_held_out(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    for i, name in enumerate(("alpha", "beta", "gamma", "delta")):
        write_csv(tmp_path / f"{name}.csv", transfer_rows(name, 10_000 * i, 120, rng))
    files = [str(tmp_path / f"{n}.csv") for n in ("alpha", "beta", "gamma")]
    monkeypatch.setattr("sys.argv", ["train", "--data", *files, "--model", str(tmp_path / "m"),
                                     "--out", str(tmp_path / "out"), "--sizes", "3", "--folds", "3",
                                     "--test", str(tmp_path / "delta.csv")])
    assert train_script.main() == 0
    report = (tmp_path / "out" / "evaluation.md").read_text()
    model = bpann.load(tmp_path / "m.npz")
    assert model.meta["cv_method"] == "time-blocked" and model.inputs == CAPACITY
    assert "## time folds" in report and "## held-out networks" in report
    for name in ("alpha", "beta", "gamma"):
        assert f"| {name} | bpann-3 | 120 |" in report and f"| {name} | persistence | 120 |" in report
    never = report.split("## networks never trained on")[1]
    delta = load_dataset(tmp_path / "delta.csv")
    by_hand = mae(delta.y, model.predict(delta.x))     # the exported model itself, on delta
    assert f"| delta | bpann-3 | 120 | {by_hand:.3f} |" in never and "alpha" not in never
    assert f"| delta | persistence | 120 | {mae(delta.y, delta.persistence):.3f} |" in never



def test_test_samples_of_another_label_or_of_a_trained_network_are_refused(tmp_path, monkeypatch, capsys):
    write_csv(tmp_path / "t.csv", transfer_rows("net", 0, 60, np.random.default_rng(2)))
    write_csv(tmp_path / "p.csv", [(1.0, "h1", "h7", "s1>s2", 0, 0, 1, 1, 1, 0)],
              header=("time_s", "src", "dst", "path", "utilisation", "loss", "latency_ms", "hops",
                      "next_delay_ms", "next_loss"))
    monkeypatch.setattr("sys.argv", ["train", "--data", str(tmp_path / "t.csv"), "--test", str(tmp_path / "p.csv"),
                                     "--model", str(tmp_path / "m"), "--out", str(tmp_path / "out")])
    assert train_script.main() == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/p.csv: samples of next_delay_ms, but --data's are of fct_s\n"
    assert not (tmp_path / "m.npz").exists()
    monkeypatch.setattr("sys.argv", ["train", "--data", str(tmp_path / "t.csv"), "--test", str(tmp_path / "t.csv"),
                                     "--model", str(tmp_path / "m"), "--out", str(tmp_path / "out")])
    assert train_script.main() == 2
    assert capsys.readouterr().err == "error: --test: network(s) net are in --data too\n"
