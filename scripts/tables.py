"""Result tables in the docs, generated from results folders, so that none can go stale unseen.

A page marks each generated table with a region:

    <!-- table: docs/results/<name> [option=value ...] -->
    (generated: the table, then the commit and command that measured it)
    <!-- end table -->

This script rewrites every region of README.md and docs/*.md from its folder. With --check it
changes nothing and exits 1, naming each region that differs from what its folder renders
(and 2 for a region it cannot render: a missing folder, an unknown option, no provenance).

    .venv/bin/python -m scripts.tables [--check]

What a folder holds decides how it renders:
- summary.json and config.json: an experiment (scripts/experiment.py, or a copy of the files
  the table needs); options `view=headline` (five columns), `view=against` (with
  `reference=POLICY`, least-loaded unless given: each policy's change against it, paired by
  seed), `policies=a,b,...` (rows) and `also=FOLDER,...` (the policies of other runs of the same
  seeds join the rows, a name already there as "<name> (again)", then "(again 2)": how far two
  runs of one policy differ); with `view=against`, `mean=geometric` (the per-seed ratios'
  geometric mean, for skewed ratios) and `pool=NAME` (a row pooling NAME's runs in the folders,
  "(again)" and on: one formulation run from several warm-ups, each seed counted once; each
  run against its own folder's reference where that folder has one), and with it `over=OTHER`
  (OTHER's runs pooled alike, and a row of the pool's ratio over OTHER's, per seed: two
  formulations, each against the least-loaded run beside it);
  a service comparison's (scripts/services.py: summary.json holds `loads`) renders its
  table per load and its member-killed result; an all-pairs run's (scripts/allpairs.py:
  config.json names a `cdf`) its slowdowns against its reference;
- results.json: a benchmark's figures (its --json), by their `kind`: `decision`,
  `bpann`, `controller` (option `view=flow-setup` or `view=polling`), `placement`,
  `controller-placement` (python -m placement report; option `view=targets`,
  `view=tree-vs-network`, or `methods=a,b,...` for the rows of those methods);
- config.json naming a `model`: that BPANN model's cross-validated sweep.
Each needs the commit and command that produced it: recorded by the run, or, in a folder older
than that recording, a `provenance` object whose `note` says how it was recovered.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.report import ReportError, headline, markdown, provenance_line, provenance_of, versus
from scripts.service_report import kill_markdown
from scripts.service_report import markdown as services_markdown

ROOT = Path(__file__).resolve().parent.parent
START = re.compile(r"^<!-- table: (?P<folder>\S+)(?P<options>(?: \S+=\S+)*) -->$")
END = "<!-- end table -->"


class TablesError(ValueError):
    """A region that cannot be rendered; the message names the page, line and reason."""


@dataclass(frozen=True)
class Region:
    page: Path
    line: int             # of the start marker, from 1
    folder: str
    options: dict[str, str]
    body: str             # what stands between the markers now

    def where(self) -> str:
        """page:line, the page relative to the tree it is in (the folder holding docs/)."""
        root = self.page.parent.parent if self.page.parent.name == "docs" else self.page.parent
        return f"{self.page.relative_to(root)}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def regions(page: Path) -> list[Region]:
    lines, found, start = page.read_text().split("\n"), [], None
    for n, line in enumerate(lines):
        if line.startswith("<!-- table:"):
            match = START.match(line)
            if match is None or start is not None:
                raise TablesError(f"{page}:{n + 1}: {'a region inside a region' if match else 'bad marker'}: {line}")
            start = (n, match)
        elif line == END:
            if start is None:
                raise TablesError(f"{page}:{n + 1}: '{END}' without a start")
            (at, match), start = start, None
            options = dict(o.split("=", 1) for o in match["options"].split())
            found.append(Region(page, at + 1, match["folder"], options, "\n".join(lines[at + 1:n])))
    if start is not None:
        raise TablesError(f"{page}:{start[0] + 1}: no '{END}' after it")
    return found


def render(region: Region, root: Path = ROOT) -> str:
    """The region's body as its folder renders it: the table, a blank line, the provenance."""
    folder = root / region.folder
    options = dict(region.options)
    try:
        more: list[tuple[str, dict]] = []     # the folders `also=` adds, with their records
        if (folder / "summary.json").is_file():
            table, record, more = _experiment(folder, options, root)
        elif (folder / "results.json").is_file():
            record = _json(folder / "results.json")
            renderer = BENCHMARKS.get(record.get("kind"))
            if renderer is None:
                raise TablesError(f"results.json: unknown kind {record.get('kind')!r}")
            table = renderer(record, options)
        elif (folder / "config.json").is_file() and "model" in _json(folder / "config.json"):
            table, record = _model(root, folder)
        else:
            raise TablesError("no summary.json, results.json or config.json naming a model")
        if options:
            raise TablesError(f"unknown option(s) {', '.join(options)}")
        provs = [provenance_of(r) for r in (record, *(r for _, r in more))]
        if None in provs:
            raise TablesError("no commit and command recorded (nor a provenance object)")
    except (TablesError, OSError, ValueError, KeyError) as exc:
        raise TablesError(f"{region.where()}: {region.folder}: {exc}") from None
    machine = record.get("machine")
    where = (f" On {machine['cores']} cores, Python {machine['python']}, {machine['date']}; load average "
             f"{machine['load_1min']} as it started." if isinstance(machine, dict) else "")
    lines = [provenance_line(provs[0]) + where] + [f"With {also}: {provenance_line(p)}"
                                                   for (also, _), p in zip(more, provs[1:])]
    return f"{table.rstrip()}\n\n" + "\n".join(lines)


