"""The paper's experiment, on any topology: hosts other than --src send seeded random
background traffic to each other (UDP and paced TCP); once the network is busy, --src sends
rounds of an RTT probe train and a fixed-size TCP transfer to --dst. The same schedule is
replayed, on a freshly started controller and network, for every policy and seed; a table,
a JSON summary and plots compare the policies.

    sudo .venv/bin/python -m scripts.experiment --quick          (1 seed, 3 policies, under 5 min)
    sudo .venv/bin/python -m scripts.experiment --seeds 5        (every policy; about 40 min)

A policy name may carry variants: "+symmetric" (e.g. least-loaded+symmetric) routes each reply
on the reverse of its request's path (--symmetric); "+bandit" (qlearning+bandit) learns with
gamma 0; "+linear" learns a linear model of the path's features instead of a table, "+relative" a
table of each path's standing among the candidates, "+correction" a table of corrections to what
a path reads, "+baseline" least-loaded left only where a table shows a gain (--q-model); "+flow" learns
from what each flow's path showed while it sent (--q-window flow); "+fresh" starts every seed from
an empty Q-table, "+warm" from a copy of --q-warm's file of its model
(for whether a table learnt elsewhere transfers), "+kept" at that file's exploration rate,
"+greedy" at 0. The run is reported under that name, so the
modes compare on the same schedules.
Each run also records, per round, how many decisions its policy had taken (rounds.json), for
the learning curve (scripts/learning.py), the controller's counters and its policy (GET
/api/v1/policy) at its end, and the CPU seconds the controller and ovs-vswitchd used meanwhile;
and how
its policy placed each probe train and transfer of --src, both directions (decisions.jsonl:
every candidate's features and score, and the one chosen), for why a policy did what it did.

Every probe train and transfer of --src is a new flow (new source port), so every round is a
new decision of the policy under test; the background flows are placed by the same policy.
The Q-learning policy keeps one table file (qtable.json in the results) across its runs, so it
goes on learning from seed to seed, as it would across restarts of a controller.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import shutil
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

from tqdm import tqdm

from controller.core.flows import FlowKey
from controller.core.settings import Settings
from controller.openflow.packets import PROTO_TCP, PROTO_UDP
from controller.policies import POLICIES
from controller.policies.bpann import MODEL_POLICIES
from models import bpann
from scripts import learning
from scripts.report import RUN_COLUMNS, parse_quick, print_summary
from topologies.lab import PROBE_PORT, SINK_PORT, Lab, default_workdir, provenance
from controller.core.spec import TopologyError
from controller.files import load_spec, read_json
from controller.policies import qlearning
from topologies.traffic import Player, schedule

DEFAULT_POLICIES = ("shortest", "round-robin", "ecmp", "least-loaded", "bpann", "qlearning")
# policy+variant: controller options; Q-table starts (fresh, warm)
VARIANTS = {"symmetric": ("--symmetric",), "bandit": ("--q-gamma", "0"), "count": ("--q-explore", "count"),
            "linear": ("--q-model", "linear"), "relative": ("--q-model", "relative"),
            "correction": ("--q-model", "correction"), "baseline": ("--q-model", "baseline"),
            "flow": ("--q-window", "flow"), "greedy": ("--q-epsilon", "0"),
            "fresh": (), "warm": (), "kept": ()}
LEARNER_VARIANTS = tuple(v for v in VARIANTS if v != "symmetric")
QUICK = {"policies": "shortest,least-loaded,bpann", "seeds": 1, "duration": 40, "warmup": 8}
RTT_SPORT, TRANSFER_CPORT = 40000, 45000
SETUP_S = 15     # start and teardown of a lab, for the ETA


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default="topologies/h1h7.json")
    p.add_argument("--src", default="h1")
    p.add_argument("--dst", default="h7")
    p.add_argument("--policies", default=",".join(DEFAULT_POLICIES),
                   help=f"comma-separated policy names, each optionally +{'+'.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds, each a different schedule")
    p.add_argument("--first-seed", type=int, default=1,
                   help="the seeds run are this one and the next --seeds - 1 (a learner's warm-up on seeds "
                        "that its evaluation does not replay)")
    p.add_argument("--duration", type=float, default=60, help="seconds of traffic per run (20..3600)")
    p.add_argument("--background-gap", type=float, default=2.0, metavar="S",
                   help="mean seconds between two background transfers' starts (0.5..30; less is busier)")
    p.add_argument("--warmup", type=float, default=10, help="seconds of background before the first round")
    p.add_argument("--round", type=float, default=5, help="seconds between the starts of two rounds")
    p.add_argument("--probes", type=int, default=20, help="RTT probes per round (50 ms apart)")
    p.add_argument("--transfer-kb", type=int, default=1000, help="size of each round's TCP transfer")
    p.add_argument("--quick", action="store_true",
                   help="; ".join(f"{k}={v}" for k, v in QUICK.items()) + " (options given win)")
    p.add_argument("--model", type=Path, metavar="PATH",
                   help="BPANN model (.npz + .json) of the bpann and learned runs (default the shipped "
                        "models/bpann and models/learned)")
    p.add_argument("--q-warm", type=Path, metavar="FILE", action="append", default=[],
                   help="Q-table each seed of a qlearning+warm run starts from (a copy, kept in the results "
                        "as warm-<model>.json); once per model, so that qlearning+warm and "
                        "qlearning+linear+warm run side by side")
    p.add_argument("--out", type=Path, help="results folder (default results/experiment-<time>)")
    args = parse_quick(p, argv, QUICK)
    args.policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    unknown = [x for x in args.policies if x.split("+")[0] not in POLICIES
               or not set(x.split("+")[1:]) <= set(VARIANTS)]
    if unknown or not args.policies:
        p.error(f"--policies: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(POLICIES))}"
                f", each optionally +{'+'.join(VARIANTS)}")
    learner_only = [x for x in args.policies if x.split("+")[0] != "qlearning"
                    and set(x.split("+")[1:]) & set(LEARNER_VARIANTS)]
    if learner_only:
        p.error(f"--policies: {', '.join(learner_only)}: {', '.join('+' + v for v in LEARNER_VARIANTS)} "
                "are for qlearning")
    models = set(qlearning.MODELS) - {qlearning.QTable.model}
    for clashes, why in ((lambda v: "count" in v and any(qlearning.MODELS[m].no_count for m in v & models),
                          "the linear and baseline models explore by epsilon, not count"),
                         (lambda v: {"baseline", "flow"} <= v, "the baseline model pairs two paths at one "
                                                                "poll, not a flow's window"),
                         (lambda v: len(v & models) > 1, f"one model of {', '.join(sorted(models))}")):
        clash = [x for x in args.policies if clashes(set(x.split("+")))]
        if clash:
            p.error(f"--policies: {', '.join(clash)}: {why}")
    unkept = [x for x in args.policies if "kept" in x.split("+") and "warm" not in x.split("+")]
    if unkept:
        p.error(f"--policies: {', '.join(unkept)}: +kept keeps a +warm file's exploration rate")
    for other, why in (("kept", "+kept keeps the file's"), ("count", "+count explores by a bonus instead")):
        both = [x for x in args.policies if {other, "greedy"} <= set(x.split("+"))]
        if both:
            p.error(f"--policies: {', '.join(both)}: +greedy sets the exploration rate to 0, {why}")
    args.q_warm = warm_tables(p, args.q_warm, args.policies)
    if not 1 <= args.seeds <= 100:
        p.error("--seeds: must be in 1..100")
    if not 1 <= args.first_seed <= 10_000:
        p.error("--first-seed: must be in 1..10000")
    if not 20 <= args.duration <= 3600:
        p.error("--duration: must be in 20..3600 seconds")
    if not 0.5 <= args.background_gap <= 30:     # at 0.5 a quarter of h1-h7's probes were lost
        p.error("--background-gap: must be in 0.5..30 seconds")
    if not 0 <= args.warmup < args.duration:
        p.error("--warmup: must be at least 0 and less than --duration")
    if not 2 <= args.round <= args.duration - args.warmup:
        p.error("--round: must be at least 2 seconds and fit between --warmup and --duration")
    if not 1 <= args.probes <= 200 or not 1 <= args.transfer_kb <= 100_000:
        p.error("--probes: 1..200; --transfer-kb: 1..100000")
    check_models(p, args.policies, args.model)
    return args


def warm_tables(p: argparse.ArgumentParser, paths: list[Path], policies: list[str]) -> dict[str, Path]:
    """--q-warm's files by the model each holds (qlearning.MODELS), each checked as the
    controller will load it: one per model, and one for every +warm policy's model, used by
    one; else the parser's usage error naming the file (not a controller failing at its run's
    start)."""
    tables: dict[str, Path] = {}
    for path in paths:
        try:
            data = read_json(path, qlearning.QTableError)
            found = qlearning.model_of(data) if isinstance(data, dict) else None
            if not isinstance(found, str) or found not in qlearning.MODELS:
                raise qlearning.QTableError(f"{path}: field 'model': not a path Q-table's ({str(found)[:20]})")
            qlearning.load(path, qlearning.MODELS[found])
        except qlearning.QTableError as exc:
            p.error(f"--q-warm: {exc}")
        if found in tables:
            p.error(f"--q-warm: {path}: a second file of a {found!r} model (one per model)")
        tables[found] = path
    wanted = {warm_model(x.split("+")[1:]): x for x in policies if "warm" in x.split("+")[1:]}
    for model, x in wanted.items():
        if model not in tables:
            p.error(f"--q-warm: {x} needs a file of a {model!r} model to start from")
    for model in tables.keys() - wanted.keys():
        p.error(f"--q-warm: {tables[model]}: no +warm policy of a {model!r} model starts from it")
    return tables


def warm_model(variants: list[str]) -> str:
    return next((m for m in qlearning.MODELS if m in variants), qlearning.QTable.model)


def warm_copy(folder: Path, model: str) -> Path:
    """Where main() keeps the warm file of a model in the results, every +warm run's start."""
    return folder / f"warm-{model}.json"


