"""scripts/tables.py on a tree of its own: regions rewritten from their folders, stale ones
named by --check, and every region it cannot render (no folder, no provenance, an unknown
option, a model retrained since its provenance) one error naming the page and line."""

import json
import shutil
from pathlib import Path

import pytest

from scripts import tables

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results" / "experiment-h1h7"


@pytest.fixture
def tree(tmp_path):
    """A README with one headline region and a docs page with the full table, both empty."""
    shutil.copytree(RESULTS, tmp_path / "docs" / "results" / "exp")
    (tmp_path / "README.md").write_text("# x\n\n<!-- table: docs/results/exp view=headline policies=shortest,bpann -->\n"
                                        "<!-- end table -->\n\ntext\n")
    (tmp_path / "docs" / "experiments.md").write_text("# y\n<!-- table: docs/results/exp -->\nold\n<!-- end table -->\n")
    return tmp_path


def test_rewrite_fills_each_region_with_the_table_and_its_provenance(tree):
    assert [tables.rewrite(page, tree) for page in tables.pages(tree)] == [True, True]
    readme = (tree / "README.md").read_text()
    assert readme.startswith("# x\n\n<!-- table: docs/results/exp view=headline policies=shortest,bpann -->\n"
                             "| policy | RTT mean (ms) | p95 (ms) | throughput (Mbit/s) | RTT mean vs shortest [95% CI] |\n")
    assert "| shortest | 19.76 | 47.27 | 6.34 | (baseline) |\n" in readme
    assert "| bpann | 3.54 | 13.73 | 14.12 | -75.2% [-93.3, -57.1] |\n" in readme
    assert "| least-loaded |" not in readme and readme.endswith("<!-- end table -->\n\ntext\n")
    assert "\nMeasured at commit `e9b0de0` by `.venv/bin/python -m scripts.experiment --seeds 5 " in readme
    full = (tree / "docs" / "experiments.md").read_text()
    assert "| least-loaded | 5 | 3.48 | 1.62 | 12.18 | 24.67 | 17.18 | 6.22 | 0.8% | -76.0% [-91.5, -60.4] |" in full
    assert "old" not in full
    assert tables.stale(tree) == [] and [tables.rewrite(page, tree) for page in tables.pages(tree)] == [False, False]


def test_check_names_each_stale_region_and_exits_1(tree, capsys):
    for page in tables.pages(tree):
        tables.rewrite(page, tree)
    page = tree / "docs" / "experiments.md"
    page.write_text(page.read_text().replace("| 3.48 |", "| 3.47 |"))
    assert tables.stale(tree) == ["docs/experiments.md:2: the table from docs/results/exp is stale "
                                  "(python -m scripts.tables rewrites it)"]
    assert tables.main(["--check"], root=tree) == 1
    assert "docs/experiments.md:2: the table from docs/results/exp is stale" in capsys.readouterr().out
    assert tables.main([], root=tree) == 0 and tables.main(["--check"], root=tree) == 0
    assert "every table is current (2 regions)" in capsys.readouterr().out


@pytest.mark.parametrize("marker, folder_change, error", [
    ("<!-- table: docs/results/nothing -->", None, "docs/results/nothing: no summary.json"),
    ("<!-- table: docs/results/exp colour=red -->", None, "unknown option(s) colour"),
    ("<!-- table: docs/results/exp policies=shortest,psychic -->", None, "no policy psychic"),
    ("<!-- table: docs/results/exp -->", {"seeds": 5}, "no commit and command recorded"),
    ("<!-- table: docs/results/exp also=docs/results/nothing -->", None, "docs/results/nothing/summary.json"),
])
def test_a_region_that_cannot_be_rendered_is_one_error_naming_page_and_line(tree, marker, folder_change, error):
    if folder_change is not None:
        (tree / "docs" / "results" / "exp" / "config.json").write_text(json.dumps(folder_change))
    (tree / "README.md").write_text(f"# x\n{marker}\n<!-- end table -->\n")
    with pytest.raises(tables.TablesError, match=r"README.md:2: ") as exc:
        tables.rewrite(tree / "README.md", tree)
    assert error in str(exc.value)


