"""Decisions on the present picture: flows that start within one poll spread by headroom
(bookings), unmeasured paths are not preferred, a packet of an installed flow re-installs only
what its switch lacks, reloads do not lose packet-ins, fragments leave no bookkeeping, and
--symmetric routes a reply on its request's path."""

import json
import struct
import sys

import pytest

from controller.core.discovery import End
from controller.core.flows import FlowKey
from controller.openflow.messages import FlowMod, PacketOut
from controller.core.monitor import FlowStat, PortStat
from controller.openflow.packets import ETH_IPV4, ethernet, ip_bytes
from controller.core.settings import Settings
from fakes.switches import SPEC, Booted
from controller.core.spec import parse_spec
from fakes.frames import ipv4_frame

CAPACITY = {"s1>s2>s7": 10, "s1>s3>s4>s7": 20, "s1>s5>s6>s8>s7": 30}


def measure(booted, mbps: dict[tuple[str, str], float], switches: tuple[str, ...] | None = None) -> None:
    """Two polls, one second apart, of every port's counters (of the switches named, or all):
    the named directed links carry mbps (1000-byte packets, none lost), the rest nothing."""
    b = booted.balancer
    for t in (0, 1):
        for s in booted.spec.switches:
            if switches is not None and s.name not in switches:
                continue
            stats = []
            for port in booted.of.ports(s.name):
                peer = booted.of.wire[(s.name, port)][0]
                tx, rx = (int(mbps.get(pair, 0) * 1e6 / 8 * t) for pair in ((s.name, peer), (peer, s.name)))
                stats.append(PortStat(port, rx // 1000, tx // 1000, rx, tx))
            b.port_stats(s.dpid, stats, booted.now + t)
    booted.now += 1


def udp(booted, sport, src="h1", dst="h7", dport=5001) -> bytes:
    a, b = booted.spec.host(src), booted.spec.host(dst)
    return ipv4_frame(a.mac, b.mac, a.ip, b.ip, 17, sport, dport)


def start(booted, n, src="h1", dst="h7") -> dict[str, int]:
    """n new flows from src to dst at the same instant: how many each path got."""
    booted.arp(src, dst)
    booted.arp(dst, src)
    for i in range(n):
        booted.send(src, udp(booted, 40000 + i, src, dst))
    counts = dict.fromkeys(CAPACITY, 0)
    for f in booted.balancer.flows.values():
        counts[booted.balancer.net.path_name(f.path)] += 1
    return counts


@pytest.mark.parametrize("policy", ["least-loaded", "bpann"])
@pytest.mark.parametrize("busy", [{}, {("s1", "s3"): 10.0, ("s3", "s4"): 10.0, ("s4", "s7"): 10.0}])
def test_flows_starting_within_one_poll_spread_in_proportion_to_headroom(policy, busy):
    """20 flows that together fill the free capacity: each path gets its share of the headroom
    (within one flow), where without bookings all 20 took one path."""
    booted = Booted(policy=policy, settings=Settings(new_flow_mbps=(60 - sum(busy.values()) / 3) / 20))
    if busy:
        measure(booted, busy)
    headroom = {name: cap - (10.0 if busy and name == "s1>s3>s4>s7" else 0) for name, cap in CAPACITY.items()}
    counts = start(booted, 20)
    assert sum(counts.values()) == 20
    for name, count in counts.items():
        assert count == pytest.approx(20 * headroom[name] / sum(headroom.values()), abs=1.01), counts


def test_a_measured_flow_ends_its_booking_and_teaches_its_kind_the_rate(booted):
    b = booted.balancer
    start(booted, 1)
    flow, = b.flows.values()
    assert b.bookings.of(flow.cookie) == Settings.new_flow_mbps * 1e6
    for t, packets in ((0, 0), (1, 500)):      # 500 packets of 1000 bytes in one second: 4 Mbit/s
        b.flow_stats(1, [FlowStat(flow.cookie, 2, packets, packets * 1000)], booted.now + t)
    assert b.bookings.of(flow.cookie) == 0 and len(b.bookings) == 0
    assert b.bookings.expected_bps(flow.key.kind) == pytest.approx(4e6)
    booted.send("h1", udp(booted, 41000))       # the next flow of that service books 4 Mbit/s
    assert b.bookings.of(b.flows[FlowKey("10.0.0.1", "10.0.0.7", 17, 41000, 5001)].cookie) == pytest.approx(4e6)


def test_only_a_flows_first_rate_teaches_its_kind(booted):
    """An idle entry reports 0 until it expires: those polls must not drag the mean down."""
    b = booted.balancer
    start(booted, 1)
    flow, = b.flows.values()
    for t, packets in ((0, 0), (1, 500)) + tuple((t, 500) for t in range(2, 12)):
        b.flow_stats(1, [FlowStat(flow.cookie, 2, packets, packets * 1000)], booted.now + t)
    assert b.bookings.expected_bps(flow.key.kind) == pytest.approx(4e6)


def test_a_host_books_no_more_than_its_link_can_send(booted):
    """A host starting flows to a thousand services (a port scan) books at most its access
    link's 100 Mbit/s in all, not 1000 x 1 Mbit/s."""
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    dpid, port = booted.host_port("h1")
    for service in range(1000):      # straight to the controller: the fake tables are slow at this size
        booted.balancer.packet_in(dpid, port, udp(booted, 40000, dport=10000 + service), booted.now)
    assert len(booted.balancer.flows) == 1000
    assert sum(booted.balancer.bookings.of(f.cookie) for f in booted.balancer.flows.values()) <= 100e6 + 1


def test_bookings_expire_when_statistics_never_measure_the_flow(booted):
    start(booted, 3)
    assert len(booted.balancer.bookings) == 3
    booted.balancer.poll(booted.now + booted.balancer.stats_max_age_s + 0.1)
    assert len(booted.balancer.bookings) == 0


@pytest.mark.parametrize("busy_mbps, chosen", [(9.0, "s1>s2>s7"), (10.0, "s1>s3>s4>s7")])
def test_least_loaded_prefers_measured_headroom_then_unknown_then_full(busy_mbps, chosen):
    booted = Booted(policy="least-loaded")
    measure(booted, {("s1", "s2"): busy_mbps})          # the shortest path is busy, the others idle
    booted.now += booted.balancer.stats_max_age_s + 1
    measure(booted, {("s1", "s2"): busy_mbps}, switches=("s1", "s2", "s7"))   # the others stop answering
    counts = start(booted, 1)
    assert counts[chosen] == 1, counts


def test_flows_spread_where_every_link_has_one_capacity():
    """Every link 30 Mbit/s, host links too: the source host's link carries every candidate's
    traffic, and counted as the bottleneck it made them all read the same."""
    raw = json.loads(SPEC.read_text())
    for link in raw["links"]:
        link["capacity_mbps"] = 30
    booted = Booted(parse_spec(raw), policy="least-loaded", settings=Settings(new_flow_mbps=1.5))
    counts = start(booted, 20)
    assert sorted(counts.values()) in ([6, 7, 7], [6, 6, 8]), counts


def test_a_packet_in_at_a_mid_path_switch_gets_exactly_that_switchs_entry(booted):
    start(booted, 1)
    data = udp(booted, 40000)
    s2_from_s1 = next(p for (n, p), (peer, _) in booted.of.wire.items() if n == "s2" and peer == "s1")
    msgs = booted.balancer.packet_in(2, s2_from_s1, data, booted.now)
    mods = [m for m in msgs if isinstance(m, FlowMod)]
    assert [m.dpid for m in mods] == [2] and mods[0].match.in_port == s2_from_s1
    assert [(type(m), m.dpid) for m in msgs if not isinstance(m, FlowMod)] == [(PacketOut, 7)]
    assert booted.balancer.counters["flows_installed"] == 1


def test_a_model_reload_at_any_line_of_scoring_loses_no_packet_in():
    """SIGHUP runs its handler between any two lines: reload there, line by line, and every
    packet-in still installs its flow (the memo was cleared under the scoring: KeyError)."""
    booted = Booted(policy="bpann")
    start(booted, 0)
    policy = booted.balancer.policy
    code = type(policy).scores.__code__

    def run(sport: int, on_line) -> list:
        def local(frame, event, arg):
            if event == "line":
                on_line(frame.f_lineno)
            return local
        sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
        try:
            return booted.send("h1", udp(booted, sport))   # a new flow: bookings changed its features
        finally:
            sys.settrace(None)
    lines: list[int] = []
    run(40999, lines.append)                 # the lines a scoring runs through
    for i, line in enumerate(sorted(set(lines))):
        fired = []

        def reload_at(lineno, line=line, fired=fired):
            if lineno == line and not fired:
                fired.append(line)
                policy.reload()
        msgs = run(41000 + i, reload_at)
        assert fired and any(isinstance(m, FlowMod) for m in msgs), f"reload at line {line}"


def test_a_later_fragment_is_delivered_and_leaves_no_flow_or_booking(booted):
    start(booted, 0)
    a, b = booted.spec.host("h1"), booted.spec.host("h7")
    payload = bytes(16)     # no UDP header: fragment offset 8 bytes
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 1, 1, 64, 17, 0)
    msgs = booted.send("h1", ethernet(b.mac, a.mac, ETH_IPV4, header + ip_bytes(a.ip) + ip_bytes(b.ip) + payload))
    assert [(type(m), m.dpid) for m in msgs] == [(PacketOut, 7)]
    assert booted.balancer.flows == {} and len(booted.balancer.bookings) == 0


def test_symmetric_decides_a_reply_whose_reverse_path_lacks_a_link_in_its_direction():
    """Links are known per direction: with s3>s1 gone (s1>s3 still up) the reply of a flow on
    s1>s3>s4>s7 cannot take its reverse, and is decided like any flow."""
    booted = Booted(policy="round-robin", settings=Settings(symmetric=True))
    start(booted, 2)
    s3_to_s1 = next(p for (n, p), (peer, _) in booted.of.wire.items() if n == "s3" and peer == "s1")
    net = booted.balancer.net
    net.links._drop([End(3, s3_to_s1)])      # as if its probes stopped arriving
    net._changed()
    msgs = booted.send("h7", udp(booted, 5001, "h7", "h1", dport=40001))
    reply = booted.balancer.flows[FlowKey("10.0.0.7", "10.0.0.1", 17, 5001, 40001)]
    assert booted.balancer.net.path_name(reply.path) != "s7>s4>s3>s1"
    assert any(isinstance(m, FlowMod) for m in msgs)


@pytest.mark.parametrize("symmetric", [False, True])
def test_symmetric_routes_the_reply_on_the_reverse_of_its_request(symmetric):
    booted = Booted(policy="round-robin", settings=Settings(symmetric=symmetric))
    start(booted, 2)                                    # round robin: the second flow takes s1>s3>s4>s7
    booted.send("h7", udp(booted, 5001, "h7", "h1", dport=40001))     # its reply
    reply = booted.balancer.flows[FlowKey("10.0.0.7", "10.0.0.1", 17, 5001, 40001)]
    name = booted.balancer.net.path_name(reply.path)
    assert name == ("s7>s4>s3>s1" if symmetric else "s7>s2>s1")
