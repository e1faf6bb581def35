"""Train the BPANN on collected samples: sweep the hidden layer (3, 5, 7, 9, 11 neurons) with
cross-validation by time blocks beside the persistence and linear-regression baselines, report
each network's error (MAE and mean relative error) in the time-blocked folds and, with samples
from two networks or more, when it is held out of training; write the tables and a plot, and
export the chosen network for the controller.

    .venv/bin/python -m scripts.train --data models/data/h1h7.csv [--model models/bpann]
    .venv/bin/python -m scripts.train --data models/data/h1h7.csv --cv shuffled    (the shipped model's way)
    .venv/bin/python -m scripts.train --data a.csv b.csv --test c.csv   (c: a network never trained on)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import matplotlib
import numpy as np
from tqdm import tqdm

from models import bpann
from models.dataset import DatasetError, concat, load_dataset
from models.evaluation import GAP_S, network_folds, per_network, shuffled_folds, time_blocked_folds
from models.train import ALPHA, SIZES, choose, fit_bpann, fit_linear, metadata, sweep
from topologies.lab import default_workdir, provenance

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def table(scores, unit: str = "ms") -> str:
    rows = [f"| model | MAE ({unit}) | R^2 |", "| --- | --- | --- |"]
    rows += [f"| {s.name} | {s.mae:.3f} ± {s.mae_std:.3f} | {s.r2:.3f} ± {s.r2_std:.3f} |" for s in scores]
    return "\n".join(rows)


def error_table(rows, unit: str) -> str:
    """Per network and model: MAE and mean relative error of out-of-fold predictions."""
    out = [f"| network | model | samples | MAE ({unit}) | mean relative error |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {r.network} | {r.model} | {r.samples} | {r.mae:.3f} | {100 * r.mre:.1f}% |" for r in rows]
    return "\n".join(out)


def plot(scores, path: Path, label: str) -> None:
    nets = [s for s in scores if s.name.startswith("bpann-")]
    sizes = [int(s.name.split("-")[1]) for s in nets]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(sizes, [s.mae for s in nets], yerr=[s.mae_std for s in nets], marker="o", label="BPANN")
    for s, style in zip([s for s in scores if not s.name.startswith("bpann-")], ("--", ":")):
        ax.axhline(s.mae, linestyle=style, color="grey", label=s.name)
    ax.set(xlabel="hidden neurons", ylabel=f"MAE of {label} (cross-validated)", xticks=sizes)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+", help="samples CSV file(s) from scripts.collect")
    p.add_argument("--model", default="models/bpann", help="where to export (.npz + .json)")
    p.add_argument("--out", help="folder for the table and plot (default results/train-<time>)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="hidden sizes to sweep")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--cv", choices=("time", "shuffled"), default="time",
                   help="time blocks --gap apart (default), or the paper's shuffled k-fold")
    p.add_argument("--gap", type=float, default=GAP_S, metavar="S",
                   help="seconds between a test block and any training sample (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help="L2 penalty of the network's weights (default %(default)s, the paper model's)")
    p.add_argument("--test", nargs="+", default=[], metavar="CSV",
                   help="samples of networks kept out of training: the exported model and both baselines "
                        "(fit on every --data sample) are scored on them")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        if not sizes or min(sizes) < 1:
            raise ValueError
    except ValueError:
        p.error(f"--sizes: expected positive integers separated by commas, got '{args.sizes}'")
    if args.folds < 2:
        p.error("--folds: at least 2")
    if not 0 < args.alpha <= 1000:
        p.error("--alpha: in (0, 1000]")
    try:
        data = concat([load_dataset(d) for d in args.data])
        test = concat([load_dataset(t) for t in args.test]) if args.test else None
        if test is not None and test.label != data.label:
            raise DatasetError(f"{args.test[0]}: samples of {test.label}, but --data's are of {data.label}")
        if test is not None and set(test.networks) & set(data.networks):
            raise DatasetError(f"--test: network(s) {', '.join(sorted(set(test.networks) & set(data.networks)))} "
                               f"are in --data too")
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x, y = data.x, data.y
    try:
        splits = (time_blocked_folds(data.times, args.folds, args.gap) if args.cv == "time"
                  else shuffled_folds(len(y), args.folds, args.seed))
    except ValueError as exc:
        print(f"error: {len(y)} samples: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_workdir("train")
    out.mkdir(parents=True, exist_ok=True)
    networks = sorted(set(data.networks))
    print(f"{len(y)} samples of {data.label} on {', '.join(networks)} from {', '.join(args.data)}; sweeping "
          f"hidden sizes {sizes} with {args.folds}-fold {'time-blocked' if args.cv == 'time' else 'shuffled'} "
          f"cross-validation")
    with tqdm(total=args.folds, desc="folds", unit="fold") as bar:
        scores, predicted = sweep(x, y, splits, sizes, args.seed, data.persistence, bar.update, args.alpha)
    hidden = choose(scores)
    keep = (f"bpann-{hidden}", "persistence", "linear")
    unit = "s" if data.label == "fct_s" else "ms"
    report = [f"## {args.cv} folds", error_table(per_network(y, data.networks, {k: predicted[k] for k in keep}), unit)]
    if len(networks) > 1:
        held, held_out = sweep(x, y, network_folds(data.networks), (hidden,), args.seed, data.persistence,
                               alpha=args.alpha)
        report += ["## held-out networks (trained on the others)",
                   error_table(per_network(y, data.networks, {k: held_out[k] for k in keep}), unit),
                   "Mean MAE over the held-out networks: " + ", ".join(f"{s.name} {s.mae:.3f} {unit}" for s in held)]
    model = fit_bpann(x, y, hidden, args.seed, data.inputs, args.alpha)
    if test is not None:
        never = {f"bpann-{hidden}": model.predict(test.x), "persistence": test.persistence,
                 "linear": fit_linear(x, y).predict(test.x)}
        report += ["## networks never trained on (--test; trained on every --data sample)",
                   error_table(per_network(test.y, test.networks, never), unit)]
    (out / "evaluation.md").write_text("\n\n".join(report) + "\n")
    (out / "sweep.md").write_text(table(scores, unit) + "\n")
    (out / "sweep.csv").write_text("model,mae,mae_std,r2,r2_std\n" + "".join(
        f"{s.name},{s.mae:.6g},{s.mae_std:.6g},{s.r2:.6g},{s.r2_std:.6g}\n" for s in scores))
    plot(scores, out / "sweep.png", data.label)
    data_bytes = b"".join(Path(d).read_bytes() for d in args.data)
    meta = metadata(data_bytes, len(y), hidden, scores, data.label, args.seed, args.folds,
                    "time-blocked" if args.cv == "time" else "shuffled", args.alpha)
    meta.update(provenance("scripts.train"))      # the commit and command that made it (docs/models.md)
    npz, meta_path = bpann.save(dataclasses.replace(model, meta=meta), args.model)
    bpann.load(npz)   # what we ship must load
    print("\n" + table(scores, unit) + "\n\n" + "\n\n".join(report))
    print(f"\nchosen: {hidden} hidden neurons (smallest within 2% of the best MAE)")
    print(f"model: {npz} + {meta_path.name}; table and plot: {out}/sweep.md, sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
