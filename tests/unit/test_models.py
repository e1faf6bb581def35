"""The learning pipeline: training recovers a known nonlinear relation, the exported model
predicts exactly what was trained, bad model and dataset files are rejected by name, and the
BPANN policy falls back to least-loaded without a usable model."""

import json
import math

import numpy as np
import pytest

from controller.core.monitor import PathFeatures
from controller.policies import DEFAULT_MODEL, BpannPolicy, LearnedPolicy
from models import bpann
from models.bpann import CAPACITY, ModelError
from models.dataset import COLUMNS, DatasetError, load_dataset
from models.evaluation import shuffled_folds
from models.train import ALPHA, MAX_ITER, choose, fit_bpann, sweep


def synthetic(n=400, seed=1):
    """A delay that explodes as utilisation nears 1 (queueing), plus loss and hops terms."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(0, 0.95, n), rng.uniform(0, 0.2, n),
                         rng.uniform(0, 50, n), rng.integers(1, 5, n)])
    y = 2 * x[:, 3] + 5 / (1 - x[:, 0]) + 40 * x[:, 1] + rng.normal(0, 0.3, n)
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    x, y = synthetic()
    model = fit_bpann(x, y, hidden=7, seed=0)
    path = tmp_path_factory.mktemp("model") / "m"
    bpann.save(model, path)
    return x, y, model, path


def test_training_recovers_a_nonlinear_relation_and_beats_linear_regression():
    x, y = synthetic()
    scores = {s.name: s for s in sweep(x, y, shuffled_folds(len(y), 3), sizes=(3, 7))[0]}
    assert scores["bpann-7"].r2 > 0.9
    assert scores["bpann-7"].mae < scores["linear"].mae
    assert choose(list(scores.values())) in (3, 7)


def test_save_and_load_give_identical_predictions(trained):
    x, _, model, path = trained
    loaded = bpann.load(path)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_forward_pass_matches_scikit_learn():
    from sklearn.neural_network import MLPRegressor
    x, y = synthetic(200)
    model = fit_bpann(x, y, hidden=5, seed=0)
    mlp = MLPRegressor(hidden_layer_sizes=(5,), activation="logistic", solver="lbfgs", alpha=ALPHA,
                       max_iter=MAX_ITER, random_state=0)
    mlp.fit((x - model.x_mean) / model.x_scale, (np.log1p(y) - model.y_mean) / model.y_scale)
    expected = np.expm1(mlp.predict((x - model.x_mean) / model.x_scale) * model.y_scale + model.y_mean)
    assert np.allclose(model.predict(x), expected)


def corrupt(path, what):
    npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
    arrays = dict(np.load(npz))
    if what == "truncated":
        npz.write_bytes(npz.read_bytes()[:200])
    elif what == "nan":
        arrays["w1"][0, 0] = np.nan
        np.savez(npz, **arrays)
    elif what == "shape":
        arrays["w2"] = np.zeros((3, 1))
        np.savez(npz, **arrays)
    elif what == "missing":
        del arrays["b1"]
        np.savez(npz, **arrays)
    elif what == "range":
        arrays["x_min"], arrays["x_max"] = arrays["x_max"], arrays["x_min"]
        np.savez(npz, **arrays)
    elif what == "features":
        m = json.loads(meta.read_text())
        m["features"] = ["hops", "loss", "latency_ms", "utilisation"]
        meta.write_text(json.dumps(m))
    elif what == "tampered-json":
        meta.write_text(meta.read_text()[:-20])


@pytest.mark.parametrize("what, message", [
    ("truncated", "not a readable .npz"), ("nan", "array w1 has NaN"),
    ("shape", "array w2 has shape (3, 1), expected (7, 1)"), ("missing", "missing array(s) b1"),
    ("features", "features ['hops'"), ("tampered-json", "not valid JSON"), ("range", "x_min is above x_max"),
])
def test_bad_model_files_are_rejected_by_name(trained, tmp_path, what, message):
    _, _, model, _ = trained
    path = tmp_path / "bad"
    bpann.save(model, path)
    corrupt(path, what)
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        bpann.load(path)


def test_bpann_policy_picks_the_lowest_prediction_and_falls_back_without_a_model(trained, tmp_path):
    _, _, _, path = trained
    busy = PathFeatures(utilisation=0.95, loss=0.1, latency_ms=40.0, hops=2)
    idle = PathFeatures(utilisation=0.05, loss=0.0, latency_ms=3.0, hops=3)
    policy = BpannPolicy(path)
    assert policy.choose(None, [busy, idle]) == 1
    broken = BpannPolicy(tmp_path / "nothing")
    assert broken.model is None and broken.describe()["fallback"] == "least-loaded"
    assert broken.choose(None, [busy, idle]) == 1


def test_inputs_beyond_the_training_range_are_scored_as_at_its_edge(trained):
    _, _, model, _ = trained
    edge = np.array([model.x_min, model.x_max])
    beyond = edge + np.array([[-1.0], [1.0]]) * 100      # every feature far below, far above
    assert np.array_equal(model.predict(beyond), model.predict(edge))
    assert not np.array_equal(model.predict(edge[:1]), model.predict(edge[1:]))


def test_the_shipped_model_never_prefers_a_longer_idle_path():
    """It was trained on 2-4 hops; unclipped, it scored an idle 1-hop path worse than 2 hops."""
    policy = BpannPolicy(DEFAULT_MODEL)
    idle = [PathFeatures(0.0, 0.0, 0.0, hops) for hops in range(1, 9)]
    scores = policy.scores(idle)
    assert all(a <= b for a, b in zip(scores, scores[1:])) and policy.choose(None, idle) == 0


def transfers(n=500, seed=2):
    """A 1 MB transfer's completion time on paths whose hops, capacity and load are drawn
    apart: its share of the headroom (or of the capacity, with the flows already there) sets
    it, plus a millisecond a hop."""
    rng = np.random.default_rng(seed)
    util, hops = rng.uniform(0, 0.95, n), rng.integers(1, 9, n)
    capacity = rng.choice([5.0, 10.0, 20.0, 50.0], n)
    headroom = capacity * (1 - util)
    fct = 8 / np.maximum(headroom, capacity / 2) + 0.001 * hops + rng.normal(0, 0.01, n)
    x = np.array([bpann.input_row(CAPACITY, u, 0.0, 0.5 * h, h, c, r)
                  for u, h, c, r in zip(util, hops, capacity, headroom)])
    return x, np.maximum(fct, 0.01)


def test_the_capacity_model_sees_what_the_paper_s_four_features_cannot(tmp_path):
    """Two paths alike in hops, delay and utilisation, one of 10 Mbit/s and one of 50: the
    learned policy sends the flow to the fat one (the paper's four inputs would tie them)."""
    x, y = transfers()
    bpann.save(fit_bpann(x, y, hidden=5, seed=0, inputs=CAPACITY), tmp_path / "learned")
    policy = LearnedPolicy(tmp_path / "learned")
    assert policy.model.inputs == CAPACITY and policy.describe()["inputs"] == list(CAPACITY)
    thin = PathFeatures(0.3, 0.0, 2.0, 4, headroom_mbps=7.0, capacity_mbps=10.0)
    fat = PathFeatures(0.3, 0.0, 2.0, 4, headroom_mbps=35.0, capacity_mbps=50.0)
    assert policy.choose(None, [thin, fat]) == 1 and policy.scores([fat])[0] < policy.scores([thin])[0] / 2
    loaded = bpann.load(tmp_path / "learned")
    assert loaded.inputs == CAPACITY and np.array_equal(loaded.predict(x), policy.model.predict(x))


def by_headroom_only() -> bpann.Bpann:
    """A capacity model by hand whose prediction falls with log_headroom and ignores the rest."""
    w1 = np.zeros((len(CAPACITY), 1))
    w1[CAPACITY.index("log_headroom"), 0] = -1.0
    return bpann.Bpann(np.zeros(6), np.full(6, 10.0), np.zeros(6), np.ones(6), w1, np.zeros(1), np.ones((1, 1)),
                       np.zeros(1), 0.0, 1.0, meta={}, inputs=CAPACITY)


def test_the_policy_feeds_capacity_and_headroom_each_to_its_own_input(tmp_path):
    """Fat but full against thin with room: a model of headroom alone takes the thin path, as
    it would not if the policy swapped the two inputs."""
    bpann.save(by_headroom_only(), tmp_path / "m")
    policy = LearnedPolicy(tmp_path / "m")
    fat_full = PathFeatures(0.9, 0.0, 1.0, 2, headroom_mbps=5.0, capacity_mbps=50.0)
    thin_room = PathFeatures(0.2, 0.0, 1.0, 2, headroom_mbps=8.0, capacity_mbps=10.0)
    assert policy.choose(None, [fat_full, thin_room]) == 1


def test_a_path_without_an_inter_switch_link_scores_as_at_the_edge_of_the_training_range(tmp_path):
    """Hosts on one switch: infinite capacity and headroom, clipped to the widest seen (10 here)."""
    bpann.save(by_headroom_only(), tmp_path / "m")
    policy = LearnedPolicy(tmp_path / "m")
    edge = math.expm1(10.0)      # log1p of it is x_max
    score = policy.scores([PathFeatures(0.0, 0.0, 0.0, 0)])[0]
    assert np.isfinite(score) and score == policy.scores([PathFeatures(0.0, 0.0, 0.0, 0, edge, edge)])[0]
    assert score < policy.scores([PathFeatures(0.0, 0.0, 0.0, 0, 100.0, 100.0)])[0]


def write(path, rows, header=COLUMNS, newline=True):
    text = ",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows)
    path.write_text(text + ("\n" if newline else ""))


GOOD = (1.7e9, "h1", "h7", "s1>s2>s7", 0.5, 0.0, 3.2, 2, 4.1, 0.0)


def test_dataset_loads_and_skips_a_partial_last_line(tmp_path):
    f = tmp_path / "d.csv"
    write(f, [GOOD, GOOD[:5]], newline=False)
    data = load_dataset(f)
    assert len(data) == 1 and data.x[0].tolist() == [0.5, 0.0, 3.2, 2]


def test_dataset_with_a_missing_column_is_rejected(tmp_path):
    f = tmp_path / "d.csv"
    write(f, [GOOD[:-1]], header=COLUMNS[:-1])
    with pytest.raises(DatasetError, match="missing column.*next_loss"):
        load_dataset(f)


def test_dataset_with_a_nan_row_is_rejected_naming_the_row(tmp_path):
    f = tmp_path / "d.csv"
    bad = list(GOOD)
    bad[6] = "nan"
    write(f, [GOOD, GOOD, bad])
    with pytest.raises(DatasetError, match="row 4, column latency_ms"):
        load_dataset(f)
