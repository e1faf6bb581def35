"""Placement on the present picture, on real Open vSwitch and Mininet: flows that start
together spread (bookings), and replacing a flow's entries does not read as loss."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from urllib.parse import quote

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


def decisions_of(lab, flows) -> list[dict]:
    """Each flow's decision as taken (the readings it was given), in the order taken."""
    return sorted((lab.api("decisions?limit=1&flow=" + quote(f["flow"]))[1]["decisions"][0] for f in flows),
                  key=lambda d: d["id"])


def least_loaded_choice(decision: dict) -> int:
    """Least loaded's rule (Policy.rank, load-aware) on the readings a decision was given."""
    standings = [(1 if c["unknown"] else 2 * (c["utilisation"] >= 1.0), c["score"]) for c in decision["candidates"]]
    return standings.index(min(standings))


def test_three_udp_flows_started_together_each_sees_the_ones_before_and_no_link_is_overloaded(lab):
    """Three 4 Mbit/s flows h1 to h7 start within milliseconds, one poll: together they would
    overload the 10 Mbit/s shortest path, and without bookings all three took one path. Each
    decision must read the paths taken before it busier than those decisions read them (their
    bookings), and choose by least loaded's rule on what it read. They spread where every
    candidate was measured; a poll answered late leaves a path's load unknown, and least loaded
    then rightly keeps to the measured ones (one CI run put all three on the 30 Mbit/s path)."""
    wait_until(lambda: idle(lab), 15, what="an idle network: every link measured and quiet, nothing booked")
    with lab.udp_floods("h1", "h7", 4, 6, PORTS) as reports:
        wait_until(lambda: measured(lab, PORTS), 6, what="the three UDP flows installed and measured")
        flows = udp_flows(lab, PORTS).values()
        paths = [tuple(f["path"]) for f in flows]
        decisions = decisions_of(lab, flows)
        links = lab.api("links")[1]
    per_path = Counter(paths)
    read = [[(tuple(c["path"]), c["utilisation"], c["unknown"]) for c in d["candidates"]] for d in decisions]
    print(f"\nthree 4 Mbit/s UDP flows h1>h7: {dict(per_path)}; (path, utilisation, unknown links) read "
          f"by each decision in turn: {read}")
    for d in decisions:
        assert d["chosen"] == least_loaded_choice(d), d
    for i, earlier in enumerate(decisions):
        taken = earlier["candidates"][earlier["chosen"]]
        for later in decisions[i + 1:]:
            now = next(c for c in later["candidates"] if c["path"] == taken["path"])
            assert now["utilisation"] > taken["utilisation"], (
                f"decision {later['id']} read {'>'.join(taken['path'])} at {now['utilisation']}, as decision "
                f"{earlier['id']} which took it had ({taken['utilisation']}): its booking was not seen")
    if all(c["unknown"] == 0 for d in decisions for c in d["candidates"]):
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
