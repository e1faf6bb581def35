"""Run J's figures (docs/qlearning.md, "The baseline table at 240 s, written down first";
preregistration.md in docs/results/qlearning-h1h7-baseline-240s): the table against
least-loaded per part and over the parts kept so far, what the warm table learnt, and, given the
experiment's --out folder (Ja, Jb, Jc under it; run J's parts keep no runs), each run's counts, the placements off
least-loaded's choice, what the trains the table moved met and what its runs taught:

    .venv/bin/python -m scripts.run_j [/work/results-17j]

The verdict is pre-registered on all 24 seeds; on fewer, the figures are as read.
"""

import sys
from pathlib import Path

from scripts.preregistered import REFERENCE, RESULTS, Run, verdict, warm_table

J = Run("J", {"a": ("qlearning-h1h7-baseline-240s", 901), "b": ("qlearning-h1h7-baseline-240s-b", 909),
              "c": ("qlearning-h1h7-baseline-240s-c", 917)})
TABLE = "qlearning+warm+kept+baseline"


def main(out: Path | None) -> None:
    if not J.kept():
        print("no part's summary in docs/results yet")
        return
    J.losses([REFERENCE, TABLE])
    if bounds := J.pooled(TABLE, "rtt_mean_ms"):
        verdict("mean RTT within 10% of least-loaded", bounds[1] <= 1.10, bounds)
    if bounds := J.pooled(TABLE, "throughput_mbps"):
        verdict("throughput at least least-loaded's minus 10%", bounds[0] >= 0.90, bounds)
    warm = RESULTS / J.parts["a"][0] / "warm-baseline.json"
    warm_table(warm)
    if J.sources(out):
        J.probes(out, TABLE, J.placements(out, TABLE))
        J.lessons(out, TABLE, warm)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
