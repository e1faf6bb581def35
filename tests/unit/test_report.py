"""The report's plots and summary for an experiment on another topology and probe pair (h2 to h9
on 11 switches, 30 directed inter-switch links): what a newcomer reads must be about that run."""

import csv
import json
import random
import re

import matplotlib.text
import pytest

from scripts.report import RUN_COLUMNS, ReportError, across, ci_text, probe_label, provenance_line, versus, write_report

PATHS = ["s2>s3>s5>s9", "s2>s4>s9"]
PATH_LINKS = ["s2>s3", "s3>s5", "s5>s9", "s2>s4", "s4>s9"]
OTHER_PAIRS = [("s1", "s2"), ("s1", "s3"), ("s3", "s4"), ("s5", "s6"), ("s6", "s7"), ("s7", "s8"),
               ("s8", "s10"), ("s10", "s11"), ("s1", "s11"), ("s6", "s10")]
LINKS = [f"{a}>{b}" for x, y in [lk.split(">") for lk in PATH_LINKS] + OTHER_PAIRS for a, b in ((x, y), (y, x))]


def run_rows(policies, rounds_per_seed):
    """Probe rows of h2 to h9 (3 RTT probes and a transfer per round) and one background flow."""
    rnd = random.Random(1)
    rows = []
    for seed, rounds in enumerate(rounds_per_seed, start=1):
        for policy in policies:
            for i in range(rounds):
                path = PATHS[i % 2]
                rows += [[policy, seed, "rtt", i, k, 10 + 5 * i, f"h2>h9 udp {40000 + i}", path,
                          round(rnd.uniform(1, 50), 3), "", "", "", ""] for k in range(3)]
                rows.append([policy, seed, "transfer", i, 0, 11 + 5 * i, f"h2>h9 tcp {45000 + i}", path, "",
                             1000000, 1.5, rnd.uniform(2, 9), 1])
            rows.append([policy, seed, "background", 0, 0, 1.0, "h3>h5 tcp 5300", "", "", 1000, 2.0, "", 1])
    return rows


def make_folder(folder, policies=("shortest", "least-loaded"), rounds_per_seed=(10, 10), capture=True):
    folder.mkdir(exist_ok=True)
    with open(folder / "runs.csv", "w", newline="") as f:
        csv.writer(f).writerows([RUN_COLUMNS, *run_rows(policies, rounds_per_seed)])
    if capture:
        for policy in policies:
            cap = folder / "runs" / f"{policy}-seed1" / "capture"
            cap.mkdir(parents=True)
            with open(cap / "links.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["time_s", "src", "src_port", "dst", "dst_port", "capacity_mbps", "rate_mbps",
                            "utilisation", "loss", "latency_ms", "age_s"])
                for t in range(60):
                    for n, link in enumerate([*reversed(LINKS), "h2>s2", "s9>h9"]):
                        src, dst = link.split(">")
                        u = (n + t) % 20 / 20
                        w.writerow([1700000000.25 + t, src, 1, dst, 2, 10, 10 * u, u, 0, 1, 0.5])
    return folder


def texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


@pytest.fixture
def figures(tmp_path):
    return write_report(make_folder(tmp_path / "exp"))


def test_no_plot_says_h1_to_h7_and_the_probe_plots_name_h2_to_h9(figures):
    assert not any("h1 to h7" in t for fig in figures.values() for t in texts(fig))
    for name in ("rtt_cdf.png", "throughput.png", "rtt_over_time.png"):
        assert any("h2 to h9" in t for t in texts(figures[name])), name


def test_probe_label_is_generic_when_the_probe_rows_disagree_or_are_missing():
    rows = [dict(zip(RUN_COLUMNS, r)) for r in run_rows(["shortest"], [2])]
    assert probe_label(rows) == "h2 to h9"
    assert probe_label(rows + [{**rows[0], "flow": "h1>h7 udp 40000"}]) == "probe"
    assert probe_label([r for r in rows if r["kind"] == "background"]) == "probe"


def test_utilisation_heatmap_has_one_row_per_switch_link_with_the_probe_path_links_first(figures):
    for ax in figures["utilisation.png"].axes[:2]:      # the third axes is the colour bar
        assert ax.images[0].get_array().shape == (30, 60)
    labels = [t.get_text() for t in figures["utilisation.png"].axes[0].get_yticklabels()]
    assert labels[:5] == PATH_LINKS
    assert sorted(labels) == sorted(LINKS)