def _json(path: Path) -> dict:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise TablesError(f"{path.name}: not a JSON object")
    return data


def _experiment(folder: Path, options: dict, root: Path) -> tuple[str, dict, list[tuple[str, dict]]]:
    """The table, the folder's config, and each folder `also=` adds with its config."""
    summary, config = _json(folder / "summary.json"), _json(folder / "config.json")
    if "loads" in summary:      # a service comparison (scripts/services.py): its tables and kill result
        return services_markdown(summary["loads"]) + kill_markdown(summary["killed"]), config, []
    if "cdf" in config:         # an all-pairs run (scripts/allpairs.py): slowdowns against its reference
        from scripts.allpairs import markdown as allpairs_markdown    # here: it imports the lab's modules
        return allpairs_markdown(summary, config["reference"]), config, []
    view = options.pop("view", "full")
    policies = options.pop("policies", None)
    if policies:
        missing = [p for p in policies.split(",") if p not in summary]
        if missing:
            raise TablesError(f"no policy {', '.join(missing)} in summary.json")
        summary = {p: summary[p] for p in policies.split(",")}
    more, runs = [], [{p: p for p in summary}]      # runs: per folder, each policy's row name
    for also in filter(None, options.pop("also", "").split(",")):    # another command's runs, same seeds
        runs.append({})
        for p, m in _json(root / also / "summary.json").items():
            runs[-1][p] = again(p, summary)
            summary[runs[-1][p]] = m
        more.append((also, _json(root / also / "config.json")))
    if view == "against":
        mean, name, other = options.pop("mean", "arithmetic"), options.pop("pool", None), options.pop("over", None)
        reference = options.pop("reference", "least-loaded")
        if mean not in ("arithmetic", "geometric"):
            raise TablesError(f"mean={mean}: expected arithmetic or geometric")
        if name and mean != "geometric":
            raise TablesError(f"pool={name}: needs mean=geometric")
        pool = tuple(run[name] for run in runs if name in run)
        if name and len(pool) < 2:
            raise TablesError(f"pool={name}: fewer than two runs of it to pool")
        over = tuple(run[other] for run in runs if other in run)
        if other and (not name or len(over) != len(pool)):
            raise TablesError(f"over={other}: needs pool= and as many runs of it as the pool has")
        # with a pool, each added folder's policies against that folder's reference, if it has one
        own = {row: run[reference] for run in runs[1:] if reference in run for row in run.values()} if name else {}
        try:
            return versus(summary, reference, mean == "geometric", pool, own, over), config, more
        except ReportError as exc:
            raise TablesError(str(exc)) from None
    if view not in ("full", "headline"):
        raise TablesError(f"view={view}: expected full, headline or against")
    return (markdown(summary) if view == "full" else headline(summary)), config, more


def again(policy: str, summary: dict) -> str:
    """The name another run's policy joins the rows under: its own, or "<name> (again)" when
    that is taken, "(again 2)" when that is too, and so on."""
    name, n = policy, 1
    while name in summary:
        name, n = f"{policy} (again{f' {n}' if n > 1 else ''})", n + 1
    return name


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: list[str], rows: list[list]) -> str:
    return "\n".join([_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)])


