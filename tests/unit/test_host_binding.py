"""Hosts that lie: forged senders, ARP poisoning, foreign source addresses and forged or
replayed LLDP probes are refused and counted, and the network the controller sees stays true."""

from __future__ import annotations

import pytest

from controller.core import discovery
from controller.core.balancer import MAX_FLOWS_PER_PORT, Balancer
from controller.core.discovery import End
from controller.core.network import MAX_HOSTS_PER_PORT
from controller.openflow.messages import FlowDelete
from controller.openflow.packets import ARP_REPLY, arp_frame, parse
from controller.policies import make_policy
from controller.core.settings import Settings
from fakes.switches import SPEC, Booted, packet_fields
from controller.core.spec import parse_spec
from controller.files import load_spec
from fakes.frames import ipv4_frame


def meet(booted, *hosts):
    for a in hosts:                  # each host announces itself: learnt at its own port
        for b in hosts:
            if a != b:
                booted.arp(a, b)


def test_a_host_sending_as_another_is_dropped_counted_and_moves_nothing(booted):
    meet(booted, "h2", "h5", "h7")
    h2, h7 = booted.spec.host("h2"), booted.spec.host("h7")
    before = booted.balancer.net.host_by_ip(h2.ip)
    forged = ipv4_frame(h2.mac, h7.mac, h2.ip, h7.ip, 17, 1234, 5678)   # h2's exact (MAC, IP)
    assert booted.send("h5", forged) == []
    assert booted.balancer.net.host_by_ip(h2.ip) == before
    assert booted.balancer.counters["spoofed_frames"] == 1
    # a new h7 -> h2 flow still reaches h2
    data = ipv4_frame(h7.mac, h2.mac, h7.ip, h2.ip, 17, 4000, 5000)
    booted.send("h7", data)
    assert booted.of.trace("s7", booted.host_port("h7")[1], packet_fields(parse(data), 0))[1] == "host:h2"


def test_a_spec_host_first_seen_at_another_switch_is_not_learnt_there():
    booted = Booted()
    h2, h1 = booted.spec.host("h2"), booted.spec.host("h1")
    booted.send("h5", arp_frame(1, h2.mac, h2.ip, "00:00:00:00:00:00", h1.ip, eth_dst="ff:ff:ff:ff:ff:ff"))
    assert booted.balancer.net.host_by_ip(h2.ip) is None
    assert booted.balancer.counters["spoofed_frames"] == 1


def test_an_arp_reply_claiming_another_hosts_address_is_not_relayed(booted):
    meet(booted, "h1", "h5")
    h1, h5 = booted.spec.host("h1"), booted.spec.host("h5")
    poison = arp_frame(ARP_REPLY, h5.mac, "10.0.0.7", h1.mac, h1.ip, eth_dst=h1.mac)   # "10.0.0.7 is-at h5"
    assert booted.send("h5", poison) == []
    assert booted.balancer.counters["spoofed_frames"] == 1
    assert booted.balancer.net.host_by_ip("10.0.0.7") is None


def test_an_arp_reply_is_answered_from_what_the_controller_knows(booted):
    meet(booted, "h1")
    booted.arp("h1", "h7")                                  # flooded: h7 unknown
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    honest = arp_frame(ARP_REPLY, h7.mac, h7.ip, h1.mac, h1.ip, eth_dst=h1.mac)
    msgs = booted.send("h7", honest + b"trailing bytes of h7's own")
    assert [(m.dpid, m.out_ports) for m in msgs] == [(1, (booted.host_port("h1")[1],))]
    assert msgs[0].data == honest                          # rebuilt, not h7's bytes relayed


def test_a_frame_with_a_foreign_source_ip_is_not_routed(booted):
    meet(booted, "h1", "h7")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    assert booted.send("h1", ipv4_frame(h1.mac, h7.mac, "192.168.66.6", h7.ip, 17, 1, 2)) == []
    assert booted.balancer.flows == {}
    assert booted.balancer.counters["spoofed_frames"] == 1


def probe_in(booted, at: tuple[int, int], frame: bytes) -> None:
    booted.deliver(booted.balancer.packet_in(*at, frame, booted.now))


def link_port(booted, a: str, b: str) -> tuple[int, int]:
    """(dpid, port) of switch a's port towards switch b."""
    return booted.of.dpid[a], next(p for (n, p), (peer, _) in booted.of.wire.items() if n == a and peer == b)


def refused(booted, at: tuple[int, int], frame: bytes, reason: str) -> None:
    b = booted.balancer
    links, before = b.net.links.links(), b.counters["rejected_probes"]
    probe_in(booted, at, frame)
    assert b.net.links.links() == links and b.counters["rejected_probes"] == before + 1
    assert reason in booted.last_warning


