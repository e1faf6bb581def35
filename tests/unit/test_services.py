"""Services behind a virtual IP (controller/core/services.py, policies/members.py): the spec's
validation, the translation entries both ways, health with explicit times, each member policy
on synthetic loads, the Q update by hand, and hostile frames claiming the VIP or flooding it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.core.balancer import MAX_FLOWS_PER_PORT
from controller.core.flows import FlowKey
from controller.core.monitor import FlowStat, PathFeatures
from controller.core.services import DOWN_AFTER_S, HEALTH_INTERVAL_S, RESETS_PER_S, VIP_MAC, MemberLoad, MemberPolicy
from controller.core.settings import SERVICE_POLICIES, ConfigError, Settings
from controller.core.spec import TopologyError, parse_spec
from controller.openflow import wire
from controller.openflow.messages import CONTROLLER, FlowDelete, FlowMod, PacketOut
from controller.openflow.packets import (ARP_REPLY, ARP_REQUEST, BROADCAST, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Tcp,
                                         arp_frame, parse, tcp_frame, tcp_of)
from controller.policies import members as policies
from controller.service.metrics import Metrics
from controller.service.rest import RestApi
from controller.policies.members import (SERVICE_POLICY_TYPES, LeastConnections, MemberQTable,
                                         QLearningMembers, RandomMember, RoundRobin, SHARED_COST, Weighted,
                                         member_state)
from controller.policies.qlearning import QTable, QTableError, level, load
from fakes.frames import ipv4_frame
from tests.unit.test_decisions import measure
from tests.unit.test_rest import call, exchange
from fakes.switches import Booted, packet_fields

SPEC = Path(__file__).resolve().parents[2] / "topologies" / "services.json"
VIP, PORT = "10.0.0.100", 8000
KEY = FlowKey("10.0.0.1", VIP, 6, 40000, PORT)


# -- the spec --------------------------------------------------------------------------------
def spec_with(services) -> dict:
    raw = json.loads(SPEC.read_text())
    raw["services"] = services
    return raw


def web(**changes) -> dict:
    return {"name": "web", "vip": VIP, "port": PORT, "members": [{"host": "m1"}, {"host": "m2", "weight": 2}],
            **changes}


def test_the_shipped_service_spec_parses_with_default_weights():
    (service,) = parse_spec(json.loads(SPEC.read_text())).services
    assert (service.vip, service.port) == (VIP, PORT)
    assert [(m.host, m.weight) for m in service.members] == [("m1", 1.0), ("m2", 2.0), ("m3", 1.0)]


@pytest.mark.parametrize("services, field", [
    ([web(vip="10.0.0.11")], "services[0].vip: 10.0.0.11 is the address of host 'm1'"),
    ([web(vip="10.0.0.300")], "services[0].vip: not an IPv4 address"),
    ([web(vip="11.0.0.1")], "services[0].vip: 11.0.0.1 is not in the hosts' /8"),
    ([web(members=[{"host": "m9"}])], "services[0].members[0].host: unknown host 'm9'"),
    ([web(members=[{"host": "s1"}])], "services[0].members[0].host: unknown host 's1'"),
    ([web(members=[])], "services[0].members: the pool is empty"),
    ([web(members=[{"host": "m1"}, {"host": "m1"}])], "services[0].members[1].host: duplicate member 'm1'"),
    ([web(), web(vip="10.0.0.101")], "services[1].name: duplicate service name 'web'"),
    ([web(), web(name="other")], "services[1].port: 10.0.0.100:8000 is also service 'web'"),
    ([web(), web(name="other", vip="10.0.0.101", members=[{"host": "m3"}, {"host": "m2"}])],
     "services[1].members[1].host: 'm2' port 8000 is already a member of service 'web'"),
    ([web(port="8000")], "services[0].port: wrong type str"),
    ([web(port=True)], "services[0].port: wrong type bool"),
    ([web(port=0)], "services[0].port: must be in 1..65535"),
    ([web(port=70000)], "services[0].port: must be in 1..65535"),
    ([web(members=[{"host": "m1", "weight": "2"}])], "services[0].members[0].weight: wrong type str"),
    ([web(members=[{"host": "m1", "weight": 0}])], "services[0].members[0].weight: must be in (0, 1000]"),
    ([web(members=[{"host": "m1", "weight": -1}])], "services[0].members[0].weight: must be in (0, 1000]"),
    ([web(members=[{"host": "m1", "cpu": 2}])], "services[0].members[0].cpu: unknown key"),
    ([web(members=["m1"])], "services[0].members[0]: expected an object"),
    ([web(protocol="udp")], "services[0].protocol: unknown key"),
    ([{"name": "web", "vip": VIP, "members": [{"host": "m1"}]}], "services[0]: missing required key 'port'"),
    ([web(name="1web")], "services[0].name: name '1web' must be a letter"),
    ({"web": {}}, "spec.services: wrong type dict"),
])
def test_a_bad_service_names_the_file_and_the_field(services, field):
    with pytest.raises(TopologyError) as err:
        parse_spec(spec_with(services), "svc.json")
    assert str(err.value).startswith(f"svc.json: {field}"), str(err.value)


# -- a booted network with the service ------------------------------------------------------
def booted(policy: str = "round-robin") -> Booted:
    b = Booted(SPEC, settings=Settings(service_policy=policy))
    for h in ("h1", "h2", "h3", "m1", "m2", "m3"):
        b.arp(h, "h1" if h != "h1" else "h2")     # every host learnt where it is
    return b


def answer_probes(b: Booted, probes: list, flags: int = TCP_SYN | TCP_ACK, only: set[str] | None = None) -> list:
    """Each member (or those in `only`) answers its probe as its kernel would."""
    out = []
    for p in probes:
        f = parse(p.data)
        t, host = tcp_of(f), b.balancer.net.spec.host_by_ip(f.ipv4.dst)
        if only is None or host.name in only:
            reply = tcp_frame(VIP_MAC, host.mac, host.ip, VIP, Tcp(t.dst_port, t.src_port, 7, t.seq + 1, flags))
            out += b.send(host.name, reply)
    return out


def healthy(b: Booted) -> set[str]:
    return {m.host for m in b.balancer.services.services["web"].members if m.healthy}


def up(b: Booted) -> Booted:
    answer_probes(b, b.balancer.health(b.now))
    assert healthy(b) == {"m1", "m2", "m3"}
    return b


def syn(b: Booted, client: str, sport: int, flags: int = TCP_SYN, seq: int = 0) -> list:
    h = b.spec.host(client)
    return b.send(client, ipv4_frame(h.mac, VIP_MAC, h.ip, VIP, 6, sport, PORT, flags, seq))


def member_of(msgs: list) -> str | None:
    """The member a connection's first packet was released to (its rewritten address)."""
    (release,) = [m for m in msgs if isinstance(m, PacketOut)] or [None]
    return release and dict(release.set_fields)["ipv4_dst"]


