"""The Q-learning policy: the Bellman update by hand, convergence in a simulated network with
a known best path, the table file, and learning inside the balancer from later statistics."""

import copy
import json
import logging
import math
import random
from itertools import pairwise
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policies import make_policy
from controller.core.flows import FlowKey
from controller.core.policy import Experience
from controller.core.monitor import LATENCY_WINDOW, FlowStat, PathFeatures, PortStat
from controller.policies import QLearningPolicy
from controller.service.rest import RestApi
from controller.core.settings import ConfigError, Settings
from controller.policies import qlearning as qtable
from controller.policies.qlearning import FEATURES, SPREAD_MS, QTable, QTableError, reward
from controller.policies.heuristics import LeastLoaded
from controller.policies.members import member_policy_factory
from controller.core.services import MemberLoad
from fakes.switches import Booted
from fakes.frames import ipv4_frame
from tests.unit.test_rest import call

IDLE = [PathFeatures(0.0, 0.0, 0.0, 2, headroom_mbps=10), PathFeatures(0.0, 0.0, 0.0, 3, headroom_mbps=20),
        PathFeatures(0.0, 0.0, 0.0, 4, headroom_mbps=30)]


def test_the_update_is_the_bellman_rule_by_hand():
    t = QTable(alpha=0.5, gamma=0.9, epsilon=0.0)
    t.q["next"] = [-2.0, 4]
    assert t.update("s", -10.0, "next") == pytest.approx(-10 + 0.9 * -2)     # a first visit: the target, -11.8
    assert t.update("s", -20.0, "next") == pytest.approx(-11.8 + 0.5 * (-20 - 1.8 + 11.8))     # then alpha
    assert t.q["s"] == [pytest.approx(-16.8), 2] and t.q["next"] == [-2.0, 4]
    assert t.rewards == [-10.0, -20.0] and t.updates == 2
    bandit = QTable(alpha=0.5, gamma=0.0, epsilon=0.0, q={"next": [-2.0, 4]})
    assert bandit.update("s", -10.0, "next") == pytest.approx(-10.0)      # gamma 0: the reward alone
    # a state after never met is worth the prior of what it showed: r / (1 - gamma), where values settle
    assert QTable(alpha=0.5, gamma=0.5, epsilon=0.0).update("s", -3.0, "never") == pytest.approx(-3.0 - 0.5 * 6.0)


def test_paths_of_equal_value_go_to_the_one_reading_better_now():
    """Two paths of one state (same hops and headroom class), idle and a fifth full:
    least-loaded told them apart and the table, one value per state, took the first candidate,
    as it did flows decided within one poll whose bookings left the state as it was. Across
    states, values decide."""
    policy = QLearningPolicy(alpha=0.5, gamma=0.5, epsilon=0.0)
    busier, emptier = replace(IDLE[1], utilisation=0.2), replace(IDLE[1], utilisation=0.02)
    assert qtable.state_of(busier) == qtable.state_of(emptier)
    policy.learn([Experience([busier], 0, busier)])
    key = FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2)
    assert policy.choose(key, [busier, emptier]) == 1 and policy.choose(key, [emptier, busier]) == 0
    assert policy.rank(None, [busier, emptier])[0] == 1                  # a look as a decision
    # a state never met falls back on the level's value: the same tie, the same rule
    other = replace(emptier, hops=4)
    assert policy.choose(key, [busier, other]) == 1
    # a thin path whose flows met 12 ms though it read idle, against the busier wide one
    thin = replace(IDLE[0], utilisation=0.01)
    for _ in range(3):
        policy.learn([Experience([thin], 0, replace(thin, latency_ms=12.0))])
    assert qtable.reward(thin) > qtable.reward(busier) and policy.choose(key, [thin, busier]) == 1


@pytest.mark.parametrize("model, blind_score", [("table", 29.0), ("correction", 0.0)])
def test_a_path_whose_load_is_not_measured_is_taken_only_when_no_candidate_is_measured(model, blind_score):
    """A link without statistics reads idle. States of unknown load learnt at a run's start,
    when every path was idle and not yet measured, were worth more than every measured state
    (about 0 to -1.3 ms in a warm table), so a path whose statistics went stale later would be
    taken first. The table chooses among measured candidates; with none, by fewer unknown
    links, then reading: all are worth one value (the table's worst learnt, -29 here; the
    correction table's least measured worth, none here: 0), not their readings. A decision on
    a path of unknown load teaches it nothing, and is counted (the linear model has an input
    for it, and learns)."""
    key = FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2)
    seen = replace(IDLE[1], utilisation=0.9, latency_ms=20.0)
    blind = [replace(IDLE[0], unknown=1, utilisation=0.3), replace(IDLE[2], unknown=1, utilisation=0.1)]
    for explore in ("epsilon", "count"):           # count: a state never visited has the full bonus
        policy = QLearningPolicy(alpha=0.5, gamma=0.0, epsilon=0.0, explore=explore, model=model)
        policy.learn([Experience([seen], 0, seen)])
        policy.table.q.update({qtable.state_of(blind[0]): [-0.1, 0], qtable.state_of(blind[1]): [-0.5, 0]})
        assert policy.choose(key, [blind[0], seen, blind[1]]) == 1
        assert policy.rank(None, [blind[0], seen, blind[1]])[0] == 1
        # none measured: worth the worst value learnt alike (not their rows), the better reading
        assert policy.scores(blind) == [pytest.approx(blind_score)] * 2 and policy.choose(key, blind) == 1
        hidden = replace(blind[1], unknown=2, utilisation=0.0)         # more links read idle, falsely
        assert policy.choose(key, [blind[0], hidden]) == 0
        before = json.dumps(vars(policy.table), sort_keys=True)
        policy.learn([Experience(blind, 0, seen)])
        assert json.dumps(vars(policy.table), sort_keys=True) == before
        assert policy.describe()["unlearnt"] == 1
    linear = QLearningPolicy(alpha=0.5, gamma=0.0, epsilon=0.0, model="linear")
    linear.learn([Experience(blind, 0, seen)])
    assert linear.table.updates == 1 and linear.table.w[FEATURES.index("unknown")] != 0.0


def test_a_state_is_one_path_and_means_the_same_on_any_network():
    busy = PathFeatures(0.6, 0.0, 1.0, 2, headroom_mbps=4.0)
    queued = PathFeatures(0.1, 0.0, 25.0, 3, headroom_mbps=900.0)
    lossy = PathFeatures(0.1, 0.05, 0.0, 12, headroom_mbps=0.5)
    unseen = PathFeatures(0.0, 0.0, 0.0, 2, unknown=1, headroom_mbps=10.0)
    assert [qtable.state_of(f) for f in (busy, queued, lossy, unseen)] == ["h2 r3 l2", "h3 r10 l4", "h8 r0 l4",
                                                                        "h2 r4 lu"]
    # the same path condition on another host pair, or network, is the same state
    assert qtable.state_of(PathFeatures(0.6, 0.0, 1.0, 2, headroom_mbps=5.9)) == "h2 r3 l2"
    # 40 ms, 10 ms for 10% loss, 9 ms for a link 90% full: the room left counts, not just queues
    assert qtable.reward(PathFeatures(0.9, 0.1, 40.0, 2)) == -59.0
    assert qtable.reward(PathFeatures(0.9, 0.0, 1.0, 2)) < qtable.reward(PathFeatures(0.1, 0.0, 1.0, 2))


def test_reads_never_change_the_table():
    """Scores and a greedy choice leave a table, empty and with states learnt, and a linear
    model as they were (compared with deep copies: a change in place shows)."""
    policy = QLearningPolicy(alpha=0.3, gamma=0.5, epsilon=0.0)
    t = policy.table
    assert policy.scores(IDLE) == [0.0, 0.0, 0.0] and policy.choose(None, IDLE) == 0
    assert t.q == {} and t.decisions == 0 and t.value("never seen") == 0.0 and t.q == {}
    policy.learn([Experience(IDLE, 1, replace(IDLE[1], latency_ms=3.0))])
    before = copy.deepcopy(t)
    scores, _ = policy.scores(IDLE), policy.choose(None, IDLE)
    assert scores[1] > 0 and t == before        # a score is a cost: it has learnt path 1's
    linear = QLearningPolicy(alpha=0.3, gamma=0.5, epsilon=0.0, model="linear")
    linear.table.w = [1.0, -5.0, -9.0, -2.0, -1.0, -3.0, -4.0]
    before = copy.deepcopy(linear.table)
    scores = linear.scores(IDLE)
    assert linear.choose(None, IDLE) == scores.index(min(scores)) and linear.table == before


def test_a_state_never_met_is_worth_what_its_load_level_taught():
    t = QTable(alpha=0.5, gamma=0.0, epsilon=0.0)
    t.update("h2 r0 l3", -40.0, "h2 r0 l3")
    assert t.q == {"h2 r0 l3": [-40.0, 1], "l3": [-40.0, 1]}
    assert t.value("h5 r1 l3") == -40.0 and t.value("h5 r1 l0", -3.0) == -3.0    # the level, or the prior
    assert t.q == {"h2 r0 l3": [-40.0, 1], "l3": [-40.0, 1]}                  # reads add nothing
    t.update("h5 r1 l3", -10.0, "h5 r1 l3")
    assert t.value("h5 r1 l3") == -10.0 and t.q["l3"] == [-25.0, 2]


def test_a_level_never_met_is_worth_what_the_path_measures_now_not_0():
    """A table that met only idle paths must not take a path losing 20% at 80 ms for the best:
    worth 0, it would be above every value learnt."""
    policy = QLearningPolicy(alpha=0.5, gamma=0.0, epsilon=0.0)
    for _ in range(10):
        policy.learn([Experience(IDLE, 0, replace(IDLE[0], latency_ms=2.0))])
    lossy = replace(IDLE[1], loss=0.2, latency_ms=80.0)
    assert policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2), [lossy, IDLE[0]]) == 1
    assert policy.scores([lossy]) == [-qtable.reward(lossy)]