def test_utilisation_colours_share_a_0_to_1_scale_with_a_labelled_colour_bar(figures):
    fig = figures["utilisation.png"]
    assert all(ax.images[0].get_clim() == (0, 1) for ax in fig.axes[:2])
    assert "utilisation (fraction of capacity)" in texts(fig)


def test_utilisation_plot_is_written_without_any_capture(tmp_path):
    folder = make_folder(tmp_path / "exp", capture=False)
    fig = write_report(folder)["utilisation.png"]
    assert (folder / "utilisation.png").stat().st_size > 0
    assert "shortest (no capture)" in texts(fig)


def test_seed_boundaries_are_dotted_lines_between_the_last_round_of_a_seed_and_the_next(tmp_path):
    fig = write_report(make_folder(tmp_path / "exp", rounds_per_seed=(10, 6, 10)))["rtt_over_time.png"]
    ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [10.5, 16.5]
    assert {t.get_text().strip() for t in ax.texts} == {"seed 1", "seed 2", "seed 3"}


def test_rtt_over_time_states_its_moving_average_window_and_starts_at_the_windows_last_round(tmp_path):
    fig = write_report(make_folder(tmp_path / "exp", rounds_per_seed=(10, 10)))["rtt_over_time.png"]
    ax = fig.axes[0]
    assert "moving average over 4 rounds" in ax.get_title()        # 20 rounds / 5
    curves = [line for line in ax.lines if line.get_label() in ("shortest", "least-loaded")]
    assert [list(c.get_xdata()) for c in curves] == [list(range(4, 21))] * 2


@pytest.mark.parametrize("seeds, note", [(1, "rest on 1 seed: a single measurement, with no 95% interval"),
                                         (2, "rest on 2 seeds; 95% intervals from fewer than 5 seeds are too wide"),
                                         (5, None)])
