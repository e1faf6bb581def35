"""What a pre-registered run of the baseline table reads (docs/qlearning.md; each run's
preregistration.md in docs/results): one arm against another per part and pooled over the parts
kept so far, from the summaries in the repository; the warm file's pairs; and, from the
experiment's --out folder or the runs a part keeps beside its summary (runs.csv.gz and, per run,
rounds.json, qtable.json and decisions.jsonl.gz, from run K's part b on), each finished run's
counts, the logged placements off least-loaded's choice, where the probes went, what the trains a
table moved met, and the CPU each arm's run took. scripts/run_j.py and scripts/run_k.py name a
run's parts, arms and criteria.
"""

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from scipy import stats

from controller.policies.qlearning import BaselineQ, baseline, load, lower_bound
from scripts.report import across, ci_text, gz, open_text, read_runs
from scripts.run_i import features

RESULTS = Path(__file__).resolve().parents[1] / "docs/results"
REFERENCE = "least-loaded"
SEEDS_A_PART = 8


@dataclass(frozen=True)
class Run:
    name: str                          # "J": its parts' --out folders are Ja, Jb, Jc
    parts: dict[str, tuple[str, int]]  # part -> (its folder in docs/results, its first seed)

    def per_seed(self, part: str, policy: str) -> dict:
        """The part's per-seed figures of `policy` ({} if the part ran none: a missing seed)."""
        return summary(self.parts[part][0]).get(policy, {}).get("per_seed", {})

    def kept(self) -> list[str]:
        """The parts whose summary the repository has."""
        return [p for p in self.parts if (RESULTS / self.parts[p][0] / "summary.json").exists()]

    def ratios(self, part: str, arm: str, metric: str, under: str = REFERENCE) -> dict[str, float | None]:
        """`arm`'s `metric` over the same command's `under`'s, for each of the part's seeds (None
        for a seed without both, or with either 0: a missing seed, which withholds the verdict)."""
        a, b = self.per_seed(part, arm), self.per_seed(part, under)
        first = self.parts[part][1]
        return {str(k): a[str(k)][metric] / b[str(k)][metric]
                if str(k) in a and str(k) in b and a[str(k)][metric] and b[str(k)][metric] else None
                for k in range(first, first + SEEDS_A_PART)}

    def pooled(self, arm: str, metric: str, under: str = REFERENCE) -> tuple[float, float] | None:
        """Print `arm` over `under` per part and pooled; return the pooled interval's unrounded
        bounds, or None while a part or a seed is missing (every verdict is on all the seeds)."""
        parts = self.kept()
        per_part = {p: self.ratios(p, arm, metric, under) for p in parts}
        missing = [k for p in parts for k, r in per_part[p].items() if r is None]
        pooled = [r for p in parts for r in per_part[p].values() if r is not None]
        print(f"{arm} over {under}, {metric}: " + "; ".join(
            f"part {p} {ci_text(across([r for r in per_part[p].values() if r is not None]), 3)}" for p in parts)
            + f"; parts {'+'.join(parts)} ({len(pooled)} seeds) {ci_text(across(pooled), 3)}"
            + (f"; seeds without a ratio: {', '.join(missing)}" if missing else ""))
        if len(parts) < len(self.parts) or missing:
            print(f"   no verdict: pre-registered on all {len(self.parts) * SEEDS_A_PART} seeds")
            return None
        low, high = across(pooled)["ci95"]
        return low, high

    def losses(self, arms: list[str]) -> None:
        for arm in arms:
            lost = {p: [v["loss"] for v in self.per_seed(p, arm).values() if v["loss"] is not None] for p in self.kept()}
            every = [v for part in lost.values() for v in part]
            print(f"{arm}: " + (f"probes lost {100 * statistics.fmean(every):.1f}% (mean over {len(every)} runs; "
                                + ", ".join(f"part {p} {100 * statistics.fmean(v):.1f}%" for p, v in lost.items() if v) + ")"
                                if every else "no run"))

    def root(self, out: Path | None, part: str) -> Path:
        """Where the part's runs are: its folder under the experiment's --out, if there is one,
        else its folder in docs/results (which keeps them from run K's part b on)."""
        mine = out / f"{self.name}{part}" if out else None
        return mine if mine and (mine / "runs").is_dir() else RESULTS / self.parts[part][0]

    def sources(self, out: Path | None) -> bool:
        """Say where each part's runs are read from; whether any part has runs."""
        found = {p: root for p in self.parts if ((root := self.root(out, p)) / "runs").is_dir()}
        print("runs read from: " + "; ".join(f"part {p} {found.get(p, 'none kept' + (' nor under ' + str(out) if out else ''))}"
                                             for p in self.parts))
        return bool(found)

    def runs(self, out: Path | None, arm: str):
        """(part, run folder) of each of `arm`'s runs, finished or not (rounds.json, then
        decisions.jsonl, are written last)."""
        for part in self.parts:
            for run in sorted((self.root(out, part) / "runs").glob(f"{arm}-seed*")):
                yield part, run

    def finished(self, out: Path | None, arm: str):
        return ((part, run) for part, run in self.runs(out, arm)
                if (run / "rounds.json").exists() and gz(run / "decisions.jsonl").exists())

    def placements(self, out: Path | None, arm: str) -> set[tuple[str, int]]:
        """Per finished run of `arm`: its decisions, those that left least-loaded's choice and
        those never paired, as the table counted them (every flow's), the pairs trusted at the
        end, and the --src trains' and transfers' decisions, both directions, placed off
        least-loaded's choice on the readings logged; then how full the paths those placements
        took read. Returns the (seed, round) of the trains it moved."""
        off_paths, moved = [], set()
        finished = set(self.finished(out, arm))
        for part, run in self.runs(out, arm):
            if (part, run) not in finished:
                print(f"part {part} {run.name}: not finished")
                continue
            policy = json.loads((run / "rounds.json").read_text()).get("policy") or {}
            off = total = 0
            for line in open_text(gz(run / "decisions.jsonl")):
                d = json.loads(line)
                for decision in (d, d.get("reply") or {}):
                    if decision.get("candidates"):
                        total += 1
                        candidates = list(map(features, decision["candidates"]))
                        base = baseline(candidates)
                        if decision["chosen"] != base:
                            off += 1
                            if d["kind"] == "rtt":
                                moved.add((run.name.rsplit("seed", 1)[1], d["round"]))
                            off_paths.append((candidates[decision["chosen"]].utilisation,
                                              candidates[base].utilisation))
            print(f"part {part} {run.name}: {policy.get('decisions')} decisions, left the baseline "
                  f"{policy.get('left')}, unpaired {policy.get('unpaired')}, trusted pairs at the end "
                  f"{policy.get('trusted')}; logged placements off least-loaded's choice {off} of {total}")
        if off_paths:
            taken, base = zip(*off_paths)
            print(f"{arm}'s {len(off_paths)} placements off least-loaded's choice: the path taken read "
                  f"{statistics.median(taken):.2f} full (median; {sum(u >= 1.0 for u in taken)} full), "
                  f"least-loaded's {statistics.median(base):.2f}")
        return moved

    def probes(self, out: Path | None, arm: str, moved: set[tuple[str, int]]) -> None:
        """Each policy's probes (those that came back) per path, their share and mean RTT; then
        what the trains `arm` moved met, and its mean RTT ratio without their rounds, dropped
        from both it and least-loaded (a post-hoc split, fair in that exploration draws at
        random)."""
        rtts, kept = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
        in_moved: dict[str, list[float]] = defaultdict(list)
        for part in self.parts:
            if (table := gz(self.root(out, part) / "runs.csv")).exists():
                for r in read_runs(table):
                    if r["kind"] == "rtt" and r["rtt_ms"]:
                        rtts[r["policy"]][r["path"]].append(float(r["rtt_ms"]))
                        (in_moved[r["policy"]] if (r["seed"], int(r["round"])) in moved else
                         kept[r["policy"]][r["seed"]]).append(float(r["rtt_ms"]))
        for policy, paths in rtts.items():
            n = sum(map(len, paths.values()))
            print(f"{policy}, probes per path: " + "; ".join(
                f"{p} {100 * len(v) / n:.0f}% at {statistics.fmean(v):.2f} ms" for p, v in sorted(paths.items())))
        if moved and in_moved[arm] and in_moved[REFERENCE] and kept[REFERENCE]:
            seeds = sorted(set(kept[arm]) & set(kept[REFERENCE]), key=int)
            print(f"the {len(moved)} trains {arm} moved: their probes {statistics.fmean(in_moved[arm]):.1f} ms, "
                  f"least-loaded's in those rounds {statistics.fmean(in_moved[REFERENCE]):.1f}; mean RTT "
                  f"without those rounds in both: " + ci_text(across(
                      [statistics.fmean(kept[arm][s]) / statistics.fmean(kept[REFERENCE][s]) for s in seeds]), 3)
                  + f" over {len(seeds)} seeds")

    def lessons(self, out: Path | None, arm: str, warm: Path) -> None:
        """What `arm`'s runs taught each pair state, pooled over its runs: each run's table at the
        end less the warm file it started from. While a pair's visits are at most 1/alpha its
        value is the mean of its lessons (QTable.step; a pair key has no coarser key, and the
        table's gamma is 0), so the run's lessons sum to visits x value less the warm file's; a
        pair past that (an exponential mean) is left out and counted. The counts are pooled over
        separate tables: trust is each table's own."""
        start = json.loads(warm.read_text())["q"]
        taught, past, most, runs = defaultdict(lambda: [0.0, 0]), 0, (0, "", 0.0), 0
        for _, run in self.finished(out, arm):
            runs += 1
            table = json.loads((run / "qtable.json").read_text())
            for key, (mean, visits) in table["q"].items():
                mean0, visits0 = start.get(key, (0.0, 0))
                most = max(most, (visits - visits0, f"{key} in {run.name}", mean))
                if visits > math.floor(1 / table["alpha"]):
                    past += 1
                elif visits > visits0:
                    taught[key][0] += mean * visits - mean0 * visits0
                    taught[key][1] += visits - visits0
        n = sum(v[1] for v in taught.values())
        if not n:
            print(f"{arm}'s {runs} finished runs taught no pair")
            return
        print(f"{arm}'s runs taught {n} lessons, mean advantage {sum(v[0] for v in taught.values()) / n:+.2f} ms"
              + (f" ({past} run pairs past 1/alpha visits left out)" if past else "")
              + f"; the most any one run met a pair: {most[0]} times ({most[1]}, mean {most[2]:+.2f} ms); per pair, the most met first: "
              + "; ".join(f"{k} {v[1]} at {v[0] / v[1]:+.1f}" for k, v in sorted(taught.items(), key=lambda kv: -kv[1][1])))

    def cpu(self, out: Path | None, arms: list[str]) -> None:
        """The CPU seconds of the controller and of ovs-vswitchd over each arm's runs (the
        traffic's start to the run's end): the mean and range a run, and each arm's less
        least-loaded's on the same seed, with a 95% t-interval, and as a ratio."""
        taken = {arm: {run.name.rsplit("seed", 1)[1]: json.loads((run / "rounds.json").read_text()).get("cpu_s") or {}
                       for _, run in self.finished(out, arm)} for arm in [REFERENCE, *arms]}
        for process in ("controller", "ovs-vswitchd"):
            for arm, seeds in taken.items():
                s = [v[process] for v in seeds.values() if v.get(process) is not None]
                line = f"CPU of {process}, {arm}: " + (
                    f"{statistics.fmean(s):.1f} s a run ({min(s):.1f}-{max(s):.1f}, {len(s)} runs)" if s else "none")
                pairs = [(v[process], taken[REFERENCE][k][process]) for k, v in seeds.items()
                         if v.get(process) is not None and (taken[REFERENCE].get(k) or {}).get(process) is not None]
                if arm != REFERENCE and len(pairs) > 1:
                    diff = [a - b for a, b in pairs]
                    half = stats.t.ppf(0.975, len(diff) - 1) * statistics.stdev(diff) / math.sqrt(len(diff))
                    mean = statistics.fmean(diff)
                    line += (f"; less least-loaded's {mean:+.2f} s [{mean - half:+.2f}, {mean + half:+.2f}], "
                             f"over it {ci_text(across([a / b for a, b in pairs if b]), 3)} ({len(pairs)} seeds)")
                print(line)


@cache
def summary(folder: str) -> dict:
    """A part's summary.json in docs/results, read once (the reports ask for it about 70 times)."""
    return json.loads((RESULTS / folder / "summary.json").read_text())


def verdict(name: str, shown: bool, bounds: tuple[float, float]) -> None:
    print(f"   pre-registered: {name} {'SHOWN' if shown else 'not shown'} (unrounded [{bounds[0]}, {bounds[1]}])")


def warm_table(path: Path) -> None:
    """The warm file's pairs: how often each was met, its mean advantage and its lower bound."""
    if not path.exists():
        print(f"{path}: not kept yet")
        return
    warm = load(path, BaselineQ)
    print(f"warm table: {warm.decisions} decisions, {warm.updates} taught a pair, epsilon {warm.epsilon:.3f}")
    trusted = warm.learnt()["trusted"]
    for key, (mean, visits) in sorted(warm.q.items(), key=lambda kv: -kv[1][1]):
        print(f"   {key}: {visits} flows, mean advantage {mean:+.2f} ms, bound {lower_bound(mean, visits, warm.alpha):+.2f}"
              f"{' TRUSTED' if key in trusted else ''}")
