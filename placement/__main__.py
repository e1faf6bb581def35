"""python -m placement: place k controllers for a network and a traffic distribution, check an
assignment file, or compare every method against the exact program (docs/placement.md).

    python -m placement place Bics --k 3 --out assignment.json --map bics.png
    python -m placement place topologies/h1h7.json --k 2 --traffic rates.json --method greedy
    python -m placement check assignment.json --network Bics
    python -m placement report        # the comparison in docs/placement.md (its defaults)
    python -m placement networks
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from controller.core.spec import TopologyError
from controller.files import zoo_names

from .assignment import PlacementFileError, read_assignment, to_document, write_assignment
from .exact import k_center_radius, place_exactly
from .heuristics import greedy_k_median, greedy_sites, k_center
from .learned import MODELS, PlacementModel, features, labels, place_with_model
from .network import load_network
from .problem import Problem
from .report import (BOUND_FACTOR, DEFAULT_NETWORKS, DEFAULT_SEED, environment, parse_plans, render, run_network,
                     write_results)
from .search import local_search
from .traffic import CAPACITY_FLOWS_S, LOAD_FACTOR, TrafficError, gravity, read_traffic, samples

ROOT = Path(__file__).resolve().parents[1]
PLACE_METHODS = ("exact", "greedy", "kcenter", "search") + MODELS + tuple(f"{m}+ls" for m in MODELS)


def _ks(text: str) -> list[int]:
    low, _, high = text.partition("-")
    ks = list(range(int(low), int(high or low) + 1))
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K or LOW-HIGH, e.g. 2-6")
    return ks


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m placement", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, seed=1):
        q.add_argument("--capacity", type=_positive, default=CAPACITY_FLOWS_S,
                       help=f"flow setups/s one controller sustains (default {CAPACITY_FLOWS_S:.0f}: "
                            "docs/benchmarks.md, flow setup, History: issue 15)")
        q.add_argument("--load-factor", type=_positive, default=LOAD_FACTOR,
                       help=f"generated traffic in controller capacities (default {LOAD_FACTOR})")
        q.add_argument("--bound-factor", type=_positive, default=BOUND_FACTOR,
                       help="worst-case latency allowed, as a multiple of the best worst case k "
                            f"controllers achieve (optimal k-center; default {BOUND_FACTOR})")
        q.add_argument("--seed", type=int, default=seed, help=f"seed of the traffic and the models (default {seed})")
        q.add_argument("--hop-ms", type=_positive, default=1.0,
                       help="latency of a spec link without delay_ms (default 1 ms)")

    q = sub.add_parser("place", help="place k controllers and write the per-switch assignment")
    q.add_argument("network", help="a Topology Zoo name topohub ships (Bics, TataNld, ...) or a spec .json")
    q.add_argument("--k", type=int, required=True, help="controllers to place")
    q.add_argument("--traffic", type=Path, help='flow setups/s per switch: {"rates_flows_s": {"s1": 120, ...}} '
                                                "(default: a gravity model from --seed)")
    q.add_argument("--method", choices=PLACE_METHODS, default="exact",
                   help="exact (default), greedy, kcenter, search (local search from greedy), or a "
                        "learned model (trained here on --train generated samples), +ls for local search")
    q.add_argument("--max-latency-ms", type=_positive, help="worst-case bound in ms (overrides --bound-factor)")
    q.add_argument("--train", type=_count, default=100, help="training samples for a learned method (default 100)")
    q.add_argument("--time-limit", type=_positive, default=600.0,
                   help="limit of each exact program (placement, assignment, k-center radius), s (default 600)")
    q.add_argument("--out", type=Path, help="assignment file to write (JSON)")
    q.add_argument("--map", type=Path, help="PNG of the placement on the map")
    common(q)

    q = sub.add_parser("check", help="validate an assignment file")
    q.add_argument("file", type=Path)
    q.add_argument("--network", help="the network it must cover exactly and whose shortest paths must give "
                                     "every latency it states (Zoo name or spec .json)")
    q.add_argument("--hop-ms", type=_positive, default=1.0,
                   help="latency of a spec link without delay_ms, as it was placed with (default 1 ms)")

    q = sub.add_parser("report", help="compare every method against the exact program on held-out traffic")
    q.add_argument("--networks", type=parse_plans, default=parse_plans(DEFAULT_NETWORKS),
                   help="NAME:TRAIN:TEST,... traffic samples to train on and to hold out per network "
                        f"(default {DEFAULT_NETWORKS})")
    q.add_argument("--k", type=_ks, default=_ks("2-6"), help="k or a range LOW-HIGH (default 2-6)")
    q.add_argument("--time-limit", type=_positive, default=60.0,
                   help="limit of each exact program (placement, assignment, k-center radius), s (default 60)")
    q.add_argument("--out", type=Path, help="results folder (default results/placement-<time>/)")
    common(q, seed=DEFAULT_SEED)

    sub.add_parser("networks", help="list the Topology Zoo networks topohub ships, with their sizes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "networks":
            for name in zoo_names():
                print(f"{name}\t{load_network(name).n}")
            return 0
        if args.command == "check":
            network = load_network(args.network, args.hop_ms) if args.network else None
            doc = read_assignment(args.file, network)
            print(f"{args.file}: valid: {doc['network']}, k={doc['k']}, {len(doc['switches'])} switches, "
                  f"mean {doc['mean_latency_ms']:.3f} ms, worst {doc['worst_latency_ms']:.3f} ms; loads and "
                  + (f"latencies recomputed from {network.name}" if network else
                     "mean and worst recomputed from its switches (--network recomputes latencies too)"))
            return 0
        if args.command == "place":
            return place(args)
        return report(args, argv)
    except (TopologyError, TrafficError, PlacementFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def place(args) -> int:
    network = load_network(args.network, args.hop_ms)
    if not 1 <= args.k <= network.n:
        print(f"error: --k: must be in 1..{network.n} for {network.name}", file=sys.stderr)
        return 2
    total = args.load_factor * args.capacity
    rates = read_traffic(args.traffic, network) if args.traffic else \
        gravity(network, np.random.default_rng(args.seed), total)
    bound = args.max_latency_ms or args.bound_factor * k_center_radius(network.latency_ms, args.k, args.time_limit)
    problem = Problem(network.latency_ms, rates, args.k, args.capacity, bound)
    method = args.method
    if method == "exact":
        placed = place_exactly(problem, args.time_limit)
    elif method == "greedy":
        placed = greedy_k_median(problem, args.time_limit)
    elif method == "kcenter":
        placed = k_center(problem, args.time_limit)
    elif method == "search":
        placed = local_search(problem, greedy_sites(problem), "search", time_limit_s=args.time_limit)
    else:
        kind = method.removesuffix("+ls")
        print(f"training {kind} on {args.train} exact placements of generated traffic ...", file=sys.stderr)
        train = samples(network, args.train, args.seed + 1, float(rates.sum()))
        exact = [place_exactly(Problem(network.latency_ms, r, args.k, args.capacity, bound), args.time_limit)
                 for r in train]
        ok = [i for i, e in enumerate(exact) if e.status == "optimal"]
        if not ok:
            print("error: no training sample has a proven optimal placement", file=sys.stderr)
            return 1
        model = PlacementModel(kind, args.seed).fit(features(train[ok]),
                                                    labels(network.n, [exact[i].controllers for i in ok]))
        placed = place_with_model(problem, model, search=method.endswith("+ls"), time_limit_s=args.time_limit)
    if not placed.feasible:
        what = {"infeasible": "proved that no placement meets capacity and bound",
                "time-out": f"timed out after {args.time_limit:g} s without a placement (nor a proof that none exists)"
                }.get(placed.status, "found no feasible placement")
        print(f"{network.name}, k={args.k}: {method} {what} (capacity "
              f"{args.capacity:.0f} flows/s, bound {bound:.3f} ms, traffic {rates.sum():.0f} flows/s)",
              file=sys.stderr)
        return 1
    names = ", ".join(network.switches[s] for s in placed.controllers)
    print(f"{network.name}, k={args.k}, {method}: controllers at {names}; mean {placed.objective_ms:.3f} ms, "
          f"worst {problem.worst_latency(placed.assign):.3f} ms (bound {bound:.3f}), max load "
          f"{problem.loads(placed.assign).max():.0f}/{args.capacity:.0f} flows/s"
          + (", proven optimal" if placed.proven_optimal else ", time-out: not proven optimal"
             if placed.status == "time-out" else "") + f", {placed.runtime_s * 1000:.1f} ms")
    if args.out:
        write_assignment(args.out, to_document(network, problem, placed))
        read_assignment(args.out, network)
        print(f"assignment: {args.out}")
    if args.map:
        from .maps import draw
        draw(network, placed, args.map)
        print(f"map: {args.map}")
    return 0


def _commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


def report(args, argv) -> int:
    for plan in args.networks:          # before minutes of work on the networks before it
        n = load_network(plan.network, args.hop_ms).n
        if args.k[-1] > n:
            print(f"error: --k: must be in 1..{n} for {plan.network}", file=sys.stderr)
            return 2
    folder = args.out or ROOT / "results" / time.strftime("placement-%Y%m%d-%H%M%S")
    command = "python -m placement " + " ".join(sys.argv[1:] if argv is None else argv)
    config = {"command": command, "commit": _commit(), "seed": args.seed, "k": args.k,
              "networks": [vars(p) for p in args.networks], "capacity_flows_s": args.capacity,
              "load_factor": args.load_factor, "bound_factor": args.bound_factor,
              "time_limit_s": args.time_limit, "hop_ms": args.hop_ms, "environment": environment()}
    rows, training, keep = [], [], {}
    start = time.process_time()
    for plan in args.networks:
        r, t = run_network(plan, args.k, args.seed, args.capacity, args.load_factor, args.bound_factor,
                           args.time_limit, progress=lambda text: print(text, file=sys.stderr, flush=True),
                           keep=keep, hop_ms=args.hop_ms)
        rows += r
        training += t
    config["cpu_s"] = round(time.process_time() - start, 1)
    document = write_results(folder, config, rows, training, keep)
    print(render(document["table"]))
    for network, met in document["targets"].items():
        print(f"targets, {network}: NN-LS within 1% on {met['nn_ls_within']}; {met['met']}")
    print(f"results: {folder} ({config['cpu_s']} s of CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
