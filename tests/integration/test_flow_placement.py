"""Placement on the present picture, on real Open vSwitch and Mininet: flows that start
together spread (bookings), and replacing a flow's entries does not read as loss."""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from tests.integration.conftest import running_lab
from topologies.lab import wait_until

PORTS = (5991, 5992, 5993)
# What a loss-free 5 Mbit/s flow's links read after its entries were replaced: up to 0.007 in
# runs here, 0.019 in a CI run (not traced: a sender's bursts read by two switches a few ms
# apart, and _link_window's max(port, entries), may explain it). Before 848321e a replaced entry's lagging counts were taken for a rate,
# and such links read 0.053 (CI) and 0.08.
NOISE = 0.04


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(tmp_path_factory, "placement", policy="least-loaded")


def udp_flows(lab, ports) -> dict[int, dict]:
    return {f["dst_port"]: f for f in lab.api("flows")[1]
            if f["proto"] == 17 and f["dst_ip"] == "10.0.0.7" and f["dst_port"] in ports}


def measured(lab, ports) -> bool:
    """Each flow installed, and a poll has measured it (its booking ended)."""
    flows = udp_flows(lab, ports)
    return len(flows) == len(ports) and all(f["booked_mbps"] == 0 for f in flows.values())


def idle(lab) -> bool:
    links, flows = lab.api("links")[1], lab.api("flows")[1]
    return (all(lk["rate_mbps"] is not None and lk["rate_mbps"] < 0.01 * lk["capacity_mbps"] for lk in links)
            and all(f["booked_mbps"] == 0 for f in flows))


def test_three_udp_flows_started_together_spread_and_no_link_is_overloaded(lab):
    """Three 4 Mbit/s flows h1 to h7 start within milliseconds, one poll: together they would
    overload the 10 Mbit/s shortest path, and without bookings all three took one path. They
    start on an idle network: a flow still booked (the lab's ping check books each host pair
    until a poll measures it) is a larger share of a thin path, and least loaded then rightly
    sends all three down the 30 Mbit/s 4-hop path (as one CI run saw)."""
    wait_until(lambda: idle(lab), 15, what="an idle network: every link measured and quiet, nothing booked")
    with lab.udp_floods("h1", "h7", 4, 6, PORTS) as reports:
        wait_until(lambda: measured(lab, PORTS), 6, what="the three UDP flows installed and measured")
        paths = [tuple(f["path"]) for f in udp_flows(lab, PORTS).values()]
        links = lab.api("links")[1]
    per_path = Counter(paths)
    print(f"\nthree 4 Mbit/s UDP flows h1>h7: {dict(per_path)}")
    assert len(per_path) >= 2, per_path
    for path, n in per_path.items():
        hops = list(zip(path, path[1:]))
        bottleneck = min(lab.spec.capacity_mbps(a, b) for a, b in hops)
        assert 4 * n <= bottleneck, f"{n} flows of 4 Mbit/s on {'>'.join(path)} ({bottleneck:g} Mbit/s)"
    busy = [lk for lk in links if lk["rate_mbps"] is not None and lk["rate_mbps"] > lk["capacity_mbps"] * 1.02]
    assert busy == [], busy
    lost = [r["end"]["sum"]["lost_percent"] for r in reports]
    assert max(lost) < 2, f"receiver loss % per flow: {lost}"


def test_entries_replaced_mid_run_do_not_read_as_loss(lab):
    """Open vSwitch resets a replaced entry's duration and keeps its counters: a loss-free
    5 Mbit/s flow whose entries are re-added mid-run must read no loss on its links."""
    with lab.udp_flood("h1", "h7", 5, 10, port=5994) as report:
        wait_until(lambda: measured(lab, (5994,)), 6, what="the UDP flow installed and measured")
        path = udp_flows(lab, (5994,))[5994]["path"]
        replaced = []
        for switch in path:                 # ADD each of its entries again, as the switch has it
            for line in subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch, "udp,tp_dst=5994",
                                        "--no-stats"], capture_output=True, text=True, check=True,
                                       timeout=10).stdout.splitlines():
                if "actions=" in line:
                    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", switch, line.strip()],
                                   check=True, timeout=10)
                    replaced.append(switch)
        assert replaced == list(path), f"entries re-added on {replaced}, the flow's path is {path}"
        readings = []
        for _ in range(4):                  # a sample after each of the next four polls
            time.sleep(1)
            readings += [lk["loss"] for lk in lab.api("links")[1]
                         if (lk["src"], lk["dst"]) in set(zip(path, path[1:]))]
    print(f"\nloss read on {'>'.join(path)} after its entries were replaced: max {max(readings):.4f}; "
          f"iperf3 lost {report['end']['sum']['lost_percent']:.3f}%")
    assert report["end"]["sum"]["lost_percent"] < 1, "the link was not loss-free: the test proves nothing"
    assert max(readings) < NOISE, readings
