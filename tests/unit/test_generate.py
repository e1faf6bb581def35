"""Generated specs: a Topology Zoo network becomes a valid, connected spec whose hosts are placed
by the seed alone; an island in a Zoo network is dropped and named; the training family covers
1..8-hop candidates, shares links between them, and is the same for the same seed."""

import json
import subprocess
import sys

import networkx as nx
import pytest

from controller.core.spec import TopologyError, parse_spec
from controller.core.zoo import parse_zoo
from controller.files import load_zoo
from topologies.generate import FAMILY_HOPS, ZOO_CAPACITIES, family, zoo

THREE = ("Abilene", "Bics", "Dfn")     # 11, 33 and 51 PoPs


def host_switches(spec):
    parsed = parse_spec(spec)
    return [parsed.host_switch(h.name) for h in parsed.hosts]


@pytest.mark.parametrize("name", THREE)
def test_a_zoo_network_becomes_a_valid_connected_spec_of_all_its_pops(name):
    network = load_zoo(name)
    spec = parse_spec(zoo(network, seed=1, hosts=5), name)      # parse_spec refuses a disconnected one
    assert len(spec.switches) == network.graph.number_of_nodes()
    assert len(spec.switch_links()) == network.graph.number_of_edges()
    assert nx.is_connected(spec.graph())
    assert len(set(host_switches(zoo(network, seed=1, hosts=5)))) == 5


@pytest.mark.parametrize("name", THREE)
def test_host_placement_is_decided_by_the_seed(name):
    network = load_zoo(name)
    placements = [host_switches(zoo(network, seed=s)) for s in range(6)]
    assert host_switches(zoo(network, seed=3)) == placements[3]
    assert host_switches(zoo(load_zoo(name), seed=3)) == placements[3]
    assert len({tuple(p) for p in placements}) > 1
    assert zoo(network, seed=0)["links"][:-4] == zoo(network, seed=5)["links"][:-4]   # switch links: no seed


def test_the_most_crossed_links_get_the_largest_capacity_class():
    network = load_zoo("Abilene")
    spec = parse_spec(zoo(network))
    between = nx.edge_betweenness_centrality(network.graph)
    capacity = {frozenset((int(lk.a[1:]) - 1, int(lk.b[1:]) - 1)): lk.capacity_mbps for lk in spec.switch_links()}
    ranked = sorted(between, key=between.get)
    assert capacity[frozenset(ranked[0])] == ZOO_CAPACITIES[0]
    assert capacity[frozenset(ranked[-1])] == ZOO_CAPACITIES[-1]
    assert [capacity[frozenset(e)] for e in ranked] == sorted(capacity[frozenset(e)] for e in ranked)


def test_delay_is_the_great_circle_length_in_fibre():
    spec = parse_spec(zoo(load_zoo("Bics"), delay=True))
    names = dict(item.split("=") for item in zoo(load_zoo("Bics"))["description"].split("PoPs: ")[1].split(", "))
    vienna_bratislava = next(lk for lk in spec.switch_links()
                             if {names[lk.a], names[lk.b]} == {"Vienna", "Bratislava"})
    assert vienna_bratislava.delay_ms == pytest.approx(55.3 * 0.005, abs=0.005)


def raw(nodes, edges):
    return {"nodes": [{"id": str(i), "name": f"P{i}", "pos": [10.0 + i, 50.0]} for i in nodes],
            "edges": [{"source": str(a), "target": str(b)} for a, b in edges]}


def test_a_network_with_an_island_keeps_its_largest_part_and_names_what_it_dropped():
    network = parse_zoo(raw(range(6), [(0, 1), (1, 2), (2, 0), (3, 4), (5, 5)]), "Islands")
    assert network.labels == ("P0", "P1", "P2")
    assert network.dropped == ("P3", "P4", "P5")
    spec = zoo(network, seed=0, hosts=2)
    assert [s["name"] for s in spec["switches"]] == ["s1", "s2", "s3"]
    assert "Dropped (not connected to the rest): P3, P4, P5" in spec["description"]
    assert nx.is_connected(parse_spec(spec).graph())


@pytest.mark.parametrize("bad, message", [
    ({"nodes": [{"id": "0", "pos": [1, 2]}]}, "not a node-link network"),
    (raw(range(2), [(0, 7)]), "a link to an unknown node"),
    ({"nodes": [{"id": "0", "pos": [1]}, {"id": "1", "pos": [1, 2]}], "edges": []}, "a node without coordinates"),
    (raw(range(2), []), "no links"),
])
def test_a_malformed_zoo_network_is_an_error_naming_it(bad, message):
    with pytest.raises(TopologyError, match=f"topozoo/Bad: {message}"):
        parse_zoo(bad, "Bad")


def test_too_many_hosts_is_an_error_naming_the_network():
    with pytest.raises(ValueError, match="2..11 .*topozoo/Abilene"):
        zoo(load_zoo("Abilene"), hosts=12)


def test_the_command_prints_a_spec_and_refuses_an_unknown_network():
    run = [sys.executable, "-m", "topologies.generate", "zoo"]
    ok = subprocess.run([*run, "abilene", "--seed", "2"], capture_output=True, text=True, timeout=60)
    assert parse_spec(json.loads(ok.stdout)).name == "zoo-Abilene-2"
    bad = subprocess.run([*run, "Nowhere"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "topozoo/Nowhere: not a Topology Zoo network" in bad.stderr


def candidates(spec):
    """Every simple switch path between the probe pair's switches, as hop counts."""
    parsed = parse_spec(spec)
    a, b = parsed.host_switch("h1"), parsed.host_switch("h2")
    return [len(p) - 1 for p in nx.all_simple_paths(parsed.graph(), a, b)], parsed, a, b


@pytest.mark.parametrize("seed", range(40))
def test_a_family_network_joins_the_probe_pair_by_2_to_4_paths_of_distinct_lengths_in_1_to_8_hops(seed):
    hops, parsed, a, b = candidates(family(seed))
    assert 2 <= len(hops) <= 4
    assert len(set(hops)) == len(hops)
    assert set(hops) <= set(FAMILY_HOPS)
    assert f"joined by {len(hops)} paths of {', '.join(map(str, sorted(hops)))} hops" in parsed.description
    assert family(seed) == family(seed)


def test_the_family_covers_1_and_8_hops_shared_links_both_ends_and_varied_sizes():
    shared_at_src = shared_at_dst = 0
    for seed in range(40):
        hops, parsed, a, b = candidates(family(seed))
        paths = list(nx.all_simple_paths(parsed.graph(), a, b))
        firsts, lasts = {tuple(p[:2]) for p in paths}, {tuple(p[-2:]) for p in paths}
        shared_at_src += len(firsts) < len(paths)
        shared_at_dst += len(lasts) < len(paths)
    family_hops = [h for seed in range(40) for h in candidates(family(seed))[0]]
    assert min(family_hops) == 1 and max(family_hops) == 8
    assert shared_at_src >= 5 and shared_at_dst >= 5
    sizes = {len(family(seed)["switches"]) for seed in range(40)}
    assert min(sizes) <= 6 and max(sizes) >= 18
    assert len({link["capacity_mbps"] for link in family(1)["links"] + family(2)["links"]}) >= 3
