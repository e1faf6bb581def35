"""Run K's figures (preregistration.md in docs/results/qlearning-h1h7-bounded-240s): the bounded
table and the greedy one against least-loaded, and the bounded over the greedy, per part and over
the parts kept so far; and, from the experiment's --out folder (Ka, Kb, Kc under it) or the runs
a part keeps in docs/results (from part b on: part a's were lost with its machine), each run's
counts, the placements off least-loaded's choice (the greedy table must have none), what the
trains the bounded table moved met, what its runs taught, and each arm's CPU:

    .venv/bin/python -m scripts.run_k [/work/results-17k]

A part's runs are kept (what these analyses open, decisions and runs.csv gzipped as docs/results
keeps them elsewhere; 0.65 MB for part b) by, from the repository's root, with P the part:

    src=/work/results-17k/KP dst=docs/results/qlearning-h1h7-bounded-240s-P
    gzip -9nc $src/runs.csv > $dst/runs.csv.gz
    for r in $src/runs/*/; do n=$dst/runs/$(basename $r); mkdir -p $n; cp $r/rounds.json $n/
        [ ! -e $r/qtable.json ] || cp $r/qtable.json $n/; gzip -9nc $r/decisions.jsonl > $n/decisions.jsonl.gz; done

The verdicts are pre-registered on all 24 seeds; on fewer, the figures are as read.
"""

import sys
from pathlib import Path

from scripts.preregistered import REFERENCE, RESULTS, Run, verdict

K = Run("K", {"a": ("qlearning-h1h7-bounded-240s", 925), "b": ("qlearning-h1h7-bounded-240s-b", 933),
              "c": ("qlearning-h1h7-bounded-240s-c", 941)})
GREEDY, BOUNDED = "qlearning+warm+greedy+baseline", "qlearning+warm+kept+baseline"
WARM = RESULTS / "qlearning-h1h7-baseline-240s/warm-baseline.json"     # run J's warm file, which K's tables start from


def main(out: Path | None) -> None:
    if not K.kept():
        print("no part's summary in docs/results yet")
        return
    K.losses([REFERENCE, GREEDY, BOUNDED])
    if bounds := K.pooled(BOUNDED, "rtt_mean_ms"):
        verdict("the bounded table's mean RTT within 10% of least-loaded", bounds[1] <= 1.10, bounds)
    if bounds := K.pooled(BOUNDED, "throughput_mbps"):
        verdict("the bounded table's throughput at least least-loaded's minus 10%", bounds[0] >= 0.90, bounds)
    if bounds := K.pooled(GREEDY, "rtt_mean_ms"):
        verdict("the learner's controller costs RTT", bounds[0] > 1.0, bounds)
        verdict("the greedy table's mean RTT within 10% of least-loaded", bounds[1] <= 1.10, bounds)
    K.pooled(GREEDY, "throughput_mbps")
    K.pooled(GREEDY, "rtt_p95_ms")
    K.pooled(BOUNDED, "rtt_p95_ms")
    K.pooled(BOUNDED, "rtt_mean_ms", under=GREEDY)
    print("   per seed: " + ", ".join(f"{k} {r:.3f}" if r else f"{k} none" for p in K.kept()
                                     for k, r in K.ratios(p, BOUNDED, "rtt_mean_ms", under=GREEDY).items()))
    K.pooled(BOUNDED, "throughput_mbps", under=GREEDY)
    if K.sources(out):
        K.cpu(out, [GREEDY, BOUNDED])
        K.placements(out, GREEDY)
        K.probes(out, BOUNDED, K.placements(out, BOUNDED))
        K.lessons(out, BOUNDED, WARM)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
