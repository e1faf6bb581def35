"""The experiment's pure parts: the seeded schedule, iperf3 report reading, the statistics
of runs.csv and the options."""

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.policies.qlearning import FEATURES, CorrectionQ, LinearQ, QTable, RelativeQ
from controller.core.settings import Settings
from scripts.experiment import QUICK, background, learner_table, parse_args, run_plan, warm_copy, warm_model
from scripts.report import RUN_COLUMNS, ReportError, change_ci, read_runs, seed_metrics, summarise
from topologies.lab import ROOT, cpu_s, provenance, wait_until
from topologies.traffic import Transfer, completion_s, schedule

HOSTS = ["h2", "h3", "h4", "h5", "h6", "h7"]


@given(st.integers(0, 2**32), st.floats(1, 600))
@example(112, 104.81859265547024)       # its last arrival rounded past the end
def test_the_same_seed_gives_the_same_schedule(seed, duration):
    a, b = schedule(seed, HOSTS, duration), schedule(seed, HOSTS, duration)
    assert a == b
    assert all(0 <= t.start_s <= duration and t.src != t.dst and {t.src, t.dst} <= set(HOSTS) for t in a)
    assert [t.start_s for t in a] == sorted(t.start_s for t in a)
    assert all(2 <= t.rate_mbps <= 8 and 5 <= t.duration_s <= 15 and t.proto in ("udp", "tcp") for t in a)


def test_seeds_give_different_schedules_of_poisson_rate():
    a, b = schedule(1, HOSTS, 2000), schedule(2, HOSTS, 2000)
    assert a != b
    assert 900 < len(a) < 1100        # mean gap 2 s over 2000 s: about 1000 arrivals


def test_the_background_is_among_the_other_hosts_at_the_gap_asked():
    """--background-gap 0.5 over 2000 s: about 4000 arrivals, none from or to --src."""
    busy = background(parse_args(["--background-gap", "0.5", "--duration", "2000"]), 1, ["h1", *HOSTS])
    assert 3700 < len(busy) < 4300 and "h1" not in {t.src for t in busy} | {t.dst for t in busy}
    assert background(parse_args(["--duration", "2000"]), 1, ["h1", *HOSTS]) == schedule(1, HOSTS, 2000)


def test_a_schedule_needs_two_hosts():
    with pytest.raises(ValueError):
        schedule(1, ["h2"], 10)


def test_tcp_transfers_carry_rate_times_duration_and_may_take_three_times_as_long():
    t = Transfer(1.0, "h2", "h3", "tcp", 8.0, 10.0, 5300)
    assert t.size_bytes == 10_000_000
    assert t.bound_s == 40
    assert Transfer(1.0, "h2", "h3", "udp", 8.0, 10.0, 5300).bound_s == 20


def test_completion_time_comes_from_the_receiver_and_failures_are_none(tmp_path):
    good, bad, cut = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    good.write_text(json.dumps({"end": {"sum_received": {"seconds": 2.5}}}))
    bad.write_text(json.dumps({"error": "unable to connect", "end": {}}))
    cut.write_text('{"start": {')
    assert completion_s(good) == 2.5
    assert completion_s(bad) is None and completion_s(cut) is None
    assert completion_s(tmp_path / "missing.json") is None


def rtt_rows(policy, seed, values):
    return [dict(zip(RUN_COLUMNS, (policy, str(seed), "rtt", "0", str(i), "0", "f", "p",
                                   "" if v is None else str(v), "", "", "", ""))) for i, v in enumerate(values)]


def transfer_row(policy, seed, fct, mbps, kind="transfer"):
    return dict(zip(RUN_COLUMNS, (policy, str(seed), kind, "0", "0", "0", "f", "p", "", "1000", str(fct),
                                  str(mbps), "1")))


