"""Retrain the BPANN on a network in one command: collect samples on it (scripts.collect),
train a candidate on the earlier samples (models.train), judge it against the model in use on
the later, held-out ones and in a short paired experiment (scripts.experiment), and install it
only if it is better by RULE, keeping the previous model beside it (<name>-previous.npz/.json)
and hot-reloading a running controller. The report (printed, and report.json in the results
folder) says which it kept and why, with the figures.

    sudo scripts/retrain --topology topologies/h1h7.json
    sudo scripts/retrain --topology topozoo/Abilene --zoo-seed 1 --hosts 4 --reload-port 8080
    sudo scripts/retrain --data samples.csv --model /srv/lb/bpann     (samples already collected)

Better (RULE): on the held-out samples, the candidate's mean absolute error is strictly lower
than the model in use's (equal keeps the model in use: a change must earn its keep); and in
the experiment, which must exit 0 for both models, the candidate is not worse (a tie passes)
on each of its metrics: for the probe-delay label RTT mean (as relative change, averaged over
the seeds both measured) and probe loss (mean over those seeds), for the completion-time label
transfer throughput (relative change). A seed the candidate did not measure counts as worse;
one only the model in use did not measure counts as not worse. Anything unmeasured, and a
figure that is not finite, counts as not better.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from controller import files
from controller.core.spec import TopologyError
from controller.core.zoo import ZOO_PREFIX
from controller.policies.bpann import DEFAULT_MODEL, MODEL_POLICIES
from controller.service.rest import token_path
from models import bpann
from models.bpann import CAPACITY, ModelError
from models.dataset import LABEL, TRANSFER_LABEL, DatasetError, concat, load_dataset
from models.evaluation import GAP_S, mae, mean_relative_error, time_blocked_folds
from models.train import ALPHA, SIZES, choose, fit_bpann, metadata, sweep
from scripts import collect, experiment
from scripts.report import ReportError, change_ci, read_runs, summarise
from topologies import generate
from topologies.lab import ROOT, default_workdir, provenance, rest_call

RULE = __doc__.split("Better (RULE): ")[1].replace("\n", " ").strip()
# what the experiment judges a label by: (metric of scripts.report, +1 higher is better / -1 lower)
CRITERIA = {LABEL: (("rtt_mean_ms", -1), ("loss", -1)), TRANSFER_LABEL: (("throughput_mbps", +1),)}
ABSOLUTE = {"loss"}     # compared as means, not relative change: a loss of 0 has no relative change
HOLDOUT_BLOCKS = 4      # the last of 4 time blocks (a quarter of the samples) is held out
SUFFIXES = (".json", ".npz")   # the order of an install: see install()


class RetrainError(Exception):
    """Something retraining cannot go on from; the message names the file, peer or field."""


def base(path: str | Path) -> Path:
    """A model's name without suffix, as models.bpann reads it."""
    return Path(path).with_suffix("")