def test_a_visited_state_is_never_worth_more_than_before_its_visit():
    """Default gamma 0.5: learnt values settle at twice the reward, so a level never met is
    judged on that scale, and one visit does not make a path look better than it measured (a
    row started at 0 and moved alpha of the way was worth 0.45 of the reward after it)."""
    policy = QLearningPolicy(alpha=0.3, gamma=0.5, epsilon=0.0)
    idle, busy = replace(IDLE[0], latency_ms=1.5), replace(IDLE[1], utilisation=0.26, latency_ms=0.2)
    for _ in range(30):
        policy.learn([Experience([idle], 0, idle)])
    key = FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2)
    assert qtable.reward(busy) < qtable.reward(idle) and policy.choose(key, [busy, idle]) == 1
    policy.learn([Experience([busy, idle], 0, busy)])         # one exploratory visit to the busier level
    assert policy.choose(key, [busy, idle]) == 1


def test_a_path_whose_load_is_not_measured_is_worth_the_worst_value_learnt():
    policy = QLearningPolicy(alpha=0.3, gamma=0.0, epsilon=0.0)
    policy.learn([Experience(IDLE, 0, replace(IDLE[0], latency_ms=2.0))])
    policy.learn([Experience(IDLE, 1, replace(IDLE[1], latency_ms=9.0))])
    unseen = replace(IDLE[2], unknown=1)
    assert policy.scores([unseen, IDLE[0]]) == [9.0, 2.0]
    assert policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2), [unseen, IDLE[0]]) == 1


def test_a_look_takes_the_path_a_greedy_decision_would():
    """What REST and a member policy are told is the path a decision would take (a full path
    the table values most is taken, not ranked last as other load-aware policies rank it)."""
    policy = QLearningPolicy(alpha=0.5, gamma=0.0, epsilon=0.0)
    full = replace(IDLE[0], utilisation=1.0, headroom_mbps=0.0)
    policy.table.q.update({qtable.state_of(full): [-1.0, 5], qtable.state_of(IDLE[1]): [-30.0, 5]})
    key = FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2)
    assert policy.rank(None, [full, IDLE[1]])[0] == policy.rank(key, [full, IDLE[1]])[0] == 0
    counting = QLearningPolicy(alpha=0.5, gamma=0.0, epsilon=0.0, explore="count")      # its bonus too
    counting.table.q.update({qtable.state_of(IDLE[0]): [-1.0, 400], qtable.state_of(IDLE[1]): [-2.0, 0]})
    assert counting.rank(None, IDLE[:2])[0] == counting.rank(key, IDLE[:2])[0] == 1


def test_a_measurement_that_is_not_a_number_teaches_nothing():
    t = QTable(alpha=0.5, gamma=0.0, epsilon=0.0)
    t.update("h2 r4 l0", -4.0, "h2 r4 l0")
    t.update("h2 r4 l0", math.nan, "h2 r4 l0")
    t.update("h2 r4 l0", -math.inf, "h2 r4 l0")
    assert t.q == {"h2 r4 l0": [-4.0, 1], "l0": [-4.0, 1]} and t.updates == 1
    assert all(math.isfinite(x) for x in qtable.phi(replace(IDLE[0], headroom_mbps=math.nan)))


def test_epsilon_decays_to_its_floor():
    t = QTable(alpha=0.3, gamma=0.5, epsilon=0.5, epsilon_decay=0.5, epsilon_min=0.1)
    for _ in range(5):
        t.choose(["a", "b", "c"], random.Random(1))
    assert t.epsilon == 0.1 and t.decisions == 5
    greedy = QTable(alpha=0.3, gamma=0.5, epsilon=0.0)
    greedy.choose(["a", "b", "c"], random.Random(1))
    assert greedy.epsilon == 0.0


def test_count_based_exploration_tries_the_state_it_knows_least():
    t = QTable(alpha=0.5, gamma=0.0, epsilon=0.0, explore="count", q={"a": [-1.0, 100], "b": [-3.0, 0]})
    # b is worse by 2 ms but never visited: a bonus of 5 ms (vs 0.5 for a) makes it worth trying
    assert t.choose(["a", "b"], random.Random(1)) == 1
    t.q["b"] = [-3.0, 100]
    assert t.choose(["a", "b"], random.Random(1)) == 0


def simulate(policy: QLearningPolicy, decisions: int, seed: int = 7, switch_at: int | None = None) -> list[int]:
    """Three candidates h1 -> h7 (2, 3 and 4 hops). Background traffic fills one of them, which
    shows in its state (utilisation 0.9, 1 Mbit/s left); a flow put there meets a queue (40 ms,
    10% loss). The others are quick, the longest a little slower. The first path is the loaded
    one, until decision `switch_at`, from which the background moves to the middle one. A policy
    that compares is told the outcomes of the paths it compares with, the loaded one's with or
    without the flow alike."""
    rng = random.Random(seed)
    picks = []
    for i in range(decisions):
        loaded = 1 if switch_at is not None and i >= switch_at else 0
        now = [replace(f, utilisation=0.9, headroom_mbps=1.0) if j == loaded else f for j, f in enumerate(IDLE)]
        key = FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000)
        a = policy.choose(key, now)
        met = [replace(f, utilisation=1.0 if j == a else f.utilisation, loss=0.1, latency_ms=40.0, headroom_mbps=0.0)
               if j == loaded else replace(f, latency_ms=1.0 + j + rng.random()) for j, f in enumerate(now)]
        compared = policy.compared(now, a)
        policy.learn([Experience(now, a, met[a], {j: met[j] for j in (a, *compared)} if compared else {})])
        picks.append(a)
    return picks


@pytest.mark.parametrize("model", ["table", "relative", "correction"])
@pytest.mark.parametrize("explore", ["epsilon", "count"])
def test_converges_to_the_best_path_in_a_simulated_network(explore, model):
    policy = QLearningPolicy(alpha=0.3, gamma=0.0, epsilon=0.3, explore=explore, model=model)
    picks = simulate(policy, 400)
    assert picks[-100:].count(1) >= 90          # greedy now, bar the 2% exploration
    loaded = [replace(IDLE[0], utilisation=0.9, headroom_mbps=1.0), *IDLE[1:]]
    assert policy.choose(None, loaded) == 1


@pytest.mark.parametrize("model", ["table", "relative", "correction"])
@pytest.mark.parametrize("explore", ["epsilon", "count"])
def test_follows_when_the_best_path_changes_halfway(explore, model):
    """The background moves from the first path to the middle one after 200 decisions: the
    states show it, so within 10 decisions the policy takes the first path and keeps to it
    (bar exploration, which starts at 0.3 and has decayed to 0.11 by the switch)."""
    policy = QLearningPolicy(gamma=0.0, epsilon=0.3, explore=explore, model=model)
    picks = simulate(policy, 400, switch_at=200)
    assert picks[150:200].count(1) >= 40, picks[150:200]
    assert picks[210:].count(0) >= 0.9 * len(picks[210:]), picks[200:260]


@pytest.mark.parametrize("model", ["table", "correction"])
def test_follows_when_the_best_path_slows_down_unseen_in_its_state(model):
    """Path 0 answers in 1 ms, path 1 in 3 ms; after 200 decisions path 0 takes 6 ms with its
    state unchanged (a bottleneck the statistics do not show): only what the table learns can
    move flows off it, within 20 decisions (bar exploration). Both read idle alike: the
    simulated network where only learning decides."""
    policy = QLearningPolicy(gamma=0.0, epsilon=0.3, model=model)
    picks = []
    for i in range(400):
        a = policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000), IDLE[:2])
        ms = (6.0 if i >= 200 else 1.0) if a == 0 else 3.0
        policy.learn([Experience(IDLE[:2], a, replace(IDLE[a], latency_ms=ms))])
        picks.append(a)
    assert picks[150:200].count(0) >= 40, picks[150:200]
    assert picks[220:].count(1) >= 0.9 * len(picks[220:]), picks[200:260]


def test_a_linear_model_avoids_the_loaded_path_and_follows_when_it_moves():
    """The same network. Linear in fill, the model learns from the loaded path (fill 1) that
    headroom is worth much, so among the idle paths it takes the 4-hop one with the most
    headroom (30 Mbit/s), 1 ms slower than the 3-hop one: the table's best-path check does not
    apply, the property that matters does: after 200 decisions, and within 10 of the load
    moving, flows keep off the loaded path (bar exploration)."""
    policy = QLearningPolicy(gamma=0.0, epsilon=0.3, model="linear")
    picks = simulate(policy, 400, switch_at=200)
    assert picks[100:200].count(0) <= 10, picks[100:200]
    assert picks[210:].count(1) <= 0.1 * len(picks[210:]), picks[200:260]


def test_the_table_survives_a_restart_and_learning_continues(tmp_path):
    path = tmp_path / "q.json"
    first = QLearningPolicy(path, alpha=0.3, gamma=0.0, epsilon=0.3)
    simulate(first, 200)
    saved = json.loads(path.read_text())
    assert saved["updates"] == 200 and saved["q"] == first.table.q
    again = QLearningPolicy(path, alpha=0.3, gamma=0.0, epsilon=0.3)
    assert again.table.q == first.table.q and again.table.epsilon == first.table.epsilon
    assert again.table.updates == 200
    simulate(again, 1)
    assert QLearningPolicy(path).table.updates == 201


