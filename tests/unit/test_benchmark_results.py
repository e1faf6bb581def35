"""The benchmarks that docs/benchmarks.md shows write their figures with what produced them:
the commit, the exact command and the machine (scripts/tables.py renders them)."""

import json

from benchmarks import decision
from scripts import bench_bpann


def test_decision_figures_name_their_commit_command_and_machine(tmp_path, capsys):
    out = tmp_path / "decision.json"
    argv = ["--flows", "5", "--policies", "shortest,bpann", "--json", str(out)]
    assert decision.main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures["kind"] == "decision" and figures["flows"] == 5
    assert figures["command"].endswith(" -m benchmarks.decision " + " ".join(argv))
    assert figures["commit"] and {"cores", "python", "date", "load_1min"} <= figures["machine"].keys()
    assert [r["topology"] for r in figures["results"]] == ["H1-H7", "fat tree k=4"]
    assert set(figures["results"][1]["policies"]) == {"shortest", "bpann"}
    assert figures["results"][1]["policies"]["bpann"]["candidates"] == 8


def test_bpann_figures_without_the_sweep_say_so(tmp_path, capsys):
    out = tmp_path / "bpann.json"
    assert bench_bpann.main(["--repeats", "20", "--skip-sweep", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["kind"] == "bpann" and figures["sweep_s"] is None
    assert set(figures["decision_us"]) == {"shortest", "bpann"} and figures["command"].endswith("--json " + str(out))
