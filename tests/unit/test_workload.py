"""The all-pairs workload: every ordered host pair gets its flows, sizes follow the published
CDFs, the same seed gives the same flows; the ideal FCT uses the widest path; slowdown buckets
are computed as defined on flows whose answers are known."""

import numpy as np
import pytest

from controller.files import load_spec
from topologies.lab import ROOT
from topologies.workload import (DATA_MINING, LARGE_BYTES, SMALL_BYTES, WEB_SEARCH, all_pairs, by_bucket,
                                 ideal_fct_s, sample_sizes, slowdowns, widest_mbps)

H1H7 = load_spec(ROOT / "topologies" / "h1h7.json")
HOSTS = [h.name for h in H1H7.hosts]


def test_every_ordered_pair_gets_one_flow_a_round_in_seeded_order():
    flows = all_pairs(HOSTS, seed=3, rounds=2)
    pairs = [(f.src, f.dst) for f in flows]
    assert sorted(pairs) == sorted([(a, b) for a in HOSTS for b in HOSTS if a != b] * 2)
    assert flows == all_pairs(HOSTS, seed=3, rounds=2)
    assert pairs != [(f.src, f.dst) for f in all_pairs(HOSTS, seed=4, rounds=2)]
    starts = [f.start_s for f in flows]
    assert starts == sorted(starts) and starts[0] > 0
    assert len({f.sport for f in flows}) == len(flows)
    assert np.mean(np.diff(starts)) == pytest.approx(0.2, rel=0.3)


@pytest.mark.parametrize("cdf", [WEB_SEARCH, DATA_MINING])
def test_sizes_follow_the_published_cdf_at_every_point(cdf):
    sizes = sample_sizes(cdf, 200_000, np.random.default_rng(0))
    for size, probability in cdf[1:-1]:
        assert np.mean(sizes <= size) == pytest.approx(probability, abs=0.01)
    assert sizes.min() >= 1 and sizes.max() <= cdf[-1][0]


def test_the_data_mining_mix_is_mostly_tiny_flows_and_mostly_bytes_in_huge_ones():
    sizes = sample_sizes(DATA_MINING, 200_000, np.random.default_rng(1)).astype(float)
    assert np.mean(sizes < SMALL_BYTES) > 0.8
    assert sizes[sizes >= LARGE_BYTES].sum() / sizes.sum() > 0.9


def test_a_size_cap_cuts_the_tail_and_a_bad_cdf_is_refused():
    assert sample_sizes(WEB_SEARCH, 5000, np.random.default_rng(0), max_bytes=200_000).max() == 200_000
    with pytest.raises(ValueError, match="rise from 0 to 1"):
        sample_sizes(((0, 0.0), (10, 0.5)), 10, np.random.default_rng(0))


def test_the_ideal_is_the_widest_path_not_the_shortest():
    """h1 -> h7: A (2 hops) is 10 Mbit/s, C (4 hops) 30 Mbit/s; the hosts' links are 100."""
    assert widest_mbps(H1H7, "h1", "h7") == 30
    assert widest_mbps(H1H7, "h3", "h4") == 20
    assert ideal_fct_s(1_000_000, 30) == pytest.approx(8e6 / 30e6)


def test_slowdown_buckets_by_hand():
    def flow(size, seconds, complete=True):
        return {"src": "h1", "dst": "h7", "size_bytes": size, "seconds": seconds, "complete": complete}

    rows = slowdowns(H1H7, [flow(30_000, 0.008 * k) for k in range(1, 101)]
                     + [flow(1_000_000, 8e6 / 30e6 * 2), flow(20_000_000, 16e7 / 30e6 * 3, complete=False)])
    assert rows[0]["ideal_s"] == pytest.approx(30_000 * 8 / 30e6) and rows[0]["slowdown"] == pytest.approx(1.0)
    report = by_bucket(rows)
    small = np.arange(1, 101)
    assert report["small"]["flows"] == 100
    assert report["small"]["mean"] == pytest.approx(small.mean())
    assert report["small"]["p99"] == pytest.approx(np.percentile(small, 99))
    assert report["medium"] == {"flows": 1, "mean": pytest.approx(2.0)}
    assert report["large"] == {"flows": 1, "mean": pytest.approx(3.0)}
    assert report["incomplete"] == 1
    assert by_bucket([])["small"] == {"flows": 0, "mean": None, "p99": None}


def flow_rows(policy, seed, small, large):
    """Ten small flows of slowdown `small` and a large one of `large` (None: no large flow)."""
    rows = [{"policy": policy, "seed": seed, "size_bytes": 10_000, "slowdown": small, "complete": True}] * 10
    return rows + ([{"policy": policy, "seed": seed, "size_bytes": LARGE_BYTES, "slowdown": large,
                     "complete": False}] if large is not None else [])


def test_all_pairs_results_pair_each_policy_with_the_reference_seed_by_seed():
    from scripts.allpairs import markdown, summarise
    rows = [*flow_rows("least-loaded", 1, 2.0, 4.0), *flow_rows("learned", 1, 1.0, 3.0),
            *flow_rows("least-loaded", 2, 4.0, 8.0), *flow_rows("learned", 2, 3.0, None),
            *flow_rows("least-loaded", 3, 2.0, 2.0), *flow_rows("learned", 3, 1.5, 3.0)]
    summary = summarise(rows, "least-loaded")
    learned = summary["learned"]
    assert learned["small_mean"] == pytest.approx(5.5 / 3)
    assert learned["small_mean_vs_reference"]["mean"] == pytest.approx((-0.5 - 0.25 - 0.25) / 3)
    # seed 2: learned had no large flow, so only seeds 1 and 3 pair
    assert learned["large_mean_vs_reference"]["mean"] == pytest.approx((-0.25 + 0.5) / 2)
    assert learned["flows"] == {"small": 30, "medium": 0, "large": 2} and learned["incomplete"] == 2
    assert summary["least-loaded"]["small_p99_vs_reference"]["mean"] == 0.0
    table = markdown(summary, "least-loaded")
    assert "| learned | 1.83 | 1.83 | n/a | 3.00 | 30/0/2 | 2 | -33.3% [" in table
    assert "| least-loaded | 2.67 | 2.67 | n/a | 4.67 | 30/0/3 | 3 | (reference) |" in table


@pytest.mark.parametrize("argv, message", [
    (["--policies", "learned", "--reference", "least-loaded"], "--reference: least-loaded is not one of --policies"),
    (["--policies", "least-loaded,nope"], "unknown nope"),
    (["--gap", "0"], "--gap: 0.01..10 s"),
])
def test_all_pairs_options_out_of_range_are_one_usage_line(argv, message, capsys):
    from scripts.allpairs import parse_args
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