@pytest.mark.parametrize("text, field", [("{not json", "not valid JSON"), ('{"format": 9}', "'format'"),
                                         ('{"format": 1, "q": {"2:0 3:0": [0.0, 0.0]}}', "'format'"),
                                         ('{"format": 3, "q": {"h2 r4 l0": [-1.0, 1, -2.0]}}',
                                          "'format': expected 2, not 3 .*3 kept a reading per state"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"s": ["x", 1]}}', "'q'"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"s": [-1.0, -1]}}', "'q'"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"s": [-1.0, 0.5]}}', "'q'"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"s": [true, 1]}}', "'q'"),
                                         ('{"format": 2, "alpha": 7, "gamma": 0.5, "epsilon": 0.1, "q": {}}',
                                          "alpha"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"explore": "guess", "q": {}}', "explore"),
                                         ('{"format": 2, "q": {}}', "'alpha' is missing"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"h2 r4 l9": [-1.0, 1]}}', "'q': state 'h2 r4 l9': not a path state"),
                                         ('{"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.1, '
                                          '"q": {"l4": [1e300, 1]}}', "'q': state 'l4': a value above 0")])
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


def steady(b, t: float, silent=(), rx=None, tx=None, flows=None) -> None:
    """Every port of every switch but those `silent` ((dpid, port)) reports 1000 packets a second
    received and sent, as of time t: 8 Mbit/s, loss-free between switches; a port towards a host
    sends nothing, so its windows show no loss (too few packets to lose any: with none of our
    entries measured, a busy one would be no evidence). `rx`, `tx`: (dpid, port) -> the packets
    that port reports instead. Then the switch's flow statistics: `flows`[dpid], none by default;
    a switch `flows` maps to None sends no flow reply."""
    n, towards_host, rx, tx, flows = int(1000 * t), set(b.net.hosts_at), rx or {}, tx or {}, flows or {}
    for dpid, ports in b.net.ports.items():
        counts = [(p, rx.get((dpid, p), n), tx.get((dpid, p), 0 if (dpid, p) in towards_host else n))
                  for p in ports if (dpid, p) not in silent]
        b.port_stats(dpid, [PortStat(p, got, sent, got * 1000, sent * 1000, duration_s=t) for p, got, sent in counts],
                     t, answers=t)
        if flows.get(dpid, []) is not None:
            b.flow_stats(dpid, flows.get(dpid, []), t, answers=t)


def steady_penalty(b, path) -> float:
    """The reward's load term for a path under steady(): 8 Mbit/s on its thinnest link."""
    return qtable.LOAD_PENALTY_MS * max(8.0 / b.capacity_mbps(x, y) for x, y in zip(path, path[1:]))


def learnt_reward(tmp_path, before_s: float, after_s: float) -> tuple[float, Booted]:
    """One h1 -> h7 decision; its path's links delay probes by before_s until it, after_s from it."""
    booted = Booted(policy="qlearning")
    b = booted.balancer
    b.set_policy(QLearningPolicy(tmp_path / "q.json", epsilon=0.0))
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    t0 = booted.now
    steady(b, t0 - 2.0)
    for i in range(LATENCY_WINDOW):
        booted.probe_round(t0 - 1.5 + 0.2 * i, delay_s=before_s)
    steady(b, t0 - 0.5)
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17))
    assert b.policy.table.decisions == 1
    booted.probe_round(t0 + 0.2, delay_s=after_s)
    steady(b, t0 + 0.5)                      # this window began before the decision: not its outcome
    b.poll(t0 + 1.0)
    assert b.policy.table.updates == 0
    steady(b, t0 + 1.5)                      # this one began after it
    b.poll(t0 + 2.0)
    assert b.policy.table.updates == 1 and json.loads((tmp_path / "q.json").read_text())["updates"] == 1
    return b.policy.table.rewards[0], booted


class Alternating(QLearningPolicy):
    """Takes the candidate its flow's source port names (0 or 1) and records what it is told."""
    def rank(self, key, features):
        return key.src_port % 2, [0.0] * len(features)

    def learn(self, experience):
        self.told = getattr(self, "told", []) + experience


class Comparing(Alternating):
    """Alternating, comparing the chosen candidate with every other."""
    def compared(self, before, action):
        return tuple(i for i in range(len(before)) if i != action)


def decided(*sports: int, settings: Settings | None = None,
            kind: type[Alternating] = Alternating) -> tuple[Booted, Alternating, float]:
    """h1 -> h7 flows from these source ports, decided by Alternating (or `kind`) at t0 after a
    steady window: the fake network, the policy (what it is told), t0."""
    booted = Booted(policy="qlearning", settings=settings)
    booted.balancer.set_policy(policy := kind(epsilon=0.0))
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    t0 = booted.now
    steady(booted.balancer, t0 - 0.5)
    for port in sports:
        booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17, sport=port))
    return booted, policy, t0


def test_each_decision_is_credited_with_its_own_paths_outcome():
    """Two flows decided in one poll interval onto different paths: each is told what its own
    path showed after it, not one shared measurement."""
    booted, policy, t0 = decided(2, 3)
    b = booted.balancer
    paths = {flow.key.src_port: flow.path for flow in b.flows.values()}
    assert len(paths[2]) != len(paths[3])          # two paths of different lengths
    booted.probe_round(t0 + 0.2)
    steady(b, t0 + 0.5)
    steady(b, t0 + 1.5)
    b.poll(t0 + 2.0)
    assert sorted((action, after.hops) for _, action, after, _ in policy.told) == [(0, len(paths[2]) - 1),
                                                                                 (1, len(paths[3]) - 1)]
    assert all(e.alternatives == {} for e in policy.told)      # a policy that does not compare: not measured


def told_compared(booted, policy, t0: float, silent_until: float, broken: bool = False, gone: float = math.inf,
                  then=lambda at: None) -> tuple[float, set[int], dict[float, PathFeatures | None]]:
    """Polls each second from t0 + 2 until the decision (from decided) is told, a port found
    only on candidates other than the chosen one silent in each window that ends before
    `silent_until` (or its link down from t0 + 1, if `broken`), the chosen path's first
    link's sending port silent in each window that ends after `gone`, `then` called with each
    poll's time (from t0) while it is not told, probes 4 ms a link until t0 + 2
    and 1 ms from then (so that later polls read the chosen path anew): when it was told, the
    candidates the port is on, and the chosen path as each poll read it."""
    b = booted.balancer
    d = b._decisions[0]
    chosen = set(pairwise(d.candidates[d.action]))
    a, z = next(e for i, c in enumerate(d.candidates) if i != d.action for e in pairwise(c) if e not in chosen)
    port = (a, b.net.graph().edges[a, z]["out_port"])
    on = {i for i, c in enumerate(d.candidates) if (a, z) in set(pairwise(c))}
    first = port_of(b, "link")
    booted.probe_round(t0 + 0.2, delay_s=0.004)
    steady(b, t0 + 0.5)
    if broken:
        b.port_changed(*port, False, t0 + 1.0)
    read = {}
    for t in (t0 + 1.5, t0 + 2.5, t0 + 3.5, t0 + 4.5, t0 + 5.5):
        steady(b, t, silent=({port} if t < silent_until else set()) | ({first} if t > gone else set()))
        b.poll(t + 0.5)
        usable = b._usable(d.candidates[d.action], d.src, d.dst)
        read[t + 0.5 - t0] = b.outcome(d.candidates[d.action], d.src, d.dst, d.at, t + 0.5) if usable else None
        then(t + 0.5 - t0)
        if getattr(policy, "told", []):
            return t + 0.5 - t0, on, read
        if t == t0 + 1.5:
            booted.probe_round(t0 + 2.2, delay_s=0.001)
    raise AssertionError("never told")


@pytest.mark.parametrize("silent_until, told_at", [(0.0, 2.0), (2.0, 4.0), (9.0, 5.0)])
def test_a_comparing_policy_is_told_what_it_compares_as_measured_with_the_chosen_one(silent_until, told_at):
    """At the poll that measures the chosen path after the decision, the candidates the policy
    compares with are measured too, from the same statistics and probes after the decision:
    the pair a baseline table learns from. While one of them is not measured (a port of it
    silent at t0 + 1.5), the outcome waits for a poll that measures both (t0 + 4: a link's
    loss needs a window its two ends share, and the first after the silence is not), and all
    are read there, the chosen path too; at the deadline (5 s) it is told what that poll
    measured, the unmeasured one None."""
    booted, policy, t0 = decided(2, kind=Comparing)
    b = booted.balancer
    when, silenced, read = told_compared(booted, policy, t0, t0 + silent_until)
    assert when == told_at
    ((before, action, after, alternatives),) = policy.told
    _, at, _, src, dst, candidates, *_ = b.explained[-1]
    assert len(before) == 3 and sorted(alternatives) == [0, 1, 2]
    assert after == alternatives[action] == read[told_at] and (told_at == 2.0 or read[told_at] != read[2.0] is not None)
    assert alternatives == {i: b.outcome(c, src, dst, at, t0 + told_at) for i, c in enumerate(candidates)}
    assert {i for i, f in alternatives.items() if f is None} == (silenced if told_at == 5.0 else set())
    assert [f for i, f in alternatives.items() if f is not None and i != action] != [
        before[i] for i, f in alternatives.items() if f is not None and i != action]    # after the decision
    assert b.counters["outcomes_unmeasured"] == 0


def test_a_decision_measured_but_never_paired_is_told_that_reading_at_its_deadline():
    """The chosen path measured from t0 + 2 while a candidate compared with is not, a port of
    it silent from t0 + 2.5 (its last window, to t0 + 1.5, stale by t0 + 5): at the deadline
    the decision is told the last poll that measured the chosen path (t0 + 4), the unmeasured
    one None; not counted unmeasured."""
    booted, policy, t0 = decided(2, kind=Comparing)
    b = booted.balancer
    when, silenced, read = told_compared(booted, policy, t0, t0 + 9.0, gone=t0 + 2.0)
    ((_, action, after, alternatives),) = policy.told
    assert when == 5.0 and read[5.0] is None and after == alternatives[action] == read[4.0] is not None
    assert {i for i, f in alternatives.items() if f is None} == silenced and b.counters["outcomes_unmeasured"] == 0