def test_another_runs_policies_join_the_rows_paired_by_seed_and_name_their_provenance(tree):
    """A second run of the same seeds (here: least-loaded's RTT 10% higher on each, bpann's
    alone): its least-loaded is "least-loaded (again)", 10% above the first; its own
    commit and command follow the first's."""
    again = tree / "docs" / "results" / "again"
    again.mkdir()
    summary = json.loads((RESULTS / "summary.json").read_text())
    ll = summary["least-loaded"]
    for seed in ll["per_seed"].values():
        seed["rtt_mean_ms"] *= 1.1
    (again / "summary.json").write_text(json.dumps({"least-loaded": ll, "bpann+fresh": summary["bpann"]}))
    (again / "config.json").write_text(json.dumps({"commit": "abcdef1", "command": "python -m scripts.experiment x"}))
    (tree / "README.md").write_text("<!-- table: docs/results/exp view=against policies=least-loaded,bpann "
                                    "also=docs/results/again -->\n<!-- end table -->\n")
    tables.rewrite(tree / "README.md", tree)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4:] for line in (tree / "README.md").read_text().split("\n")
            if line.startswith("| ") and not line.startswith("| ---")}
    assert list(rows) == ["policy", "least-loaded", "bpann", "least-loaded (again)", "bpann+fresh"]
    assert rows["least-loaded (again)"][0] == "+10.0% [+10.0, +10.0]"
    assert rows["bpann+fresh"] == rows["bpann"]
    assert "\nWith docs/results/again: Measured at commit `abcdef1` by `python -m scripts.experiment x`." in (
        tree / "README.md").read_text()


def test_one_pool_over_another_pairs_each_run_with_its_own_commands_reference(tree):
    """Two commands, each of least-loaded, q and r: q is 2x its command's least-loaded on both
    seeds in the first and 1x in the second; r is 1x, then 0.5x. Per seed, pooled q (sqrt 2)
    over pooled r (sqrt 0.5): 2x on both seeds."""
    for name, ll, q, r in (("p1", 1.0, 2.0, 1.0), ("p2", 4.0, 4.0, 2.0)):
        path = tree / "docs" / "results" / name
        path.mkdir()
        summary = {p: {"rtt_mean_ms": v, "rtt_p95_ms": v, "throughput_mbps": 1.0, "seeds": [1, 2],
                       "per_seed": {s: {"rtt_mean_ms": v, "rtt_p95_ms": v, "throughput_mbps": 1.0} for s in "12"}}
                   for p, v in (("least-loaded", ll), ("q", q), ("r", r))}
        (path / "summary.json").write_text(json.dumps(summary))
        (path / "config.json").write_text(json.dumps({"commit": "abcdef1", "command": f"python -m x {name}"}))
    (tree / "README.md").write_text("<!-- table: docs/results/p1 view=against mean=geometric pool=q over=r "
                                    "also=docs/results/p2 -->\n<!-- end table -->\n")
    tables.rewrite(tree / "README.md", tree)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4] for line in (tree / "README.md").read_text().split("\n")
            if line.startswith("| ")}
    assert rows["pooled: q + q (again)"] == "1.414x [1.414, 1.414]"
    assert rows["pooled: r + r (again)"] == "0.707x [0.707, 0.707]"
    assert rows["pooled q over pooled r"] == "2.000x [2.000, 2.000]"