def model_bytes(path: Path) -> dict[str, bytes]:
    """Both files of a model, as they are now."""
    try:
        return {s: base(path).with_suffix(s).read_bytes() for s in SUFFIXES}
    except OSError as exc:
        raise RetrainError(f"{exc.filename}: cannot read: {exc.strerror}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.retrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default=str(ROOT / "topologies" / "h1h7.json"),
                   help=f"spec file, or a Topology Zoo network as {ZOO_PREFIX}NAME (see --zoo-seed, --hosts)")
    p.add_argument("--zoo-seed", type=int, default=0, help="draws the switches a Zoo network's hosts hang off")
    p.add_argument("--hosts", type=int, default=4, help="hosts of a Zoo network")
    p.add_argument("--src", help="host the labelled flows start at (default the spec's first)")
    p.add_argument("--dst", help="their destination (default the spec's last host)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help="the model in use (.npz + .json), replaced if the candidate is better (default %(default)s)")
    p.add_argument("--transfer-bytes", type=int, default=1_000_000, help="size of each labelled transfer")
    p.add_argument("--collect-s", type=float, default=600, help="seconds of collection (10..7200)")
    p.add_argument("--data", nargs="+", type=Path, metavar="CSV", help="samples already collected: no collection")
    p.add_argument("--seed", type=int, default=0, help="seeds the collection's traffic and the training")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="hidden sizes to sweep")
    p.add_argument("--folds", type=int, default=3, help="time blocks of the training samples that choose the size")
    p.add_argument("--gap", type=float, default=GAP_S, metavar="S", help="seconds between trained and tested samples")
    p.add_argument("--seeds", type=int, default=3, help="experiment seeds, each run with both models")
    p.add_argument("--experiment-s", type=float, default=40, help="seconds of each experiment run")
    p.add_argument("--warmup", type=float, default=8, help="experiment: seconds of background before the first round")
    p.add_argument("--round", type=float, default=5, help="experiment: seconds between two rounds")
    p.add_argument("--reload-port", type=int, metavar="PORT",
                   help="REST port of a running controller on 127.0.0.1 to hot-reload after an install; its "
                        "token: LB_API_TOKEN, else its token file")
    p.add_argument("--out", type=Path, help="results folder (default results/retrain-<time>)")
    args = p.parse_args(argv)
    try:
        args.sizes = tuple(int(s) for s in args.sizes.split(","))
        if min(args.sizes) < 1:
            raise ValueError
    except ValueError:
        p.error(f"--sizes: positive integers separated by commas, got '{args.sizes}'")
    if args.folds < 2 or not 1 <= args.seeds <= 100:
        p.error("--folds: at least 2; --seeds: 1..100")
    # scripts.collect's and scripts.experiment's bounds, checked before minutes of collection
    if not 10 <= args.collect_s <= 7200:
        p.error("--collect-s: must be in 10..7200 seconds")
    if not 20 <= args.experiment_s <= 3600 or not 0 <= args.warmup < args.experiment_s:
        p.error("--experiment-s: 20..3600 seconds; --warmup: at least 0 and less than --experiment-s")
    if not 2 <= args.round <= args.experiment_s - args.warmup:
        p.error("--round: at least 2 seconds, and fit between --warmup and --experiment-s")
    if args.reload_port is not None and not 1 <= args.reload_port <= 65535:
        p.error(f"--reload-port: a TCP port (1..65535), got {args.reload_port}")
    return args


def topology_file(value: str, zoo_seed: int, hosts: int, folder: Path) -> Path:
    """The spec file to run on: `value` itself, or the Topology Zoo network it names made a
    spec by topologies.generate's rule, written into `folder`. TopologyError names what is wrong."""
    if not value.startswith(ZOO_PREFIX):
        if not Path(value).suffix and not Path(value).exists():
            raise TopologyError(f"{value}: no such spec file (a Topology Zoo network is {ZOO_PREFIX}{value})")
        files.load_spec(value)
        return Path(value)
    network = files.load_zoo(value.removeprefix(ZOO_PREFIX))
    try:
        spec = generate.zoo(network, zoo_seed, hosts)
    except ValueError as exc:
        raise TopologyError(f"{value}: --{exc}") from None
    path = folder / "topology.json"
    path.write_text(json.dumps(spec, indent=1) + "\n")
    files.load_spec(path)
    return path


def controller_token(port: int) -> str:
    """The token a POST to the controller on `port` needs: LB_API_TOKEN, else its token file."""
    if os.environ.get("LB_API_TOKEN"):
        return os.environ["LB_API_TOKEN"]
    path = token_path(port)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise RetrainError(f"{path}: cannot read the controller's token ({exc.strerror}): set LB_API_TOKEN") from None