@pytest.mark.parametrize("end", ["path broken", "controller stopped"])
def test_a_decision_measured_and_waiting_is_told_that_reading_if_it_cannot_wait(end):
    """Measured at t0 + 2 while a candidate compared with is not: if its own path breaks (a
    link of it down at t0 + 2.1), or the controller stops, before the pair is measured, it is
    told the reading it has, the unmeasured one None (a baseline table counts it unpaired),
    not counted broken."""
    booted, policy, t0 = decided(2, kind=Comparing)
    b = booted.balancer

    def then(at):
        if at == 2.0:
            b.port_changed(*port_of(b, "link"), False, t0 + 2.1) if end == "path broken" else b.close()
    when, silenced, read = told_compared(booted, policy, t0, t0 + 9.0, then=then)
    ((_, action, after, alternatives),) = policy.told
    assert when == (3.0 if end == "path broken" else 2.0) and after == alternatives[action] == read[2.0] is not None
    assert {i for i, f in alternatives.items() if f is None} == silenced and b.counters["outcomes_path_broken"] == 0


def test_a_comparing_policy_does_not_wait_for_a_broken_candidate_nor_another_policy_for_any():
    """A candidate compared with whose link is down will never be measured: the outcome is told
    at the first poll that measures the chosen path, that candidate left out. A policy that
    compares none is told then, whatever the others show."""
    booted, policy, t0 = decided(2, kind=Comparing)
    when, broken, _ = told_compared(booted, policy, t0, t0, broken=True)
    ((_, action, _, alternatives),) = policy.told
    assert when == 2.0 and set(alternatives) == {0, 1, 2} - broken and action in alternatives
    booted, policy, t0 = decided(2)
    assert told_compared(booted, policy, t0, t0 + 9.0)[0] == 2.0 and policy.told[0].alternatives == {}


def test_an_outcome_waits_for_a_window_that_shows_the_paths_loss():
    """The flow more than doubles its path's first link's rate, a window that is no evidence of
    loss: the outcome waits for the next one, which shows 30% lost, and is told that, not 0."""
    booted, policy, t0 = decided(2)
    b = booted.balancer
    (flow,) = b.flows.values()
    edge = b.net.graph().edges[flow.path[0], flow.path[1]]
    out, into = (flow.path[0], edge["out_port"]), (flow.path[1], edge["in_port"])
    booted.probe_round(t0 + 0.2)
    steady(b, t0 + 0.5)
    base = int(1000 * (t0 + 0.5))
    for k, t in enumerate((t0 + 1.5, t0 + 2.5), start=1):
        steady(b, t, rx={into: int(base + 0.7 * 2100 * k)}, tx={out: base + 2100 * k})
        b.poll(t + 0.5)
        assert len(getattr(policy, "told", [])) == k - 1, t - t0
    ((_, _, after, _),) = policy.told
    assert after.loss == pytest.approx(0.3)


def port_of(b, which: str) -> tuple[int, int]:
    """The one decision's source host's port, its destination's, or its path's first link's
    sending port."""
    d = b._decisions[0]
    if which == "link":
        path = d.candidates[d.action]
        return path[0], b.net.graph().edges[path[0], path[1]]["out_port"]
    return tuple((d.src if which == "src" else d.dst).at)


@pytest.mark.parametrize("which", ["src", "dst"])
def test_an_outcome_waits_until_each_hosts_port_is_measured_after_the_decision(which):
    """A port without recent statistics reads idle: while a host's port reports nothing after the
    decision, the decision is not learnt from; once it reports a window that began after the
    decision, the outcome has every link measured."""
    booted, policy, t0 = decided(2)
    b = booted.balancer
    port = port_of(b, which)
    booted.probe_round(t0 + 0.2)
    for t in (t0 + 0.5, t0 + 1.5):
        steady(b, t, silent={port})
        b.poll(t + 0.5)
    for t in (t0 + 2.5, t0 + 3.5):          # its first window since spans the silence: from before it
        assert not getattr(policy, "told", [])
        steady(b, t)
        b.poll(t + 0.5)
    ((_, _, after, _),) = policy.told
    assert after.unknown == 0 and b.counters["outcomes_unmeasured"] == 0


@pytest.mark.parametrize("which", ["src", "dst", "link"])
def test_an_outcome_is_not_read_from_a_port_measured_after_the_decision_and_silent_since(which):
    """A port of the path reports after the decision, then falls silent while the path's latency
    waits for a probe: by then its statistics are stale and read idle, so the decision teaches
    nothing, and is counted unmeasured at its deadline."""
    booted, policy, t0 = decided(2)
    b = booted.balancer
    port = port_of(b, which)
    for t in (t0 + 0.5, t0 + 1.5):
        steady(b, t)
        b.poll(t + 0.5)
    for t in (t0 + 2.5, t0 + 3.5):
        steady(b, t, silent={port})
        b.poll(t + 0.5)
    steady(b, t0 + 4.5, silent={port})
    booted.probe_round(t0 + 4.7)
    assert b.monitor.measured_since(port, t0)
    assert t0 + 5.0 - b.monitor.rates[port].at > b.stats_max_age_s      # stale at the next poll
    b.poll(t0 + 5.0)
    assert not getattr(policy, "told", [])
    steady(b, t0 + 5.5, silent={port})
    b.poll(t0 + 6.0)                        # past the deadline
    assert not getattr(policy, "told", []) and b.counters["outcomes_unmeasured"] == 1


def flow_window(sends_s: float, event: str | None = None, at_s: float = 3.7
                ) -> tuple[Booted, Alternating, list[float]]:
    """--q-window flow: one h1 -> h7 flow decided at t0 whose ingress entry carries 1000 packets a
    second until t0 + sends_s, then nothing; at t0 + at_s an `event` may end it: its entry
    expires ("entry gone"), or expires and the next packet of its 5-tuple is a new decision
    whose entry sends on ("replaced"), or a link of its path goes down ("path broke"), or its
    switch's next flow reply is lost ("reply lost": no new window of the entry). Its path's
    links delay probes sent before t0 + 2 by 7 ms, later ones by 1 ms. Polls every second to
    t0 + 9: the fake network, the policy, and the times (from t0) of the polls after which it
    was told something."""
    booted, policy, t0 = decided(2, settings=Settings(q_window="flow"))
    b = booted.balancer
    (flow,) = b.flows.values()
    out = b.net.graph().edges[flow.path[0], flow.path[1]]["out_port"]
    told_at = []
    for k in range(9):
        t = t0 + 0.5 + k
        booted.probe_round(t - 0.3, delay_s=0.007 if t < t0 + 2 else 0.001)
        packets = int(1000 * (min(t, t0 + sends_s) - t0))
        cookie = b.flows[flow.key].cookie if flow.key in b.flows else flow.cookie
        lost = event == "reply lost" and t - t0 < at_s <= t + 1 - t0
        steady(b, t, flows={flow.path[0]: None if lost else [FlowStat(cookie, out, packets, duration_s=t - t0)]})
        if event and t - t0 < at_s <= t + 1 - t0:
            if event == "path broke":
                b.port_changed(flow.path[0], out, False, t0 + at_s)
            elif event != "reply lost":
                b.flow_removed(flow.path[0], flow.cookie)
            if event == "replaced":
                booted.now = t0 + at_s
                h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
                booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17, sport=2))
        b.poll(t + 0.5)
        told_at += [t + 0.5 - t0] * (len(getattr(policy, "told", [])) - len(told_at))
    return booted, policy, told_at


def told_latency_per_link(policy: Alternating, which: int = 0) -> float:
    """The one-way latency a link of the chosen path showed in the outcome the policy was told."""
    before, action, after, _ = policy.told[which]
    return after.latency_ms / before[action].hops


def test_a_flow_windows_outcome_is_the_mean_of_what_its_path_showed_while_it_sent():
    """The flow sends for 4.5 s. It is told once, after the poll that finds its entry's window
    empty, the mean of its path's readings, one for each window it sent in: the first window
    after the decision, then each poll's (latency: the least of the last three probes sent
    since the decision: 7, 1, 1, 1 ms a link)."""
    booted, policy, told_at = flow_window(sends_s=4.5)
    assert told_at == [6.0]
    assert told_latency_per_link(policy) == pytest.approx((7 + 1 + 1 + 1) / 4)


def test_a_flow_that_ended_within_its_first_window_is_told_that_window_alone():
    """A short flow (a probe train): its first window (7 ms a link), as --q-window first would
    tell it, not the next (1 ms), in which it sent nothing."""
    booted, policy, told_at = flow_window(sends_s=0.5)
    assert told_at == [3.0] and told_latency_per_link(policy) == pytest.approx(7.0)


@pytest.mark.parametrize("event, at_s, told, mean", [
    (None, None, [5.0], (7 + 1 + 1) / 3),
    ("entry gone", 3.7, [4.0], (7 + 1) / 2),
    ("replaced", 3.7, [4.0, 9.0], (7 + 1) / 2),
    ("replaced", 0.7, [4.0, 6.0], 1.0),     # its first window: the new entry's first reply is no evidence of loss
    ("path broke", 3.7, [4.0], (7 + 1) / 2),
    ("reply lost", 2.7, [5.0], (7 + 1) / 2)])      # no reading at the poll without a new window
def test_a_flow_window_ends_at_its_bound_or_when_its_entry_goes(monkeypatch, event, at_s, told, mean):
    """A flow that never stops is told at FLOW_WINDOW_S; one whose entry expired, or was replaced
    by a new decision's on its 5-tuple, or whose path broke, at the next poll, what its own
    path showed until then (a path broken after its first reading is not counted broken). A
    replacement before the first reading ends the old decision there: the new entry's windows
    are not its own. A poll without a new window of the entry adds no reading. Each decision
    is told once, the mean of its readings."""
    monkeypatch.setattr("controller.core.balancer.FLOW_WINDOW_S", 5.0)
    booted, policy, told_at = flow_window(sends_s=100, event=event, at_s=at_s)
    assert told_at == told and told_latency_per_link(policy) == pytest.approx(mean)
    assert booted.balancer.counters["outcomes_path_broken"] == 0


