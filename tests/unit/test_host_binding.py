"""Hosts that lie: forged senders, ARP poisoning, foreign source addresses and forged or
replayed LLDP probes are refused and counted, and the network the controller sees stays true."""

from __future__ import annotations

import pytest

from controller import discovery
from controller.balancer import MAX_FLOWS_PER_PORT, Balancer
from controller.discovery import End
from controller.messages import FlowDelete
from controller.packets import ARP_REPLY, arp_frame, parse
from controller.policy import make_policy
from controller.settings import Settings
from tests.fakeof import SPEC, Booted, packet_fields
from topologies.spec import load_spec
from tests.frames import ipv4_frame


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


def probe_in(booted, at_host: str, payload_frame: bytes) -> list:
    dpid, port = booted.host_port(at_host)
    return booted.deliver(booted.balancer.packet_in(dpid, port, payload_frame, booted.now))


def test_a_forged_probe_makes_no_link(booted):
    links = booted.balancer.net.links.links()
    forged = discovery.probe(5, 99, booted.now, b"guessed key 0123")        # "dpid 5, port 99"
    probe_in(booted, "h2", forged)
    assert booted.balancer.net.links.links() == links
    assert booted.balancer.counters["rejected_probes"] == 1


def test_a_replayed_probe_from_a_host_port_makes_no_link(booted):
    """Probes leave through host ports too: a host that hands one to a colluding host at
    another switch must not create a link between them."""
    meet(booted, "h2", "h5")
    links = booted.balancer.net.links.links()
    dpid, port = booted.host_port("h5")
    genuine = discovery.probe(dpid, port, booted.now, booted.balancer.probe_key)   # what h5 received
    probe_in(booted, "h2", genuine)
    assert booted.balancer.net.links.links() == links
    assert booted.balancer.counters["rejected_probes"] == 1


def test_a_probe_for_a_port_no_switch_reported_or_from_long_ago_makes_no_link():
    booted = Booted()
    links = booted.balancer.net.links.links()
    key = booted.balancer.probe_key
    probe_in(booted, "h2", discovery.probe(5, 99, booted.now, key))
    probe_in(booted, "h2", discovery.probe(5, 1, -1e6, key))
    assert booted.balancer.net.links.links() == links
    assert booted.balancer.counters["rejected_probes"] == 2
    assert all(m.latency_ms < 1000 for m in booted.balancer.link_metrics(booted.now) if m.latency_ms is not None)


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


def test_flows_remembered_per_port_are_bounded_without_flow_removed(booted):
    meet(booted, "h1", "h7")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    for sport in range(1, MAX_FLOWS_PER_PORT + 101):
        booted.balancer.packet_in(1, booted.host_port("h1")[1],
                                  ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, 17, sport, 9), booted.now)
    assert len(booted.balancer.flows) == MAX_FLOWS_PER_PORT
    assert min(k.src_port for k in booted.balancer.flows) == 101            # the oldest went
    assert booted.balancer.counters["flows_forgotten"] == 100


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