def call(port: int, resource: str, method: str = "GET", token: str | None = None) -> dict:
    """A REST call to 127.0.0.1:port that must succeed; RetrainError names the peer otherwise."""
    peer = f"127.0.0.1:{port}"
    try:
        status, body = rest_call(port, resource, method, token=token)
    except (OSError, ValueError) as exc:     # URLError, a timeout, a reply that is not JSON
        raise RetrainError(f"{peer}: no controller answers {method} /api/v1/{resource} "
                           f"({getattr(exc, 'reason', exc)})") from None
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else body
        raise RetrainError(f"{peer}: {method} /api/v1/{resource} answered {status}: {error}")
    return body


def check_serves(port: int, answer, target: Path, what: str, why: str = "") -> None:
    """The controller's answer names policy bpann or learned with the model at `target`; else RetrainError
    says what it serves instead (`what` before, `why` after)."""
    answer = answer if isinstance(answer, dict) else {"policy": None, "model": answer}
    served = answer.get("model")
    if (answer.get("policy") not in MODEL_POLICIES or not isinstance(served, str)
            or base(served).resolve() != base(target).resolve()):
        raise RetrainError(f"127.0.0.1:{port}: {what} policy {answer.get('policy')!r} with model {served!r:.200}, "
                           f"not {base(target)}{why}")


def check_controller(port: int, target: Path) -> None:
    """Before hours of work: the controller to reload answers, and serves the model we would replace."""
    check_serves(port, call(port, "policy"), target, "serves", ": a reload would not load the new model")


def reload(port: int, target: Path) -> dict:
    """Hot-reload the controller; its answer must show it now serves `target` (the candidate)."""
    answer = call(port, "model/reload", "POST", controller_token(port))
    check_serves(port, answer, target, "reloaded but serves")
    return answer


def heldout_errors(data, test: np.ndarray, current: bpann.Bpann, candidate: bpann.Bpann) -> dict:
    """Both models' errors on the held-out samples, beside the persistence baseline's."""
    y = data.y[test]
    predicted = {"current": current.predict(data.x[test]), "candidate": candidate.predict(data.x[test]),
                 "persistence": data.persistence[test]}
    return {name: {"mae": mae(y, p), "mre": mean_relative_error(y, p)} for name, p in predicted.items()}


def finite(x) -> float | None:
    """x as a float if it is a finite number, else None: a NaN compares false and JSON has none."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def figure(x, spec: str = ".4g", scale: float = 1) -> str:
    """A figure for the report's sentences: 'n/a' where it is missing or not finite."""
    x = finite(x)
    return "n/a" if x is None else format(scale * x, spec)