def test_a_flow_still_sending_as_the_controller_stops_is_told_what_it_has_read():
    """Polls to t0 + 9 and the flow sends on: not told yet (its bound is 30 s); on close, the mean
    of its readings so far, one a poll from t0 + 2: the first window's 7 ms a link, then seven of
    1 ms; and once only."""
    booted, policy, told_at = flow_window(sends_s=100)
    assert told_at == []
    booted.balancer.close()
    assert len(policy.told) == 1 and told_latency_per_link(policy) == pytest.approx((7 + 7 * 1) / 8)
    booted.balancer.close()
    assert len(policy.told) == 1


def test_a_decision_not_yet_read_is_not_told_as_the_controller_stops():
    booted, policy, _ = decided(2, settings=Settings(q_window="flow"))
    booted.balancer.close()
    assert not getattr(policy, "told", [])


def test_a_flows_outcome_averages_utilisation_loss_and_latency_and_keeps_the_last_readings_state():
    """The reward is linear in the three, so their means give the mean reward; hops, headroom and
    capacity (the next state's) are the last reading's."""
    from controller.core.balancer import Decision
    d = Decision(0.0, FlowKey("10.0.0.1", "10.0.0.7", 17, 1, 2), [[1, 2]], None, None, [], 0)
    d = d.seen(PathFeatures(0.2, 0.0, 4.0, 1, headroom_mbps=20.0), 1.0).seen(
        PathFeatures(0.6, 0.1, 2.0, 1, headroom_mbps=5.0), 2.0)
    assert d.outcome() == PathFeatures(pytest.approx(0.4), pytest.approx(0.05), pytest.approx(3.0), 1,
                                       headroom_mbps=5.0)
    assert qtable.reward(d.outcome()) == pytest.approx((qtable.reward(PathFeatures(0.2, 0.0, 4.0, 1)) +
                                                        qtable.reward(PathFeatures(0.6, 0.1, 2.0, 1))) / 2)
    assert d.read_at == 2.0


def test_a_decision_whose_path_broke_teaches_nothing_and_is_counted():
    """A link of the chosen path goes down before the outcome is measured: the flow is re-routed,
    so what follows is another path's, and the decision is counted, not learnt from."""
    booted, policy, t0 = decided(2)
    b = booted.balancer
    dpid, port = port_of(b, "link")
    b.port_changed(dpid, port, False, t0 + 0.1)
    booted.probe_round(t0 + 0.2)
    for t in (t0 + 0.5, t0 + 1.5, t0 + 2.5):
        steady(b, t)
        b.poll(t + 0.5)
    assert not b._decisions and not getattr(policy, "told", [])
    assert b.counters["outcomes_path_broken"] == 1 and b.counters["outcomes_unmeasured"] == 0


def test_decisions_beyond_those_kept_are_counted(monkeypatch):
    """More decisions awaiting their outcome than are kept: the oldest go unlearnt, counted."""
    monkeypatch.setattr("controller.core.balancer.MAX_DECISIONS", 2)
    booted, policy, t0 = decided(2, 3, 4)
    b = booted.balancer
    assert len(b._decisions) == 2 and b.counters["outcomes_overflowed"] == 1


def test_an_outcome_takes_the_destination_ports_loss_from_after_the_decision_not_before():
    """h7's port sends half of what our entry offers it before the decision, a loss still held
    when the outcome's links are all measured; but the switch's flow replies since are not in,
    so that port's windows are no evidence. The outcome waits for one that is, from after the
    decision (20% lost), and is told that, not the half held from before."""
    booted = Booted(policy="qlearning")
    b = booted.balancer
    b.set_policy(policy := Alternating(epsilon=0.0))
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    t0, dst = booted.now, next(at for at in b.net.hosts_at if at.dpid == booted.of.dpid["s7"])

    def report(t: float, sent: int, entry: bool = True) -> None:
        """steady() at t, h7's port having sent `sent`; our entry towards it (1000 packets a
        second) in s7's flow reply, or no flow reply from s7."""
        ours = [FlowStat(cookie=1, out_port=dst.port, packets=int(1000 * t), duration_s=t)] if entry else None
        steady(b, t, tx={tuple(dst): sent}, flows={dst.dpid: ours})
        b.poll(t + 0.5)

    for t in (t0 - 3.5, t0 - 2.5, t0 - 1.5, t0 - 0.5):
        report(t, int(500 * t))
    assert b.monitor.loss_since(dst, t0 - 3.0) == pytest.approx(0.5)
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17, sport=2))
    booted.probe_round(t0 + 0.2)
    for t in (t0 + 0.5, t0 + 1.5):
        report(t, int(500 * t), entry=False)
    assert not getattr(policy, "told", [])
    report(t0 + 2.5, int(500 * (t0 + 1.5)) + 800)
    ((_, _, after, _),) = policy.told
    assert after.loss == pytest.approx(0.2) and b.counters["outcomes_unmeasured"] == 0


def expected_reward(booted: Booted, link_ms: float) -> float:
    """Minus the probes' delay on each link of the flow's path and the load term of steady()."""
    (flow,) = booted.balancer.flows.values()
    return -link_ms * (len(flow.path) - 1) - steady_penalty(booted.balancer, flow.path)


def test_the_reward_is_what_the_path_showed_after_the_decision_not_before(tmp_path):
    """Probes 30 ms a link until the decision and 1 ms after it: a good outcome (-1 ms a link);
    the reverse, a bad one (-30 ms): the window before the decision never counts. Both carry
    the load term of steady's traffic."""
    good, booted = learnt_reward(tmp_path, 0.030, 0.001)
    assert good == pytest.approx(expected_reward(booted, 1.0))
    (tmp_path / "again").mkdir()
    bad, booted = learnt_reward(tmp_path / "again", 0.001, 0.030)
    assert bad == pytest.approx(expected_reward(booted, 30.0))


def test_the_balancer_learns_per_decision_and_reset_empties_the_table(tmp_path):
    _, booted = learnt_reward(tmp_path, 0.010, 0.010)
    b = booted.balancer
    (flow,) = b.flows.values()
    ((state, (value, visits)), (level, (level_value, _))) = sorted(b.policy.table.q.items(), key=lambda kv: len(kv[0]),
                                                                   reverse=True)
    assert state.startswith(f"h{len(flow.path) - 1} ") and state.endswith(" " + level) and visits == 1
    t = b.policy.table      # a first visit, the state after never met: r + gamma r / (1 - gamma)
    assert value == level_value == pytest.approx(expected_reward(booted, 10.0) / (1 - t.gamma))
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


def test_learning_survives_a_policy_switch_back_and_forth(tmp_path):
    settings = Settings(q_table=str(tmp_path / "q.json"), q_epsilon=0.0)
    b = Booted(policy="qlearning", settings=settings).balancer
    b.policy.learn([Experience(IDLE, 1, replace(IDLE[1], latency_ms=3.0))])
    learnt = dict(b.policy.table.q)
    b.set_policy(make_policy("shortest", settings))
    b.set_policy(make_policy("qlearning", settings))
    assert b.policy.table.q == learnt and b.policy.table.updates == 1


def test_a_path_without_inter_switch_links_has_a_state():
    """Both hosts on one switch: no link limits the path (headroom inf); NaN is no headroom."""
    assert qtable.state_of(PathFeatures(0.0, 0.0, 0.0, 0)) == "h0 r10 l0"
    assert qtable.state_of(PathFeatures(0.0, 0.0, 0.0, 1, headroom_mbps=float("nan"))) == "h1 r0 l0"


def test_the_seed_setting_decides_every_random_choice():
    """Runs meant to be independent choose differently, one seed repeats a run's choices, and
    the path and member choosers of one seed do not draw the same numbers."""
    keys = [FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000) for i in range(40)]
    members = [MemberLoad(f"m{i}", 1.0, 0, None, None) for i in range(3)]

    def picks(kind, name, seed):
        settings = Settings(q_epsilon=1.0, seed=seed)
        if kind == "paths":
            policy = make_policy(name, settings)
            return [policy.choose(k, IDLE) for k in keys]
        policy = member_policy_factory(name, settings)()
        return [policy.choose("web", members, k) for k in keys]

    for kind, name in [("paths", "qlearning"), ("paths", "random"), ("members", "qlearning"), ("members", "random")]:
        assert picks(kind, name, 1) == picks(kind, name, 1) != picks(kind, name, 2), (kind, name)
    assert picks("paths", "random", 1) != picks("members", "random", 1)
    # services share one picker, also when one is switched to it later (REST): none repeats another's draws
    settings = Settings(seed=1)
    first = member_policy_factory("random", settings)()
    assert member_policy_factory("random", settings, [first])() is first
    # the draws of one seed: the traffic's (random.Random(seed)), the path and the member learner's
    settings = Settings(seed=1)
    draws = [make_policy("qlearning", settings)._rng.random(),
             member_policy_factory("qlearning", settings)()._rng.random(), random.Random(1).random()]
    assert len(set(draws)) == 3


def test_reset_explores_again_from_the_starting_rate():
    policy = QLearningPolicy(alpha=0.3, gamma=0.0, epsilon=0.3)
    simulate(policy, 300)
    assert policy.table.epsilon < 0.1
    policy.reset()
    assert policy.table.epsilon == 0.3 and policy.table.decisions == 0


