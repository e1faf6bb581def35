"""Topology specs: the shipped one is valid; every mistake gets one error naming the field."""

import json

import networkx as nx
import pytest

from fakes.switches import SPEC
from controller.core.spec import TopologyError, parse_spec
from controller.files import load_spec


def good() -> dict:
    return {"name": "t", "switches": [{"name": "s1"}, {"name": "s2"}],
            "hosts": [{"name": "h1"}, {"name": "h2"}],
            "links": [{"nodes": ["h1", "s1"], "capacity_mbps": 100},
                      {"nodes": ["s1", "s2"], "capacity_mbps": 10},
                      {"nodes": ["h2", "s2"], "capacity_mbps": 100}]}


def test_h1h7_has_three_paths_differing_in_hops_and_capacity():
    spec = load_spec(SPEC)
    paths = list(nx.all_simple_paths(spec.graph(), "s1", "s7"))
    assert len(paths) >= 3
    hops = {len(p) for p in paths}
    bottlenecks = {spec.bottleneck_mbps(p) for p in paths}
    assert len(hops) >= 3 and len(bottlenecks) >= 3
    assert len(spec.switches) >= 6 and {h.name for h in spec.hosts} == {f"h{i}" for i in range(1, 8)}


def test_defaults_follow_mininet_conventions():
    spec = parse_spec(good())
    assert [s.dpid for s in spec.switches] == [1, 2]
    assert [(h.ip, h.mac) for h in spec.hosts] == [("10.0.0.1", "00:00:00:00:00:01"),
                                                  ("10.0.0.2", "00:00:00:00:00:02")]
    assert spec.neighbours()[("s1", 2)] == "s2"


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s.update(colour="red"), "spec.colour: unknown key"),
    (lambda s: s["links"][1].update(capacity_mbps=-5), "links[1].capacity_mbps: must be in"),
    (lambda s: s["links"][1].update(capacity_mbps="10"), "links[1].capacity_mbps: wrong type str"),
    (lambda s: s["links"][1].update(bandwidth=10), "links[1].bandwidth: unknown key"),
    (lambda s: s["links"][1].update(nodes=["s1", "s9"]), "links[1].nodes: unknown node 's9'"),
    (lambda s: s["links"].append({"nodes": ["s2", "s1"], "capacity_mbps": 5}), "links[3].nodes: duplicate link"),
    (lambda s: s["switches"].append({"name": "h1", "dpid": 9}), "hosts[0].name: duplicate name 'h1'"),
    (lambda s: s["hosts"][1].update(name="h1"), "hosts[1].name: duplicate name 'h1'"),
    (lambda s: s["hosts"][1].update(ip="10.0.0.300"), "hosts[1].ip: not an IPv4 address"),
    (lambda s: s["hosts"][1].update(ip="10.0.0.1"), "hosts[1].ip: duplicate address"),
    (lambda s: s["switches"][1].update(dpid=1), "switches[1].dpid: duplicate dpid 1"),
    (lambda s: s["links"].append({"nodes": ["h1", "s2"], "capacity_mbps": 5}), "host 'h1': must have exactly one link"),
    (lambda s: s["links"][1].update(loss_pct=101), "links[1].loss_pct: must be in [0, 100]"),
    (lambda s: s.pop("links"), "spec: missing required key 'links'"),
    (lambda s: s["links"].pop(1), "links: the switches do not form one connected network"),
])
def test_bad_spec_names_the_field(mutate, field):
    raw = good()
    mutate(raw)
    with pytest.raises(TopologyError) as err:
        parse_spec(raw, source="bad.json")
    assert str(err.value).startswith("bad.json: ")
    assert field in str(err.value)


def test_unreadable_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(TopologyError, match="missing.json: cannot read"):
        load_spec(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(good())[:-10])
    with pytest.raises(TopologyError, match="broken.json: not valid JSON"):
        load_spec(broken)
