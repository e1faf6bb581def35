"""The Q-learning policy: the Bellman update by hand, convergence in a simulated network with
a known best path, the table file, and learning inside the balancer from later statistics."""

import json
import logging
import random

import pytest

from controller.policies import make_policy
from controller.core.flows import FlowKey
from controller.core.monitor import LATENCY_WINDOW, PathFeatures
from controller.policies import QLearningPolicy
from controller.service.rest import RestApi
from controller.core.settings import ConfigError, Settings
from controller.policies import qlearning as qtable
from controller.policies.qlearning import QTable, QTableError
from fakes.switches import Booted
from fakes.frames import ipv4_frame
from tests.unit.test_rest import call

IDLE = [PathFeatures(0.0, 0.0, 0.0, 2), PathFeatures(0.0, 0.0, 0.0, 3), PathFeatures(0.0, 0.0, 0.0, 4)]


def test_the_update_is_the_bellman_rule_by_hand():
    t = QTable(alpha=0.5, gamma=0.9, epsilon=0.0)
    t.q["next"] = [-2.0, -4.0]
    assert t.update("s", 1, -10.0, "next", 2) == pytest.approx(0.5 * (-10 + 0.9 * -2))   # -5.9
    assert t.update("s", 1, -10.0, "next", 2) == pytest.approx(-5.9 + 0.5 * (-10 - 1.8 + 5.9))
    assert t.q["s"] == [0.0, pytest.approx(-8.85)]
    assert t.rewards == [-10.0, -10.0] and t.updates == 2


def test_states_bucket_load_and_flag_congestion():
    busy = PathFeatures(0.6, 0.0, 1.0, 2)
    queued = PathFeatures(0.1, 0.0, 25.0, 3)
    lossy = PathFeatures(0.1, 0.05, 0.0, 4)
    assert qtable.state_of([busy, queued, lossy]) == "2:2 3:3 4:3"
    assert qtable.state_of(IDLE) == "2:0 3:0 4:0"
    assert qtable.reward(PathFeatures(0.9, 0.1, 40.0, 2)) == -50.0


def test_epsilon_decays_to_its_floor():
    t = QTable(alpha=0.3, gamma=0.5, epsilon=0.5, epsilon_decay=0.5, epsilon_min=0.1)
    for _ in range(5):
        t.choose("s", 3, random.Random(1))
    assert t.epsilon == 0.1 and t.decisions == 5
    greedy = QTable(alpha=0.3, gamma=0.5, epsilon=0.0)
    greedy.choose("s", 3, random.Random(1))
    assert greedy.epsilon == 0.0


def simulate(policy: QLearningPolicy, decisions: int, seed: int = 7) -> list[int]:
    """A network whose shortest candidate is saturated whenever a flow is put on it (latency
    40 ms, 10% loss); the others stay idle, the longest slightly slower."""
    rng = random.Random(seed)
    state = [PathFeatures(0.3, 0.0, 1.0, 2), PathFeatures(0.3, 0.0, 1.0, 3), PathFeatures(0.3, 0.0, 1.0, 4)]
    picks = []
    for i in range(decisions):
        key = FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000)
        a = policy.choose(key, state)
        after = [PathFeatures(0.95, 0.1, 40.0, 2) if a == 0 else PathFeatures(0.3, 0.0, 1.0, 2),
                 PathFeatures(0.3, 0.0, 1.0 + rng.random(), 3), PathFeatures(0.3, 0.0, 3.0 + rng.random(), 4)]
        policy.learn([(state, a, after)])
        picks.append(a)
    return picks


def test_converges_to_the_best_path_in_a_simulated_network():
    policy = QLearningPolicy(alpha=0.3, gamma=0.5, epsilon=0.3)
    picks = simulate(policy, 400)
    assert picks[-100:].count(1) >= 90          # greedy now, bar the 2% exploration
    assert policy.choose(None, [PathFeatures(0.3, 0.0, 1.0, h) for h in (2, 3, 4)]) == 1


def test_the_table_survives_a_restart_and_learning_continues(tmp_path):
    path = tmp_path / "q.json"
    first = QLearningPolicy(path, alpha=0.3, gamma=0.5, epsilon=0.3)
    simulate(first, 200)
    saved = json.loads(path.read_text())
    assert saved["updates"] == 200 and saved["q"] == first.table.q
    again = QLearningPolicy(path, alpha=0.3, gamma=0.5, epsilon=0.3)
    assert again.table.q == first.table.q and again.table.epsilon == first.table.epsilon
    assert again.table.updates == 200
    simulate(again, 1)
    assert QLearningPolicy(path).table.updates == 201


@pytest.mark.parametrize("text, field", [("{not json", "not valid JSON"), ('{"format": 9}', "'format'"),
                                         ('{"format": 1, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"s": ["x"]}}', "'q'"),
                                         ('{"format": 1, "alpha": 7, "gamma": 0.5, "epsilon": 0.1, "q": {}}',
                                          "alpha"),
                                         ('{"format": 1, "q": {}}', "'alpha' is missing")])
def test_a_corrupt_table_is_rejected_naming_file_and_field_and_a_fresh_one_used(tmp_path, caplog, text, field):
    path = tmp_path / "q.json"
    path.write_text(text)
    with pytest.raises(QTableError, match=field) as err:
        qtable.load(path)
    assert str(path) in str(err.value)
    with caplog.at_level(logging.WARNING):
        policy = QLearningPolicy(path)
    assert "starting from an empty Q-table" in caplog.text and policy.table.q == {}
    assert path.read_text() == text          # nothing overwritten before there is something learnt


def test_the_balancer_feeds_back_what_the_next_polls_measured(tmp_path):
    booted = Booted(policy="qlearning")
    b = booted.balancer
    b.policy = QLearningPolicy(tmp_path / "q.json", epsilon=0.0)
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17))
    assert b.policy.table.decisions == 1 and b.policy.table.updates == 0
    (flow,) = b.flows.values()
    hops = len(flow.path) - 1
    b.poll(booted.now + 1.0)
    assert b.policy.table.updates == 0          # one poll: the window after the decision is not measured yet
    for i in range(LATENCY_WINDOW):             # then every link measures 10 ms, loss-free
        booted.probe_round(booted.now + 1.1 + 0.2 * i, delay_s=0.010)
    b.poll(booted.now + 2.0)
    assert b.policy.table.updates == 1 and json.loads((tmp_path / "q.json").read_text())["updates"] == 1
    # reward: minus the chosen path's measured latency (10 ms a hop) and no loss penalty; the
    # state after (every path queueing) was never valued, so Q = alpha * reward
    assert b.policy.table.rewards == [pytest.approx(-10.0 * hops)]
    learnt = [(i, v) for row in b.policy.table.q.values() for i, v in enumerate(row) if v]
    assert learnt == [(0, pytest.approx(b.policy.table.alpha * -10.0 * hops))]
    api = RestApi(b, clock=lambda: booted.now)
    status, body = call(api, "/api/v1/qtable/reset", method="POST")
    assert status == 200 and body["updates"] == 0 and body["states"] == 0
    b.set_policy(make_policy("shortest"))
    assert call(api, "/api/v1/qtable/reset", method="POST")[0] == 409


def test_hyper_parameters_outside_their_range_name_the_variable():
    with pytest.raises(ConfigError, match="LB_Q_GAMMA"):
        Settings(q_gamma=1.0).validate()
    with pytest.raises(ConfigError, match="LB_Q_ALPHA"):
        Settings.from_env({"LB_Q_ALPHA": "0"})