@pytest.fixture
def watched(booted, caplog):
    """booted, with the last warning the balancer logged as .last_warning."""
    type(booted).last_warning = property(lambda self: caplog.records[-1].getMessage() if caplog.records else "")
    return booted


def test_a_probe_not_signed_by_this_controller_makes_no_link(watched):
    refused(watched, watched.host_port("h2"), discovery.probe(5, 99, watched.now, b"guessed key 0123"),
            "not signed by this controller")


def test_a_probe_from_a_port_no_switch_reported_makes_no_link(watched):
    key = watched.balancer.probe_key
    refused(watched, link_port(watched, "s2", "s1"), discovery.probe(1, 99, watched.now, key),
            "from a port no switch reported")


def test_a_probe_replayed_between_two_host_ports_of_linked_switches_makes_no_link(watched):
    """Probes leave through host ports too: h1 hands the one it got to h2, one switch over.
    With the s1-s2 link down, only the host ports tell it apart from a real link."""
    meet(watched, "h1", "h2")
    for a, b in (("s1", "s2"), ("s2", "s1")):
        watched.deliver(watched.balancer.port_changed(*link_port(watched, a, b), up=False, now=watched.now))
    h1 = watched.host_port("h1")
    refused(watched, watched.host_port("h2"), discovery.probe(*h1, watched.now, watched.balancer.probe_key),
            "through a host's port")


def test_a_probe_replayed_by_silent_hosts_makes_no_second_link_where_the_spec_lists_one(watched):
    """A host never heard from (or one that flapped its port) is not known as a host: the
    spec's one s1-s2 link, already known, is what stops it."""
    b = watched.balancer
    b.port_changed(1, 9, up=True, now=watched.now)              # a spare port on s1, a silent host on it
    b.net.ports[1].add(9)
    h2 = watched.host_port("h2")
    refused(watched, (1, 9), discovery.probe(*h2, watched.now, b.probe_key), "a second link where the spec lists one")


def test_a_probe_looping_back_to_its_own_switch_makes_no_link(watched):
    h2 = watched.host_port("h2")
    refused(watched, h2, discovery.probe(*h2, watched.now, watched.balancer.probe_key), "from the switch it arrived at")


def test_a_genuine_probe_delivered_long_after_is_neither_a_link_nor_a_latency(watched):
    b = watched.balancer
    s1, s2 = link_port(watched, "s1", "s2"), link_port(watched, "s2", "s1")
    old = discovery.probe(*s1, watched.now - 1e6, b.probe_key)
    refused(watched, s2, old, "s ago")
    assert all((m.latency_ms or 0) < 1000 for m in b.link_metrics(watched.now))


def test_a_probe_with_a_signed_looking_negative_switch_id_is_refused_without_an_error(booted):
    frame = bytearray(discovery.probe(5, 1, booted.now, b"k" * 16))
    at = frame.index(b"dpid:") + 5
    frame[at:at + 16] = b"-000000000000005"
    assert booted.balancer.packet_in(*booted.host_port("h2"), bytes(frame), booted.now) == []


def test_a_spec_host_bound_at_one_port_cannot_be_taken_over_from_a_spare_port_of_its_switch(booted):
    meet(booted, "h2", "h1")
    b = booted.balancer
    b.net.ports[2].add(9)                                       # a spare edge port on h2's switch
    h2, h1 = booted.spec.host("h2"), booted.spec.host("h1")
    assert b.packet_in(2, 9, ipv4_frame(h2.mac, h1.mac, h2.ip, h1.ip, 17, 1, 2), booted.now) == []
    assert b.net.host_by_ip(h2.ip).at == End(*booted.host_port("h2"))
    assert b.counters["spoofed_frames"] == 1


def test_a_spec_host_unplugged_may_come_back_at_another_port_of_its_switch(booted):
    meet(booted, "h2", "h1")
    b = booted.balancer
    b.net.ports[2].add(9)
    b.port_changed(*booted.host_port("h2"), up=False, now=booted.now)   # the cable moved
    h2, h1 = booted.spec.host("h2"), booted.spec.host("h1")
    b.packet_in(2, 9, ipv4_frame(h2.mac, h1.mac, h2.ip, h1.ip, 17, 1, 2), booted.now)
    assert b.net.host_by_ip(h2.ip).at == End(2, 9) and b.counters["spoofed_frames"] == 0


def test_a_host_moved_while_its_switch_was_away_is_learnt_at_its_new_port(booted):
    meet(booted, "h2", "h1")
    b = booted.balancer
    port = booted.host_port("h2")[1]
    b.switch_down(2)
    b.switch_up(2, (booted.of.ports("s2") - {port}) | {9}, booted.now)    # h2 now on port 9
    assert b.net.host_by_ip(booted.spec.host("h2").ip) is None


