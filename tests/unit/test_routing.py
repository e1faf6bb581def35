"""Flow planning, checked end to end on fake OpenFlow tables: after the controller handles a
flow's first packet, the switches alone carry the flow's packets from h1 to h7's port."""

from controller.core.balancer import Balancer
from controller.core.flows import FlowKey
from controller.openflow.messages import (COOKIE_BASE, GENERATION_SHIFT, INSTANCE_MASK, FlowDelete, FlowMod,
                                          PacketOut, flow_id_of, generation_of)
from controller.core.monitor import FlowStat
from controller.openflow.packets import ARP_REQUEST, BROADCAST, ETH_IPV6, ETH_LLDP, arp_frame, ethernet, parse
from controller.policies import make_policy
from controller.core.settings import Settings
from fakes.switches import Booted, packet_fields
from fakes.frames import ipv4_frame


def first_packet(booted, src="h1", dst="h7", proto=6, sport=40000, dport=5201):
    booted.arp(src, dst)      # the controller learns each host from its own ARP request
    booted.arp(dst, src)
    a, b = booted.spec.host(src), booted.spec.host(dst)
    data = ipv4_frame(a.mac, b.mac, a.ip, b.ip, proto, sport, dport)
    return data, booted.send(src, data)


def test_discovery_finds_every_spec_link(booted):
    assert booted.balancer.net.missing_spec_links() == []
    assert len(booted.balancer.net.links) == 2 * len(booted.spec.switch_links())


def test_switches_connecting_one_by_one_are_linked_both_ways_without_waiting_for_a_probe_round():
    booted = Booted(probe_round=False)
    assert booted.balancer.net.missing_spec_links() == []
    assert len(booted.balancer.net.links) == 2 * len(booted.spec.switch_links())


def base_behaviour(booted, switch: str) -> dict[str, str]:
    """Where each kind of frame ends when it enters a switch at each of its ports, taught no flow."""
    a, b = booted.spec.host("h1"), booted.spec.host("h7")
    frames = {"lldp": ethernet("01:80:c2:00:00:0e", a.mac, ETH_LLDP, bytes(46)),
              "arp": arp_frame(ARP_REQUEST, a.mac, a.ip, "00:00:00:00:00:00", b.ip, eth_dst=BROADCAST),
              "ipv6": ethernet(b.mac, a.mac, ETH_IPV6, bytes(40)),
              "new ipv4 flow": ipv4_frame(a.mac, b.mac, a.ip, b.ip, 17, 1234, 5678)}
    ends = {kind: {booted.of.trace(switch, port, packet_fields(parse(data), port))[1]
                   for port in booted.of.ports(switch)} for kind, data in frames.items()}
    return {kind: end for kind, (end,) in ends.items()}


BASE = {"lldp": "controller", "arp": "controller", "ipv6": "drop", "new ipv4 flow": "controller"}


def test_every_switch_sends_lldp_arp_and_new_flows_up_and_drops_ipv6(booted):
    for s in booted.spec.switches:
        assert base_behaviour(booted, s.name) == BASE, s.name


def test_ipv6_from_a_host_is_dropped_at_its_switch_and_never_reaches_the_controller(booted):
    first_packet(booted)        # hosts known and a flow installed: IPv6 between them still goes nowhere
    a, b = booted.spec.host("h1"), booted.spec.host("h7")
    ipv6 = parse(ethernet(b.mac, a.mac, ETH_IPV6, bytes(40)))
    assert booted.of.trace("s1", booted.host_port("h1")[1], packet_fields(ipv6, 0)) == (["s1"], "drop")


def test_a_link_unconfirmed_for_10_probe_intervals_is_gone_and_confirmed_links_stay():
    """docs/forwarding.md: a link unconfirmed for 10 probe intervals is gone (here 10 x 0.5 s)."""
    booted = Booted(settings=Settings(probe_interval_s=0.5))
    net = booted.balancer.net
    confirmed_at, every = booted.now, len(net.links)

    def named_links():
        return {(net.name(a.dpid), net.name(b.dpid)) for a, b in net.links.links()}
    assert {("s2", "s7"), ("s7", "s2")} <= named_links()
    for i in range(1, 16):       # a probe round every interval; none gets across s2-s7
        booted.probe_round(confirmed_at + 0.5 * i, cut=("s2", "s7"))
        if i < 10:
            assert {("s2", "s7"), ("s7", "s2")} <= named_links() and len(net.links) == every, i
        elif i > 10:
            assert named_links().isdisjoint({("s2", "s7"), ("s7", "s2")}) and len(net.links) == every - 2, i


def test_candidates_are_the_three_h1h7_paths_by_hops(booted):
    net = booted.balancer.net
    names = [net.path_name(p) for p in booted.balancer.paths.candidates(net, 1, 7)]
    assert names == ["s1>s2>s7", "s1>s3>s4>s7", "s1>s5>s6>s8>s7"]