def _decision(record: dict, options: dict) -> str:
    """view=scaling (default): each topology's shortest, least-loaded and bpann, and the
    ratios; view=policies: every policy timed on each topology that timed them all."""
    view, results = options.pop("view", "scaling"), record["results"]

    def cell(r: dict, policy: str) -> str:
        t = r["policies"].get(policy)
        return f"{t['median_us']:.1f} / {t['p99_us']:.1f}" if t else "n/a"

    def ratio(r: dict, a: str, b: str) -> str:
        p = r["policies"]
        return f"{p[a]['median_us'] / p[b]['median_us']:.2f}x" if a in p and b in p else "n/a"

    if view == "scaling":
        return _table(["topology", "candidates", "shortest median / p99 (us)", "least-loaded", "bpann",
                       "bpann / least-loaded", "bpann / shortest"],
                      [[r["topology"], max(t["candidates"] for t in r["policies"].values()), cell(r, "shortest"),
                        cell(r, "least-loaded"), cell(r, "bpann"), ratio(r, "bpann", "least-loaded"),
                        ratio(r, "bpann", "shortest")] for r in results])
    if view == "policies":
        full = [r for r in results if len(r["policies"]) == max(len(x["policies"]) for x in results)]
        return _table(["policy", *(f"{r['topology']} median / p99 (us)" for r in full)],
                      [[p, *(cell(r, p) for r in full)] for p in full[0]["policies"]])
    raise TablesError(f"view={view}: expected scaling or policies")


def _bpann(record: dict, options: dict) -> str:
    us = record["decision_us"]
    table = _table([f"choosing among {record['candidates']} candidates", "median (us)", "p99 (us)"],
                   [[p, f"{t['median']:.1f}", f"{t['p99']:.1f}"] for p, t in us.items()])
    ratio = us["bpann"]["median"] / us["shortest"]["median"]
    sweep = (f" The hidden-size sweep (3, 5, 7, 9, 11 neurons x 5 folds, and the baselines) on "
             f"{record['sweep_samples']:,} synthetic samples took {record['sweep_s']:.1f} s of wall time."
             if record.get("sweep_s") is not None else " (The sweep was not timed.)")
    return f"{table}\n\nThe BPANN's median is {ratio:.1f}x shortest path's ({record['decisions']:,} decisions " \
           f"each, every one on new features).{sweep}"


def _controller(record: dict, options: dict) -> str:
    view = options.pop("view", None)
    if view == "flow-setup":
        f = record["flow_setup"]
        names = {"l2": "L2 learning (reference)", "sdn-lb": "sdn-lb, shortest"}
        rows = [[names.get(app, app), " / ".join(f"{r['flows_per_s']:,.0f}" for r in runs),
                 f"**{f['median'][app]['flows_per_s']:,.0f}**", f"{f['median'][app]['cpu_us']:.0f} us",
                 f"{f['median'][app]['p50_ms']:.2f} ms", f"{f['median'][app]['p99_ms']:.2f} ms",
                 f"{statistics.median(r['flow_mods'] / r['completed'] for r in runs):.2f}"]
                for app, runs in f["runs"].items()]
        ours, ref = f["median"]["sdn-lb"], f["median"]["l2"]
        return (_table([f"app ({f['switches']} switches, {f['hosts']} hosts)", f"new flows/s ({len(f['runs']['l2'])} runs)",
                        "median", "CPU per flow", "setup p50", "setup p99", "flow-mods per flow"], rows)
                + f"\n\nRatio of the medians: **{ours['flows_per_s'] / ref['flows_per_s']:.2f}x the reference's rate**, "
                  f"{ours['cpu_us'] / ref['cpu_us']:.2f}x its CPU per flow, {ours['p50_ms'] / ref['p50_ms']:.2f}x "
                  f"its p50 setup latency.")
    if view == "polling":
        p = record["polling"]
        return _table(["switches", "polling", "polling + LLDP probing"],
                      [[r["switches"], f"{100 * r['polling']:.1f}%", f"{100 * r['probing']:.1f}%"] for r in p["rows"]])
    raise TablesError(f"view={view}: expected flow-setup or polling")


def _placement(record: dict, options: dict) -> str:
    paths = list(dict.fromkeys(path for r in record["results"] for path in sorted(r["per_path"], key=len)))
    return _table(["policy", "flows started within", *paths, "loss read on a loss-free path, before / after re-ADD"],
                  [[r["policy"], f"{1000 * r['started_within_s']:.0f} ms", *(r["per_path"].get(p, 0) for p in paths),
                    f"{r['max_loss_before_replace']:.3f} / {r['max_loss_after_replace']:.3f}"] for r in record["results"]])