@pytest.mark.parametrize("probe_after_s, learnt", [(7.0, 1), (None, 0)])
def test_an_outcome_waits_for_a_probe_sent_after_the_decision(tmp_path, probe_after_s, learnt):
    """Probes every 10 s: a decision 7 s before the next probe is learnt from it; with no probe
    at all it is dropped once the deadline passes, and counted."""
    booted = Booted(policy="qlearning", settings=Settings(probe_interval_s=10.0))
    b = booted.balancer
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    t0 = booted.now
    steady(b, t0 - 2.0)
    steady(b, t0 - 1.0)                      # the path's load is measured at the decision
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17))
    for t in range(1, 16):
        steady(b, t0 + t - 0.5)
        if probe_after_s is not None and t == probe_after_s:
            booted.probe_round(t0 + t - 0.2, delay_s=0.002)
        b.poll(t0 + t)
    assert b.policy.table.updates == learnt and b.counters["outcomes_unmeasured"] == 1 - learnt
    assert not b._decisions


def test_a_switch_of_policy_forgets_the_decisions_awaiting_their_outcome():
    booted = Booted(policy="qlearning")
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, proto=17))
    assert booted.balancer._decisions
    booted.balancer.set_policy(make_policy("qlearning"))
    assert not booted.balancer._decisions


def test_the_linear_update_is_the_error_spread_over_the_features_by_hand():
    """The step is 1/updates down to alpha: a first update fits its reward, a later one moves
    alpha of the way."""
    x, x_next = (1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0), (1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    first = qtable.LinearQ(alpha=0.05, gamma=0.0, epsilon=0.0)
    first.update(x, -20.0, x_next)
    assert first.value(x) == pytest.approx(-20.0) and first.updates == 1
    fourth = qtable.LinearQ(alpha=0.05, gamma=0.0, epsilon=0.0, updates=3)
    fourth.update(x, -20.0, x_next)
    assert fourth.value(x) == pytest.approx(0.25 * -20.0)       # step 1/4, above alpha
    t = qtable.LinearQ(alpha=0.5, gamma=0.5, epsilon=0.0, w=[0.0, -10.0, 0.0, 0.0, 0.0, 0.0, 0.0], updates=9)
    assert t.gamma == 0.0                                        # a bandit, whatever was asked
    assert t.value(x) == -5.0
    # error = r - Q(x) = -20 + 5 = -15; |x|^2 = 2.25; step max(1/10, 0.5); each w_i += 0.5 * -15 * x_i / 2.25
    t.update(x, -20.0, x_next)
    assert t.w == pytest.approx([-10 / 3, -10 - 5 / 3, 0, 0, 0, 0, -10 / 3])
    assert t.value(x) == pytest.approx(-5.0 + 0.5 * -15)        # half the error corrected, as alpha says
    assert t.rewards == [-20.0] and t.updates == 10


def test_the_linear_model_stays_bounded_where_bootstrapping_diverged():
    """A flow that congests its path, again and again: 5 ms and 30% full before, 60 ms and 90%
    full after. With gamma 0.5 the error grew x1.096 an update (weights past 1e6 in 100); as a
    bandit the value settles on the reward. A reward that is not a number is not learnt."""
    t = qtable.LinearQ(alpha=0.3, gamma=0.5, epsilon=0.0)
    before = qtable.phi(PathFeatures(0.3, 0.0, 5.0, 2, headroom_mbps=7.0))
    after = qtable.phi(PathFeatures(0.9, 0.0, 60.0, 2, headroom_mbps=1.0))
    for _ in range(10_000):
        t.update(before, -69.0, after)
    assert t.value(before) == pytest.approx(-69.0) and max(abs(w) for w in t.w) < 100
    kept = list(t.w)
    t.update(before, -math.inf, after)
    t.update(before, math.nan, after)
    assert t.w == kept and t.updates == 10_000


def test_the_linear_model_learns_what_its_starting_sign_gets_wrong():
    """Two idle paths alike but for hops, the longer one quick (2 ms) and the shorter one slow
    (20 ms: a queue its features do not show). The first update makes every weight negative,
    hops too, so a model that did not learn would keep to the shorter path; this one learns a
    positive hops weight and takes the longer path."""
    policy = QLearningPolicy(alpha=0.3, gamma=0.0, epsilon=0.3, model="linear")
    short, long = PathFeatures(0.0, 0.0, 0.0, 2, headroom_mbps=20), PathFeatures(0.0, 0.0, 0.0, 4, headroom_mbps=20)
    picks = []
    for i in range(300):
        a = policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000), [short, long])
        policy.learn([Experience([short, long], a, replace([short, long][a], latency_ms=20.0 if a == 0 else 2.0))])
        picks.append(a)
    hops = qtable.FEATURES.index("hops")
    assert policy.table.w[hops] > 0 and picks[-100:].count(1) >= 90, (policy.table.w, picks[-100:])


def test_the_linear_features_mean_the_same_on_any_network():
    same_switch = qtable.phi(PathFeatures(0.0, 0.0, 0.2, 0))
    assert same_switch == (1.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0)
    thin, full = PathFeatures(0.5, 0.0, 2.0, 3, headroom_mbps=5.0), PathFeatures(1.0, 0.2, 900.0, 20, 2, 0.0)
    assert qtable.phi(thin) == (1.0, 0.5, 0.0, 0.2, 3 / 8, 0.0, 1.0)
    assert qtable.phi(full) == (1.0, 1.0, 0.2, 10.0, 1.0, 1.0, 1.0)      # capped: no input runs away
    assert qtable.phi(replace(thin, headroom_mbps=50.0))[-1] == 0.1


def test_a_linear_model_values_a_condition_never_met_from_the_nearest_ones():
    """Taught only that a 90%-full path is slow and an idle one quick, it ranks a 60%-full one
    in between, where a table would value that state by its load level only once it met it."""
    policy = QLearningPolicy(alpha=0.3, gamma=0.0, epsilon=0.0, model="linear")
    idle, full = IDLE[0], replace(IDLE[0], utilisation=0.9, headroom_mbps=1.0)
    for _ in range(50):
        policy.learn([Experience([idle], 0, replace(idle, latency_ms=1.0)), Experience([full], 0, replace(full, latency_ms=30.0))])
    between = replace(IDLE[0], utilisation=0.6, headroom_mbps=4.0)
    assert policy.scores([idle])[0] < policy.scores([between])[0] < policy.scores([full])[0]


def test_a_linear_model_survives_a_restart_and_a_file_of_the_other_kind_is_refused(tmp_path, caplog):
    path = tmp_path / "q.json"
    first = QLearningPolicy(path, alpha=0.3, gamma=0.0, epsilon=0.3, model="linear")
    simulate(first, 100)
    saved = json.loads(path.read_text())
    assert saved["model"] == "linear" and saved["w"] == first.table.w and saved["q"] == {}
    again = QLearningPolicy(path, alpha=0.3, gamma=0.0, epsilon=0.3, model="linear")
    assert again.table.w == first.table.w and again.table.updates == 100
    with caplog.at_level(logging.WARNING, logger="lb.policy"):
        table = QLearningPolicy(path, alpha=0.3, gamma=0.0, epsilon=0.3)
    assert table.table.q == {} and f"{path}: field 'model': the file holds a 'linear' model" in caplog.text
    simulate(table, 5)
    assert json.loads(path.read_text())["w"] == first.table.w          # not saved over
    again.reset()
    assert again.table.w == [0.0] * len(qtable.FEATURES) and json.loads(path.read_text())["updates"] == 0


@pytest.mark.parametrize("w, field", [([1.0] * 6, "field w: expected 7"), ([1, True, 0, 0, 0, 0, 0], "field 'w'"),
                                      ("1,2", "field 'w'"), (None, "field 'w'")])
def test_a_corrupt_linear_model_is_refused_naming_the_field(tmp_path, w, field):
    path = tmp_path / "q.json"
    data = qtable.LinearQ(alpha=0.3, gamma=0.0, epsilon=0.1).to_json()
    path.write_text(json.dumps({**data, "w": w}))
    with pytest.raises(QTableError, match=f"^{path}: {field}"):
        qtable.load(path, qtable.LinearQ)


@pytest.mark.parametrize("model", ["linear", "baseline"])
def test_a_linear_or_baseline_model_explores_by_epsilon_only(model):
    with pytest.raises(QTableError, match="explore: count"):
        qtable.MODELS[model](alpha=0.3, gamma=0.0, epsilon=0.1, explore="count")
    with pytest.raises(ConfigError, match=f"LB_Q_EXPLORE: count exploration: a {model} "):
        Settings(q_model=model, q_explore="count").validate()


def test_a_baseline_model_refuses_the_flow_window():
    """It pairs two paths as one poll read them; a window over the flow's life would be ignored."""
    with pytest.raises(ConfigError, match="LB_Q_WINDOW: flow: the baseline"):
        Settings(q_model="baseline", q_window="flow").validate()


@pytest.mark.parametrize("change, field", [
    ({"model": None}, "field 'model': the file holds a 'table' model"),     # a file from before models
    ({"q": {"h2 r4 l0": [-1.0, 1]}}, "field 'q': state 'h2 r4 l0': a linear model's file has no states"),
    ({"alpha": True}, "field alpha: must be in"), ({"decisions": True}, "field 'decisions'"),
    ({"rewards": [-1.0, False]}, "field 'rewards'")])
def test_a_linear_model_file_with_a_wrong_field_is_refused_by_name(tmp_path, change, field):
    path = tmp_path / "q.json"
    data = {**qtable.LinearQ(alpha=0.3, gamma=0.0, epsilon=0.1).to_json(), **change}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    with pytest.raises(QTableError, match=f"^{path}: {field}"):
        qtable.load(path, qtable.LinearQ)