def test_an_address_probe_must_come_from_its_sender(booted):
    h5 = booted.spec.host("h5")
    probe = arp_frame(1, "00:00:00:00:00:02", "0.0.0.0", "00:00:00:00:00:00", "10.0.0.9", eth_dst="ff:ff:ff:ff:ff:ff")
    assert booted.send("h5", probe[:6] + bytes.fromhex(h5.mac.replace(":", "")) + probe[12:]) == []
    assert booted.balancer.counters["spoofed_frames"] == 1


def test_without_a_spec_a_host_that_moves_takes_its_flows_with_it():
    booted = Booted()
    booted.balancer.net.spec = None
    booted.now += 5
    meet(booted, "h1", "h7")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    booted.send("h1", ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, 17, 1000, 2000))
    cookie = next(iter(booted.balancer.flows.values())).cookie
    msgs = booted.send("h6", arp_frame(1, h7.mac, h7.ip, "00:00:00:00:00:00", h7.ip, eth_dst="ff:ff:ff:ff:ff:ff"))
    assert booted.balancer.net.host_by_ip(h7.ip).at == End(*booted.host_port("h6"))
    assert booted.balancer.flows == {}
    assert {m.cookie for m in msgs if isinstance(m, FlowDelete)} == {cookie}


def test_flows_per_port_are_bounded_without_flow_removed_and_the_oldest_leave_with_their_entries(booted):
    meet(booted, "h1", "h7")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    deleted = set()
    for sport in range(1, MAX_FLOWS_PER_PORT + 101):
        msgs = booted.balancer.packet_in(1, booted.host_port("h1")[1],
                                         ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, 17, sport, 9), booted.now)
        deleted |= {m.cookie for m in msgs if isinstance(m, FlowDelete)}
    flows = booted.balancer.flows
    assert len(flows) == MAX_FLOWS_PER_PORT
    assert min(k.src_port for k in flows) == 101                                   # the oldest went
    assert len(deleted) == 100 and not deleted & {f.cookie for f in flows.values()}
    assert booted.balancer.counters["flows_evicted"] == 100


@pytest.mark.parametrize("with_spec", [True, False])
def test_traffic_in_transit_on_a_new_switch_is_neither_learnt_nor_called_spoofed(with_spec):
    """Just after a controller restart, before a switch's links are known, frames of flows the
    earlier instance installed reach it at ports that will prove to be links."""
    spec = load_spec(SPEC)
    b = Balancer(Settings(), make_policy("shortest", Settings()), spec if with_spec else None)
    b.switch_up(2, {1, 2, 3}, 100.0)                    # s2: port 1 is h2's, 2 and 3 are links
    h1, h7 = spec.host("h1"), spec.host("h7")
    assert b.packet_in(2, 2, ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, 17, 1, 2), 100.5) == []
    assert b.net.hosts == {} and b.counters["spoofed_frames"] == 0


def test_one_spec_host_per_port():
    spec = parse_spec({"name": "two-on-s1", "switches": [{"name": "s1"}, {"name": "s2"}],
                       "hosts": [{"name": "ha", "ip": "10.0.0.1", "mac": "00:00:00:00:00:0a"},
                                 {"name": "hb", "ip": "10.0.0.2", "mac": "00:00:00:00:00:0b"},
                                 {"name": "hc", "ip": "10.0.0.3", "mac": "00:00:00:00:00:0c"}],
                       "links": [{"nodes": ["ha", "s1"], "capacity_mbps": 10}, {"nodes": ["hb", "s1"], "capacity_mbps": 10},
                                 {"nodes": ["hc", "s2"], "capacity_mbps": 10}, {"nodes": ["s1", "s2"], "capacity_mbps": 10}]})
    booted = Booted(spec)
    meet(booted, "ha", "hc")
    hb, hc = spec.host("hb"), spec.host("hc")
    b = booted.balancer
    b.packet_in(*booted.host_port("ha"), ipv4_frame(hb.mac, hc.mac, hb.ip, hc.ip, 17, 1, 2), booted.now)
    assert b.net.host_by_ip(hb.ip) is None and b.counters["spoofed_frames"] == 1     # ha's port is taken


def test_without_a_spec_a_port_holds_a_bounded_number_of_hosts():
    booted = Booted()
    b = booted.balancer
    b.net.spec = None
    booted.now += 5
    dpid, port = booted.host_port("h1")
    for i in range(MAX_HOSTS_PER_PORT + 10):
        mac = f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}"
        b.packet_in(dpid, port, arp_frame(1, mac, f"10.1.{i >> 8}.{i & 0xFF}", "00:00:00:00:00:00",
                                          f"10.1.{i >> 8}.{i & 0xFF}", eth_dst="ff:ff:ff:ff:ff:ff"), booted.now)
    assert len(b.net.hosts) == MAX_HOSTS_PER_PORT and b.counters["spoofed_frames"] == 10