def jsonable(obj):
    """obj with each non-finite float as None (null in report.json, printed 'n/a')."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return finite(obj) if isinstance(obj, float) else obj


def experiment_figures(folders: dict[str, Path], metrics: list[str], policy: str = "bpann") -> dict:
    """Each metric per model and seed, from its experiment folder's runs.csv (None where a seed
    measured nothing, {} where there is no readable runs.csv)."""
    per_seed = {}
    for name, folder in folders.items():
        try:
            per_seed[name] = summarise(read_runs(folder / "runs.csv")).get(policy, {}).get("per_seed", {})
        except ReportError:
            per_seed[name] = {}
    return {m: {name: {seed: v[m] for seed, v in seeds.items()} for name, seeds in per_seed.items()} for m in metrics}


def judge(trial: dict, metric: str, sign: int) -> tuple[bool, str]:
    """One experiment criterion of RULE: (not worse?, its sentence with the figures)."""
    cur, cand = ({s: finite(v) for s, v in trial.get(name, {}).items()} for name in ("current", "candidate"))
    seeds = sorted(set(cur) | set(cand), key=int)
    head = f"experiment {metric} ({'higher' if sign > 0 else 'lower'} is better)"
    unmeasured = [s for s in seeds if cand.get(s) is None]
    if unmeasured:
        return False, f"{head}: the candidate measured nothing on seed(s) {', '.join(unmeasured)} (worse)"
    if not seeds:
        return False, f"{head}: no seed measured it (not better)"
    paired = [s for s in seeds if cur.get(s) is not None]
    only = [s for s in seeds if s not in paired]
    only = f"seed(s) {', '.join(only)} only the candidate measured (not worse)" if only else ""
    if not paired:
        return True, f"{head}: {only}"
    means = {name: float(np.mean([d[s] for s in paired])) for name, d in (("candidate", cand), ("current", cur))}
    if metric in ABSOLUTE:
        delta, change = means["candidate"] - means["current"], f"{means['candidate'] - means['current']:+.4g}"
    else:
        ci = change_ci([cand[s] for s in paired], [cur[s] for s in paired])
        if ci["mean"] is None:
            return False, f"{head}: the model in use measured 0 on every paired seed (not better)"
        delta, bounds = ci["mean"], ci["ci95"]
        interval = f" [{100 * bounds[0]:+.1f}, {100 * bounds[1]:+.1f}]" if bounds else " (one seed: no interval)"
        change = f"{100 * delta:+.1f}%{interval}"
    ok = sign * delta >= 0
    return ok, (f"{head}, {len(paired)} paired seed(s): candidate {means['candidate']:.4g} vs in use "
                f"{means['current']:.4g}, {change} ({'not worse' if ok else 'worse'}){'; ' + only if only else ''}")


def decide(errors: dict, trial: dict, label: str, exits: dict | None = None) -> tuple[bool, list[str]]:
    """RULE: (replace?, one sentence per criterion saying whether it holds, with its figures).
    `exits`: each experiment run's exit code; a failed run's runs.csv is partial, not judged."""
    cur, cand = finite(errors["current"]["mae"]), finite(errors["candidate"]["mae"])
    ok = cur is not None and cand is not None and cand < cur
    relation = "<" if ok else "vs" if None in (cur, cand) else "=" if cand == cur else ">"
    reasons = [f"held-out MAE: candidate {figure(cand)} {relation} in use {figure(cur)} "
               f"({'better' if ok else 'not better'})"]
    failed = {name: code for name, code in (exits or {}).items() if code}
    if failed:
        reasons.append("experiment: " + ", ".join(f"the run with the {name} model exited {code}"
                                                  for name, code in failed.items()) + ": not judged (not better)")
        return False, reasons
    for metric, sign in CRITERIA[label]:
        metric_ok, reason = judge(trial.get(metric, {}), metric, sign)
        ok, reasons = ok and metric_ok, [*reasons, reason]
    return ok, reasons


def install(candidate: Path, target: Path, expected: dict[str, bytes]) -> Path:
    """Put the candidate in place of the target, its previous files kept as <target>-previous.
    Each file is replaced atomically (files.write_atomic), the .json first: it holds the new
    .npz's SHA-256, so a crash between the two leaves a pair models.bpann refuses by name,
    never a new description of old weights. The target must still be what was evaluated."""
    try:
        bpann.load(candidate)
    except ModelError as exc:
        raise RetrainError(f"candidate {exc}: nothing installed") from None
    new, old = model_bytes(candidate), model_bytes(target)
    if old != expected:
        raise RetrainError(f"{base(target)}.npz/.json changed while retraining: nothing installed")
    backup = base(target).with_name(base(target).name + "-previous")
    modes = {s: base(target).with_suffix(s).stat().st_mode & 0o777 for s in SUFFIXES}
    try:
        for s in SUFFIXES:
            files.write_atomic(backup.with_suffix(s), old[s], modes[s])
    except OSError as exc:
        raise RetrainError(f"{backup}{s}: cannot write the backup ({exc.strerror}): nothing installed") from None
    try:
        for s in SUFFIXES:
            files.write_atomic(base(target).with_suffix(s), new[s], modes[s])
        bpann.load(target)
    except BaseException as exc:     # an interrupt too: never leave the candidate's .json half in place
        for s in reversed(SUFFIXES):     # .npz first: until the old .json is back, its hash refuses the pair
            files.write_atomic(base(target).with_suffix(s), old[s], modes[s])
        if not isinstance(exc, (OSError, ModelError)):
            raise
        raise RetrainError(f"{base(target)}: install failed ({exc}); the previous model is back") from None
    return backup


def settle(report: dict, errors: dict, trial: dict, candidate: Path, target: Path, expected: dict[str, bytes],
           reload_port: int | None, out: Path, exits: dict | None = None) -> tuple[int, dict]:
    """Decide by RULE, install if better, reload the controller, write report.json (whatever
    happens on the way): (exit code, report)."""
    replace, reasons = decide(errors, trial, report["label"], exits)
    report.update(held_out={**report.get("held_out", {}), "errors": errors},
                  experiment={"better": {m: "higher" if sign > 0 else "lower" for m, sign in CRITERIA[report["label"]]},
                              "per_seed": trial, "exits": exits},
                  decision="kept", reasons=reasons, rule=RULE, backup=None, reload=None)
    code = 0
    try:
        if any((exits or {}).values()):
            raise RetrainError(reasons[-1])
        if replace:
            report["backup"] = str(install(candidate, target, expected))
            if reload_port is not None:
                report["reload"] = reload(reload_port, target)
    except RetrainError as exc:
        report["error"], code = str(exc), 1
    finally:
        report = jsonable({**report, "decision": "replaced" if report["backup"] else "kept"})
        files.write_atomic(out / "report.json", (json.dumps(report, indent=1, allow_nan=False) + "\n").encode(),
                           0o644)
    return code, report


def describe(report: dict) -> str:
    """The report as a few lines: the decision, each criterion, where things are."""
    target = report["model"]
    head = (f"replaced {target} (previous kept as {report['backup']}.npz/.json)" if report["decision"] == "replaced"
            else f"kept {target} unchanged")
    errors, held = report["held_out"]["errors"], report["held_out"]
    lines = [f"decision: {head}", *(f"  - {r}" for r in report["reasons"]),
             f"  held out: {held['tested']} samples (trained on {held['trained']}); mean relative error "
             f"candidate {figure(errors['candidate']['mre'], '.0f', 100)}%, in use "
             f"{figure(errors['current']['mre'], '.0f', 100)}%; persistence baseline MAE "
             f"{figure(errors['persistence']['mae'])}"]
    if report.get("reload"):
        lines.append(f"  controller 127.0.0.1:{report['reload_port']} reloaded: {report['reload'].get('model')}")
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    lines.append(f"rule: {report['rule']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or default_workdir("retrain")
    out.mkdir(parents=True, exist_ok=True)
    target = base(args.model)
    try:
        current = bpann.load(target)
        expected = model_bytes(target)
        label = current.meta.get("label")    # the candidate learns the same, or the errors do not compare
        if label not in CRITERIA:
            raise RetrainError(f"{target}.json: label {label!r} is not one scripts.collect measures "
                               f"({', '.join(CRITERIA)})")
        alpha = current.meta.get("alpha", ALPHA)     # the penalty the model in use was chosen with
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1000:
            raise RetrainError(f"{target}.json: alpha {alpha!r} is not a penalty in (0, 1000]")
        topology = topology_file(args.topology, args.zoo_seed, args.hosts, out)
        hosts = [h.name for h in files.load_spec(topology).hosts]
        src, dst = args.src or hosts[0], args.dst or hosts[-1]
        if src not in hosts or dst not in hosts or src == dst:
            raise RetrainError(f"--src/--dst: two different hosts of {args.topology} ({', '.join(hosts)})")
        if args.reload_port is not None:
            check_controller(args.reload_port, target)
            controller_token(args.reload_port)
        for s in SUFFIXES:       # what is evaluated is a copy: the experiment runs it, not the live file
            (out / f"current{s}").write_bytes(expected[s])
        samples = args.data or [out / "samples.csv"]
        if not args.data:
            code = collect.main(["--topology", str(topology), "--src", src, "--dst", dst, "--duration",
                                 str(args.collect_s), "--seed", str(args.seed), "--out", str(samples[0]),
                                 "--label", "probe" if label == LABEL else "transfer",
                                 "--transfer-bytes", str(args.transfer_bytes)])
            if code == 130:
                print("interrupted: nothing installed", file=sys.stderr)
                return 130
            if code:
                raise RetrainError(f"collection on {args.topology} failed (exit {code}): nothing installed")
        data = concat([load_dataset(path) for path in samples])
        if data.label != label:
            raise RetrainError(f"{samples[0]}: samples of {data.label}, but the model in use predicts {label}")
        if data.inputs != current.inputs:
            raise RetrainError(f"{target}.json: inputs {list(current.inputs)}, but {samples[0]}'s samples give "
                               f"{list(data.inputs)}")
        try:
            train, test = time_blocked_folds(data.times, HOLDOUT_BLOCKS, args.gap)[-1]
            inner = [(train[a], train[b]) for a, b in time_blocked_folds(data.times[train], args.folds, args.gap)]
        except ValueError as exc:
            raise RetrainError(f"{len(data)} samples: {exc}") from None
    except (ModelError, TopologyError, DatasetError, RetrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError) as exc:     # the lab could not start or run
        print(f"error: collection on {args.topology}: {exc}", file=sys.stderr)
        return 1

    print(f"training on {len(train)} samples, holding out the last {len(test)} from "
          f"{time.strftime('%H:%M:%S', time.gmtime(data.times[test].min()))} UTC ({len(data) - len(train) - len(test)} "
          f"within --gap {args.gap:g} s of them used for neither)")
    scores, _ = sweep(data.x, data.y, inner, args.sizes, args.seed, data.persistence, alpha=alpha)
    hidden = choose(scores)
    meta = {**metadata(b"".join(p.read_bytes() for p in samples), len(train), hidden, scores, label, args.seed,
                       args.folds, alpha=alpha), **provenance("scripts.retrain", argv)}
    candidate = bpann.save(dataclasses.replace(fit_bpann(data.x[train], data.y[train], hidden, args.seed,
                                                         data.inputs, alpha),
                                               meta=meta), out / "candidate")[0]
    errors = heldout_errors(data, test, current, bpann.load(candidate))

    folders = {name: out / f"experiment-{name}" for name in ("current", "candidate")}
    policy = "learned" if data.inputs == CAPACITY else "bpann"     # the policy that serves such a model
    exits = {}
    for name, folder in folders.items():
        shutil.rmtree(folder, ignore_errors=True)     # a rerun into one --out starts its runs afresh
        try:
            code = experiment.main(["--topology", str(topology), "--src", src, "--dst", dst, "--policies", policy,
                                    "--seeds", str(args.seeds), "--duration", str(args.experiment_s),
                                    "--warmup", str(args.warmup), "--round", str(args.round),
                                    "--model", str(out / name), "--out", str(folder)])
        except (RuntimeError, TimeoutError) as exc:
            print(f"error: experiment with the {name} model: {exc}", file=sys.stderr)
            code = 1
        if code == 130:
            print("interrupted: nothing installed", file=sys.stderr)
            return 130
        exits[name] = code
    trial = experiment_figures(folders, [metric for metric, _ in CRITERIA[label]], policy)

    report = {"model": str(target), "candidate": str(base(candidate)), "label": label, "topology": str(topology),
              "src": src, "dst": dst, "reload_port": args.reload_port,
              "held_out": {"samples": [str(p) for p in samples], "trained": len(train), "tested": len(test),
                           "gap_s": args.gap, "chosen_hidden": hidden},
              "experiments": {name: str(folder) for name, folder in folders.items()},
              **provenance("scripts.retrain", argv)}
    code, report = settle(report, errors, trial, candidate, target, expected, args.reload_port, out, exits)
    print("\n" + describe(report) + f"\nreport: {out / 'report.json'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