def test_seed_metrics_by_hand():
    rows = rtt_rows("shortest", 1, [1, 2, 3, 4, None]) + [transfer_row("shortest", 1, 2.0, 4.0),
                                                          transfer_row("shortest", 1, 4.0, 2.0),
                                                          transfer_row("shortest", 1, 6.0, 1.0, "background")]
    m = seed_metrics(rows)
    assert m["rtt_mean_ms"] == 2.5 and m["rtt_p50_ms"] == 2.5
    assert m["rtt_p95_ms"] == pytest.approx(3.85)
    assert m["loss"] == pytest.approx(0.2)
    assert m["throughput_mbps"] == 3.0          # transfers only
    assert m["fct_mean_s"] == 4.0               # every flow with a completion time


def test_change_ci_is_a_t_interval_over_seeds():
    c = change_ci([5, 7], [10, 10])            # -50% and -30%
    assert c["mean"] == pytest.approx(-0.4)
    half = 12.7062 * math.sqrt(0.02) / math.sqrt(2)
    assert c["ci95"] == pytest.approx([-0.4 - half, -0.4 + half], abs=1e-3)
    assert change_ci([5], [10]) == {"mean": -0.5, "ci95": None}


def test_summary_compares_on_the_seeds_both_policies_ran():
    rows = (rtt_rows("shortest", 1, [10]) + rtt_rows("shortest", 2, [20]) +
            rtt_rows("bpann", 1, [5]) + rtt_rows("bpann", 2, [10]) + rtt_rows("bpann", 3, [1]))
    s = summarise(rows)
    assert s["bpann"]["seeds"] == [1, 2, 3]
    assert s["bpann"]["vs_shortest"]["rtt_mean_ms"]["mean"] == pytest.approx(-0.5)
    assert s["shortest"]["vs_shortest"]["rtt_mean_ms"]["mean"] == 0
    assert s["bpann"]["throughput_mbps"] is None      # nothing measured is None, never NaN


