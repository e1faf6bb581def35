"""Each policy picks what its definition says, on hand-made features."""

from collections import Counter
from dataclasses import replace

from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.policies import POLICIES, make_policy

A = PathFeatures(utilisation=0.9, loss=0.0, latency_ms=30.0, hops=2)   # short but busy
B = PathFeatures(utilisation=0.2, loss=0.0, latency_ms=1.0, hops=3)
C = PathFeatures(utilisation=0.2, loss=0.0, latency_ms=1.0, hops=4)
KEY = FlowKey("10.0.0.1", "10.0.0.7", 6, 40000, 5201)


def test_shortest_takes_fewest_hops_and_least_loaded_the_idlest_shortest():
    assert make_policy("shortest").choose(KEY, [A, B, C]) == 0
    assert make_policy("least-loaded").choose(KEY, [A, B, C]) == 1
    # under 1% apart is a tie, and the shorter path wins it
    assert make_policy("least-loaded").choose(KEY, [replace(B, utilisation=0.204), C]) == 0


def test_round_robin_cycles_per_host_pair():
    rr = make_policy("round-robin")
    assert [rr.choose(KEY, [A, B, C]) for _ in range(4)] == [0, 1, 2, 0]
    other = FlowKey("10.0.0.2", "10.0.0.7", 6, 1, 2)
    assert rr.choose(other, [A, B, C]) == 0


def test_ecmp_hashes_flows_over_equal_cost_paths_only_and_consistently():
    ecmp = make_policy("ecmp")
    equal = [A, PathFeatures(0.1, 0, 1, 2), C]
    picks = Counter(ecmp.choose(FlowKey("10.0.0.1", "10.0.0.7", 6, port, 80), equal) for port in range(200))
    assert set(picks) == {0, 1} and min(picks.values()) > 60
    assert ecmp.choose(KEY, equal) == ecmp.choose(KEY, equal)


def test_every_policy_is_registered_under_its_name():
    assert set(POLICIES) == {"shortest", "least-loaded", "widest", "round-robin", "ecmp", "bpann", "learned", "qlearning",
                             "random"}


def test_widest_takes_the_most_headroom_and_ties_go_to_fewer_hops():
    widest = make_policy("widest")
    thin_idle = PathFeatures(0.0, 0.0, 0.0, 2, headroom_mbps=10.0)
    fat_busy = PathFeatures(0.5, 0.0, 0.0, 4, headroom_mbps=15.0)
    assert widest.choose(None, [thin_idle, fat_busy]) == 1          # least-loaded would take the idle one
    assert widest.choose(None, [thin_idle, PathFeatures(0.0, 0.0, 0.0, 3, headroom_mbps=10.4)]) == 0
    same_switch = PathFeatures(0.0, 0.0, 0.0, 0)                      # infinite headroom ranks first
    assert widest.choose(None, [fat_busy, same_switch]) == 1
