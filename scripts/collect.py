"""Collect BPANN training samples on a live network: seeded random background traffic among
the other hosts, and new flows from --src to --dst, each placed by the controller's `random`
policy on one of the candidate paths (exploration). A sample is that path's features just
before the flow, and what the flow measured (models/labels.py, models/dataset.py): with
`--label probe` (the paper's) a train of one-way-delay probes, its median delay and loss; with
`--label transfer` a TCP transfer of --transfer-bytes, its completion time. Bounded by --duration.

    sudo .venv/bin/python -m scripts.collect --duration 600 --out models/data/h1h7.csv
    sudo .venv/bin/python -m scripts.collect --label transfer --transfer-bytes 1000000 --out t.csv
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

from models.dataset import COLUMNS, TRANSFER_COLUMNS
from models.labels import probe_label, transfer_label
from topologies.lab import Lab, default_workdir
from controller.core.spec import TopologyError
from topologies.traffic import Player, schedule


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", default="topologies/h1h7.json")
    p.add_argument("--src", default="h1")
    p.add_argument("--dst", default="h7")
    p.add_argument("--duration", type=float, default=600, help="seconds of collection (10..7200)")
    p.add_argument("--seed", type=int, default=0, help="seeds the background schedule, probe ports and the random paths")
    p.add_argument("--out", help="samples CSV to append to (default results/collect-<time>/samples.csv)")
    p.add_argument("--probe-count", type=int, default=20, help="probes per train")
    p.add_argument("--probe-interval", type=float, default=0.02, help="seconds between probes")
    p.add_argument("--label", choices=("probe", "transfer"), default="probe",
                   help="what labels a sample: a probe train's delay (the paper's) or a transfer's completion time")
    p.add_argument("--transfer-bytes", type=int, default=1_000_000, help="size of each labelled transfer")
    p.add_argument("--transfer-timeout", type=float, default=20, metavar="S",
                   help="bound of each transfer: one cut there is kept, censored, at it")
    args = p.parse_args(argv)
    if not 10 <= args.duration <= 7200:
        p.error("--duration: must be in 10..7200 seconds")
    if not 1000 <= args.transfer_bytes <= 1 << 30 or not 1 <= args.transfer_timeout <= 300:
        p.error("--transfer-bytes: 1000..2^30; --transfer-timeout: 1..300 s")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = default_workdir("collect")
    out = Path(args.out) if args.out else workdir / "samples.csv"
    try:
        lab = Lab(args.topology, workdir, policy="random", controller_args=("--seed", str(args.seed)))
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
    if not new_file:
        with open(out) as existing:
            header = existing.readline().strip()
        if header != ",".join(COLUMNS if args.label == "probe" else TRANSFER_COLUMNS):
            print(f"error: {out}: its header is not that of --label {args.label} samples", file=sys.stderr)
            return 2
    kept = skipped = 0
    print(f"collecting {args.src} -> {args.dst} samples for {args.duration:.0f} s into {out} "
          f"({len(transfers)} background transfers among {', '.join(background)}; log in {workdir})")
    try:
        with lab, open(out, "a") as f:
            if new_file:
                f.write(",".join(COLUMNS if args.label == "probe" else TRANSFER_COLUMNS) + "\n")

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
    print(f"{kept} samples written to {out} ({skipped} flows skipped: path unknown or nothing measured)")
    return 0 if kept else 1


def sample(lab: Lab, args, rng: random.Random) -> tuple | None:
    """One new flow from --src to --dst on the path the controller picks, and its row; None
    when its path is unknown or it measured nothing."""
    status, paths = lab.api(f"paths?src={args.src}&dst={args.dst}")
    if status != 200:
        return None
    sport = rng.randrange(20000, 60000)
    if args.label == "probe":
        result = lab.owd_probe(args.src, args.dst, sport, count=args.probe_count, interval_s=args.probe_interval)
        label = probe_label(result["delays_ms"], result["sent"])
        proto = 17
    else:
        result = lab.transfer(args.src, args.dst, args.transfer_bytes, sport, args.transfer_timeout)
        label = transfer_label(result["bytes"], result["seconds"], result["complete"], args.transfer_timeout)
        proto = 6
    flow = next((f for f in lab.api("flows")[1] if f["proto"] == proto and f["src_port"] == sport), None)
    candidate = flow and next((c for c in paths["candidates"] if c["path"] == flow["path"]), None)
    if candidate is None or label is None:
        return None
    features = (candidate["utilisation"], candidate["loss"], candidate["latency_ms"], candidate["hops"])
    path = ">".join(candidate["path"])
    if args.label == "probe":
        return (round(time.time(), 3), args.src, args.dst, path, *features, round(label.delay_ms, 4),
                round(label.loss, 4))
    # what the controller serves the model (the thinnest inter-switch link); a path within one
    # switch has none, and the host links' capacity stands in
    bottleneck = candidate.get("capacity_mbps") or lab.spec.bottleneck_mbps([args.src, *candidate["path"], args.dst])
    headroom = candidate["headroom_mbps"] if candidate["headroom_mbps"] is not None else bottleneck
    return (round(time.time(), 3), lab.spec.name, args.src, args.dst, path, *features, bottleneck,
            round(headroom, 4), args.transfer_bytes, round(label.fct_s, 5), int(label.censored))


if __name__ == "__main__":
    sys.exit(main())