def test_a_pool_of_runs_pairs_each_with_its_own_commands_reference_and_counts_a_seed_once(tree):
    """Three commands' runs of q, RTT by seed 1, 2, 3: the first's q is 2x, 0.5x and 1x its
    least-loaded; the second's 2x, 1x and 4x its own (1, 1, 1 ms); the third ran q alone, not
    seed 3, so it is against the first's least-loaded: 1x, 0.5x. The pool, per seed the
    geometric mean: cube root of 2 x 2 x 1 on seed 1 and of 0.5 x 1 x 0.5 on seed 2, whose
    product is 1: 1.000x, seed 3 named as left out (logs +-ln 4 / 3: t(1) 12.706 x ln 4 / 3,
    e^+-5.872).
    The third run's names are "(again 2)"; pool= without mean=geometric is refused."""
    def folder(name, **runs):
        path = tree / "docs" / "results" / name
        path.mkdir(exist_ok=True)
        summary = {p: {"rtt_mean_ms": 1.0, "rtt_p95_ms": 1.0, "throughput_mbps": 1.0, "seeds": sorted(rtt),
                       "per_seed": {str(s): {"rtt_mean_ms": r, "rtt_p95_ms": r, "throughput_mbps": 1.0}
                                    for s, r in rtt.items()}} for p, rtt in runs.items()}
        (path / "summary.json").write_text(json.dumps(summary))
        (path / "config.json").write_text(json.dumps({"commit": "abcdef1", "command": f"python -m scripts.experiment {name}"}))
    folder("a", **{"least-loaded": {1: 2.0, 2: 4.0, 3: 1.0}, "q": {1: 4.0, 2: 2.0, 3: 1.0}})
    folder("b", **{"least-loaded": {1: 1.0, 2: 1.0, 3: 1.0}, "q": {1: 2.0, 2: 1.0, 3: 4.0}})
    folder("c", q={1: 2.0, 2: 2.0})
    marker = "<!-- table: docs/results/a view=against also=docs/results/b,docs/results/c {}-->\n<!-- end table -->\n"
    (tree / "README.md").write_text(marker.format("mean=geometric pool=q "))
    tables.rewrite(tree / "README.md", tree)
    text = (tree / "README.md").read_text()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4] for line in text.split("\n") if line.startswith("| ")}
    assert rows["q"] == "1.000x [0.179, 5.595]"       # ln 2, -ln 2, 0: t(2) 4.303 x ln 2 / sqrt 3
    assert rows["least-loaded (again)"] == "(reference)" and rows["q (again)"].startswith("2.000x [")
    assert rows["q (again 2)"].startswith("0.707x [") and rows["q (again 2)"].endswith("(left out: seed 3)")
    assert rows["pooled: q + q (again) + q (again 2)"] == "1.000x [0.003, 354.785] (left out: seed 3)"
    assert "RTT mean ratio to least-loaded of its run [95% CI]" in text
    assert "With docs/results/c: Measured at commit `abcdef1` by `python -m scripts.experiment c`." in text
    # the third run of q against two of r, each against its own command's least-loaded: over= pools r
    # alike and needs as many runs of it as the pool has
    (tree / "README.md").write_text(marker.format("mean=geometric pool=q over=least-loaded "))
    with pytest.raises(tables.TablesError, match="over=least-loaded: needs pool= and as many runs"):
        tables.rewrite(tree / "README.md", tree)
    for options, error in (("pool=q ", "pool=q: needs mean=geometric"), ("mean=median ", "mean=median: expected"),
                           ("mean=geometric pool=r ", "pool=r: fewer than two runs"),
                           ("mean=geometric over=q ", "over=q: needs pool=")):
        (tree / "README.md").write_text(marker.format(options))
        with pytest.raises(tables.TablesError, match=error):
            tables.rewrite(tree / "README.md", tree)


@pytest.mark.parametrize("text, error", [("<!-- table: docs/results/exp -->\n", "no '<!-- end table -->' after it"),
                                         ("<!-- end table -->\n", "without a start"),
                                         ("<!-- table: a -->\n<!-- table: b -->\n", "a region inside a region")])
def test_broken_markers_are_refused(tree, text, error):
    (tree / "README.md").write_text(text)
    with pytest.raises(tables.TablesError, match=error):
        tables.regions(tree / "README.md")


def test_a_model_retrained_since_its_recorded_provenance_does_not_inherit_it(tree):
    (tree / "models").mkdir()
    meta = json.loads((ROOT / "models" / "bpann.json").read_text())
    shutil.copytree(ROOT / "docs" / "results" / "bpann-model", tree / "docs" / "results" / "model")
    (tree / "models" / "bpann.json").write_text(json.dumps(meta))
    (tree / "README.md").write_text("<!-- table: docs/results/model -->\n<!-- end table -->\n")
    tables.rewrite(tree / "README.md", tree)
    assert "| bpann-3 | 2.716 ± 0.409 | 0.444 ± 0.076 |" in (tree / "README.md").read_text()
    (tree / "models" / "bpann.json").write_text(json.dumps({**meta, "trained_at": "2030-01-01T00:00:00Z"}))
    with pytest.raises(tables.TablesError, match="trained at 2030-01-01T00:00:00Z, the provenance here is of"):
        tables.rewrite(tree / "README.md", tree)
    (tree / "models" / "bpann.json").write_text(json.dumps({**meta, "commit": "a" * 40, "command": "python -m scripts.train"}))
    tables.rewrite(tree / "README.md", tree)     # a model that records its own provenance needs no other
    assert "Measured at commit `aaaaaaa` by `python -m scripts.train`." in (tree / "README.md").read_text()