def trace(b: Booted, host: str, fields: dict) -> tuple[list[str], str, dict]:
    dpid, port = b.host_port(host)
    fields = {**fields, "in_port": port}
    path, end = b.of.trace(b.of.name(dpid), port, fields)
    return path, end, fields


def test_the_controller_answers_arp_for_the_vip_with_its_mac():
    b = booted()
    h = b.spec.host("h2")
    (reply,) = b.send("h2", arp_frame(ARP_REQUEST, h.mac, h.ip, "00:00:00:00:00:00", VIP, eth_dst=BROADCAST))
    arp = parse(reply.data).arp
    assert (reply.dpid, reply.out_ports) == b.host_port("h2")[:1] + (b.host_port("h2")[1:],)
    assert (arp.op, arp.sender_mac, arp.sender_ip, arp.target_ip) == (ARP_REPLY, VIP_MAC, VIP, h.ip)


def test_the_entries_rewrite_to_the_member_on_the_way_in_and_back_to_the_vip_on_the_way_out():
    b = up(booted())
    msgs = syn(b, "h1", 40000)
    member = b.spec.host_by_ip(member_of(msgs))
    h1 = b.spec.host("h1")
    forward = parse(ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT))
    path, end, seen = trace(b, "h1", packet_fields(forward, 0))
    assert end == f"host:{member.name}"
    assert (seen["eth_dst"], seen["ipv4_dst"], seen["ipv4_src"]) == (member.mac, member.ip, h1.ip)
    reply = parse(ipv4_frame(member.mac, h1.mac, member.ip, h1.ip, 6, PORT, 40000))
    back, end, seen = trace(b, member.name, packet_fields(reply, 0))
    assert end == "host:h1" and back == path[::-1]
    assert (seen["eth_src"], seen["ipv4_src"], seen["ipv4_dst"]) == (VIP_MAC, VIP, h1.ip)
    # the matches: the client's 5-tuple to the VIP in, the member's reply out; only the last switch rewrites
    mods = [m for m in msgs if isinstance(m, FlowMod)]
    ins = [m for m in mods if m.match.ipv4_dst == VIP]
    outs = [m for m in mods if m.match.ipv4_src == member.ip and m.match.tcp_flags is None]
    assert {(m.match.ipv4_src, m.match.tcp_src, m.match.tcp_dst) for m in ins} == {(h1.ip, 40000, PORT)}
    assert {(m.match.ipv4_dst, m.match.tcp_src, m.match.tcp_dst) for m in outs} == {(h1.ip, PORT, 40000)}
    assert [m.set_fields for m in ins if m.set_fields] == [(("eth_dst", member.mac), ("ipv4_dst", member.ip))]
    assert [m.set_fields for m in outs if m.set_fields] == [(("eth_src", VIP_MAC), ("ipv4_src", VIP))]
    # the reply's first switch copies the member's FIN to the controller, above the entry it shadows
    (fin,) = [m for m in mods if m.match.tcp_flags == TCP_FIN]
    assert fin.match._replace(tcp_flags=None) in {m.match for m in outs}
    assert CONTROLLER in fin.out_ports and fin.priority > outs[0].priority
    # the client's first switch sends a SYN on the 5-tuple up instead of on (SYN watch)
    (syn_watch,) = [m for m in mods if m.match.tcp_flags == TCP_SYN]
    assert syn_watch.match._replace(tcp_flags=None) in {m.match for m in ins}
    assert (syn_watch.dpid, syn_watch.out_ports, syn_watch.set_fields) == (b.host_port("h1")[0], (CONTROLLER,), ())
    assert syn_watch.priority > outs[0].priority


def test_set_fields_and_the_tcp_flags_match_encode_as_open_vswitch_reads_them():
    b = up(booted())
    (fin,) = [m for m in syn(b, "h1", 40000) if isinstance(m, FlowMod) and m.match.tcp_flags == TCP_FIN]
    data = wire.flow_mod(fin)
    assert bytes.fromhex("ffff5508" "4f4e4600" "0001" "0001") in data    # ONF experimenter OXM, flags/mask
    release = next(m for m in syn(b, "h2", 40001) if isinstance(m, PacketOut))
    encoded = wire.packet_out(release)
    assert bytes.fromhex("0019" "0010" "80000606") + bytes.fromhex(release.set_fields[0][1].replace(":", "")) in encoded


def test_every_packet_of_a_connection_reaches_the_member_its_first_chose():
    b = up(booted())
    chosen = member_of(syn(b, "h1", 40000))
    h1 = b.spec.host("h1")
    for flags in (TCP_ACK, TCP_ACK | 0x08, TCP_FIN | TCP_ACK):
        fields = packet_fields(parse(ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT, flags)), 0)
        assert trace(b, "h1", fields)[2]["ipv4_dst"] == chosen
    # entries lost at the client's switch: the next packet goes up and is sent to the same member,
    # and the entries, the SYN watch among them, go back
    b.of.tables[b.host_port("h1")[0]].clear()
    again = b.send("h1", ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT, TCP_ACK))
    assert member_of(again) == chosen
    assert [m.match.tcp_flags for m in again if isinstance(m, FlowMod)] == [TCP_SYN, None]


def test_round_robin_takes_members_in_turn_across_clients():
    b = up(booted())
    chosen = [member_of(syn(b, c, 40000 + i)) for i, c in enumerate(("h1", "h2", "h3") * 2)]
    assert chosen == ["10.0.0.11", "10.0.0.12", "10.0.0.13"] * 2