def test_planned_flow_mods_carry_h1_packets_to_h7_along_the_shortest_path(booted):
    data, msgs = first_packet(booted)
    switches, end = booted.of.trace("s1", booted.host_port("h1")[1], packet_fields(parse(data), 0))
    assert end == "host:h7"
    assert switches == ["s1", "s2", "s7"]
    # entries exist on exactly the path's switches
    key = FlowKey("10.0.0.1", "10.0.0.7", 6, 40000, 5201)
    with_entry = {booted.of.name(m.dpid) for m in msgs if isinstance(m, FlowMod)
                  and m.match.ipv4_src == key.src_ip and m.match.tcp_src == key.src_port}
    assert with_entry == {"s1", "s2", "s7"}


def test_first_packet_is_released_at_the_egress_port_after_the_entries(booted):
    data, msgs = first_packet(booted)
    assert isinstance(msgs[-1], PacketOut)
    assert (msgs[-1].dpid, msgs[-1].out_ports, msgs[-1].data) == (7, (booted.host_port("h7")[1],), data)
    mods = [m for m in msgs if isinstance(m, FlowMod)]
    assert [booted.of.name(m.dpid) for m in mods] == ["s7", "s2", "s1"]   # egress first
    assert [m.flags for m in mods] == [0, 0, 1]   # only the ingress entry reports its removal


def test_other_tcp_flows_between_the_same_hosts_still_reach_the_controller(booted):
    first_packet(booted, proto=1)          # a ping installs a host-pair entry for ICMP only
    a, b = booted.spec.host("h1"), booted.spec.host("h7")
    tcp = parse(ipv4_frame(a.mac, b.mac, a.ip, b.ip, 6, 1234, 80))
    _, end = booted.of.trace("s1", booted.host_port("h1")[1], packet_fields(tcp, 0))
    assert end == "controller"


def test_flow_is_rerouted_when_its_link_goes_down(booted):
    data, _ = first_packet(booted)
    port_s2_to_s7 = next(p for (n, p), (peer, _) in booted.of.wire.items() if n == "s2" and peer == "s7")
    msgs = booted.deliver(booted.balancer.port_changed(2, port_s2_to_s7, up=False, now=booted.now))
    assert {booted.of.name(m.dpid) for m in msgs} == {"s1", "s2", "s7"}   # stale entries deleted
    fields = packet_fields(parse(data), 0)
    assert booted.of.trace("s1", booted.host_port("h1")[1], fields)[1] == "controller"
    booted.now += 3    # the switches' links are known by now, though the spec's are not all up
    booted.send("h1", data)
    switches, end = booted.of.trace("s1", booted.host_port("h1")[1], fields)
    assert (switches, end) == (["s1", "s3", "s4", "s7"], "host:h7")


def test_installed_flows_keep_their_paths_when_the_policy_changes_and_new_flows_follow_the_new_one():
    booted = Booted(policy="round-robin")
    first_packet(booted, proto=17, sport=1)                    # round robin: s1>s2>s7
    moved, _ = first_packet(booted, proto=17, sport=2)         # then s1>s3>s4>s7
    h1_port, fields = booted.host_port("h1")[1], packet_fields(parse(moved), 0)
    assert booted.of.trace("s1", h1_port, fields) == (["s1", "s3", "s4", "s7"], "host:h7")
    booted.balancer.set_policy(make_policy("shortest"))
    # its entry at s3 expires mid-path: its next packet comes up from s3, and is routed again
    s3 = booted.of.dpid["s3"]
    booted.of.tables[s3][:] = [e for e in booted.of.tables[s3] if e.match.udp_src != 2]
    assert booted.of.trace("s1", h1_port, fields) == (["s1", "s3"], "controller")
    s3_in_port = booted.of.peer(1, booted.of.lookup(1, {**fields, "in_port": h1_port}).out_ports[0])[1]
    booted.deliver(booted.balancer.packet_in(s3, s3_in_port, moved, booted.now))
    assert booted.of.trace("s1", h1_port, fields) == (["s1", "s3", "s4", "s7"], "host:h7")   # not s1>s2>s7
    new, _ = first_packet(booted, proto=17, sport=3)
    assert booted.of.trace("s1", h1_port, packet_fields(parse(new), 0)) == (["s1", "s2", "s7"], "host:h7")
    assert sorted(booted.balancer.net.path_name(f.path) for f in booted.balancer.flows.values()) == \
        ["s1>s2>s7", "s1>s2>s7", "s1>s3>s4>s7"]