def test_runs_file_errors_name_the_file_and_row(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("policy,seed\nshortest,1\n")
    with pytest.raises(ReportError, match="runs.csv: header"):
        read_runs(path)
    good = ",".join(["shortest", "1", "rtt", "0", "0", "0", "f", "p", "1", "", "", "", ""])
    path.write_text(",".join(RUN_COLUMNS) + f"\n{good}\nshortest,1,rtt\n{good}\n")
    with pytest.raises(ReportError, match="row 3"):
        read_runs(path)
    path.write_text(",".join(RUN_COLUMNS) + f"\n{good}\nshortest,1,rt")    # interrupted mid-row
    assert len(read_runs(path)) == 1


def test_quick_sets_its_defaults_and_given_options_win():
    args = parse_args(["--quick", "--seeds", "2"])
    assert args.seeds == 2 and args.duration == QUICK["duration"]
    assert args.policies == QUICK["policies"].split(",")


def test_first_seed_shifts_every_seed_and_each_seed_draws_its_own_policy_order():
    policies = ["shortest", "least-loaded", "widest", "bpann", "qlearning", "random"]
    plan = run_plan(parse_args(["--seeds", "2", "--first-seed", "4", "--policies", ",".join(policies)]))
    orders = [[p for s, p in plan if s == seed] for seed in (4, 5)]
    assert [s for s, _ in plan] == [4] * 6 + [5] * 6
    # by the seed itself, not its place in the run: seed 4 runs as it would with --seeds 4
    assert orders == [random.Random(seed).sample(policies, 6) for seed in (4, 5)] and orders[0] != orders[1]
    assert plan[:6] == run_plan(parse_args(["--seeds", "4", "--policies", ",".join(policies)]))[18:]


def test_a_policy_with_the_symmetric_variant_is_its_own_entry():
    assert parse_args(["--policies", "least-loaded,least-loaded+symmetric"]).policies == \
        ["least-loaded", "least-loaded+symmetric"]


@pytest.mark.parametrize("argv, field", [(["--policies", "shortest,nope"], "--policies"),
                                          (["--policies", "shortest+sideways"], "--policies"),
                                          (["--policies", "qlearning+kept"],
                                           "--policies: qlearning+kept: +kept keeps a +warm file's"),
                                          (["--policies", "qlearning+warm+kept+greedy"],
                                           "--policies: qlearning+warm+kept+greedy: +greedy sets the exploration "
                                           "rate to 0, +kept keeps the file's"),
                                          (["--policies", "qlearning+count+greedy"],
                                           "--policies: qlearning+count+greedy: +greedy sets the exploration "
                                           "rate to 0, +count explores by a bonus instead"),
                                          (["--policies", "qlearning+linear+relative"],
                                           "--policies: qlearning+linear+relative: one model of baseline, "
                                           "correction, linear, relative"),
                                          (["--policies", "qlearning+correction+relative"],
                                           "--policies: qlearning+correction+relative: one model"),
                                          (["--policies", "qlearning+linear+count"],
                                           "--policies: qlearning+linear+count: the linear and baseline"),
                                          (["--policies", "qlearning+baseline+count"],
                                           "--policies: qlearning+baseline+count: the linear and baseline"),
                                          (["--policies", "qlearning+baseline+flow"],
                                           "--policies: qlearning+baseline+flow: the baseline model pairs"),
                                          (["--duration", "5"], "--duration"),
                                          (["--warmup", "70"], "--warmup"),
                                          (["--background-gap", "0.4"], "--background-gap"),
                                          (["--background-gap", "31"], "--background-gap"),
                                          (["--first-seed", "0"], "--first-seed"),
                                          (["--seeds", "0"], "--seeds"),
                                          (["--policies", "bpann,learned", "--model", "models/bpann"],
                                           "--model: bpann and learned would both run it"),
                                          (["--policies", "bpann", "--model", "/nonexistent/m"],
                                           "--model: bpann: /nonexistent/m.json: cannot read")])
def test_bad_options_name_the_option(argv, field, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert field in capsys.readouterr().err


@pytest.fixture
def tables(tmp_path):
    """A model of each kind that has learnt something, saved as --q-warm takes them."""
    paths, learnt = {}, {QTable: ("h2 r4 l0", "h2 r4 l0"), LinearQ: ((1.0,) * len(FEATURES),) * 2,
                         RelativeQ: ("g0 x1 c0", None), CorrectionQ: ("h2 r4 l0", None)}
    for kind, (state, after) in learnt.items():
        paths[kind.model] = tmp_path / f"{kind.model}.json"
        table = kind(alpha=0.05, gamma=0.5, epsilon=0.02)
        table.update(state, -3.0, after)
        table.save(paths[kind.model])
    return paths


def test_each_warm_policy_starts_from_the_file_of_its_model(tables):
    args = parse_args(["--policies", "qlearning+warm,qlearning+linear+warm,qlearning+warm+relative,"
                       "qlearning+correction+warm", "--q-warm", str(tables["linear"]), "--q-warm", str(tables["table"]),
                       "--q-warm", str(tables["relative"]), "--q-warm", str(tables["correction"])])
    assert args.q_warm == tables
    assert [warm_model(p.split("+")[1:]) for p in args.policies] == ["table", "linear", "relative", "correction"]


def test_each_warm_run_starts_from_a_copy_of_its_models_file_exploring_anew(tables, tmp_path):
    """What main() keeps (warm_copy), with its exploration decayed: each run's start is what
    its model learnt, exploring from the starting rate, or (+kept) at the file's own rate."""
    learnt = {}
    for model, path in tables.items():
        learnt[model] = {**json.loads(path.read_text()), "epsilon": 0.02, "decisions": 1200}
        warm_copy(tmp_path, model).write_text(json.dumps(learnt[model]))
    runs = tmp_path / "runs"
    for variants, model in ((["warm"], "table"), (["linear", "warm"], "linear"), (["relative", "warm"], "relative"),
                            (["correction", "warm"], "correction")):
        start = json.loads(learner_table(runs / f"r-{model}", variants).read_text())
        assert start == {**learnt[model], "epsilon": Settings.q_epsilon, "decisions": 0}
        assert start["updates"] == 1 and (start["q"] if model != "linear" else start["w"] != [0.0] * len(FEATURES))
    kept = json.loads(learner_table(runs / "k", ["warm", "kept"]).read_text())
    assert kept == {**learnt["table"], "epsilon": 0.02, "decisions": 0}     # as the file has it
    greedy = json.loads(learner_table(runs / "g", ["warm", "greedy"]).read_text())
    assert greedy == {**learnt["table"], "epsilon": 0.0, "decisions": 0}
    assert learner_table(runs / "f", ["fresh"]) == runs / "f" / "qtable.json" and not (runs / "f" / "qtable.json").exists()
    assert learner_table(runs / "c", ["linear"]) == tmp_path / "qtable-linear.json"


@pytest.mark.parametrize("given, policies, says", [
    (["table"], "qlearning+linear+warm", "qlearning+linear+warm needs a file of a 'linear' model"),
    ([], "qlearning+warm", "qlearning+warm needs a file of a 'table' model"),
    (["table", "table"], "qlearning+warm", "table.json: a second file of a 'table' model"),
    (["members"], "qlearning+warm", "members.json: field 'model': not a path Q-table's (members)"),
    (["broken"], "qlearning+warm", "broken.json: field 'q': expected an object"),
    (["listed"], "qlearning+warm", "listed.json: field 'model': not a path Q-table's"),
    (["table", "linear"], "qlearning+warm", "linear.json: no +warm policy of a 'linear' model starts from it")])
def test_warm_files_are_checked_before_any_run(tables, tmp_path, given, policies, says, capsys):
    (tmp_path / "members.json").write_text(json.dumps({"format": 2, "model": "members", "q": {}}))
    (tmp_path / "broken.json").write_text(json.dumps({"format": 2, "model": "table", "q": [1]}))
    (tmp_path / "listed.json").write_text(json.dumps({"format": 2, "model": ["table"]}))
    argv = ["--policies", policies]
    for name in given:
        argv += ["--q-warm", str(tables.get(name, tmp_path / f"{name}.json"))]
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert says in capsys.readouterr().err


def test_provenance_is_the_commit_dirty_or_not_and_the_shell_quoted_command(tmp_path):
    assert provenance("scripts.experiment", ["--out", "my results"], tmp_path) == {
        "commit": "unknown", "command": "python -m scripts.experiment --out 'my results'"}   # python: not in tmp_path
    assert provenance("scripts.report", ["x"])["command"] == f"{python_name()} -m scripts.report x"
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a").write_text("1")
    subprocess.run([*git, "add", "a"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "untracked").write_text("results")            # new files do not make a tree dirty
    assert provenance("m", [], tmp_path)["commit"] == head
    (tmp_path / "a").write_text("2")
    assert provenance("m", [], tmp_path)["commit"] == head + "-dirty"


def python_name() -> str:
    try:
        return str(Path(sys.executable).relative_to(ROOT))
    except ValueError:
        return "python"


def test_cpu_seconds_are_the_processes_own_and_none_once_it_is_gone(tmp_path):
    """Read from /proc: this process's user and system time as os.times() counts it (to the
    clock tick), after a busy loop, its children's not counted; a process whose name holds
    ") " and spaces read as well (a busy one, named so by its executable's link); None for a
    process that is gone, or none."""
    child = subprocess.run([sys.executable, "-c", "import time\nt = time.process_time() + 0.3\n"
                            "while time.process_time() < t: pass"], check=True)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    t = os.times()
    assert child.returncode == 0 and t.children_user + t.children_system >= 0.25
    assert cpu_s(os.getpid()) == pytest.approx(t.user + t.system, abs=0.05)
    odd = tmp_path / "a) b c"
    odd.symlink_to(sys.executable)
    busy = subprocess.Popen([odd, "-c", "import time\nt = time.process_time() + 0.5\nwhile time.process_time() < t: pass\n"
                             "time.sleep(10)"])
    try:
        assert wait_until(lambda: (cpu_s(busy.pid) or 0) >= 0.4, 10, what="the child's CPU time")
        assert "a) b c" in Path(f"/proc/{busy.pid}/stat").read_text()
    finally:
        busy.kill()
        busy.wait()
    assert cpu_s(busy.pid) is None and cpu_s(None) is None
