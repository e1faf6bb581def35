"""Decisions explained (GET /api/v1/decisions): a bounded ring of what each new flow's policy was
given and made of it, kept as taken (later statistics or learning do not rewrite it), served as
strict JSON."""

import json
import math

from controller.core.balancer import MAX_EXPLAINED, Explained
from controller.core.policy import Policy
from controller.policies import make_policy
from controller.policies.qlearning import state_of
from controller.service.rest import DECISIONS_LIMIT, RestApi
from fakes.switches import Booted
from tests.unit.test_decisions import measure, udp
from tests.unit.test_rest import call

H1_H7 = [["s1", "s2", "s7"], ["s1", "s3", "s4", "s7"], ["s1", "s5", "s6", "s8", "s7"]]


def flows(booted, n: int, first_sport: int = 40000) -> RestApi:
    """n new h1 -> h7 UDP flows, one decision each; the API over that balancer."""
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    dpid, port = booted.host_port("h1")
    for i in range(n):     # straight to the balancer: the fake tables' checks take 10 ms a flow
        booted.balancer.packet_in(dpid, port, udp(booted, first_sport + i), booted.now)
    return RestApi(booted.balancer, clock=lambda: booted.now)


def strict_get(api, path: str) -> tuple[str, object]:
    """A GET's status and its body as a strict parser reads it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    status = []
    body = b"".join(api({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
                        lambda line, headers: status.append(line)))
    return status[0], json.loads(body, parse_constant=refuse)


def test_the_ring_keeps_the_last_decisions_and_drops_the_oldest():
    booted = Booted()
    api = flows(booted, MAX_EXPLAINED + 5)
    assert len(booted.balancer.explained) == MAX_EXPLAINED
    status, body = call(api, "/api/v1/decisions", query=f"limit={MAX_EXPLAINED}")
    assert status == 200 and body["kept"] == body["max_kept"] == MAX_EXPLAINED
    ids = [d["id"] for d in body["decisions"]]
    assert ids == list(range(MAX_EXPLAINED + 5, 5, -1))          # newest first; 1..5 dropped
    assert body["decisions"][0]["flow"] == f"udp 10.0.0.1:{40000 + MAX_EXPLAINED + 4} > 10.0.0.7:5001"
    assert len(call(api, "/api/v1/decisions")[1]["decisions"]) == DECISIONS_LIMIT


def test_a_decision_shows_candidates_features_scores_and_the_choice_as_taken():
    booted = Booted(policy="least-loaded")
    measure(booted, {("s1", "s2"): 9.0, ("s2", "s7"): 9.0})      # path A 90% busy
    api = flows(booted, 1)
    measure(booted, {("s1", "s5"): 30.0})                          # later: path C full, A idle
    (d,) = call(api, "/api/v1/decisions")[1]["decisions"]
    assert (d["src"], d["dst"], d["policy"], d["measured"]) == ("h1", "h7", "least-loaded", True)
    assert [c["path"] for c in d["candidates"]] == H1_H7
    assert [c["utilisation"] for c in d["candidates"]] == [0.9, 0.0, 0.0]     # as at the decision
    assert [c["score"] for c in d["candidates"]] == [0.9, 0.0, 0.0]
    assert d["chosen"] == 1 and [c["chosen"] for c in d["candidates"]] == [False, True, False]
    assert set(d["candidates"][0]) == {"path", "utilisation", "loss", "latency_ms", "hops", "unknown",
                                       "headroom_mbps", "capacity_mbps", "score", "chosen"}
    # the flow's path is the one the decision chose
    assert call(api, "/api/v1/flows")[1][0]["path"] == H1_H7[d["chosen"]]


def test_q_values_are_kept_as_they_were_when_the_table_learns_later():
    booted = Booted(policy="qlearning")
    api = flows(booted, 1)
    before = call(api, "/api/v1/decisions")[1]["decisions"][0]
    policy = booted.balancer.policy
    for f in Explained._make(booted.balancer.explained[0]).features:   # every candidate's state is now worth -5
        policy.table.q[state_of(f)] = [-5.0, 1]
    after = call(api, "/api/v1/decisions")[1]["decisions"][0]
    assert [c["score"] for c in after["candidates"]] == [c["score"] for c in before["candidates"]] == [0, 0, 0]


def test_a_policy_that_is_not_load_aware_shows_hops_and_no_scores_when_it_does_not_score():
    booted = Booted(policy="round-robin")
    api = flows(booted, 2)
    newest, oldest = call(api, "/api/v1/decisions")[1]["decisions"]
    assert (oldest["chosen"], newest["chosen"], newest["measured"]) == (0, 1, False)
    assert newest["candidates"][0] == {"path": H1_H7[0], "hops": 2, "score": None, "chosen": False}
    booted.balancer.set_policy(make_policy("shortest"))
    flows(booted, 1, first_sport=41000)
    latest = call(api, "/api/v1/decisions")[1]["decisions"]
    assert [d["policy"] for d in latest] == ["shortest", "round-robin", "round-robin"]  # a switch keeps history
    assert [c["score"] for c in latest[0]["candidates"]] == [2, 3, 4]


class Unbounded(Policy):
    """Scores no JSON number can hold."""
    name, load_aware = "unbounded", True

    def score(self, features):
        return {2: math.nan, 3: math.inf}.get(features.hops, -math.inf)


def test_the_json_is_strict_whatever_the_scores_and_features():
    booted = Booted()
    booted.balancer.set_policy(Unbounded())
    api = flows(booted, 1)
    status, body = strict_get(api, "/api/v1/decisions")
    assert status == "200 OK"
    (d,) = body["decisions"]
    assert [c["score"] for c in d["candidates"]] == [None, None, None]
    assert all(c["headroom_mbps"] is None or math.isfinite(c["headroom_mbps"]) for c in d["candidates"])


def test_decisions_of_one_flow_and_bad_queries():
    booted = Booted()
    api = flows(booted, 3)
    flow = "udp 10.0.0.1:40001 > 10.0.0.7:5001"
    status, body = call(api, "/api/v1/decisions", query="flow=" + flow.replace(" ", "+").replace(">", "%3E"))
    assert status == 200 and [d["flow"] for d in body["decisions"]] == [flow]
    assert call(api, "/api/v1/decisions", query="flow=tcp+nothing")[1]["decisions"] == []
    for query, word in (("limit=0", "limit"), (f"limit={MAX_EXPLAINED + 1}", "limit"), ("limit=x", "limit"),
                        ("limit=%EF%BC%91", "limit"), ("limit=1&limit=2", "more than once"),
                        ("flow=a&flow=b", "more than once")):
        status, body = call(api, "/api/v1/decisions", query=query)
        assert status == 400 and word in body["error"], (query, body)
    assert call(api, "/api/v1/decisions", "PUT", body={})[0] == 405
