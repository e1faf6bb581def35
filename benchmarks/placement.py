"""Two measurements of the picture a policy decides on, on H1-H7 (needs root: Mininet and OVS):

1. herding: 20 UDP flows of 0.5 Mbit/s from h1 to h7 start within one poll (iperf3 clients
   started back to back); how many each path got;
2. false loss: a loss-free 5 Mbit/s UDP flow h1 to h7; the loss read on its path's links for
   4 polls, then for 5 polls after each of its entries was ADDed again as the switch holds it
   (Open vSwitch restarts a replaced entry's duration and keeps its counters).

    sudo .venv/bin/python -m benchmarks.placement --policy least-loaded,bpann [--json FILE]

Each policy runs on a fresh lab. With --json, the results of all go to FILE with the commit and
command (docs/forwarding.md's table is generated from it by scripts/tables.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import Counter
from pathlib import Path

from topologies.lab import ROOT, Lab, default_workdir, started, wait_until, write_results

FLOWS, FLOW_MBPS = 20, 0.5


def herding(lab: Lab) -> dict:
    h1, h7 = lab.net.get("h1"), lab.net.get("h7")
    ports = tuple(range(6000, 6000 + FLOWS))
    servers = [h7.popen(["timeout", "40", "iperf3", "-s", "-1", "-p", str(p)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL) for p in ports]
    wait_until(lambda: all(f":{p}" in h7.cmd("ss -ltn") for p in ports), 20, what="iperf3 servers")
    start = time.monotonic()
    clients = [h1.popen(["timeout", "30", "iperf3", "-c", h7.IP(), "-p", str(p), "-u", "-b", f"{FLOW_MBPS}M",
                         "-t", "8", "-l", "1400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for p in ports]
    started_within_s = time.monotonic() - start

    def udp() -> list[dict]:
        return [f for f in lab.api("flows")[1] if f["proto"] == 17 and f["dst_port"] in ports]
    wait_until(lambda: len(udp()) == FLOWS, 15, what="the flows installed")
    per_path = Counter(">".join(f["path"]) for f in udp())
    for proc in clients + servers:
        proc.wait(timeout=40)
    return {"started_within_s": round(started_within_s, 3), "per_path": dict(per_path)}


def false_loss(lab: Lab) -> dict:
    h1, h7 = lab.net.get("h1"), lab.net.get("h7")
    server = h7.popen(["timeout", "40", "iperf3", "-s", "-1", "-p", "5994"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    wait_until(lambda: ":5994" in h7.cmd("ss -ltn"), 10, what="iperf3 server")
    client = h1.popen(["timeout", "30", "iperf3", "-c", h7.IP(), "-p", "5994", "-u", "-b", "5M", "-t", "12",
                       "-l", "1400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: any(f["dst_port"] == 5994 for f in lab.api("flows")[1]), 10, what="the flow installed")
    path = next(f["path"] for f in lab.api("flows")[1] if f["dst_port"] == 5994)
    links = set(zip(path, path[1:]))

    def readings(polls: int) -> list[float]:
        out = []
        for _ in range(polls):
            time.sleep(1)    # one reading per poll
            out += [lk["loss"] for lk in lab.api("links")[1] if (lk["src"], lk["dst"]) in links]
        return out
    before = readings(4)
    for switch in path:
        for line in subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch, "udp,tp_dst=5994",
                                    "--no-stats"], capture_output=True, text=True, check=True, timeout=10).stdout.splitlines():
            if "actions=" in line:
                subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", switch, line.strip()], check=True, timeout=10)
    after = readings(5)
    client.wait(timeout=40)
    server.wait(timeout=40)
    return {"path": ">".join(path), "max_loss_before_replace": max(before), "max_loss_after_replace": max(after)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.placement", description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default="least-loaded", help="a policy, or several separated by commas")
    p.add_argument("--out", type=Path, help="results folder (default results/placement-<time>)")
    p.add_argument("--json", help="also write every policy's result, the commit and the command to this file")
    args = p.parse_args(argv)
    run = started("benchmarks.placement", argv)
    out = args.out or default_workdir("placement")
    results = []
    for policy in args.policy.split(","):
        with Lab(ROOT / "topologies" / "h1h7.json", out / policy, policy=policy) as lab:
            lab.pingall()
            result = {"policy": policy, **herding(lab), **false_loss(lab)}
        print(json.dumps(result))
        (out / policy / "result.json").write_text(json.dumps(result) + "\n")
        results.append(result)
    if args.json:
        print(f"figures: {write_results(args.json, 'placement', run, {'flows': FLOWS, 'flow_mbps': FLOW_MBPS, 'results': results})}")


if __name__ == "__main__":
    main()