def check_models(p: argparse.ArgumentParser, policies: list[str], model: Path | None) -> None:
    """Each model policy's file loads before any run starts; one --model for both bpann and
    learned would run one model under two names, so it is refused."""
    names = {x.split("+")[0] for x in policies} & set(MODEL_POLICIES)
    if model and len(names) > 1:
        p.error("--model: bpann and learned would both run it; compare two models in two runs")
    for name in sorted(names):
        try:
            bpann.load(model or POLICIES[name].default_model)
        except bpann.ModelError as exc:
            p.error(f"--model: {name}: {exc}")


def run_plan(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(seed, policy) in the order they run: seed by seed, and within a seed in an order drawn
    by the seed, so that none always runs last on a machine whose load drifts (a learner's
    table still goes from seed to seed in seed order)."""
    return [(seed, policy) for seed in range(args.first_seed, args.first_seed + args.seeds)
            for policy in random.Random(seed).sample(args.policies, len(args.policies))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = start_runs(args.topology)
    if spec is None:
        return 2
    hosts = [h.name for h in spec.hosts]
    if args.src not in hosts or args.dst not in hosts or args.src == args.dst:
        print(f"error: --src/--dst: two different hosts of {args.topology} ({', '.join(hosts)})", file=sys.stderr)
        return 2
    folder = args.out or default_workdir("experiment")
    folder.mkdir(parents=True, exist_ok=True)
    for model, path in args.q_warm.items():     # what every +warm run starts from, kept with its results
        if path.resolve() != warm_copy(folder, model).resolve():
            shutil.copyfile(path, warm_copy(folder, model))
    plan = run_plan(args)
    (folder / "config.json").write_text(json.dumps(     # what ran, and from which tree (summary.md says it)
        {**vars(args), "plan": plan, **provenance("scripts.experiment", argv)}, indent=2, default=str) + "\n")
    runs_csv = folder / "runs.csv"
    with open(runs_csv, "w", newline="") as f:
        csv.writer(f).writerow(RUN_COLUMNS)
    print(f"{len(plan)} runs ({len(args.policies)} policies x {args.seeds} seeds) of {args.duration:g} s on "
          f"'{spec.name}', {args.src} -> {args.dst}; results in {folder}")
    per_run, interrupted = args.duration + SETUP_S, False
    try:
        with tqdm(total=len(plan) * per_run, unit="s", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s "
                  "[{elapsed}<{remaining}]") as bar:
            for k, (seed, policy) in enumerate(plan):
                bar.set_description(f"{policy} seed {seed}")
                rows = run_once(args, policy, seed, folder / "runs" / f"{policy}-seed{seed}", bar.update)
                with open(runs_csv, "a", newline="") as f:
                    csv.writer(f).writerows(rows)
                bar.update((k + 1) * per_run - bar.n)
    except KeyboardInterrupt:
        print("\ninterrupted: network and controller stopped; summarising the runs that completed")
        interrupted = True
    if not print_summary(folder):
        return 1
    if any(p.startswith("qlearning") for p in args.policies):
        print("\n".join(learning.write(folder)))
    print(f"plots: {folder}/rtt_cdf.png, throughput.png, utilisation.png, rtt_over_time.png")
    return 130 if interrupted else 0


def start_runs(topology: Path | str):
    """Quiet logs, Ctrl-C and kill as KeyboardInterrupt (so that runs end cleanly), and the
    topology's spec; None after a one-line error when it does not load."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from mininet.log import setLogLevel     # here: the unit tests import this module without Mininet
    setLogLevel("warning")    # Mininet's pingall chatter would break the progress bar
    signal.signal(signal.SIGINT, signal.default_int_handler)   # also when started in the background
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops as Ctrl-C does
    try:
        return load_spec(topology)
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def learner_table(rundir: Path, variants: list[str]) -> Path:
    """The Q-table file a qlearning run learns in (rundir: <results>/runs/<run>): one per variant
    in the results, carried from seed to seed, unless the run starts anew in its own: empty
    (+fresh) or a copy of main()'s warm-<model>.json (+warm), its exploration reset (what was
    learnt, not how far exploring had decayed), kept as the file has it (+warm+kept: as a
    controller given the file goes on), or 0 (+greedy: what the table chooses, without the
    cost of exploring)."""
    if "fresh" not in variants and "warm" not in variants:
        return rundir.parent.parent / f"qtable{''.join('-' + v for v in variants)}.json"
    rundir.mkdir(parents=True, exist_ok=True)
    table = rundir / "qtable.json"
    if "warm" in variants:
        warm = json.loads(warm_copy(rundir.parent.parent, warm_model(variants)).read_text())
        epsilon = 0.0 if "greedy" in variants else warm["epsilon"] if "kept" in variants else Settings.q_epsilon
        table.write_text(json.dumps({**warm, "epsilon": epsilon, "decisions": 0}) + "\n")
    return table


def background(args: argparse.Namespace, seed: int, hosts: list[str]) -> list:
    """The seed's background transfers among the hosts other than --src, at --background-gap."""
    return schedule(seed, [h for h in hosts if h != args.src], args.duration, args.background_gap)


def run_once(args: argparse.Namespace, policy: str, seed: int, rundir: Path, progress) -> list[list]:
    """One policy on one seed's schedule, on a fresh controller and network: its runs.csv rows."""
    name, *variants = policy.split("+")
    extra = [option for v in variants for option in VARIANTS[v]]
    if name in MODEL_POLICIES and args.model:
        extra += ["--model", str(args.model.resolve())]    # the controller runs in the tree's root
    if name == "qlearning":
        extra += ["--q-table", str(learner_table(rundir, variants))]
    lab = Lab(args.topology, rundir, policy=name,      # --seed: each seed explores in its own way
              controller_args=("--capture", str(rundir / "capture"), "--seed", str(seed), *extra))
    transfers = background(args, seed, [h.name for h in lab.spec.hosts])
    rows: list[list] = []
    decided: list[int | None] = []     # per round: decisions the policy had taken (learning ones count)
    placed: list[dict] = []            # how each probe train and transfer of --src was placed
    started: int | None = None         # ... before the first round

    def row(kind, rnd, seq, start, flow, path="", rtt="", size="", fct="", mbps="", complete=""):
        rows.append([policy, seed, kind, rnd, seq, round(start, 3), flow, path, rtt, size, fct, mbps, complete])

    with lab:
        lab.pingall()
        status, described = lab.api("policy")
        started = described.get("decisions") if status == 200 else None
        cpu = lab.cpu()
        player = Player(lab.net, transfers, rundir / "transfers").start()
        try:
            starts = [args.warmup + i * args.round for i in range(int((args.duration - args.warmup) // args.round))]
            for i, at in enumerate(starts):
                time.sleep(max(0.0, at - player.elapsed()))
                start = player.elapsed()
                try:
                    probe = lab.rtt_probe(args.src, args.dst, RTT_SPORT + i, count=args.probes)
                except RuntimeError:      # a stuck probe: every probe of the train counts as lost
                    probe = {"sent": args.probes, "received": 0, "delays_ms": []}
                flow = f"{args.src}>{args.dst} udp {RTT_SPORT + i}"
                placed.append({"round": i, "kind": "rtt", "received": probe["received"], "sent": probe["sent"],
                               **decisions(lab, args.src, args.dst, PROTO_UDP, RTT_SPORT + i, PROBE_PORT)})
                path = chosen_path(placed[-1])
                for seq, rtt in enumerate(probe["delays_ms"] + [""] * (probe["sent"] - probe["received"])):
                    row("rtt", i, seq, start, flow, path, rtt=round(rtt, 4) if rtt != "" else "")
                start, size = player.elapsed(), args.transfer_kb * 1000
                bound = max(2.0, args.round - (start - at) - 0.5)
                try:
                    done = lab.transfer(args.src, args.dst, size, TRANSFER_CPORT + i, timeout_s=bound)
                except RuntimeError:
                    done = {"complete": False}
                fct = done["seconds"] if done["complete"] else bound   # censored: takes the whole bound
                placed.append({"round": i, "kind": "transfer", "fct_s": round(fct, 4), "complete": done["complete"],
                               **decisions(lab, args.src, args.dst, PROTO_TCP, TRANSFER_CPORT + i, SINK_PORT)})
                row("transfer", i, 0, start, f"{args.src}>{args.dst} tcp {TRANSFER_CPORT + i}",
                    chosen_path(placed[-1]), size=size, fct=round(fct, 4),
                    mbps=round(size * 8 / fct / 1e6, 4), complete=int(done["complete"]))
                status, described = lab.api("policy")
                decided.append(described.get("decisions") if status == 200 else None)
                progress(args.round)
            time.sleep(max(0.0, args.duration - player.elapsed()))
        finally:
            player.stop()
        end = player.elapsed()
        try:     # decisions never measured, replies late, ...: for the record, not worth the run
            status, counted = lab.api("counters")
            counters = counted.get("counters") if status == 200 else None
            status, described = lab.api("policy")
            policy_end = described if status == 200 else None
        except (OSError, ValueError):
            counters = policy_end = None
        cpu = {k: round(s - cpu[k][1], 2) if s is not None and cpu[k][1] is not None and pid == cpu[k][0] else None
               for k, (pid, s) in lab.cpu().items()}     # None too for a daemon restarted meanwhile
    (rundir / "schedule.json").write_text(json.dumps([asdict(transfers[i]) for i in player.started]) + "\n")
    (rundir / "rounds.json").write_text(json.dumps({"start": started, "decisions": decided, "counters": counters,
                                                       "policy": policy_end, "cpu_s": cpu}) + "\n")
    (rundir / "decisions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in placed))
    for n, t in enumerate(player.outcomes()):
        if t["proto"] != "tcp" or (t["fct_s"] is None and t["start_s"] + t["duration_s"] > end):
            continue   # UDP runs for a set time; a TCP transfer not yet due is no measurement
        fct, complete = (t["fct_s"], 1) if t["fct_s"] is not None else (end - t["start_s"], 0)
        row("background", n, 0, t["start_s"], f"{t['src']}>{t['dst']} tcp {t['port']}", "",
            size=t["size_bytes"], fct=round(fct, 4), mbps=round(t["size_bytes"] * 8 / fct / 1e6, 4), complete=complete)
    return rows


def decisions(lab: Lab, src: str, dst: str, proto: int, sport: int, dport: int) -> dict:
    """How the controller placed the flow from src's port `sport` to dst's `dport`
    (GET /api/v1/decisions: its candidates' features and scores, the one chosen), and under
    "reply" its other direction, a decision of its own unless replies take the reverse path
    (+symmetric); {} for a direction it has no record of."""
    key = FlowKey(lab.spec.host(src).ip, lab.spec.host(dst).ip, proto, sport, dport)
    return {**decision(lab, key), "reply": decision(lab, key.reverse())}


def decision(lab: Lab, key: FlowKey) -> dict:
    status, found = lab.api(f"decisions?limit=1&flow={quote(str(key))}")
    return found["decisions"][0] if status == 200 and found.get("decisions") else {}


def chosen_path(placed: dict) -> str:
    """The switches a decision put its flow on ('' if unknown)."""
    return next((">".join(c["path"]) for c in placed.get("candidates", ()) if c["chosen"]), "")


if __name__ == "__main__":
    sys.exit(main())
