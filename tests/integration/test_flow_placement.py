"""Placement on the present picture, on real Open vSwitch and Mininet: flows that start
together each see the ones before (bookings), and replacing a flow's entries does not read as
loss."""

from __future__ import annotations

import subprocess
import time
import warnings
from collections import Counter
from urllib.parse import quote

import pytest

from tests.integration.conftest import least_loaded_choice, running_lab, standing
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
    return (all(lk["known"] and lk["rate_mbps"] < 0.01 * lk["capacity_mbps"] for lk in links)
            and all(f["booked_mbps"] == 0 for f in flows))


def decision_of(lab, flow: dict) -> dict:
    """The decision that placed a flow, as taken (the readings it was given): its only one."""
    taken = lab.api("decisions?limit=2&flow=" + quote(flow["flow"]))[1]["decisions"]
    assert len(taken) == 1 and taken[0]["candidates"][taken[0]["chosen"]]["path"] == flow["path"], (flow, taken)
    return taken[0]


def test_three_udp_flows_started_together_each_sees_the_ones_before_and_no_link_is_overloaded(lab):
    """Three 4 Mbit/s flows h1 to h7 start within milliseconds, one poll: together they would
    overload the 10 Mbit/s shortest path, and without bookings all three took one path. Each
    decision must choose by least loaded's rule on what it read and read the paths taken before
    it busier than those decisions read them (their bookings); so they spread. A poll answered
    late leaves a path's load unknown, and least loaded then rightly keeps to the measured ones
    (one CI run put all three on the 30 Mbit/s path): spread is asserted where a decision's
    candidates all stood alike, and said when not."""
    wait_until(lambda: idle(lab), 15, what="an idle network: every link measured and quiet, nothing booked")
    with lab.udp_floods("h1", "h7", 4, 6, PORTS) as reports:
        wait_until(lambda: measured(lab, PORTS), 6, what="the three UDP flows installed and measured")
        flows = udp_flows(lab, PORTS).values()
        decisions = sorted((decision_of(lab, f) for f in flows), key=lambda d: d["id"])
        links = lab.api("links")[1]
    per_path = Counter(tuple(f["path"]) for f in flows)
    read = [[(">".join(c["path"]), c["utilisation"], c["unknown"]) for c in d["candidates"]] for d in decisions]
    print(f"\nthree 4 Mbit/s UDP flows h1>h7: {dict(per_path)}; (path, utilisation, unknown links) read "
          f"by each decision in turn: {read}")
    for d in decisions:
        assert d["policy"] == "least-loaded" and d["measured"], d
        assert d["chosen"] == least_loaded_choice(d), read
    for i, earlier in enumerate(decisions):
        taken = earlier["candidates"][earlier["chosen"]]
        for later in decisions[i + 1:]:
            now = {tuple(c["path"]): c["utilisation"] for c in later["candidates"]}
            if any(now[tuple(c["path"])] < c["utilisation"] for c in earlier["candidates"]):
                continue    # a poll between them released bookings: the earlier flow's may stand in for one
            assert now[tuple(taken["path"])] > taken["utilisation"], (
                f"decision {later['id']} read {'>'.join(taken['path'])} as decision {earlier['id']}, which "
                f"took it, had, and no reading fell between them: its booking was not seen; {read}")
    if all(len({standing(c) for c in d["candidates"]}) == 1 for d in decisions):
        assert len(per_path) >= 2, read
    else:
        warnings.warn(f"a decision read some candidates' load unknown: spread not asserted; {read}")
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