def test_summary_says_when_too_few_seeds_for_the_intervals_to_mean_anything(tmp_path, seeds, note):
    folder = make_folder(tmp_path / "exp", rounds_per_seed=[4] * seeds, capture=False)
    write_report(folder)
    md = (folder / "summary.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 4
    if note:
        assert note in md and "Note" not in "".join(table)
    else:
        assert "Note" not in md and "rest on" not in md


def test_summary_names_the_commit_and_command_its_config_records(tmp_path):
    folder = make_folder(tmp_path / "exp", capture=False)
    (folder / "config.json").write_text(json.dumps(
        {"seeds": 2, "commit": "0123456789abcdef0123456789abcdef01234567-dirty",
         "command": ".venv/bin/python -m scripts.experiment --seeds 2 --out 'my results'"}))
    write_report(folder)
    assert (folder / "summary.md").read_text().splitlines()[-1] == (
        "Measured at commit `0123456-dirty` by `.venv/bin/python -m scripts.experiment --seeds 2 "
        "--out 'my results'`.")


def test_an_older_folder_says_where_its_provenance_came_from_or_nothing(tmp_path):
    folder = make_folder(tmp_path / "exp", capture=False)
    write_report(folder)                                      # no config.json: no line
    assert "Measured at" not in (folder / "summary.md").read_text()
    (folder / "config.json").write_text(json.dumps({"provenance": {
        "commit": "e9b0de0", "command": "python -m scripts.experiment", "note": "Recorded by hand."}}))
    write_report(folder)
    assert (folder / "summary.md").read_text().splitlines()[-1] == (
        "Measured at commit `e9b0de0` by `python -m scripts.experiment`. Recorded by hand.")
    assert provenance_line({"commit": "unknown", "command": "x"}) == "Measured at an unknown commit by `x`."


def test_index_html_shows_the_summary_table_and_every_plot_with_nothing_from_elsewhere(tmp_path):
    folder = make_folder(tmp_path / "exp", rounds_per_seed=(10,))
    plots = write_report(folder)
    page = (folder / "index.html").read_text()
    assert page.count("<tr>") == 3 and "<td>shortest</td>" in page and "<td>least-loaded</td>" in page
    assert "rest on 1 seed" in page                       # the few-seeds note, as in summary.md
    assert re.findall(r'src="([^"]+)"', page) == list(plots) and all((folder / p).exists() for p in plots)
    assert "http" not in page.replace("<!doctype html>", "")


def test_changes_against_a_reference_policy_are_paired_by_seed():
    """versus(): each policy's change against the reference, seed by seed on the seeds both ran
    (seed 3 of the reference is not paired), with the t-interval; a short run says so."""
    def entry(per_seed):
        seeds = {str(s): {"rtt_mean_ms": r, "rtt_p95_ms": 2 * r, "throughput_mbps": t} for s, (r, t) in per_seed.items()}
        return {"rtt_mean_ms": sum(r for r, _ in per_seed.values()) / len(per_seed),
                "rtt_p95_ms": 2 * sum(r for r, _ in per_seed.values()) / len(per_seed),
                "throughput_mbps": sum(t for _, t in per_seed.values()) / len(per_seed),
                "seeds": sorted(per_seed), "per_seed": seeds}
    summary = {"least-loaded": entry({1: (4.0, 10.0), 2: (2.0, 20.0), 3: (100.0, 1.0)}),
               "learner": entry({1: (2.0, 12.0), 2: (3.0, 22.0)})}
    table = versus(summary, "least-loaded")
    row = next(line for line in table.splitlines() if line.startswith("| learner "))
    # RTT: -50% and +50%, mean 0 with t(1) x sd / sqrt(2) = 12.706 x 0.7071 x 0.7071 = 6.353 -> +-635%;
    # throughput: +20% and +10%, mean +15%
    assert "| +0.0% [-635.3, +635.3] |" in row and "| +15.0% [" in row, row
    assert "(reference)" in next(line for line in table.splitlines() if line.startswith("| least-loaded "))
    assert "against least-loaded rest on 2 seeds" in table
    with pytest.raises(ReportError, match="no policy shortest"):
        versus(summary, "shortest")


def test_geometric_changes_name_the_seeds_left_out_and_a_pool_of_runs_counts_each_seed_once():
    """Geometric: 0.5x on one seed and 2x on the other are no change (arithmetic: +25%); a seed
    one side lacks, or whose value is 0 (a transfer that moved nothing), is named, not dropped
    unseen. Pool: per seed the geometric mean of the runs' ratios (seed 1: 0.5x and 2x, 1x;
    seed 2: 1.5x twice), then across seeds sqrt(1 x 1.5) = 1.22x; seed 3, which one run lacks,
    is left out. A pool is of distinct policies, none a reference, in geometric means only."""
    def entry(rtts, throughput=10.0):
        per_seed = {str(s): {"rtt_mean_ms": r, "rtt_p95_ms": r, "throughput_mbps": throughput} for s, r in rtts.items()}
        return {"rtt_mean_ms": 1.0, "rtt_p95_ms": 1.0, "throughput_mbps": 10.0, "seeds": sorted(rtts), "per_seed": per_seed}
    summary = {"least-loaded": entry({1: 4.0, 2: 2.0, 3: 1.0}), "a": entry({1: 2.0, 2: 3.0, 3: 9.0}),
               "b": entry({1: 8.0, 2: 3.0}), "c": entry({1: 2.0, 2: 4.0}), "d": entry({1: 4.0, 2: 2.0, 3: 1.0}, 0.0)}
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4:] for line in
            versus(summary, "least-loaded", geometric=True, pool=("a", "b")).splitlines() if line.startswith("| ")}
    assert rows["c"][0] == "1.000x [0.000, 6682.651] (left out: seed 3)"    # t(1) 12.706 x ln 2: e^8.807
    assert versus(summary, "least-loaded").count("| +25.0% [") == 2     # c's mean and p95, arithmetically
    assert rows["d"][0] == "1.000x [1.000, 1.000]" and rows["d"][2] == "n/a (left out: seed 1, 2, 3) |"
    assert rows["pooled: a + b"][0] == "1.225x [0.093, 16.098] (left out: seed 3)"
    assert rows["pooled: a + b"][2] == "1.000x [1.000, 1.000] (left out: seed 3) |"
    assert "RTT mean ratio to least-loaded [95% CI]" in rows["policy"][0]
    for pool in (("a", "e"), ("a", "a"), ("a", "least-loaded")):
        with pytest.raises(ReportError, match="no policy e" if "e" in pool else "distinct policies, none a reference"):
            versus(summary, "least-loaded", geometric=True, pool=pool)
    with pytest.raises(ReportError, match="geometric"):
        versus(summary, "least-loaded", pool=("a", "b"))