def _controller_placement(record: dict, options: dict) -> str:
    """view=table (default; `methods=` picks rows), targets, or tree-vs-network."""
    from placement.report import render            # here: it imports scikit-learn
    view, methods = options.pop("view", "table"), options.pop("methods", None)

    def pct(value) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    if view == "table":
        table = record["table"]
        if methods:
            table = [t for t in table if t["method"] in methods.split(",")]
        return render(table)
    if view == "targets":
        def yes(ok: bool) -> str:
            return "**met**" if ok else "**missed**"
        ks = ", ".join(str(k) for k in record["config"]["k"])
        return _table(["network", "NN-LS within 1%, pooled over k", ">= 95% (pooled)", f"NN-LS within 1%, k = {ks}",
                       f"NN-LS / exact runtime, k = {ks}", "<= 1/3 at every k",
                       "exact: proven / time-out / infeasible", "slowest exact", "all proven within 1 min"],
                      [[net, f"{t['nn_ls_within']} ({pct(t['nn_ls_within_1pct'])})", yes(t["met"]["nn_ls_within_1pct_on_95pct"]),
                        " / ".join(f"{line['within']}/{line['solvable']}" for line in record["table"]
                                   if line["network"] == net and line["method"] == "network+ls"),
                        " / ".join(f"{v:.3f}" for v in t["nn_ls_runtime_vs_exact_by_k"].values()),
                        yes(t["met"]["nn_ls_third_of_exact_runtime_every_k"]),
                        " / ".join(str(t["exact"][s]) for s in ("optimal", "time-out", "infeasible")),
                        f"{t['exact_runtime_max_s']:.1f} s", yes(t["met"]["exact_proven_within_1_min_every_k"])]
                       for net, t in record["targets"].items()])
    if view == "tree-vs-network":
        def side(v: dict) -> str:
            return f"{v['within']}/{v['solvable']}, {100 * v['feasible']:.0f}%, {pct(v['gap_mean'])}"
        return _table(["network", "k", "compared", "tree: within 1%, feasible, gap (feasible)",
                       "network: within 1%, feasible, gap (feasible)", "better"],
                      [[net, v["k"], v["versus"], side(v["tree"]), side(v["network"]), v["better"]]
                       for net, t in record["targets"].items() for v in t["tree_vs_network"]])
    raise TablesError(f"view={view}: expected table, targets or tree-vs-network")


BENCHMARKS = {"decision": _decision, "bpann": _bpann, "controller": _controller, "placement": _placement,
              "controller-placement": _controller_placement}


def _model(root: Path, folder: Path) -> tuple[str, dict]:
    """The model's own metadata holds its sweep; a model older than recorded provenance takes
    the folder's, which names the training it belongs to (a retrained model must not inherit it)."""
    from scripts.train import table        # here: it imports scikit-learn, which the others do not need
    config = _json(folder / "config.json")
    meta = _json(root / config["model"])
    scores = [_Score(name, **s) for name, s in meta["cv"].items()]
    record = meta if provenance_of(meta) else config
    if record is config and config.get("trained_at") != meta.get("trained_at"):
        raise TablesError(f"{config['model']} was trained at {meta.get('trained_at')}, the provenance here is of "
                          f"the model trained at {config.get('trained_at')}")
    return table(scores, "s" if meta.get("label") == "fct_s" else "ms"), record


@dataclass(frozen=True)
class _Score:
    name: str
    mae: float
    mae_std: float
    r2: float
    r2_std: float


def rewrite(page: Path, root: Path = ROOT) -> bool:
    """Render every region of a page in place; True if it changed."""
    text = page.read_text()
    lines = text.split("\n")
    for region in reversed(regions(page)):         # from the end, so earlier line numbers hold
        end = lines.index(END, region.line)
        lines[region.line:end] = render(region, root).split("\n")
    new = "\n".join(lines)
    if new != text:
        page.write_text(new)
    return new != text


def stale(root: Path = ROOT) -> list[str]:
    """One line per region that differs from what its folder renders."""
    return [f"{r.where()}: the table from {r.folder} is stale (python -m scripts.tables rewrites it)"
            for page in pages(root) for r in regions(page) if r.body != render(r, root)]


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale region")
    args = p.parse_args(argv)
    try:
        if args.check:
            problems = stale(root)
            print("\n".join(problems) or f"every table is current ({sum(len(regions(x)) for x in pages(root))} regions)")
            return 1 if problems else 0
        for page in pages(root):
            if rewrite(page, root):
                print(f"rewrote {page.relative_to(root)}")
    except TablesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