def test_a_relative_state_is_a_paths_standing_among_its_candidates():
    """Utilisation over the least utilised measured candidate's (under a point: least-loaded's
    own tie), hops over the fewest (capped at 3), congested or not; a candidate of unknown
    load, which reads idle, is not the least and has no state learnt ("u")."""
    least, near = PathFeatures(0.30, 0.0, 1.0, 3), PathFeatures(0.305, 0.0, 1.0, 2)
    busier, full = PathFeatures(0.45, 0.0, 1.0, 5), PathFeatures(0.60, 0.0, 1.0, 2)
    lossy, queued = PathFeatures(0.31, 0.05, 1.0, 9), PathFeatures(0.30, 0.0, 12.0, 2)
    blind = PathFeatures(0.0, 0.0, 0.0, 2, unknown=1)
    keys = qtable.RelativeQ.keys([least, near, busier, full, lossy, queued, blind])
    assert keys == ["g0 x1 c0", "g0 x0 c0", "g2 x3 c0", "g3 x0 c0", "g1 x3 c1", "g0 x0 c1", "u"]
    # hops against every candidate's: a shorter path of unknown load is still shorter
    assert qtable.RelativeQ.keys([replace(blind, hops=1), least, busier]) == ["u", "g0 x2 c0", "g2 x3 c0"]
    assert all(qtable.RelativeQ.refused(k, -1.0) is None for k in keys[:-1])
    assert qtable.RelativeQ.refused("u", -1.0) and qtable.RelativeQ.refused("h2 r4 l0", -1.0)
    assert QTable.refused("g0 x1 c0", -1.0) and QTable.keys([least, near]) == [qtable.state_of(least),
                                                                                qtable.state_of(near)]


def test_a_relative_table_learns_each_decisions_own_reward_and_transfers_between_networks():
    """Gamma 0 whatever is asked (a standing after the decision is not the decision's doing):
    a state's value is the mean of its rewards. Two candidates read alike but for load: the
    2-hop path 15 points busier than the idle 4-hop one. Nothing learnt, it goes by the reading,
    as least-loaded would; flows on the long path meet 4 ms and on the short one 1 ms, so it
    learns to take the short one, and takes it on another network (3 and 5 hops, at 40% and
    30%): the same standings, where a path table taught the same has met neither path's state
    nor load level and goes by the reading."""
    t = qtable.RelativeQ(alpha=0.05, gamma=0.9, epsilon=0.0)
    assert t.gamma == 0.0 and t.update("g0 x0 c0", -3.0, None) == -3.0
    assert t.update("g0 x0 c0", -5.0, None) == pytest.approx(-4.0)
    policy, table = (QLearningPolicy(gamma=0.5, epsilon=0.0, model=m) for m in ("relative", "table"))
    short, long = PathFeatures(0.15, 0.0, 1.0, 2), PathFeatures(0.0, 0.0, 1.0, 4)
    assert policy.choose(None, [short, long]) == 1
    for _ in range(5):
        policy.learn([Experience([short, long], 1, replace(long, latency_ms=4.0))])
    assert policy.choose(None, [short, long]) == 0     # -(1 + 10 x 0.15) = -2.5 now, against -4 met
    for _ in range(5):
        policy.learn([Experience([short, long], 0, replace(short, latency_ms=1.0))])
    assert policy.table.q == {"g0 x2 c0": [-4.0, 5], "g2 x0 c0": [pytest.approx(-2.5), 5]}
    for a, after in ((1, replace(long, latency_ms=4.0)), (0, replace(short, latency_ms=1.0))):
        table.learn([Experience([short, long], a, after)] * 5)
    elsewhere = [PathFeatures(0.40, 0.0, 1.0, 3), PathFeatures(0.30, 0.0, 1.0, 5)]
    assert policy.choose(None, elsewhere) == 0 and table.choose(None, elsewhere) == 1


@pytest.mark.parametrize("model, learnt, foreign, refusal", [("relative", "g3 x0 c0", "h2 r4 l0", "not a relative state"),
                                                           ("correction", "h2 r1 l3", "g0 x1 c0", "not a path state"),
                                                           ("baseline", "g0 x1 c00", "h2 r4 l0", "not a pair state"),
                                                           ("baseline", "g0 x1 c00", "g0 x-0 c00", "not a pair state")])
def test_a_relative_or_correction_table_survives_a_restart_reads_change_nothing_and_other_files_are_refused(
        model, learnt, foreign, refusal, tmp_path, caplog):
    path = tmp_path / "q.json"
    first = QLearningPolicy(path, gamma=0.0, epsilon=0.3, model=model)
    simulate(first, 100)
    saved = json.loads(path.read_text())
    assert saved["model"] == model and saved["q"] == first.table.q and learnt in saved["q"]     # the loaded path
    again = QLearningPolicy(path, gamma=0.0, epsilon=0.3, model=model)
    before = copy.deepcopy(again.table)
    again.scores(IDLE), again.rank(None, IDLE), again.describe()
    assert again.table == before and again.table.q == first.table.q
    with caplog.at_level(logging.WARNING, logger="lb.policy"):
        table = QLearningPolicy(path, gamma=0.0, epsilon=0.3)
    assert table.table.q == {} and f"{path}: field 'model': the file holds a '{model}' model" in caplog.text
    path.write_text(json.dumps({**saved, "q": {foreign: [-1.0, 1]}}))
    with pytest.raises(QTableError, match=f"^{path}: field 'q': state '{foreign}': {refusal}"):
        qtable.load(path, qtable.MODELS[model])


def test_a_correction_table_learns_how_much_worse_than_its_reading_a_path_turns_out():
    """Gamma 0 whatever is asked; a state's value is the mean of reward(after) - reward(reading
    at the decision), so two flows into one state teach it alike whether the network read busy
    or calm, where the path table's value is the mean of what they met. Nothing learnt, a
    candidate is worth its reading (the 4-hop path, idle); once its flows meet 6 ms where it
    read 1, it is worth its reading minus 5, and the 2-hop one, whose state and load level
    were never met, is worth its reading alone."""
    policy, table = (QLearningPolicy(gamma=g, epsilon=0.0, model=m) for g, m in ((0.5, "correction"), (0.0, "table")))
    assert policy.table.gamma == 0.0
    calm, busy = PathFeatures(0.3, 0.0, 1.0, 2), PathFeatures(0.3, 0.0, 8.0, 2)   # one state: h2 r10 l1
    for p in (policy, table):
        p.learn([Experience([calm], 0, replace(calm, latency_ms=2.0)), Experience([busy], 0, replace(busy, latency_ms=9.0))])
    assert policy.table.q == {"h2 r10 l1": [-1.0, 2], "l1": [-1.0, 2]} and policy.describe()["mean_correction"] == -1
    assert table.table.q["h2 r10 l1"] == [pytest.approx(-8.5), 2]

    policy = QLearningPolicy(epsilon=0.0, model="correction")
    short, long = PathFeatures(0.3, 0.0, 1.0, 2), PathFeatures(0.0, 0.0, 1.0, 4)
    assert policy.scores([short, long]) == [4.0, 1.0] and policy.choose(None, [short, long]) == 1
    policy.learn([Experience([short, long], 1, replace(long, latency_ms=6.0))])
    assert policy.table.q == {"h4 r10 l0": [-5.0, 1], "l0": [-5.0, 1]}
    assert policy.scores([short, long]) == [4.0, 6.0] and policy.choose(None, [short, long]) == 0
    policy.learn([Experience([short, long], 0, replace(short, latency_ms=1.0))])     # as it read: nothing to correct
    assert policy.table.q["h2 r10 l1"] == [0.0, 1] and policy.choose(None, [short, long]) == 0
    # a 3-hop path at level 0, its state never met: its level's correction (-5), at most 0
    middle = PathFeatures(0.1, 0.0, 0.5, 3)
    assert policy.scores([middle]) == [pytest.approx(0.5 + 1.0 + 5.0)]
    # a queue read at the decision that drains by the outcome: a correction above 0, which a
    # state never met does not inherit from its level, and no worth above 0
    queued = PathFeatures(0.3, 0.0, 30.0, 3)
    policy.learn([Experience([queued], 0, replace(queued, latency_ms=2.0))])
    assert policy.table.q["h3 r10 l4"] == [28.0, 1] and policy.table.q["l4"] == [28.0, 1]
    assert policy.scores([replace(queued, latency_ms=20.0)]) == [0.0]          # -23 + 28: capped at 0
    assert policy.scores([replace(queued, latency_ms=20.0, hops=4)]) == [pytest.approx(23.0)]    # l4's 28 not taken


def test_a_baseline_table_leaves_least_loadeds_choice_only_where_a_paired_gain_is_shown(tmp_path):
    """Nothing learnt: least-loaded's choice, the idle 4-hop path, though the 2-hop one, a
    twentieth full, reads better. A decision that left it teaches its pair state the chosen
    path's reward minus the baseline path's, both at one poll; one that kept it, whose
    baseline was not measured then, or whose baseline's load was unknown at the decision,
    teaches nothing. A flow leaves the baseline once the pair is met TRUSTED_VISITS times and
    the mean advantage, 4 ms here, beats SPREAD_MS / sqrt(the flows it weighs): not after 20
    flows (4.47), after 30 (29.1 weighed: 3.71)."""
    path = tmp_path / "q.json"
    policy = QLearningPolicy(path, epsilon=0.0, gamma=0.5, model="baseline")
    assert policy.table.gamma == 0.0
    short, long = PathFeatures(0.05, 0.0, 0.1, 2), PathFeatures(0.0, 0.0, 5.0, 4)
    assert reward(short) > reward(long) and policy.choose(None, [short, long]) == 1
    assert policy.table.keys([short, long]) == ["g1 x-2 c00", "b"] and policy.scores([short, long]) == [SPREAD_MS, 0.0]
    met = (replace(short, utilisation=0.1, latency_ms=1.0), replace(long, latency_ms=6.0))    # rewards -2, -6
    left = Experience([short, long], 0, met[0], dict(enumerate(met)))
    blind = [replace(short, utilisation=1.0), replace(long, unknown=1)]    # least-loaded's: unknown before full
    assert policy.table.keys(blind) == ["u", "b"] and policy.choose(None, blind) == 1
    assert policy.compared([short, long], 0) == (1,) and policy.compared([short, long], 1) == ()
    assert policy.compared(blind, 0) == ()
    policy.learn([Experience([short, long], 1, met[1]), Experience([short, long], 0, met[0], {0: met[0], 1: None}),
                  Experience(blind, 0, met[0], dict(enumerate(met)))])
    assert policy.table.q == {} and policy.table.updates == 0 and policy.unlearnt == 3
    assert policy.describe()["unpaired"] == 1
    policy.learn([left] * 20)
    assert policy.table.q == {"g1 x-2 c00": [pytest.approx(4.0), 20]} and policy.describe()["mean_advantage"] == 4.0
    assert policy.scores([short, long]) == [pytest.approx(SPREAD_MS / math.sqrt(20) - 4.0), 0.0]
    assert policy.choose(None, [short, long]) == 1
    policy.learn([left] * 10)
    assert policy.choose(None, [short, long]) == 0 and policy.describe()["trusted"] == ["g1 x-2 c00"]
    key = FlowKey("10.0.0.1", "10.0.0.7", 17, 40000, 7000)
    assert policy.choose(key, [short, long]) == 0 and policy.describe()["left"] == {"explored": 0, "trusted": 1}
    again = QLearningPolicy(path, epsilon=0.0, model="baseline")      # saved as learnt, and loadable
    assert again.table.q == policy.table.q and again.choose(None, [short, long]) == 0


