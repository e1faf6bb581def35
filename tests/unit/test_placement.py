"""Controller placement (placement/): the exact program agrees with enumeration on small
graphs, every method honours capacity and the latency bound, the local search never returns an
infeasible placement, the learned models have the documented shapes, the Topology Zoo import
gives connected networks with coordinates, and the assignment file survives a round trip and
names the field of a corrupt one."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.__main__ import main
from placement.assignment import PlacementFileError, backup_weights, read_assignment, to_document, write_assignment
from placement.exact import assign_exactly, k_center_radius, place_exactly
from placement.heuristics import greedy_k_median, k_center
from placement.learned import MODELS, PlacementModel, features, labels, place_with_model
from placement.network import Network, from_spec, from_zoo, great_circle_km
from placement.problem import Placement, Problem
from placement.report import Plan, render, sample_row, summarise, targets, traffic_split
from placement.traffic import samples
from placement.search import local_search, masked_latency
from placement.traffic import TrafficError, gravity, read_traffic

ROOT = Path(__file__).resolve().parents[2]


def small_network(seed: int, n: int = 6) -> Network:
    """A random connected graph with random link latencies."""
    rng = np.random.default_rng(seed)
    graph = nx.connected_watts_strogatz_graph(n, 3, 0.5, seed=seed)
    for a, b in graph.edges():
        graph.edges[a, b]["latency_ms"] = float(rng.uniform(0.5, 5.0))
    latency = np.zeros((n, n))
    for src, lengths in nx.all_pairs_dijkstra_path_length(graph, weight="latency_ms"):
        for dst, value in lengths.items():
            latency[src, dst] = value
    return Network(f"small{seed}", tuple(f"s{i + 1}" for i in range(n)), graph, latency)


def enumerate_optimum(problem: Problem) -> float:
    """The best objective over every set of k sites and every assignment to them (inf: none)."""
    n, best = problem.n, np.inf
    choices = np.array(list(itertools.product(range(problem.k), repeat=n)))     # (k^n, n)
    for sites in itertools.combinations(range(n), problem.k):
        assign = np.array(sites)[choices]                                       # every assignment
        ok = problem.allowed[np.arange(n), assign].all(axis=1)
        ok &= (np.stack([(assign == s) @ problem.rates for s in sites], axis=1)
               <= problem.capacity_flows_s * (1 + 1e-9)).all(axis=1)
        if ok.any():
            cost = (problem.latency_ms[np.arange(n), assign] @ problem.weights)[ok]
            best = min(best, float(cost.min()))
    return best


def small_problem(seed: int, k: int, n: int = 6, tight: float = 0.6, bound: float = 1.3) -> Problem:
    """Capacity at `tight` of the load per controller over k-1 controllers' worth, bound at a
    multiple of the k-center radius: both constraints can bind."""
    net = small_network(seed, n)
    rates = np.random.default_rng(seed + 100).lognormal(0, 1, n) * 100
    capacity = max(rates.max(), rates.sum() / k / tight) if tight else np.inf
    return Problem(net.latency_ms, rates, k, capacity, bound * k_center_radius(net.latency_ms, k))


@pytest.mark.parametrize("seed,k", [(s, k) for s in range(4) for k in (1, 2, 3)])
def test_the_exact_program_finds_the_optimum_that_enumeration_finds(seed, k):
    problem = small_problem(seed, k)
    best = enumerate_optimum(problem)
    placed = place_exactly(problem)
    if np.isinf(best):
        assert not placed.feasible
    else:
        assert placed.proven_optimal and placed.objective_ms == pytest.approx(best, rel=1e-6, abs=1e-9)
        assert problem.violations(placed.controllers, placed.assign) == []


def test_capacity_and_the_latency_bound_bind_and_every_method_honours_them():
    """Here the unconstrained optimum overloads a controller and reaches too far; the exact
    program and the local search place feasibly within both, and a heuristic whose sites admit
    no assignment within both (k-center's, here) says so rather than returning a violation."""
    net = from_zoo("Bics")
    rates = gravity(net, np.random.default_rng(3), 8008.0)
    free = place_exactly(Problem(net.latency_ms, rates, 2, np.inf))
    bound = 1.2 * k_center_radius(net.latency_ms, 2)
    problem = Problem(net.latency_ms, rates, 2, 5005.0, bound)
    assert free.feasible and (problem.loads(free.assign).max() > 5005 or problem.worst_latency(free.assign) > bound)
    placements = [place_exactly(problem), greedy_k_median(problem), k_center(problem),
                  local_search(problem, [0, 1])]
    assert placements[0].status == "optimal" and placements[0].objective_ms > free.objective_ms
    assert placements[0].feasible and placements[-1].feasible
    for placed in placements[1:3]:
        assert placed.feasible == assign_exactly(problem, placed.controllers).feasible, placed.method
    assert sum(p.feasible for p in placements) >= 3
    for placed in (p for p in placements if p.feasible):
        assert problem.violations(placed.controllers, placed.assign) == [], placed.method
        assert problem.loads(placed.assign).max() <= 5005 * (1 + 1e-6), placed.method
        assert problem.worst_latency(placed.assign) <= bound * (1 + 1e-6), placed.method
        assert placed.objective_ms >= placements[0].objective_ms - 1e-9, placed.method


def test_an_impossible_problem_is_reported_infeasible_not_violated():
    net = small_network(1)
    rates = np.full(net.n, 100.0)
    problem = Problem(net.latency_ms, rates, 2, 250.0)          # 600 flows/s, 500 of capacity
    assert place_exactly(problem).status == "infeasible"            # proven, not timed out
    assert assign_exactly(problem, [0, 1]).status == "infeasible"
    placed = local_search(problem, [0, 1])
    assert not placed.feasible and placed.status == "infeasible"


def test_a_time_out_is_reported_as_a_time_out_not_as_infeasible(capsys):
    net = from_zoo("TataNld")
    problem = Problem(net.latency_ms, gravity(net, np.random.default_rng(11), 8008.0), 3, 5005.0,
                      1.5 * k_center_radius(net.latency_ms, 3))
    stopped = place_exactly(problem, time_limit_s=0.001)
    assert stopped.status == "time-out" and not stopped.feasible and not stopped.proven_optimal
    assert main(["place", "TataNld", "--k", "3", "--time-limit", "0.001", "--seed", "11",    # the radius too
                 "--max-latency-ms", str(problem.max_latency_ms)]) == 1                  # would time out
    assert "exact timed out after 0.001 s without a placement (nor a proof that none exists)" in capsys.readouterr().err


def test_local_search_places_feasibly_exactly_when_a_feasible_placement_exists():
    """On 150 random small problems (tight capacity, a latency bound, random starts and
    candidates): the search's answer is feasible if and only if the exact program finds one,
    and then satisfies every constraint. The counts make sure both sides, and the hard case
    (the nearest assignment overloads a controller), were exercised, not skipped."""
    rng = np.random.default_rng(2024)
    placed_count = none_count = binding = 0
    for _ in range(150):
        k = int(rng.integers(1, 5))
        problem = small_problem(int(rng.integers(0, 10_000)), k, n=8, tight=float(rng.uniform(0.3, 1.0)),
                                bound=float(rng.uniform(1.0, 2.5)))
        start = rng.integers(0, 8, int(rng.integers(1, 5))).tolist()
        candidates = rng.permutation(8)[:int(rng.integers(0, 9))].tolist()
        exact = place_exactly(problem)
        assert exact.status in ("optimal", "infeasible")
        placed = local_search(problem, start, candidates=candidates)
        assert placed.feasible == exact.feasible, (start, candidates, exact.status, placed.notes)
        if exact.feasible:
            placed_count += 1
            assert len(placed.controllers) == k
            assert problem.violations(placed.controllers, placed.assign) == []
            assert placed.objective_ms == pytest.approx(problem.objective(placed.assign))
            assert placed.objective_ms >= exact.objective_ms - 1e-9
            nearest = masked_latency(problem)[:, list(placed.controllers)].argmin(axis=1)
            binding += bool(np.bincount(nearest, weights=problem.rates).max() > problem.capacity_flows_s)
        else:
            none_count += 1
            assert placed.status == "infeasible"
    assert placed_count >= 100 and none_count >= 5 and binding >= 20, (placed_count, none_count, binding)


def test_local_search_reaches_the_optimum_of_a_small_problem_from_a_poor_start():
    problem = small_problem(2, 2, n=8, tight=0)
    best = place_exactly(problem)
    far = np.argsort(-problem.latency_ms[best.controllers[0]])[:2]
    assert local_search(problem, far).objective_ms == pytest.approx(best.objective_ms)


@pytest.mark.parametrize("kind", MODELS)
def test_each_learned_model_scores_every_switch_and_proposes_k_sites(kind):
    net = small_network(5, 8)
    rng = np.random.default_rng(0)
    rates = rng.lognormal(0, 1, (12, net.n))
    placements = [place_exactly(Problem(net.latency_ms, r, 2, np.inf)).controllers for r in rates]
    x, y = features(rates), labels(net.n, placements)
    assert x.shape == y.shape == (12, net.n) and (y.sum(axis=1) == 2).all()
    model = PlacementModel(kind, seed=1).fit(x[:10], y[:10])
    assert model.scores(x[10:]).shape == (2, net.n)
    proposal = model.propose(x[10:], 2)
    assert proposal.shape == (2, 2) and all(len(set(row)) == 2 for row in proposal)
    placed = place_with_model(Problem(net.latency_ms, rates[11], 2, np.inf), model, search=True)
    assert placed.feasible and placed.method == f"{kind}+ls"
    again = PlacementModel(kind, seed=1).fit(x[:10], y[:10]).scores(x[10:])
    assert np.array_equal(again, model.scores(x[10:]))                  # seeded: reproducible


@pytest.mark.parametrize("name,n", [("Bics", 33), ("TataNld", 143), ("Abilene", 11)])
def test_a_topology_zoo_network_is_connected_with_coordinates_and_finite_latency(name, n):
    net = from_zoo(name)
    assert net.n == n and nx.is_connected(net.graph)
    assert net.coordinates.shape == (n, 2) and np.isfinite(net.coordinates).all()
    assert np.isfinite(net.latency_ms).all() and np.allclose(net.latency_ms, net.latency_ms.T)
    assert (np.diag(net.latency_ms) == 0).all() and (net.latency_ms >= 0).all()   # TataNld has co-located PoPs


def test_latency_is_five_microseconds_per_great_circle_km():
    vienna_bratislava = great_circle_km(np.array([[16.37, 48.21], [17.11, 48.15]]))[0, 1]
    assert vienna_bratislava == pytest.approx(55.3, abs=0.5)         # the Zoo's own 'dist' is 54.9 km
    net = from_zoo("Bics")
    a, b = net.switches.index("Vienna"), net.switches.index("Bratislava")
    assert net.latency_ms[a, b] == pytest.approx(vienna_bratislava * 0.005, rel=1e-6)


def test_an_unknown_zoo_network_is_an_error_naming_it():
    with pytest.raises(Exception, match="topozoo/Nowhere"):
        from_zoo("Nowhere")


def test_a_spec_becomes_a_network_with_hop_latency_where_no_delay_is_given():
    net = from_spec(ROOT / "topologies/h1h7.json", hop_ms=2.0)
    assert net.n == 8 and net.coordinates is None
    assert net.latency_ms[net.switches.index("s1"), net.switches.index("s2")] == 2.0


def placed_document(tmp_path: Path) -> tuple[Network, Problem, Path]:
    net = from_zoo("Bics")
    problem = Problem(net.latency_ms, gravity(net, np.random.default_rng(1), 8008.0), 3, 5005.0,
                      1.5 * k_center_radius(net.latency_ms, 3))
    path = tmp_path / "assignment.json"
    write_assignment(path, to_document(net, problem, place_exactly(problem)))
    return net, problem, path


def test_the_assignment_file_round_trips(tmp_path):
    net, problem, path = placed_document(tmp_path)
    doc = read_assignment(path, net)
    assert [s["switch"] for s in doc["switches"]] == list(net.switches) and doc["k"] == 3
    sites = np.array([net.switches.index(c["switch"]) for c in doc["controllers"]])
    assign = sites[[s["controller"] for s in doc["switches"]]]
    assert problem.violations(tuple(sites), assign) == []
    assert problem.objective(assign) == pytest.approx(doc["mean_latency_ms"], abs=1e-6)
    for s in doc["switches"]:
        assert s["controller"] not in [b["controller"] for b in s["backups"]]
        assert not s["backups"] or sum(b["weight"] for b in s["backups"]) == pytest.approx(1.0, abs=1e-5)
    assert any(s["backups"] for s in doc["switches"])


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["switches"][3].update(controller=7), "switches[3].controller"),
    (lambda d: d["switches"][4].update(controller="0"), "switches[4].controller"),
    (lambda d: d["switches"][5]["backups"][0].update(weight=0.9), "switches[5].backups"),
    (lambda d: d["switches"][5]["backups"][1].update(latency_ms=12.0), "switches[5].backups[1].latency_ms: 12.0 exceeds"),
    (lambda d: d["switches"][5]["backups"].reverse(), "switches[5].backups[1].latency_ms: 5.655461 is nearer"),
    (lambda d: [b.update(weight=0.5) for b in d["switches"][5]["backups"]], "switches[5].backups[0].weight: says 0.5"),
    (lambda d: d["switches"][6].update(latency_ms=99.0), "switches[6].latency_ms"),
    (lambda d: d["switches"][2].pop("rate_flows_s"), "switches[2]: missing key 'rate_flows_s'"),
    (lambda d: d["switches"][1].update(colour="red"), "switches[1].colour"),
    (lambda d: d.update(format="other/1"), "format"),
    (lambda d: d.update(k=4), "k"),
    (lambda d: d.update(capacity_flows_s=100), "controllers[0]"),
    (lambda d: d["switches"].append(dict(d["switches"][0])), "switches[33].switch"),
    # claims the file's own switches contradict
    (lambda d: d["controllers"][1].update(load_flows_s=d["controllers"][1]["load_flows_s"] + 50),
     "controllers[1].load_flows_s: says "),
    (lambda d: d.update(mean_latency_ms=d["mean_latency_ms"] * 0.9), "mean_latency_ms: says "),
    (lambda d: d.update(worst_latency_ms=d["worst_latency_ms"] - 0.5), "worst_latency_ms: says "),
])
def test_a_corrupt_assignment_file_is_rejected_naming_the_file_and_field(tmp_path, edit, field):
    _, _, path = placed_document(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(PlacementFileError) as caught:
        read_assignment(path)
    assert str(caught.value).startswith(f"{path}: {field}")




def _shorter_switch_latency(doc: dict) -> None:
    """Claim 0.4 ms less for the farthest-from-its-controller switch, with mean and worst
    claims that agree with the edited switches (so only the network can tell)."""
    i = max(range(len(doc["switches"])), key=lambda j: doc["switches"][j]["latency_ms"])
    doc["switches"][i]["latency_ms"] = round(doc["switches"][i]["latency_ms"] - 0.4, 6)
    rates = np.array([s["rate_flows_s"] for s in doc["switches"]])
    latency = np.array([s["latency_ms"] for s in doc["switches"]])
    doc.update(mean_latency_ms=float(rates @ latency / rates.sum()), worst_latency_ms=float(latency.max()))


def _farther_last_backup(doc: dict) -> None:
    """Claim 0.01 ms more for switch 5's last backup, weights recomputed to agree (so the
    file is consistent in itself: order, bound and weights)."""
    chain = doc["switches"][5]["backups"]
    chain[-1]["latency_ms"] = round(chain[-1]["latency_ms"] + 0.01, 6)
    for b, w in zip(chain, backup_weights([b["latency_ms"] for b in chain])):
        b["weight"] = round(w, 6)


@pytest.mark.parametrize("edit,field", [
    (_shorter_switch_latency, r"switches\[\d+\]\.latency_ms"),
    (_farther_last_backup, r"switches\[5\]\.backups\[1\]\.latency_ms"),
])
def test_check_recomputes_latencies_from_the_network_and_rejects_a_file_they_contradict(tmp_path, capsys, edit, field):
    _, _, path = placed_document(tmp_path)
    assert main(["check", str(path), "--network", "Bics"]) == 0
    assert "latencies recomputed from Bics" in capsys.readouterr().out
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    read_assignment(path)                           # consistent in itself: only the network can tell
    assert main(["check", str(path), "--network", "Bics"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(rf"error: {re.escape(str(path))}: {field}: says [\d.]+, Bics gives [\d.]+$", err)


def test_an_assignment_for_another_network_is_rejected(tmp_path):
    _, _, path = placed_document(tmp_path)
    with pytest.raises(PlacementFileError, match="network"):
        read_assignment(path, from_zoo("Abilene"))


@pytest.mark.parametrize("content,field", [
    ({"rates_flows_s": {"s1": -1}}, "rates_flows_s.s1"),
    ({"rates_flows_s": {"s99": 1}}, "rates_flows_s.s99"),
    ({"rates": {}}, "rates_flows_s"),
    ({"rates_flows_s": {"s1": 1e308, "s2": 1e308}}, "rates_flows_s: the rates sum to inf, not a finite number"),
    ({"rates_flows_s": {"s1": 0, "s2": 0.0}}, "rates_flows_s: no switch has traffic"),
    ({"rates_flows_s": {}}, "rates_flows_s: no switch has traffic"),
])
def test_a_bad_traffic_file_is_rejected_naming_the_field(tmp_path, content, field):
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TrafficError, match=field.replace(".", r"\.")):
        read_traffic(path, from_spec(ROOT / "topologies/h1h7.json"))


def test_the_command_places_writes_checks_and_reports(tmp_path, capsys):
    traffic = tmp_path / "traffic.json"
    traffic.write_text(json.dumps({"rates_flows_s": {"s1": 3000, "s7": 3000, "s4": 500}}))
    out = tmp_path / "a.json"
    assert main(["place", str(ROOT / "topologies/h1h7.json"), "--k", "2", "--traffic", str(traffic),
                 "--out", str(out), "--map", str(tmp_path / "a.png")]) == 0
    assert main(["check", str(out), "--network", str(ROOT / "topologies/h1h7.json")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000
    folder = tmp_path / "report"
    assert main(["report", "--networks", f"{ROOT / 'topologies/h1h7.json'}:8:2", "--k", "2",
                 "--out", str(folder)]) == 0
    document = json.loads((folder / "results.json").read_text())
    methods = {t["method"] for t in document["table"]}
    assert methods == {"exact", "greedy", "kcenter", "tree", "logistic", "network", "tree+ls", "network+ls"}
    assert document["command"].startswith("python -m placement report") and document["kind"] == "controller-placement"
    assert (folder / "table.md").read_text() == render(document["table"])
    assert main(["place", "Bics", "--k", "40"]) == 2
    assert "--k" in capsys.readouterr().err


def _rows(k: int, outcomes: dict, exact_statuses: list[str], exact_s: list[float], method_s: float = 0.1) -> list[dict]:
    """Report rows for hand-made outcomes: per method, per sample, a gap (None: placed
    nothing), against an exact optimum of 2 ms (or, after a time-out, a lower bound of 2 ms
    under the program's best placement, 2.1 ms)."""
    problem = Problem(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 1.0]), 1, 10.0)
    rows = []
    for sample, (status, seconds) in enumerate(zip(exact_statuses, exact_s)):
        feasible = status in ("optimal", "time-out")
        exact = Placement("exact", (0,) if feasible else (), np.zeros(2, int) if feasible else None,
                          {"optimal": 2.0, "time-out": 2.1}.get(status, np.inf), seconds, proven_optimal=feasible, status=status,
                          notes={"bound_ms": 2.0 if status == "time-out" else np.nan})
        rows.append(sample_row("N", k, sample, problem, exact, exact))
        for method, gaps in outcomes.items():
            gap = gaps[sample]
            placed = Placement(method, (0,), np.zeros(2, int), 2.0 * (1 + gap), method_s) if gap is not None \
                else Placement(method, (), None, np.inf, method_s)
            rows.append(sample_row("N", k, sample, problem, placed, exact))
    return rows


def test_the_summary_counts_every_held_out_sample_and_a_method_that_placed_nothing_as_a_miss():
    rows = _rows(2, {"network+ls": [0.0, 0.005, None, None], "tree+ls": [0.02, 0.0, 0.0, None]},
                 ["optimal", "optimal", "optimal", "infeasible"], [0.5, 0.4, 0.6, 0.3])
    line = {t["method"]: t for t in summarise(rows)}
    nn = line["network+ls"]
    # sample 3 has no placement (proven): not counted; sample 2 placed nothing: a miss
    assert (nn["samples"], nn["solvable"], nn["within"]) == (4, 3, 2) and nn["within_1pct"] == pytest.approx(2 / 3)
    assert nn["feasible"] == 0.5 and nn["gap_samples"] == 2
    assert nn["gap_mean"] == pytest.approx(0.0025) and nn["gap_max"] == pytest.approx(0.005)
    assert nn["runtime_vs_exact"] == pytest.approx(0.1 / 0.45) and nn["runtime_ms"] == pytest.approx(100)
    assert line["exact"]["exact"] == {"optimal": 3, "time-out": 0, "infeasible": 1}
    assert line["exact"]["within"] == 3 and line["exact"]["feasible"] == 0.75
    tree = line["tree+ls"]
    assert (tree["within"], tree["feasible"], tree["gap_mean"]) == (2, 0.75, pytest.approx(0.02 / 3))
    assert "| N | 2 | network+ls | 2/3 (67%) | 50% | 0.25% / 0.50% | 100.0 / 100.0 | 0.222 |  |" in render(summarise(rows))


def test_a_time_out_is_no_proof_and_its_gap_is_against_the_lower_bound():
    rows = _rows(3, {"network+ls": [0.0, 0.05]}, ["time-out", "optimal"], [60.0, 1.0])
    first = [r for r in rows if r["sample"] == 0]
    assert {r["exact_status"] for r in first} == {"time-out"} and all(r["within_1pct"] is not None for r in first)
    exact, nn = first
    assert exact["reference_ms"] == nn["reference_ms"] == 2.0
    assert exact["gap"] == pytest.approx(0.05) and not exact["within_1pct"]     # unproven: 5% above the bound
    assert nn["gap"] == pytest.approx(0.0) and nn["within_1pct"]
    line = {t["method"]: t for t in summarise(rows)}
    assert line["exact"]["exact"] == {"optimal": 1, "time-out": 1, "infeasible": 0}
    assert line["exact"]["within"] == 1 and line["network+ls"]["within"] == 1 and line["network+ls"]["solvable"] == 2


def test_the_targets_are_judged_over_all_samples_and_every_k():
    rows = _rows(2, {"network+ls": [0.0] * 19 + [None], "tree+ls": [0.0] * 20, "network": [0.0] * 20,
                     "tree": [0.2] * 20}, ["optimal"] * 20, [1.0] * 20, method_s=0.2)
    rows += _rows(3, {"network+ls": [0.0] * 20, "tree+ls": [0.0] * 20, "network": [None] * 20,
                      "tree": [0.5] * 20}, ["optimal"] * 20, [1.0] * 20, method_s=0.4)
    got = targets(rows, summarise(rows))["N"]
    assert got["nn_ls_within"] == "39/40" and got["nn_ls_within_1pct"] == pytest.approx(0.975)
    from scripts.tables import _controller_placement
    view = _controller_placement({"table": summarise(rows), "targets": targets(rows, summarise(rows)),
                                  "config": {"k": [2, 3]}}, {"view": "targets"})
    assert "| N | 39/40 (97.50%) | **met** | 19/20 / 20/20 |" in view        # pooled, then per k
    assert got["nn_ls_none_found"] == 1
    assert got["nn_ls_runtime_vs_exact"] == pytest.approx(0.3)
    assert got["nn_ls_runtime_vs_exact_by_k"] == {2: pytest.approx(0.2), 3: pytest.approx(0.4)}
    assert got["met"] == {"nn_ls_within_1pct_on_95pct": True, "nn_ls_third_of_exact_runtime_every_k": False,
                          "exact_proven_within_1_min_every_k": True}
    better = {(v["k"], v["versus"]): v["better"] for v in got["tree_vs_network"]}
    # k=2: tree+ls 20 within against 19; the models alone: network 20 against 0
    # k=3: the network alone placed nothing (0 within) and the tree was 50% off (0): a tie
    assert better == {(2, "with local search"): "tree", (3, "with local search"): "tie",
                      (2, "models alone"): "network", (3, "models alone"): "tie"}
    slow = _rows(2, {"network+ls": [0.0]}, ["optimal"], [61.0]) + _rows(3, {"network+ls": [0.0]}, ["time-out"], [1.0])
    assert not targets(slow, summarise(slow))["N"]["met"]["exact_proven_within_1_min_every_k"]


def test_no_held_out_traffic_sample_is_a_training_sample():
    net = from_zoo("Bics")
    train, test = traffic_split(net, Plan("Bics", 30, 10), 7, 8008.0)
    assert train.shape == (30, net.n) and test.shape == (10, net.n)
    assert np.array_equal(np.concatenate([train, test]), samples(net, 40, 7, 8008.0))
    distance = np.abs(test[:, None, :] - train[None, :, :]).sum(axis=2)        # (test, train)
    assert distance.min() > 1.0                                                # flows/s, over 33 switches
    assert not np.array_equal(traffic_split(net, Plan("Bics", 30, 10), 8, 8008.0)[1], test)   # the seed matters


def test_the_report_with_no_arguments_is_the_documented_run():
    """docs/placement.md's tables come from docs/results/controller-placement: a report run
    with the defaults, only --out given, so `python -m placement report` reproduces them; the
    page shows the command as it was run."""
    from placement.__main__ import parser
    results = json.loads((ROOT / "docs/results/controller-placement/results.json").read_text())
    config, args = results["config"], parser().parse_args(["report"])
    assert config["command"].split(" --out ")[0] == "python -m placement report"
    assert config["networks"] == [vars(p) for p in args.networks] and config["seed"] == args.seed == 7
    assert (config["k"], config["capacity_flows_s"], config["load_factor"], config["bound_factor"],
            config["time_limit_s"]) == (args.k, args.capacity, args.load_factor, args.bound_factor, args.time_limit)
    assert config["command"] in (ROOT / "docs/placement.md").read_text()


@pytest.mark.parametrize("seed,n,k", [(s, n, k) for s in range(3) for n in (6, 9) for k in (1, 2, 3)])
def test_the_k_center_radius_is_the_smallest_worst_case_over_every_set_of_k_sites(seed, n, k):
    latency = small_network(seed, n).latency_ms
    best = min(latency[:, list(sites)].min(axis=1).max() for sites in itertools.combinations(range(n), k))
    assert k_center_radius(latency, k) == best


def test_a_k_center_radius_step_that_times_out_raises_rather_than_reads_as_cannot_cover(capsys):
    """Read as "k sites cannot cover within r", a timed-out set cover would make the radius,
    and every latency bound built on it, too large, silently."""
    latency = from_zoo("TataNld").latency_ms
    with pytest.raises(TimeoutError, match="k-center radius, k=4"):
        k_center_radius(latency, 4, time_limit_s=1e-9)
    assert main(["place", "TataNld", "--k", "4", "--time-limit", "1e-9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: k-center radius, k=4:") and err.count("\n") == 1


@pytest.mark.parametrize("code,name", [(3, "unbounded"), (4, "failure")])
def test_a_solver_failure_is_not_reported_as_a_time_out(code, name):
    from types import SimpleNamespace

    from placement.exact import SolverError, _status
    assert _status(SimpleNamespace(status=1, message="Time limit reached.")) == "time-out"
    with pytest.raises(SolverError, match=f"HiGHS status {code} \\({name}\\)"):
        _status(SimpleNamespace(status=code, message="odd"))


def test_the_time_limit_reaches_every_exact_program_inside_a_method(monkeypatch):
    """--time-limit bounds the exact assignment programs inside the heuristics, the learned
    methods and the local search (its exact phase and rescue), not only the exact program."""
    import placement.exact as exact_module
    seen = []
    real = exact_module._solve

    def spy(problem, sites, fixed, time_limit_s):
        seen.append(time_limit_s)
        return real(problem, sites, fixed, time_limit_s)

    monkeypatch.setattr(exact_module, "_solve", spy)
    problem = small_problem(0, 2, n=8, tight=0.8)
    x = features(np.random.default_rng(0).lognormal(0, 1, (6, 8)))
    model = PlacementModel("tree", 1).fit(x, labels(8, [(0, 1), (2, 3), (4, 5), (6, 7), (0, 7), (1, 6)]))
    for run in (lambda: greedy_k_median(problem, 7.5), lambda: k_center(problem, 7.5),
                lambda: place_with_model(problem, model, time_limit_s=7.5),
                lambda: place_with_model(problem, model, search=True, time_limit_s=7.5),
                lambda: local_search(problem, [0, 1], time_limit_s=7.5)):
        before = len(seen)
        run()
        assert len(seen) > before                   # capacity binds here: each solved some program
    assert set(seen) == {7.5}, seen


@pytest.mark.parametrize("argv,message", [
    (["place", "topologies/h1h7.json", "--k", "2", "--method", "tree", "--train", "-1"],
     "argument --train: '-1': expected a whole number >= 1"),
    (["place", "topologies/h1h7.json", "--k", "2", "--method", "tree", "--train", "0"],
     "argument --train: '0': expected a whole number >= 1"),
    (["report", "--networks", "topologies/h1h7.json:4:1", "--k", "9"], "--k: must be in 1..8 for topologies/h1h7.json"),
    (["report", "--networks", "Bics:4:1,topologies/h1h7.json:4:1", "--k", "2-9"],
     "--k: must be in 1..8 for topologies/h1h7.json"),
])
def test_hostile_command_lines_are_one_error_line_not_a_traceback(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    try:
        code = main(argv + (["--out", str(tmp_path / "r")] if argv[0] == "report" else []))
    except SystemExit as exit_:             # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith(message) and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_the_models_learn_from_training_samples_only_never_a_held_out_one(monkeypatch):
    """run_network fits every model on the proven optima of the training samples: each row
    it trains on is one of theirs, none is a held-out sample's, and every optimum is used."""
    from placement import report
    plan = Plan(str(ROOT / "topologies/h1h7.json"), 8, 3)
    net = from_spec(plan.network)
    train, test = traffic_split(net, plan, 7, report.LOAD_FACTOR * report.CAPACITY_FLOWS_S)
    seen = []
    real_fit = PlacementModel.fit
    monkeypatch.setattr(PlacementModel, "fit", lambda self, x, y: seen.append((x, y)) or real_fit(self, x, y))
    rows, training = report.run_network(plan, [2], 7)
    assert len(seen) == len(MODELS) and training[0]["train_samples"] == 8
    for x, y in seen:
        assert len(x) == 8 and np.allclose(x, features(train))
        assert not (np.abs(x[:, None, :] - features(test)[None, :, :]).sum(axis=2) < 1e-9).any()
        assert (y.sum(axis=1) == 2).all()
    assert {r["sample"] for r in rows} == {8, 9, 10}


def test_placing_with_a_model_keeps_the_search_notes_and_its_proof(monkeypatch):
    """NN-LS's answer carries what the local search did (rounds, double swaps, exact
    assignments, a rescue) and its status: a proof that no placement exists stays a proof."""
    x = features(np.random.default_rng(0).lognormal(0, 1, (6, 8)))
    model = PlacementModel("tree", 1).fit(x, labels(8, [(0, 1), (2, 3), (4, 5), (6, 7), (0, 7), (1, 6)]))
    placed = place_with_model(small_problem(0, 2, n=8, tight=0.8), model, search=True)
    assert placed.feasible and placed.notes["exact_assignments"] >= 1
    assert {"rounds", "double_swaps", "proposal", "start"} <= set(placed.notes)
    net = small_network(1)
    small = PlacementModel("tree", 1).fit(features(np.ones((2, 6))), labels(6, [(0, 1), (2, 3)]))
    impossible = Problem(net.latency_ms, np.full(net.n, 100.0), 2, 250.0)
    placed = place_with_model(impossible, small, search=True)
    assert not placed.feasible and placed.status == "infeasible" and placed.notes["rescue"] == "exact program"


def test_a_rescue_by_exact_assignment_is_feasible_not_a_proof_of_optimality():
    """Found by the 150-problem test's generator: the search converges on sites its greedy
    packing cannot fit; their exact assignment can. Optimal for those sites is not optimal."""
    problem = small_problem(841, 3, n=8, tight=0.8674926579940931, bound=1.1765871188652444)
    placed = local_search(problem, [0], candidates=[2, 5, 0, 6, 7])
    assert placed.notes["rescue"] == "exact assignment"
    assert placed.feasible and placed.status == "feasible" and not placed.proven_optimal
    assert problem.violations(placed.controllers, placed.assign) == []


def test_the_summary_counts_what_the_local_search_needed():
    rows = _rows(2, {"network+ls": [0.0, 0.0, 0.0]}, ["optimal"] * 3, [1.0] * 3)
    searched = [r for r in rows if r["method"] == "network+ls"]
    for r, (rescue, polish, doubles) in zip(searched, [(None, 2, 0), ("exact assignment", None, 1), (None, 0, 3)]):
        r.update(rescue=rescue, exact_assignments=polish, double_swaps=doubles)
    line = {t["method"]: t for t in summarise(rows)}
    assert line["network+ls"]["search"] == {"rescued": 1, "exact_assignments": 2, "double_swaps": 4}
    assert line["exact"]["search"] is None
    assert "| N | 2 | network+ls |" in render(summarise(rows)) and "| 1 / 2 / 4 |" in render(summarise(rows))


def test_a_fitted_tree_proposes_its_training_labels_on_its_training_inputs():
    """A fully grown tree reproduces its training set, so its proposal for a training input
    is that sample's label: scoring must read P(label = 1) and rank from the highest."""
    rng = np.random.default_rng(3)
    x = features(rng.lognormal(0, 1, (20, 8)))
    placements = [tuple(sorted(rng.choice(8, 3, replace=False).tolist())) for _ in range(20)]
    model = PlacementModel("tree", 1).fit(x, labels(8, placements))
    assert [tuple(sorted(row.tolist())) for row in model.propose(x, 3)] == placements


@pytest.mark.parametrize("kind", MODELS)
def test_a_proposal_is_the_k_best_scored_switches(kind):
    rng = np.random.default_rng(4)
    x = features(rng.lognormal(0, 1, (30, 8)))
    model = PlacementModel(kind, 1).fit(x, labels(8, [tuple(rng.choice(8, 2, replace=False)) for _ in range(30)]))
    scores, proposal = model.scores(x), model.propose(x, 3)
    chosen = np.take_along_axis(scores, proposal, axis=1)
    assert (chosen.min(axis=1) >= np.sort(scores, axis=1)[:, -3] - 1e-12).all()      # no better switch left out
    assert (np.diff(chosen, axis=1) <= 0).all()                                      # best first


def test_the_search_reaches_the_optimum_where_it_needs_double_swaps_and_its_exact_phase():
    """Found by searching random small problems: the fast assignment misjudges the sites here
    and no single swap improves on the converged set, so without the double swaps, or
    without the exact assignments that check the result, the search stops above the optimum."""
    problem = small_problem(1532, 3, n=8, tight=0.9996690273061412, bound=1.9552663931260583)
    best = place_exactly(problem)
    placed = local_search(problem, [0, 7, 3], candidates=[2, 7, 0, 6, 5, 1, 4, 3])
    assert placed.objective_ms == pytest.approx(best.objective_ms)
    assert placed.notes["double_swaps"] >= 1 and placed.notes["exact_assignments"] >= 1
    stuck = local_search(problem, [0, 7, 3], polish=0)          # single swaps and the fast assignment alone
    assert stuck.objective_ms > best.objective_ms * (1 + 1e-6)


@pytest.mark.parametrize("seed,k,tight,bound,sites", [
    (5914, 2, 0.6621449794567563, 1.9616990699834318, [1, 0]),     # needs _improve's shifts/exchanges
    (8449, 3, 0.6839403694557584, 1.9510229811957993, [3, 0, 1]),  # needs regret order to fit at all
])
def test_the_fast_assignment_finds_the_exact_assignment_where_capacity_binds(seed, k, tight, bound, sites):
    """Instances where the nearest assignment overloads a controller, found by searching random
    small problems, on which the regret-ordered greedy and its improvement reach the exact
    assignment (what the search judges site sets by)."""
    from placement.search import evaluate
    problem = small_problem(seed, k, n=8, tight=tight, bound=bound)
    fast, exact = evaluate(problem, sites), assign_exactly(problem, sites)
    assert not fast.nearest and exact.feasible
    assert fast.feasible and fast.objective == pytest.approx(exact.objective_ms)