def test_a_member_silent_past_the_bound_is_out_within_2_s_and_back_at_its_next_answer():
    """Probe rounds every HEALTH_INTERVAL_S, m2 silent after its last answer: it is in at every
    round within DOWN_AFTER_S of that answer, and out at the first round past it, within 2 s."""
    b = up(booted())
    last = b.now
    rounds = [0.1 + k * HEALTH_INTERVAL_S for k in range(10)]     # off the bound: no float tie
    for at in rounds:
        b.now = last + at
        answer_probes(b, b.balancer.health(b.now), only={"m1", "m3"})
        if at > DOWN_AFTER_S:
            break
        assert "m2" in healthy(b), at
    assert healthy(b) == {"m1", "m3"} and at <= 2.0
    assert {member_of(syn(b, c, 41000 + i)) for i, c in enumerate(("h1", "h2", "h3") * 3)} == {"10.0.0.11", "10.0.0.13"}
    answer_probes(b, b.balancer.health(b.now + HEALTH_INTERVAL_S), only={"m2"})
    assert healthy(b) == {"m1", "m2", "m3"}


def test_a_member_whose_port_went_down_is_out_and_sought_by_arp_until_found():
    b = up(booted())
    dpid, port = b.host_port("m2")
    b.balancer.port_changed(dpid, port, False, b.now)
    b.balancer.port_changed(dpid, port, True, b.now)
    start = b.now
    for at in (HEALTH_INTERVAL_S, 2 * HEALTH_INTERVAL_S, DOWN_AFTER_S + 0.01):
        b.now = start + at
        msgs = b.balancer.health(b.now)
        answer_probes(b, [m for m in msgs if parse(m.data).ipv4 is not None])
    assert healthy(b) == {"m1", "m3"}
    (seek,) = [m for m in msgs if parse(m.data).arp is not None]
    assert seek.dpid == dpid and port in seek.out_ports and parse(seek.data).arp.target_ip == "10.0.0.12"
    m2 = b.spec.host("m2")
    b.send("m2", arp_frame(ARP_REPLY, m2.mac, m2.ip, "02:4c:42:00:00:01", "0.0.0.0", eth_dst="02:4c:42:00:00:01"))
    answer_probes(b, b.balancer.health(b.now + HEALTH_INTERVAL_S), only={"m2"})
    assert "m2" in healthy(b)


def test_a_refused_probe_takes_a_member_out_at_once_and_a_syn_ack_is_answered_with_rst():
    b = up(booted())
    probes = b.balancer.health(b.now + HEALTH_INTERVAL_S)
    rsts = answer_probes(b, probes, only={"m1", "m3"})
    assert len(rsts) == 2 and all(tcp_of(parse(r.data)).flags == TCP_RST for r in rsts)
    answer_probes(b, probes, flags=TCP_RST | TCP_ACK, only={"m2"})
    assert healthy(b) == {"m1", "m3"}


def test_a_member_is_out_until_its_first_answer_and_none_healthy_drops_the_syn():
    b = booted()
    assert healthy(b) == set()
    assert syn(b, "h1", 40000) == []
    assert b.balancer.counters["service_unavailable"] == 1


def test_an_answer_to_no_probe_of_ours_brings_nobody_back():
    b = booted()
    m1 = b.spec.host("m1")
    forged = tcp_frame(VIP_MAC, m1.mac, m1.ip, VIP, Tcp(PORT, 61500, 7, 12345, TCP_SYN | TCP_ACK))
    b.send("m1", forged)
    assert healthy(b) == set()


def test_response_time_is_syn_to_the_members_fin_and_ends_the_connection_as_active():
    b = up(booted("least-connections"))
    opened = b.now
    msgs = syn(b, "h1", 40000)
    member = b.balancer.services.services["web"].member(member_of(msgs))
    (fin,) = [m for m in msgs if isinstance(m, FlowMod) and m.match.tcp_flags == TCP_FIN]
    assert member.active == 1
    h1 = b.spec.host("h1")
    done = b.balancer.packet_in(fin.dpid, fin.match.in_port, ipv4_frame(member.mac, h1.mac, member.ip, h1.ip, 6,
                                PORT, 40000, TCP_FIN | TCP_ACK), opened + 2.5, cookie=fin.cookie)
    assert done == [FlowDelete(fin.dpid, fin.cookie, 2**64 - 1)]
    assert (member.active, member.completed, member.response_ms) == (0, 1, pytest.approx(2500))


def test_a_fin_teaches_the_member_as_chosen_and_the_connections_it_still_holds():
    """What the reward counts (members.cost_ms): the connections open at the member after this
    one ended, not counting it, and the member as it was when this connection chose it."""
    class First(LeastConnections):
        learns, taught = True, []

        def choose(self, service, members, key):
            return 0

        def learn(self, service, chosen, response_s, after):
            self.taught.append((chosen.active, response_s, after.active))

    b = up(booted("least-connections"))
    b.balancer.services.services["web"].policy = First()
    opened = b.now
    conns = [syn(b, "h1", 40000 + i) for i in range(3)]     # all to m1: it holds 0, 1, then 2 at each choice
    member = b.balancer.services.services["web"].member(member_of(conns[1]))
    fin = next(m for m in conns[1] if isinstance(m, FlowMod) and m.match.tcp_flags == TCP_FIN)
    h1 = b.spec.host("h1")
    b.balancer.packet_in(fin.dpid, fin.match.in_port, ipv4_frame(member.mac, h1.mac, member.ip, h1.ip, 6,
                         PORT, 40001, TCP_FIN | TCP_ACK), opened + 2.5, cookie=fin.cookie)
    assert member.active == 2 and First.taught == [(1, pytest.approx(2.5), 2)]


@pytest.mark.parametrize("fin_first, isn", [(True, 9000), (True, 1000), (False, 9000)],
                         ids=["after-the-fin", "after-the-fin-same-isn", "before-the-fin"])
