"""Proxy ARP: the controller answers what it knows, floods only edge ports, never links."""

from controller.core.discovery import End
from controller.openflow.messages import PacketOut
from controller.openflow.packets import ARP_REPLY, BROADCAST, arp_frame, parse
from fakes.switches import Booted


def link_ends(booted):
    return {end for link in booted.balancer.net.links.links() for end in link}


def test_request_for_known_host_is_answered_out_of_the_asking_port(booted):
    booted.arp("h7", "h1")                      # the controller learns h7
    msgs = booted.arp("h1", "h7")
    assert len(msgs) == 1
    reply, (dpid, port) = msgs[0], booted.host_port("h1")
    assert (reply.dpid, reply.out_ports) == (dpid, (port,))
    arp = parse(reply.data).arp
    assert (arp.op, arp.sender_ip, arp.sender_mac, arp.target_ip) == \
        (ARP_REPLY, "10.0.0.7", "00:00:00:00:00:07", "10.0.0.1")


def test_request_for_unknown_host_floods_edge_ports_only(booted):
    msgs = booted.arp("h1", "h7")
    outs = {End(m.dpid, p) for m in msgs for p in m.out_ports}
    hosts = {End(*booted.host_port(h.name)) for h in booted.spec.hosts}
    assert outs == hosts - {End(*booted.host_port("h1"))}
    assert not outs & link_ends(booted)


def test_repeated_flood_within_holdoff_is_suppressed(booted):
    assert booted.arp("h1", "h7")
    assert booted.arp("h1", "h7") == []
    booted.now += 1.5
    assert booted.arp("h1", "h7")


def test_reply_is_delivered_to_the_asker(booted):
    booted.arp("h1", "h7")
    h1, h7 = booted.spec.host("h1"), booted.spec.host("h7")
    reply = arp_frame(ARP_REPLY, h7.mac, h7.ip, h1.mac, h1.ip, eth_dst=h1.mac)
    msgs = booted.send("h7", reply)
    assert msgs == [PacketOut(1, (booted.host_port("h1")[1],), reply)]
    assert booted.balancer.net.host_by_ip(h7.ip).at == End(*booted.host_port("h7"))


def test_gratuitous_arp_only_teaches(booted):
    h2 = booted.spec.host("h2")
    msgs = booted.send("h2", arp_frame(1, h2.mac, h2.ip, "00:00:00:00:00:00", h2.ip, BROADCAST))
    assert msgs == []
    assert booted.balancer.net.host_by_ip(h2.ip) is not None


def test_hosts_are_never_learned_on_link_ports(booted):
    h2 = booted.spec.host("h2")
    link_end = sorted(link_ends(booted), key=lambda e: (e.dpid, e.port))[0]
    frame = arp_frame(1, h2.mac, h2.ip, "00:00:00:00:00:00", "10.0.0.1", BROADCAST)
    booted.deliver(booted.balancer.packet_in(link_end.dpid, link_end.port, frame, booted.now))
    assert booted.balancer.net.host_by_ip(h2.ip) is None


def test_no_flood_before_links_can_be_known():
    """Without a complete spec, a new switch's ports are not flooded until links had time to show."""
    b = Booted()
    b.balancer.net.spec = None                       # as if no spec was given
    assert b.arp("h1", "h7") == []                   # switches connected just now
    b.now += 5
    assert b.arp("h1", "h7")


def test_a_forged_sender_does_not_take_over_a_declared_host(booted):
    booted.arp("h7", "h1")
    h7 = booted.balancer.net.host_by_ip("10.0.0.7")
    forged = arp_frame(1, "00:00:00:00:00:01", "10.0.0.7", "00:00:00:00:00:00", "10.0.0.2", eth_dst=BROADCAST)
    booted.send("h1", forged)                   # h1's port claims h7's address
    garbled = arp_frame(1, "0a:bb:cc:dd:ee:ff", "10.9.9.9", "00:00:00:00:00:00", "10.0.0.2", eth_dst=BROADCAST)
    booted.send("h1", garbled)                  # an address the spec does not list
    assert booted.balancer.net.host_by_ip("10.0.0.7") == h7
    assert booted.balancer.net.host_by_ip("10.9.9.9") is None


def test_once_links_are_known_the_spec_hosts_not_seen_are_sought_at_their_switch():
    booted = Booted(probe_round=False)          # every link known, no tick yet
    booted.arp("h1", "h7")                      # h1 (and only h1) already known
    booted.of.packet_outs.clear()
    booted.deliver(booted.balancer.tick(booted.now))
    probes = [(m, parse(m.data).arp) for m in booted.of.packet_outs if m.data[12:14] == b"\x08\x06"]
    assert sorted(a.target_ip for _, a in probes) == [f"10.0.0.{i}" for i in range(2, 8)]   # one each
    assert all(a.sender_ip == "0.0.0.0" for _, a in probes)
    spec = booted.spec
    for m, a in probes:                         # at the switch the spec attaches the host to
        assert booted.of.name(m.dpid) == spec.host_switch(spec.host_by_ip(a.target_ip).name)
    assert not {End(m.dpid, p) for m, _ in probes for p in m.out_ports} & link_ends(booted)
    booted.of.packet_outs.clear()
    booted.deliver(booted.balancer.tick(booted.now + 1))
    assert not [m for m in booted.of.packet_outs if m.data[12:14] == b"\x08\x06"]   # sought once