def test_a_benchmark_folder_renders_by_its_kind_and_names_its_machine(tree):
    run = {"switches": 8, "hosts": 8, "window": 64, "seconds": 10, "sequential": 500,
           "runs": {app: [{"flows_per_s": rate, "cpu_us": 200, "p50_ms": 0.4, "p99_ms": 0.9, "flow_mods": 3 * 1000,
                           "completed": 1000} for rate in rates] for app, rates in (("l2", (4000, 5000)),
                                                                                    ("sdn-lb", (6000, 7000)))},
           "median": {"l2": {"flows_per_s": 4500, "cpu_us": 200, "p50_ms": 0.4, "p99_ms": 0.9},
                      "sdn-lb": {"flows_per_s": 6500, "cpu_us": 150, "p50_ms": 0.3, "p99_ms": 0.8}}}
    (tree / "docs" / "results" / "bench").mkdir()
    (tree / "docs" / "results" / "bench" / "results.json").write_text(json.dumps(
        {"kind": "controller", "commit": "b" * 40, "command": ".venv/bin/python -m benchmarks.controller --json x",
         "machine": {"cores": 2, "python": "3.11.2", "date": "2026-11-30", "load_1min": 0.5},
         "flow_setup": run, "polling": {"seconds": 20, "rows": [{"switches": 10, "polling": 0.004, "probing": 0.009}]}}))
    (tree / "README.md").write_text("<!-- table: docs/results/bench view=flow-setup -->\n<!-- end table -->\n"
                                    "<!-- table: docs/results/bench view=polling -->\n<!-- end table -->\n")
    tables.rewrite(tree / "README.md", tree)
    text = (tree / "README.md").read_text()
    assert "| sdn-lb, shortest | 6,000 / 7,000 | **6,500** | 150 us | 0.30 ms | 0.80 ms | 3.00 |" in text
    assert "**1.44x the reference's rate**" in text and "| 10 | 0.4% | 0.9% |" in text
    assert text.count("Measured at commit `bbbbbbb` by `.venv/bin/python -m benchmarks.controller --json x`. "
                      "On 2 cores, Python 3.11.2, 2026-11-30; load average 0.5 as it started.") == 2


def test_an_all_pairs_folder_renders_its_slowdowns_against_its_reference(tree):
    from scripts.allpairs import summarise
    rows = [{"policy": p, "seed": seed, "size_bytes": 10_000, "slowdown": s, "complete": True}
            for seed, (a, b) in enumerate(((2.0, 1.0), (4.0, 3.0)), start=1)
            for p, s in (("least-loaded", a), ("learned", b))]
    folder = tree / "docs" / "results" / "pairs"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summarise(rows, "least-loaded")))
    (folder / "config.json").write_text(json.dumps({"cdf": "web-search", "reference": "least-loaded",
                                                    "commit": "c" * 40, "command": ".venv/bin/python -m scripts.allpairs"}))
    (tree / "README.md").write_text("<!-- table: docs/results/pairs -->\n<!-- end table -->\n")
    tables.rewrite(tree / "README.md", tree)
    text = (tree / "README.md").read_text()
    assert "| learned | 2.00 | 2.00 | n/a | n/a | 2/0/0 | 0 | -37.5% [-196.3, +121.3] | -37.5% [" in text
    assert "| least-loaded | 3.00 | 3.00 | n/a | n/a | 2/0/0 | 0 | (reference) |" in text
    assert "Measured at commit `ccccccc` by `.venv/bin/python -m scripts.allpairs`." in text