@pytest.mark.parametrize("mean, visits, leaves", [(30.0, 9, False), (30.0, 10, True),
                                                  (SPREAD_MS / math.sqrt(16), 16, False)])
def test_a_baseline_table_trusts_a_pair_met_ten_times_and_ties_go_to_the_baseline(mean, visits, leaves):
    """SPIBB's rule: a pair met fewer than TRUSTED_VISITS times keeps the baseline whatever its
    mean; a lower bound of exactly 0 is no gain, even for a path that reads better."""
    policy = QLearningPolicy(epsilon=0.0, model="baseline")
    short, long = PathFeatures(0.05, 0.0, 0.1, 2), PathFeatures(0.0, 0.0, 5.0, 4)
    policy.table.q["g1 x-2 c00"] = [mean, visits]
    assert policy.choose(None, [short, long]) == (0 if leaves else 1)


@pytest.mark.parametrize("value, refused", [(1e300, True), (-1000.5, True), (1000.0, False), (-3.0, False)])
def test_a_baseline_file_holds_no_advantage_beyond_a_second(tmp_path, value, refused):
    """A hostile "g3 x3 c10": 1e300, 10**99 visits would send flows to congested paths three
    hops longer for thousands of updates; an advantage is a difference of two rewards."""
    path = tmp_path / "q.json"
    path.write_text(json.dumps({**qtable.BaselineQ(alpha=0.05, gamma=0.0, epsilon=0.1).to_json(),
                                "q": {"g3 x3 c10": [value, 10 ** 99]}}))
    if refused:
        with pytest.raises(QTableError, match=f"^{path}: field 'q': state 'g3 x3 c10': an advantage beyond 1000 ms"):
            qtable.load(path, qtable.BaselineQ)
    else:
        assert qtable.load(path, qtable.BaselineQ).q == {"g3 x3 c10": [value, 10 ** 99]}


@pytest.mark.parametrize("trusted", [False, True])
def test_a_baseline_table_counts_the_decisions_that_left_the_baseline_by_their_cause(trusted):
    """Every decision drawn at random (epsilon 1, not decaying): those off the baseline count
    as explored, also where a trusted pair is the greedy choice too; none as trusted."""
    policy = QLearningPolicy(epsilon=1.0, model="baseline", seed=3)
    policy.table.epsilon_decay = 1.0
    short, long = PathFeatures(0.05, 0.0, 0.1, 2), PathFeatures(0.0, 0.0, 5.0, 4)
    if trusted:
        policy.table.q["g1 x-2 c00"] = [30.0, 10]
    picks = [policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000), [short, long]) for i in range(200)]
    assert 0 < picks.count(0) < 200 and policy.describe()["left"] == {"explored": picks.count(0), "trusted": 0}


def test_a_baseline_table_explores_only_where_it_is_cheap_and_can_learn():
    """Drawing at random (epsilon 1), only the baseline (idle, 4 hops) or a candidate under 10
    points busier than it and not congested (5 points, 2 hops; half a point, 5 hops): never one
    10 points busier or more, nor a congested one (the first, losing packets), nor one of
    unknown load, which teaches no pair; a congested baseline does not stop it. Least-loaded's
    choice alone once its own load is unknown. Greedy, a trusted pair is taken whatever its gap."""
    policy = QLearningPolicy(epsilon=1.0, model="baseline", seed=5)
    policy.table.epsilon_decay = 1.0
    base, near = PathFeatures(0.0, 0.0, 5.0, 4), PathFeatures(0.05, 0.0, 0.1, 2)
    busier, lossy, blind = replace(near, utilisation=0.1), replace(near, loss=0.05), replace(near, unknown=1)
    level = replace(base, utilisation=0.005, hops=5)
    candidates = [busier, near, lossy, base, blind, level]
    assert policy.table.keys(candidates) == ["g2 x-2 c00", "g1 x-2 c00", "g1 x-2 c10", "b", "u", "g0 x1 c00"]
    keys = [FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000) for i in range(300)]
    picks = [policy.choose(k, candidates) for k in keys]
    assert set(picks) == {1, 3, 5} and min(map(picks.count, (1, 3, 5))) > 60, picks
    congested = [near, replace(base, loss=0.05)]
    assert policy.table.keys(congested) == ["g1 x-2 c01", "b"]
    assert {policy.choose(k, congested) for k in keys} == {0, 1}
    unknown = [replace(near, unknown=1), replace(base, unknown=1)]
    assert {policy.choose(k, unknown) for k in keys} == {LeastLoaded().choose(None, unknown)}
    policy.table.epsilon = 0.0
    policy.table.q["g2 x-2 c00"] = [30.0, 10]
    assert policy.choose(keys[0], candidates) == 0


def test_the_flows_a_learnt_value_weighs_by_hand():
    """Step 1/visits (a mean of k: k) down to alpha, then an exponential mean's, to 2 / alpha - 1."""
    assert qtable.effective_visits(20, 0.05) == 20.0 and qtable.effective_visits(1, 1.0) == 1.0
    assert qtable.effective_visits(3, 0.5) == pytest.approx(1 / (2 * 0.25 ** 2 + 0.5 ** 2))    # weights 1/4, 1/4, 1/2
    assert qtable.effective_visits(10 ** 6, 0.05) == pytest.approx(39.0)


CANDIDATE = st.builds(PathFeatures, utilisation=st.sampled_from([0.0, 0.004, 0.3, 0.304, 0.9, 1.0, 1.3]),
                      loss=st.sampled_from([0.0, 0.05]), latency_ms=st.sampled_from([0.0, 2.0, 30.0]),
                      hops=st.integers(1, 6), unknown=st.integers(0, 2),
                      headroom_mbps=st.sampled_from([0.0, 3.0, math.inf]))


@given(st.lists(CANDIDATE, min_size=1, max_size=5), st.lists(st.tuples(st.integers(0, 4), st.floats(-50, 3.0)),
                                                             max_size=5))
def test_untrusted_a_baseline_table_decides_as_least_loaded(features, learnt):
    """Greedy, with nothing learnt, or only pairs whose advantage is not shown (a mean of at
    most 3 ms: at most 3.2 is ever trusted), it takes least-loaded's choice, whatever the
    candidates: unknown load, full, ties to a point."""
    policy = QLearningPolicy(epsilon=0.0, model="baseline")
    keys = policy.table.keys(features)
    for i, mean in learnt:
        if i < len(keys) and keys[i] not in ("b", "u"):
            policy.table.q[keys[i]] = [mean, 1000]
    assert policy.choose(None, features) == LeastLoaded().choose(None, features)


def test_a_baseline_table_follows_a_gain_least_loaded_cannot_see():
    """Two idle paths, least-loaded's the shorter. It answers in 1 ms and the other in 3 until
    decision 200, then in 40 with its state unchanged: the deviations exploration makes show
    the other path 37 ms better, and within 100 decisions (exploration at about 0.1, half of it
    to the other path) flows keep to it, bar exploration."""
    policy = QLearningPolicy(epsilon=0.3, model="baseline")
    picks = []
    for i in range(400):
        a = policy.choose(FlowKey("10.0.0.1", "10.0.0.7", 17, 40000 + i, 7000), IDLE[:2])
        met = (replace(IDLE[0], latency_ms=40.0 if i >= 200 else 1.0), replace(IDLE[1], latency_ms=3.0))
        policy.learn([Experience(IDLE[:2], a, met[a], dict(enumerate(met)))])
        picks.append(a)
    assert picks[150:200].count(0) >= 45, picks[150:200]
    assert picks[300:].count(1) >= 90, picks[300:]


@pytest.mark.parametrize("state, value, refused", [("h3 r10 l4", 1e6, False), ("h2 r1 l0", 13.5, False),
                                                    ("h2 r1 l0", 13.6, True), ("l0", 13.6, True),
                                                    ("l3", 21.0, False), ("h8 r1 l3", 21.1, True),
                                                    ("g0 x1 c0", -1.0, True)])
def test_a_correction_file_holds_no_correction_above_what_its_level_can_read(state, value, refused):
    """reward(after) <= 0, and a path at levels 0-3 reads at worst 10 ms, 1% loss and its
    level's top utilisation, so its correction is at most 13.5, 16, 19 or 21 ms; a file above
    that (a hostile "l0": 1e300 would draw every flow to paths of level 0) is refused. Level 4
    has no top reading: a worth is capped at 0 instead, where a path table's file can put any
    state too."""
    assert bool(qtable.CorrectionQ.refused(state, value)) == refused

