"""The layout the web page draws (GET /api/v1/layout): every node of the spec and of the
network beyond it placed in the unit square, and the picture kept while links come and go."""

from controller.core.balancer import Balancer
from controller.core.settings import Settings
from controller.policies import make_policy
from controller.service.rest import RestApi
from fakes.switches import Booted
from tests.unit.test_rest import call


def test_the_layout_places_every_node_of_the_spec_in_the_unit_square_with_its_links():
    booted = Booted()
    api = RestApi(booted.balancer)
    status, layout = call(api, "/api/v1/layout")
    assert status == 200 and layout["spec"] == "h1h7"
    nodes = {n["name"]: n for n in layout["nodes"]}
    assert sorted(nodes) == sorted([f"h{i}" for i in range(1, 8)] + [f"s{i}" for i in range(1, 9)])
    assert all(0 <= n["x"] <= 1 and 0 <= n["y"] <= 1 for n in nodes.values())
    assert nodes["h7"] == {**nodes["h7"], "kind": "host", "ip": "10.0.0.7"} and nodes["s2"]["kind"] == "switch"
    links = {(lk["a"], lk["b"]): lk for lk in layout["links"]}
    assert len(links) == 16 and links["s2", "s7"] == {"a": "s2", "b": "s7", "kind": "switch", "capacity_mbps": 10.0}
    assert links["h1", "s1"]["kind"] == "host"
    # a link going down moves nothing; the picture is the same
    booted.balancer.port_changed(booted.spec.switch_dpid("s2"), 2, False, booted.now)
    assert call(api, "/api/v1/layout")[1] == layout


def test_a_node_beyond_the_spec_is_placed_too():
    booted = Booted()
    api = RestApi(booted.balancer)
    before = {n["name"] for n in call(api, "/api/v1/layout")[1]["nodes"]}
    booted.balancer.switch_up(99, {1, 2}, booted.now)
    after = call(api, "/api/v1/layout")[1]
    assert {n["name"] for n in after["nodes"]} == before | {"s99"}
    assert all(0 <= n["x"] <= 1 for n in after["nodes"])


def test_the_layout_of_a_network_without_a_spec_is_what_was_discovered():
    b = Balancer(Settings(), make_policy("shortest"))
    assert call(RestApi(b), "/api/v1/layout")[1] == {"spec": None, "nodes": [], "links": []}
    b.switch_up(1, {1}, 0.0)
    assert call(RestApi(b), "/api/v1/layout")[1]["nodes"] == [{"name": "s1", "kind": "switch", "x": 0.5, "y": 0.5}]


def test_the_layout_is_computed_at_most_once_every_relayout_s():
    """Computing blocks the controller: nodes that appear in between are drawn beside a placed
    neighbour without moving the others, and the next layout comes RELAYOUT_S later."""
    from controller.service.layout import RELAYOUT_S, Layout
    now = [0.0]
    booted = Booted()
    layout = Layout(clock=lambda: now[0])
    first = {n["name"]: (n["x"], n["y"]) for n in layout(booted.balancer)["nodes"]}
    booted.balancer.switch_up(99, {1, 2}, booted.now)
    now[0] = RELAYOUT_S / 2
    between = {n["name"]: (n["x"], n["y"]) for n in layout(booted.balancer)["nodes"]}
    assert {k: v for k, v in between.items() if k != "s99"} == first and "s99" in between
    now[0] = RELAYOUT_S
    booted.balancer.switch_up(98, {1}, booted.now)
    again = {n["name"]: (n["x"], n["y"]) for n in layout(booted.balancer)["nodes"]}
    assert again.keys() == first.keys() | {"s98", "s99"} and again != {**between, "s98": again["s98"]}