def test_flow_removed_at_ingress_forgets_the_flow(booted):
    _, msgs = first_packet(booted)
    ingress = next(m for m in msgs if isinstance(m, FlowMod) and m.flags)
    booted.balancer.flow_removed(ingress.dpid, ingress.cookie)
    assert booted.balancer.flows == {}


def test_packet_to_unknown_host_installs_nothing_and_asks_for_the_host_on_edge_ports(booted):
    a = booted.spec.host("h1")
    booted.arp("h1", "h2")
    booted.of.packet_outs.clear()
    msgs = booted.send("h1", ipv4_frame(a.mac, "00:00:00:00:99:99", a.ip, "10.0.0.99"))
    assert not any(isinstance(m, FlowMod) for m in msgs)
    asked = [parse(m.data).arp for m in booted.of.packet_outs]
    assert asked and all((q.sender_ip, q.target_ip) == ("10.0.0.1", "10.0.0.99") for q in asked)
    edge = {booted.host_port(h.name) for h in booted.spec.hosts} - {booted.host_port("h1")}
    assert {(m.dpid, p) for m in booted.of.packet_outs for p in m.out_ports} == edge
    booted.of.packet_outs.clear()
    booted.send("h1", ipv4_frame(a.mac, "00:00:00:00:99:99", a.ip, "10.0.0.99"))
    assert booted.of.packet_outs == []      # asked at most once a second


def our_stats(booted, switch):
    """Flow statistics of a switch's entries, as its reply to our poll would list them."""
    return [FlowStat(e.cookie, e.out_ports[0], 10, 1.0) for e in booted.of.tables[booted.of.dpid[switch]]
            if e.out_ports]


def test_a_restarted_controller_leaves_old_entries_forwarding_until_its_links_are_known(booted):
    data, _ = first_packet(booted)
    fields, h1_port = packet_fields(parse(data), 0), booted.host_port("h1")[1]
    old = booted.balancer
    booted.balancer = new = Balancer(Settings(), make_policy("shortest"), booted.spec,
                                     generation=old.generation + 1)
    booted.deliver(new.switch_up(1, booted.of.ports("s1"), booted.now))
    assert booted.of.trace("s1", h1_port, fields)[1] == "host:h7"     # old entries still forward
    assert new.flow_stats(1, our_stats(booted, "s1"), booted.now) == []   # s1's links not known yet
    for s in booted.spec.switches[1:]:
        booted.deliver(new.switch_up(s.dpid, booted.of.ports(s.name), booted.now))
    booted.deliver(new.tick(booted.now))        # probes again, now that every switch is up
    assert new.net.missing_spec_links() == []
    for s in ("s1", "s2", "s7"):
        booted.deliver(new.flow_stats(booted.of.dpid[s], our_stats(booted, s), booted.now))
    assert booted.of.trace("s1", h1_port, fields)[1] == "controller"   # the old instance's entries are gone
    assert all(generation_of(e.cookie) == new.generation for t in booted.of.tables.values() for e in t)
    booted.send("h1", data)                                           # h7 unknown to us: asked for by ARP
    booted.arp("h7", "h1")
    booted.send("h1", data)
    assert booted.of.trace("s1", h1_port, fields) == (["s1", "s2", "s7"], "host:h7")



def test_an_earlier_instances_entry_to_no_port_alone_on_a_switch_is_removed_too(booted):
    """A SYN watch outputs to the controller only and has no timeout: it may be all an
    earlier instance left on a switch, and the statistics do not measure it."""
    old = booted.balancer
    booted.balancer = new = Balancer(Settings(), make_policy("shortest"), booted.spec,
                                     generation=old.generation + 1)
    for s in booted.spec.switches:
        booted.deliver(new.switch_up(s.dpid, booted.of.ports(s.name), booted.now))
    booted.deliver(new.tick(booted.now))
    assert new.flow_stats(1, [], booted.now, [new.instance]) == []
    assert new.flow_stats(1, [], booted.now, [new.instance, old.instance | 5]) == [
        FlowDelete(1, COOKIE_BASE | old.generation << GENERATION_SHIFT, INSTANCE_MASK)]

def test_a_reconnecting_switch_loses_the_entries_of_flows_we_forgot(booted):
    data, _ = first_packet(booted)
    b = booted.balancer
    booted.deliver(b.switch_down(2))
    assert b.flows == {}                                              # its flow crossed s2
    assert [e for e in booted.of.tables[2] if flow_id_of(e.cookie)]  # which s2 still holds
    booted.deliver(b.switch_up(2, booted.of.ports("s2"), booted.now))
    assert [e for e in booted.of.tables[2] if flow_id_of(e.cookie)] == []   # only base entries left
    assert base_behaviour(booted, "s2") == BASE
    booted.send("h1", data)
    assert booted.of.trace("s1", booted.host_port("h1")[1], packet_fields(parse(data), 0))[1] == "host:h7"