def test_a_new_connection_on_a_connections_5_tuple_is_balanced_again(fin_first, isn):
    """The member closed first, so the client may reuse its port at once: its SYN must not
    follow the old entries to the old member (the SYN watch, there from the start, sends it
    up), even when it comes before the member's FIN has reached the controller, or with the
    old SYN's sequence number (a stack that always starts from the same one)."""
    b = up(booted())
    first = syn(b, "h1", 40000, seq=1000)
    fin = next(m for m in first if isinstance(m, FlowMod) and m.match.tcp_flags == TCP_FIN)
    member, h1 = b.spec.host_by_ip(member_of(first)), b.spec.host("h1")
    if fin_first:
        b.deliver(b.balancer.packet_in(fin.dpid, fin.match.in_port, ipv4_frame(
            member.mac, h1.mac, member.ip, h1.ip, 6, PORT, 40000, TCP_FIN | TCP_ACK), b.now + 1, cookie=fin.cookie))
    ece = 0x40      # a SYN asking for ECN has the SYN bit too: the watch matches that bit alone
    fields = packet_fields(parse(ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT, TCP_SYN | ece)), 0)
    assert trace(b, "h1", fields)[1] == "controller"
    again = syn(b, "h1", 40000, seq=isn)
    assert member_of(again) != member.ip        # round robin's next member
    old = {m.cookie for m in first if isinstance(m, FlowMod)} - ({fin.cookie} if fin_first else set())
    assert {m.cookie for m in again if isinstance(m, FlowDelete)} == old    # its entries and watches go
    members_ = b.balancer.services.services["web"].members
    assert sum(m.active for m in members_) == 1 and len(b.balancer.services.connections) == 2


def test_a_retransmitted_syn_goes_on_to_its_member_without_a_new_decision():
    b = up(booted())
    first = syn(b, "h1", 40000, seq=1000)
    chosen = b.balancer.services.services["web"].member(member_of(first))
    (release,) = [m for m in first if isinstance(m, PacketOut)]
    assert syn(b, "h1", 40000, seq=1000) == [release]     # the same SYN, once more, to the same member
    assert (chosen.chosen, chosen.active, len(b.balancer.flows)) == (1, 1, 2)


@pytest.mark.parametrize("flags", [TCP_SYN | TCP_ACK, TCP_SYN | TCP_RST, TCP_SYN | TCP_FIN], ids=["ack", "rst", "fin"])
def test_a_syn_with_other_flags_opens_nothing_and_changes_no_connection(flags):
    """A listener drops a SYN with RST or FIN, and a client's SYN+ACK opens nothing: on a live
    connection it goes on to the member, its entries untouched; without one it is a stray."""
    b = up(booted())
    first = syn(b, "h1", 40000, seq=1000)
    (release,) = [m for m in first if isinstance(m, PacketOut)]
    flows = dict(b.balancer.flows)
    out = syn(b, "h1", 40000, flags, seq=5555)
    assert [(m.dpid, m.out_ports, m.set_fields) for m in out] == [(release.dpid, release.out_ports, release.set_fields)]
    assert b.balancer.flows == flows and b.balancer.counters["entries_repaired"] == 0
    syn(b, "h2", 40001, flags)
    assert len(b.balancer.services.connections) == 2 and b.balancer.counters["service_strays"] == 1


def test_a_late_fin_of_a_connection_a_new_one_replaced_is_measured_and_goes_nowhere():
    """The client reconnected from the same port before the member's FIN reached the
    controller: that FIN still ends the old response (its time, its count) and is not routed
    into the new connection."""
    b = up(booted())
    first = syn(b, "h1", 40000, seq=1000)
    fin = next(m for m in first if isinstance(m, FlowMod) and m.match.tcp_flags == TCP_FIN)
    member, h1 = b.spec.host_by_ip(member_of(first)), b.spec.host("h1")
    syn(b, "h1", 40000, seq=9000)
    late = b.balancer.packet_in(fin.dpid, fin.match.in_port, ipv4_frame(member.mac, h1.mac, member.ip, h1.ip, 6,
                                PORT, 40000, TCP_FIN | TCP_ACK), b.now + 1, cookie=fin.cookie)
    assert late == []
    members_ = {m.host: m for m in b.balancer.services.services["web"].members}
    old = members_[member.name]
    assert (old.completed, old.active, old.response_ms) == (1, 0, pytest.approx(1000))
    assert sum(m.active for m in members_.values()) == 1


def test_a_broken_link_under_a_connection_removes_both_directions_and_its_watches():
    """The reply takes the request's path reversed, so both directions break at once."""
    b = up(booted())
    first = syn(b, "h1", 40000)
    a, c = (b.of.name(d) for d in b.balancer.flows[KEY].path[:2])
    port = next(p for (n, p), (peer, _) in b.of.wire.items() if n == a and peer == c)
    msgs = b.balancer.port_changed(b.of.dpid[a], port, False, b.now)
    assert b.balancer.flows == {} and b.balancer.services.connections == {}
    assert {m.cookie for m in msgs if isinstance(m, FlowDelete)} == {m.cookie for m in first if isinstance(m, FlowMod)}


def test_a_connection_is_forgotten_with_its_entries_and_its_watches_deleted():
    b = up(booted())
    msgs = syn(b, "h1", 40000)
    forward = next(m for m in msgs if isinstance(m, FlowMod) and m.match.ipv4_dst == VIP
                   and m.match.in_port == b.host_port("h1")[1] and m.match.tcp_flags is None)
    fin, syn_watch = (next(m for m in msgs if isinstance(m, FlowMod) and m.match.tcp_flags == flag)
                      for flag in (TCP_FIN, TCP_SYN))
    reverse = b.balancer.flows[FlowKey(member_of(msgs), "10.0.0.1", 6, PORT, 40000)]
    out = b.balancer.flow_removed(forward.dpid, forward.cookie)
    assert out == [FlowDelete(fin.dpid, fin.cookie, 2**64 - 1), FlowDelete(syn_watch.dpid, syn_watch.cookie, 2**64 - 1),
                   *(FlowDelete(d, reverse.cookie, 2**64 - 1) for d in reverse.path)]    # the reply's too
    assert b.balancer.services.connections == {} and b.balancer.flows == {}
    assert all(m.active == 0 for m in b.balancer.services.services["web"].members)


def test_frames_claiming_the_vip_from_a_host_are_dropped_as_spoofed():
    b = up(booted())
    h2 = b.spec.host("h2")
    claims = [arp_frame(ARP_REPLY, h2.mac, VIP, "00:00:00:00:00:01", "10.0.0.1", eth_dst="00:00:00:00:00:01"),
              arp_frame(ARP_REQUEST, h2.mac, VIP, "00:00:00:00:00:00", VIP, eth_dst=BROADCAST),
              ipv4_frame(h2.mac, "00:00:00:00:00:01", VIP, "10.0.0.1", 6, PORT, 40000, TCP_SYN | TCP_ACK),
              ipv4_frame(VIP_MAC, "00:00:00:00:00:01", VIP, "10.0.0.1", 6, PORT, 40000)]
    for frame in claims:
        assert b.send("h2", frame) == []
    assert b.balancer.counters["spoofed_frames"] == len(claims)
    assert b.balancer.services.connections == {}