def test_a_pool_of_parts_on_other_seeds_counts_every_seed_each_against_its_own_reference():
    """Two commands on seeds 1-2 and 3-4, each table against its command's least-loaded: the
    pool is over the four seeds (2x, 1x, 0.5x, 1x: geometric mean 1x), none left out; a seed
    of a part whose table lacks it is still named."""
    def entry(rtts):
        per_seed = {str(s): {"rtt_mean_ms": r, "rtt_p95_ms": r, "throughput_mbps": 10.0} for s, r in rtts.items()}
        return {"rtt_mean_ms": 1.0, "rtt_p95_ms": 1.0, "throughput_mbps": 10.0, "seeds": sorted(rtts), "per_seed": per_seed}
    summary = {"least-loaded": entry({1: 1.0, 2: 2.0}), "t": entry({1: 2.0, 2: 2.0}),
               "least-loaded (again)": entry({3: 4.0, 4: 1.0, 5: 1.0}), "t (again)": entry({3: 2.0, 4: 1.0})}
    table = versus(summary, "least-loaded", geometric=True, pool=("t", "t (again)"),
                   own={"least-loaded (again)": "least-loaded (again)", "t (again)": "least-loaded (again)"})
    pooled = next(line for line in table.splitlines() if line.startswith("| pooled"))
    assert pooled.split(" | ")[4] == "1.000x [0.406, 2.461] (left out: seed 5)"     # e^(3.182 x sd 0.566 / 2)


def test_one_pool_over_another_is_per_seed_the_ratio_of_their_pooled_ratios():
    """Pool x (seed 1: 2x and 1x least-loaded's, seed 2: 1x and 2x) over pool y (seed 1: 1x
    and 0.5x; seed 2: 1x twice; seed 3 one run lacks): sqrt 2 over sqrt 0.5 is 2 on seed 1,
    sqrt 2 on seed 2, seed 3 named as left out. Over needs a pool of as many other runs (a
    seed's difference of means is then its mean of differences, paired by warm-up)."""
    def entry(rtts):
        per_seed = {str(s): {"rtt_mean_ms": r, "rtt_p95_ms": r, "throughput_mbps": 1.0} for s, r in rtts.items()}
        return {"rtt_mean_ms": 1.0, "rtt_p95_ms": 1.0, "throughput_mbps": 1.0, "seeds": sorted(rtts), "per_seed": per_seed}
    summary = {"least-loaded": entry({1: 4.0, 2: 2.0, 3: 2.0}), "x1": entry({1: 8.0, 2: 2.0, 3: 2.0}),
               "x2": entry({1: 4.0, 2: 4.0, 3: 2.0}), "y1": entry({1: 4.0, 2: 2.0, 3: 2.0}),
               "y2": entry({1: 2.0, 2: 2.0})}
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4:] for line in
            versus(summary, "least-loaded", geometric=True, pool=("x1", "x2"), over=("y1", "y2")).splitlines()
            if line.startswith("| ")}
    assert rows["pooled: x1 + x2"][0] == ci_text(across([2 ** 0.5, 2 ** 0.5, 1.0]), 3)
    assert rows["pooled: y1 + y2"][0] == ci_text(across([0.5 ** 0.5, 1.0]), 3) + " (left out: seed 3)"
    assert rows["pooled x1 over pooled y1"][0] == ci_text(across([2.0, 2 ** 0.5]), 3) + " (left out: seed 3)"
    assert rows["pooled x1 over pooled y1"][2] == "1.000x [1.000, 1.000] (left out: seed 3) |"
    for pool, over in ((("x1", "x2"), ("x2", "y1")), ((), ("y1", "y2")), (("x1", "x2"), ("y1",))):
        with pytest.raises(ReportError, match="over .*: against a pool of as many other runs"):
            versus(summary, "least-loaded", geometric=True, pool=pool, over=over)
