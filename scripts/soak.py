"""Soak: flow churn on H1-H7 for --duration seconds. Every host starts new flows to all the
others (a new UDP source port per flow); every 10 s this prints how many flows the
controller holds, the largest number of our entries on any switch and the controller's
memory. Then the churn stops and, one idle timeout later, the switches must be back to their
base entries and the controller to no flows.

    sudo .venv/bin/python -m scripts.soak --duration 600      (CI runs --duration 60)

Fails (exit 1) if a switch ever holds more of our entries than the controller has flows
(plus the flows started since it was asked), if entries or flows outlive the churn, or if
the controller's memory grew by 20 MB or more after the first minute (the first third, in
a shorter run).
"""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from mininet.log import setLogLevel
from prometheus_client.parser import text_string_to_metric_families

from controller.openflow.messages import flow_id_of
from topologies.lab import ROOT, Lab, default_workdir, wait_until

IDLE_TIMEOUT_S = 10
SAMPLE_S = 10
MEMORY_LIMIT_MB = 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def flow_entries(lab: Lab) -> dict[str, int]:
    """Per switch: our entries that carry a flow (flow id non-zero; base entries excluded)."""
    return {s.name: sum(1 for f in lab.flows(s.name) if flow_id_of(f["cookie"])) for s in lab.spec.switches}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600, help="seconds of churn (30..7200)")
    p.add_argument("--rate", type=float, default=10, help="new flows per second per host (1..100)")
    p.add_argument("--out", type=Path, help="folder for soak.csv and the controller log")
    args = p.parse_args(argv)
    if not 30 <= args.duration <= 7200 or not 1 <= args.rate <= 100:
        p.error("--duration: 30..7200 seconds; --rate: 1..100 flows/s per host")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    setLogLevel("warning")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = args.out or default_workdir("soak")
    lab = Lab(ROOT / "topologies" / "h1h7.json", folder, controller_args=("--idle-timeout", str(IDLE_TIMEOUT_S)))
    hosts = [h.name for h in lab.spec.hosts]
    print(f"soak: {len(hosts)} hosts x {args.rate:g} new flows/s for {args.duration:.0f} s; results in {folder}")
    failures: list[str] = []
    samples: list[dict] = []
    try:
        with lab:
            lab.pingall()
            procs = [lab.net.get(h).popen(
                [sys.executable, "-m", "topologies.probes", "churn", "--dst",
                 ",".join(lab.spec.host(o).ip for o in hosts if o != h), "--port", "9", "--rate", str(args.rate),
                 "--seconds", str(args.duration)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for h in hosts]
            start = time.monotonic()
            print(f"{'t (s)':>6} {'flows':>6} {'max entries/switch':>19} {'RSS (MB)':>9}")
            while (t := time.monotonic() - start) < args.duration + IDLE_TIMEOUT_S + 10:
                flows = len(lab.api("flows")[1])
                entries = flow_entries(lab)
                asked = time.monotonic() - start
                sample = {"t_s": round(t, 1), "flows": flows, "max_entries": max(entries.values()),
                          "rss_mb": round(rss_mb(lab.controller.pid), 2)}
                samples.append(sample)
                print(f"{sample['t_s']:>6.0f} {flows:>6} {sample['max_entries']:>19} {sample['rss_mb']:>9.1f}")
                started_meanwhile = len(hosts) * args.rate * (asked - t + 1)
                if t < args.duration and sample["max_entries"] > flows + started_meanwhile:
                    failures.append(f"t={t:.0f} s: a switch holds {sample['max_entries']} flow entries, "
                                    f"the controller knows {flows} flows")
                time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - start - t)))
            for proc in procs:
                proc.wait(timeout=10)
            try:
                wait_until(lambda: not any(flow_entries(lab).values()) and not lab.api("flows")[1],
                           IDLE_TIMEOUT_S + 10, what="flow entries and flows to expire after the churn")
            except TimeoutError:
                failures.append(f"after the churn: entries {flow_entries(lab)}, "
                                f"{len(lab.api('flows')[1])} flows still held")
            installed = next(m.samples[0].value for m in text_string_to_metric_families(lab.metrics_text())
                             if m.name == "lb_flows_installed")
    except KeyboardInterrupt:
        print("\ninterrupted: network and controller stopped")
        return 130
    with open(folder / "soak.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    warm = min(60.0, args.duration / 3)        # flow tables and caches fill during the first minute
    baseline = next(s for s in samples if s["t_s"] >= warm)
    growth = max(s["rss_mb"] for s in samples) - baseline["rss_mb"]
    if growth >= MEMORY_LIMIT_MB:
        failures.append(f"controller memory grew {growth:.1f} MB after t={baseline['t_s']:.0f} s")
    print(f"\n{installed:.0f} flows set up; peak flows {max(s['flows'] for s in samples)}, peak entries on one switch "
          f"{max(s['max_entries'] for s in samples)}; memory {baseline['rss_mb']:.1f} MB at "
          f"t={baseline['t_s']:.0f} s, peak {max(s['rss_mb'] for s in samples):.1f} MB (growth {growth:+.1f} MB)")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("soak passed" if not failures else f"soak failed ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