def test_a_members_reply_with_no_connection_is_never_routed_with_its_own_address():
    b = up(booted())
    m1, h1 = b.spec.host("m1"), b.spec.host("h1")
    assert b.send("m1", ipv4_frame(m1.mac, h1.mac, m1.ip, h1.ip, 6, PORT, 40000, TCP_SYN | TCP_ACK)) == []
    assert b.send("h1", ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT, TCP_RST)) == []   # no SYN
    assert b.send("h1", ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 17, 40000, PORT)) == []         # not TCP
    assert b.balancer.counters["service_strays"] == 3 and b.balancer.flows == {}


def test_a_clients_stray_is_answered_by_an_rst_from_the_vip_at_a_bounded_rate():
    """A packet of a connection the controller forgot (broken path, eviction, restart) would
    meet silence and the client would retransmit for minutes: it is reset (RFC 793's rules)."""
    b = up(booted())
    h1 = b.spec.host("h1")
    at = b.host_port("h1")

    def stray(flags: int, seq: int, ack: int, data: bytes = b"") -> Tcp | None:
        out = b.send("h1", ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 40000, PORT, flags, seq, ack, data))
        if not out:
            return None
        (rst,) = out
        f = parse(rst.data)
        assert ((rst.dpid, *rst.out_ports), f.eth_dst, f.eth_src, f.ipv4.src, f.ipv4.dst) == (at, h1.mac, VIP_MAC,
                                                                                                VIP, h1.ip)
        return tcp_of(f)

    assert stray(TCP_ACK, 1000, 5000, b"GET /") == Tcp(PORT, 40000, 5000, 0, TCP_RST)     # seq = its ACK
    assert stray(TCP_FIN, 1000, 0, b"0123456789") == Tcp(PORT, 40000, 0, 1011, TCP_RST | TCP_ACK)   # ACKs it all
    assert stray(TCP_RST | TCP_ACK, 1000, 5000) is None          # never an RST to an RST
    b.now = 200.0
    answered = sum(stray(TCP_ACK, 1000, 5000) is not None for _ in range(2 * RESETS_PER_S))
    assert answered == RESETS_PER_S and b.balancer.counters["service_strays"] == 3 + 2 * RESETS_PER_S
    b.now += 1
    assert stray(TCP_ACK, 1000, 5000) is not None                 # the next second


def test_a_syn_flood_to_the_vip_is_bounded_by_the_flows_per_port():
    b = up(booted())
    h1 = b.spec.host("h1")
    dpid, port = b.host_port("h1")
    for sport in range(MAX_FLOWS_PER_PORT + 300):     # straight to the controller: the fake tables are slow
        b.balancer.packet_in(dpid, port, ipv4_frame(h1.mac, VIP_MAC, h1.ip, VIP, 6, 1024 + sport, PORT, TCP_SYN),
                             b.now)
    kept = MAX_FLOWS_PER_PORT // 2     # a connection's two flows both count against the client's port
    assert len(b.balancer.services.connections) == 2 * kept      # by either direction's key
    assert len(b.balancer.flows) == MAX_FLOWS_PER_PORT
    assert sum(m.active for m in b.balancer.services.services["web"].members) == kept
    assert b.balancer.counters["flows_evicted"] == MAX_FLOWS_PER_PORT + 300 - kept


def test_two_flooding_clients_cannot_evict_a_third_clients_connection():
    """Every connection goes to m1 (the only member up): counted against m1's port, the two
    floods' replies filled it and evicted h1's connection, the oldest there."""
    b = booted()
    answer_probes(b, b.balancer.health(b.now), only={"m1"})
    assert member_of(syn(b, "h1", 40000)) == b.spec.host("m1").ip
    for client in ("h2", "h3"):
        h = b.spec.host(client)
        dpid, port = b.host_port(client)
        for sport in range(MAX_FLOWS_PER_PORT):
            b.balancer.packet_in(dpid, port, ipv4_frame(h.mac, VIP_MAC, h.ip, VIP, 6, 1024 + sport, PORT, TCP_SYN),
                                 b.now)
    assert KEY in b.balancer.services.connections and KEY in b.balancer.flows
    assert len(b.balancer.flows) == 2 + 2 * MAX_FLOWS_PER_PORT      # each flooder kept to its own port's share


# -- the member policies on synthetic loads ---------------------------------------------------
def loads(*active, weights=None, paths=None) -> list[MemberLoad]:
    weights = weights or [1.0] * len(active)
    paths = paths or [None] * len(active)
    return [MemberLoad(f"m{i + 1}", w, a, None, None, p) for i, (a, w, p) in enumerate(zip(active, weights, paths))]


def test_the_policies_are_the_ones_the_settings_name():
    assert tuple(SERVICE_POLICY_TYPES) == SERVICE_POLICIES


