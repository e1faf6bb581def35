"""Collect BPANN training samples on a live network: seeded random background traffic among
the other hosts, and trains of one-way-delay probes from --src to --dst, each placed by the
controller's `random` policy on one of the candidate paths (exploration). A sample is that
path's four features just before the train, and the train's measured median one-way delay and
loss (see models/dataset.py). Bounded by --duration.

    sudo .venv/bin/python -m scripts.collect --duration 600 --out models/data/h1h7.csv
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from models.dataset import COLUMNS
from topologies.lab import Lab, default_workdir
from controller.core.spec import TopologyError
from topologies.traffic import Player, schedule


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default="topologies/h1h7.json")
    p.add_argument("--src", default="h1")
    p.add_argument("--dst", default="h7")
    p.add_argument("--duration", type=float, default=600, help="seconds of collection (10..7200)")
    p.add_argument("--seed", type=int, default=0, help="seeds the background schedule and probe ports")
    p.add_argument("--out", help="samples CSV to append to (default results/collect-<time>/samples.csv)")
    p.add_argument("--probe-count", type=int, default=20, help="probes per train")
    p.add_argument("--probe-interval", type=float, default=0.02, help="seconds between probes")
    args = p.parse_args()
    if not 10 <= args.duration <= 7200:
        p.error("--duration: must be in 10..7200 seconds")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = default_workdir("collect")
    out = Path(args.out) if args.out else workdir / "samples.csv"
    try:
        lab = Lab(args.topology, workdir, policy="random")
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hosts = [h.name for h in lab.spec.hosts]
    if args.src not in hosts or args.dst not in hosts or args.src == args.dst:
        print(f"error: --src/--dst: two different hosts of {args.topology} ({', '.join(hosts)})", file=sys.stderr)
        return 2
    background = [h for h in hosts if h != args.src]
    transfers = schedule(args.seed, background, args.duration)
    rng = random.Random(args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out.exists() or out.stat().st_size == 0
    kept = skipped = 0
    print(f"collecting {args.src} -> {args.dst} samples for {args.duration:.0f} s into {out} "
          f"({len(transfers)} background transfers among {', '.join(background)}; log in {workdir})")
    try:
        with lab, open(out, "a") as f:
            if new_file:
                f.write(",".join(COLUMNS) + "\n")
            lab.pingall()
            player = Player(lab.net, transfers).start()
            start = time.monotonic()
            try:
                with tqdm(total=int(args.duration), unit="s", desc="collect") as bar:
                    while (elapsed := time.monotonic() - start) < args.duration:
                        row = sample(lab, args, rng)
                        if row is None:
                            skipped += 1
                        else:
                            f.write(",".join(map(str, row)) + "\n")
                            f.flush()
                            kept += 1
                        bar.update(int(elapsed) - bar.n)
                        bar.set_postfix(samples=kept, skipped=skipped)
            finally:
                player.stop()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {kept} samples kept in {out}; network and controller stopped")
        return 130
    print(f"{kept} samples written to {out} ({skipped} probe trains skipped: path unknown or all lost)")
    return 0 if kept else 1


def sample(lab: Lab, args, rng: random.Random) -> tuple | None:
    status, paths = lab.api(f"paths?src={args.src}&dst={args.dst}")
    if status != 200:
        return None
    sport = rng.randrange(20000, 60000)
    result = lab.owd_probe(args.src, args.dst, sport, count=args.probe_count, interval_s=args.probe_interval)
    flow = next((f for f in lab.api("flows")[1] if f["proto"] == 17 and f["src_port"] == sport), None)
    candidate = flow and next((c for c in paths["candidates"] if c["path"] == flow["path"]), None)
    if candidate is None or not result["received"]:
        return None
    return (round(time.time(), 3), args.src, args.dst, ">".join(candidate["path"]),
            candidate["utilisation"], candidate["loss"], candidate["latency_ms"], candidate["hops"],
            round(result["median_ms"], 4), round(1 - result["received"] / result["sent"], 4))


if __name__ == "__main__":
    sys.exit(main())