def test_round_robin_cycles_whatever_the_load():
    rr = RoundRobin()
    assert [rr.choose("web", loads(9, 0, 0), KEY) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_least_connections_takes_the_fewest_and_spreads_ties():
    lc = LeastConnections()
    assert lc.choose("web", loads(3, 1, 2), KEY) == 1
    assert [lc.choose("web", loads(0, 0, 0), KEY) for _ in range(3)] == [0, 2, 1]   # m2 was just chosen


def test_weighted_round_robin_is_smooth_and_in_proportion():
    wrr = Weighted()
    picks = [wrr.choose("web", loads(0, 0, 0, weights=[5, 1, 1]), KEY) for _ in range(7)]
    assert picks == [0, 0, 1, 0, 2, 0, 0]     # nginx's sequence for 5, 1, 1: a a b a c a a
    assert [picks.count(i) for i in range(3)] == [5, 1, 1]


def test_random_is_seeded_and_covers_the_members():
    a, b = RandomMember(seed=3), RandomMember(seed=3)
    picks = [a.choose("web", loads(0, 0, 0), KEY) for _ in range(60)]
    assert picks == [b.choose("web", loads(0, 0, 0), KEY) for _ in range(60)] and set(picks) == {0, 1, 2}


def features(utilisation: float) -> PathFeatures:
    return PathFeatures(utilisation, 0.0, 1.0, 2, headroom_mbps=20.0 * (1 - utilisation))


def test_member_states_name_the_member_its_load_bin_and_its_paths_level():
    m = MemberLoad("m2", 1.0, 6, None, None, features(0.9))
    assert member_state("web", m) == "web/m2 a5 p3"
    assert member_state("web", m._replace(active=0, path=None)) == "web/m2 a0 pu"


def test_the_q_update_by_hand_and_its_fallback_to_member_and_load():
    q = QLearningMembers(alpha=0.5, epsilon=0.0)      # alpha is the path table's: members average
    chosen = MemberLoad("m1", 1.0, 2, None, None, features(0.1))
    alone = chosen._replace(active=0)       # nothing else open at the member at the FIN: cost = response
    q.learn("web", chosen, 0.8, alone)      # reward -800 ms; gamma 0, step 1/1: Q <- r
    assert q.table.q["web/m1 a2 p0"] == [-800.0, 1] and q.table.q["web/m1 a2"] == [-800.0, 1]
    q.learn("web", chosen, 0.2, alone)      # step 1/2: the mean of -800 and -200
    assert q.table.q["web/m1 a2 p0"] == [-800 + (-200 + 800) / 2, 2] == [-500.0, 2]
    q.learn("web", chosen, 0.5, alone)      # step 1/3: the mean of three
    assert q.table.q["web/m1 a2 p0"] == [pytest.approx(-500.0), 3]
    assert q.table.value("web/m1 a2 p3") == pytest.approx(-500.0)   # path level never met: member and load's
    q.learn("web", chosen._replace(host="m2"), 1.0, alone)      # m2: -1000
    # count never met: the nearest lower count's, as if m1 shared itself: 5 open + this one against
    # 2 + this one, and as many left at its FIN (5 against 2) counted at SHARED_COST each
    learnt = 3 * (1 + 2 * SHARED_COST)
    assert q.table.value("web/m1 a5 p0") == pytest.approx(-500.0 * 6 * (1 + 5 * SHARED_COST) / learnt)
    assert q.table.value("web/m1 a8 pu") == pytest.approx(-500.0 * 16 * (1 + 15 * SHARED_COST) / learnt)
    # no lower count learnt: the nearest higher one's, unscaled (fewer connections answer no later),
    # not the service's mean (-750), which is below what m1 met with more open
    assert q.table.value("web/m1 a0 p0") == pytest.approx(-500.0)
    assert q.table.value("web/m2 a1 pu") == pytest.approx(-1000.0)
    assert q.table.value("web/m3 a0 pu") == pytest.approx(-750.0)  # member never met: the service's mean
    assert q.table.value("db/m3 a0 pu") == 0.0          # nothing of the service learnt


def test_a_connections_cost_is_its_response_and_a_share_of_it_per_connection_left_at_its_member():
    """The reward counts the delay a connection adds to those it shares its member with: the
    connections still open there at its FIN, not those open when it was chosen (its state's)."""
    q = QLearningMembers(epsilon=0.0)
    chosen = MemberLoad("m1", 1.0, 2, None, None, None)
    q.learn("web", chosen, 0.8, chosen._replace(active=0))
    q.learn("web", chosen._replace(host="m2"), 0.8, chosen._replace(host="m2", active=4))
    assert q.table.q["web/m1 a2 pu"][0] == -800.0
    assert q.table.q["web/m2 a2 pu"][0] == pytest.approx(-800.0 * (1 + 4 * SHARED_COST))
    assert 0 < SHARED_COST < 1


def test_a_states_step_is_one_over_its_visits_down_to_alpha_for_members_and_paths_alike():
    """A member table averages what a state met (heavy-tailed responses), then tracks drift at
    alpha (--q-alpha, as the member policy is made); the path table steps the same way."""
    q = policies.member_policy_factory("qlearning", Settings(q_alpha=0.1))()
    assert [q.table.step(n) for n in (1, 2, 5, 10, 11, 1000)] == [1.0, 0.5, 0.2, 0.1, 0.1, 0.1]
    chosen = MemberLoad("m1", 1.0, 0, None, None, None)
    responses = [0.1 * (1 + k % 7) for k in range(10)]
    for r in responses:
        q.learn("web", chosen, r, chosen)
    mean = -1e3 * sum(responses) / 10
    assert q.table.q["web/m1 a0 pu"][0] == pytest.approx(mean)
    q.learn("web", chosen, 10.0, chosen)     # one long answer after 10 moves the value by 10% of the gap
    assert q.table.q["web/m1 a0 pu"][0] == pytest.approx(mean + 0.1 * (-10_000 - mean))
    paths = QTable(alpha=0.3, gamma=0.0, epsilon=0.0)
    for r in (-10.0, -20.0, -30.0, -40.0):
        paths.update("h1 r5 l0", r, "h1 r5 l0")
    # the mean of the first three (steps 1, 1/2, 1/3), then 0.3 of the way to the fourth
    assert paths.q["h1 r5 l0"] == [pytest.approx(-20.0 + 0.3 * (-40.0 + 20.0)), 4]


@pytest.mark.parametrize("learnt", [False, True])
def test_q_learning_spreads_connections_opened_before_any_response_is_back(learnt):
    """Values change only at a FIN: an unmet state worth more than the learnt ones, or ties
    to the first member, sent every new connection to m1 until then."""
    b = Booted(SPEC, settings=Settings(service_policy="qlearning", q_epsilon=0.0))
    for h in ("h1", "h2", "h3", "m1", "m2", "m3"):
        b.arp(h, "h1" if h != "h1" else "h2")
    up(b)
    policy = b.balancer.services.services["web"].policy
    if learnt:      # each member answered one connection in 50 ms
        for m in loads(0, 0, 0):
            policy.learn("web", m, 0.05, m)
    picks = [member_of(syn(b, "h1", 40000 + i)) for i in range(30)]
    members_ = b.balancer.services.services["web"].members
    assert [m.active for m in members_] == [picks.count(m.ip) for m in members_]   # counted from the SYN
    assert max(m.active for m in members_) <= 18, [m.active for m in members_]


def test_q_learning_prefers_the_member_that_answered_sooner_and_avoids_a_congested_path():
    q = QLearningMembers(alpha=0.5, epsilon=0.0)
    fast, slow = loads(0, 0, paths=[features(0.1), features(0.1)])
    for _ in range(5):
        q.learn("web", fast, 0.2, fast)
        q.learn("web", slow, 1.0, slow)
    assert q.choose("web", [slow, fast], KEY) == 1
    jammed = fast._replace(path=features(0.95))
    for _ in range(5):
        q.learn("web", jammed, 3.0, jammed)
    assert q.choose("web", [slow, jammed], KEY) == 0
    before = dict(q.table.q)
    q.scores("web", [slow, jammed])
    assert q.table.q == before     # a read never changes the table


def test_a_path_levels_value_is_pooled_with_its_members_until_its_own_visits_outweigh_it():
    """One long answer on a rarely seen path level does not decide alone (POOLED)."""
    table = MemberQTable(alpha=0.05, gamma=0.0, epsilon=0.0,
                         q={"web/m1 a0": [-1000.0, 100], "web/m1 a0 p3": [-5000.0, 1], "web/m1 a1 p3": [-5000.0, 180]})
    assert table.value("web/m1 a0 p3") == pytest.approx((-5000 + policies.POOLED * -1000) / (1 + policies.POOLED))
    assert table.value("web/m1 a0 p2") == -1000.0       # never met: the member and count's own
    assert table.value("web/m1 a1 p3") == -5000.0       # no coarse row to pool with (a file's, say)
    assert table.value("web/m1 a0") == -1000.0


class Seeing(MemberPolicy):
    """Takes the first member and keeps what it was shown of each (a load-aware policy)."""
    name, load_aware = "seeing", True

    def __init__(self) -> None:
        self.seen: list[dict[str, PathFeatures | None]] = []

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        self.seen.append({m.host: m.path for m in members})
        return 0


def with_j1() -> Booted:
    """The service spec with one more host, j1, beside m1 on s2: traffic that is not m1's."""
    raw = json.loads(SPEC.read_text())
    raw["hosts"].append({"name": "j1", "ip": "10.0.0.21", "mac": "00:00:00:00:00:21"})
    raw["links"].append({"nodes": ["j1", "s2"], "capacity_mbps": 100})
    b = Booted(parse_spec(raw))
    for h in ("h1", "h2", "h3", "m1", "m2", "m3", "j1"):
        b.arp(h, "h1" if h != "h1" else "h2")
    return up(b)


@pytest.mark.parametrize("extra, extra_mbps, answers_mbps, requests_mbps, m1_level", [
    (("j1", "h1"), 19.0, 0.0, 0.0, 3), (("j1", "h1"), 0.0, 19.0, 19.0, 0), (("j1", "h1"), 12.0, 19.0, 0.0, 2),
    (("h1", "j1"), 19.0, 0.0, 0.0, 3), (("h1", "m1"), 19.0, 0.0, 0.0, 0)])
def test_a_member_policy_sees_the_load_others_put_on_its_round_trip_not_its_own(
        extra, extra_mbps, answers_mbps, requests_mbps, m1_level):
    """m1's link to the clients (s1-s2, 20 Mbit/s) carries, at measured rates, a connection from
    h2 to the service at m1 (its answers s2 -> s1, its requests s1 -> s2) and one more UDP flow:
    j1's towards h1 (the way m1's answers go), h1's towards j1 (the way its requests go), or
    h1's straight to m1 (m1's own). The member policy sees m1's round trip as busy as the
    others' flow makes it, in either direction, whatever m1's own add; m2's (over the idle
    s1-s3) stays at 0."""
    b = with_j1()
    seeing = b.balancer.services.services["web"].policy = Seeing()
    syn(b, "h2", 40000)                                  # Seeing takes the first member: m1
    src, dst = (b.spec.host(h) for h in extra)
    b.send(src.name, ipv4_frame(src.mac, dst.mac, src.ip, dst.ip, 17, 5000, 5001))
    flows, g = b.balancer.flows, b.balancer.net.graph()
    rates = [(flows[FlowKey(src.ip, dst.ip, 17, 5000, 5001)], extra_mbps),
             (flows[FlowKey("10.0.0.11", "10.0.0.2", 6, PORT, 40000)], answers_mbps),
             (flows[FlowKey("10.0.0.2", VIP, 6, 40000, PORT)], requests_mbps)]
    for t in range(3):      # a flow's rate is offered from its third reply
        for flow, mbps in rates:
            at, to = flow.path[0], flow.path[1]
            sent = int(mbps * 1e6 / 8 * t)
            b.balancer.flow_stats(at, [FlowStat(flow.cookie, g.edges[at, to]["out_port"], sent // 1000, sent)],
                                  b.now + t)
    b.now += 2
    measure(b, {})
    syn(b, "h3", 40001)
    seen = seeing.seen[-1]
    assert (level(seen["m1"]), level(seen["m2"])) == (m1_level, 0), seen
    assert seen["m1"].utilisation == pytest.approx(extra_mbps / 20 if m1_level else 0.0, abs=0.01)


def test_a_blind_member_learner_is_not_shown_paths_and_does_not_tell_a_jammed_one():
    """--service-q-blind: the Balancer gives it no path features, its states are the member
    and its connections alone, and after the same costs as a sighted learner it still takes
    the fast member on the jammed path that the sighted one avoids."""
    b = up(booted())
    b.balancer.services.set_policy(policies.member_policy_factory(
        "qlearning", Settings(service_policy="qlearning", service_q_blind=True)))
    blind = b.balancer.services.services["web"].policy
    assert (blind.load_aware, blind.describe()["paths"]) == (False, False)
    syn(b, "h1", 40000)
    (conn,) = {id(c): c for c in b.balancer.services.connections.values()}.values()
    assert conn.chosen.path is None
    sighted = QLearningMembers(epsilon=0.0)
    fast, slow = loads(0, 0, paths=[features(0.1), features(0.1)])
    jammed = fast._replace(path=features(0.95))
    for q in (blind, sighted):
        for _ in range(20):     # the fast member answers in 0.2 s, on the jammed path in 3 s
            q.learn("web", fast, 0.2, fast)
            q.learn("web", fast, 0.2, fast)
            q.learn("web", jammed, 3.0, jammed)
            q.learn("web", slow, 1.5, slow)
    assert set(blind.table.q) == {"web/m1 a0", "web/m2 a0"}
    assert (sighted.choose("web", [slow, jammed], KEY), blind.choose("web", [slow, jammed], KEY)) == (0, 1)


def test_the_member_q_table_is_saved_after_a_poll_and_loaded_again(tmp_path):
    path = tmp_path / "members.json"
    settings = Settings(service_policy="qlearning", service_q_table=str(path))
    q = policies.member_policy_factory("qlearning", settings)()
    chosen = loads(1)[0]
    q.learn("web", chosen, 0.5, chosen)
    q.save()
    assert policies.member_policy_factory("qlearning", settings)().table.q == q.table.q


def test_a_path_table_file_is_refused_for_members_and_a_member_table_file_for_paths(tmp_path, caplog):
    members, paths, old = tmp_path / "members.json", tmp_path / "paths.json", tmp_path / "old.json"
    MemberQTable(alpha=0.3, gamma=0.0, epsilon=0.1, q={"web/m1 a0": [-5.0, 1]}).save(members)
    QTable(alpha=0.3, gamma=0.0, epsilon=0.1, q={"h1 r5 l0": [-5.0, 1]}).save(paths)
    old.write_text(json.dumps({k: v for k, v in json.loads(paths.read_text()).items() if k != "model"}))
    for path, kind, found in ((paths, MemberQTable, "table"), (old, MemberQTable, "table"),
                              (members, QTable, "members")):
        with pytest.raises(QTableError, match=f"^{path}: field 'model': the file holds a '{found}' model"):
            load(path, kind)
    with caplog.at_level(logging.WARNING, logger="lb.policy"):
        q = QLearningMembers(paths)
    q.learn("web", loads(0)[0], 0.5, loads(0)[0])
    q.save()
    assert q.table.q and json.loads(paths.read_text())["q"] == {"h1 r5 l0": [-5.0, 1]}   # not saved over


@pytest.mark.parametrize("state, value, why", [
    ("h1 r5 l0", -5.0, "not a member state"), ("web/m1 a9", -5.0, "not a member state"),
    ("web/m1 a2 p7", -5.0, "not a member state"), ("web/m1 a2 p0\nforged", -5.0, "not a member state"),
    ("web/m1 a2 p0", 5.0, "a value above 0")])
def test_a_member_table_file_with_a_foreign_state_or_a_positive_value_is_refused_naming_both(tmp_path, state,
                                                                                            value, why):
    path = tmp_path / "members.json"
    data = MemberQTable(alpha=0.3, gamma=0.0, epsilon=0.1, q={"web/m1 a0": [-5.0, 1], state: [value, 1]}).to_json()
    path.write_text(json.dumps(data))
    with pytest.raises(QTableError, match=f"^{path}: field 'q': state {re.escape(repr(state))}: {why}[^\n]*$"):
        load(path, MemberQTable)


def test_the_path_and_member_tables_cannot_share_a_file(tmp_path):
    (tmp_path / "q.json").touch()
    (tmp_path / "link.json").symlink_to(tmp_path / "q.json")
    with pytest.raises(ConfigError, match="--q-table.*--service-q-table.*need a file each"):
        Settings(q_table=str(tmp_path / "q.json"), service_q_table=str(tmp_path / "link.json")).validate()
    Settings(q_table=str(tmp_path / "q.json"), service_q_table=str(tmp_path / "m.json")).validate()


# -- REST and metrics ----------------------------------------------------------------------------
def test_the_services_resource_shows_members_and_a_put_switches_the_policy_live():
    b = up(booted())
    syn(b, "h1", 40000)
    api = RestApi(b.balancer, clock=lambda: b.now)
    status, (web_,) = call(api, "/api/v1/services")
    assert status == 200 and (web_["vip"], web_["port"], web_["policy"]) == (VIP, PORT, "round-robin")
    m1 = web_["members"][0]
    assert (m1["host"], m1["healthy"], m1["active"], m1["weight"], m1["chosen"]) == ("m1", True, 1, 1.0, 1)
    assert m1["rtt_ms"] == 0.0 and m1["response_ms"] is None     # the fake answers probes at once
    status, (web_,) = call(api, "/api/v1/services", "PUT", body={"policy": "least-connections"})
    assert status == 200 and web_["policy"] == "least-connections"
    assert member_of(syn(b, "h2", 40001)) == "10.0.0.12"     # m1 has a connection open
    assert call(api, "/api/v1/services", "PUT", body={"policy": "weighted", "service": "web"})[1][0]["policy"] == "weighted"
    for body, status, says in (({"policy": "fastest"}, 400, "unknown 'fastest'"),
                               ({"policy": "random", "service": "db"}, 404, "no service 'db'"),
                               ({"policy": 3}, 400, "body must be"), ({"policies": "random"}, 400, "body must be"),
                               ([], 400, "body must be")):
        got = call(api, "/api/v1/services", "PUT", body=body)
        assert got[0] == status and says in got[1]["error"], got
    assert exchange(api, "/api/v1/services", "PUT", data=b'{"policy": "random"}', HTTP_AUTHORIZATION="")[0] == 401
    assert call(api, "/api/v1/services")[1][0]["policy"] == "weighted"
    call(api, "/api/v1/services", "PUT", body={"policy": "qlearning", "service": "web"})
    q = b.balancer.services.services["web"].policy
    call(api, "/api/v1/services", "PUT", body={"policy": "qlearning"})
    assert b.balancer.services.services["web"].policy is q     # one Q table, one writer of its file


def test_prometheus_has_each_members_health_connections_and_choices():
    b = up(booted())
    syn(b, "h1", 40000)
    text = generate_latest(Metrics(b.balancer, clock=lambda: b.now).registry).decode()
    samples = {(s.name, s.labels.get("member")): s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.labels.get("service") == "web"}
    assert samples[("lb_member_healthy", "m2")] == 1.0
    assert samples[("lb_member_connections", "m1")] == 1.0 and samples[("lb_member_connections", "m2")] == 0.0
    assert samples[("lb_member_chosen_total", "m1")] == 1.0
