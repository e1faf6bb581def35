"""Our OpenFlow encodings decode, with the framework's own parser, to the messages we meant."""

from hypothesis import given
from hypothesis import strategies as st
from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser

from controller.openflow import wire
from controller.core.flows import FlowKey
from controller.openflow.messages import CONTROLLER, FlowMod, Match, PacketOut


class Datapath:
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser


def decode(buf: bytes):
    version, kind, length, xid = ofproto_parser.header(buf)
    assert length == len(buf)
    return ofproto_parser.msg(Datapath(), version, kind, length, xid, buf)


ports = st.integers(0, 65535)
ips = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@given(ips, ips, st.sampled_from([6, 17, 1]), ports, ports, st.integers(1, 0xFFFFFF00),
       st.integers(1, 0xFFFFFF00), st.integers(0, 2**64 - 1), st.integers(0, 65535), st.integers(0, 1))
def test_flow_mods_decode_to_what_we_meant(src, dst, proto, sport, dport, in_port, out_port, cookie, idle, flags):
    key = FlowKey(src, dst, proto, sport if proto != 1 else None, dport if proto != 1 else None)
    m = FlowMod(7, key.match(in_port), (out_port,), 100, cookie, idle, flags)
    msg = decode(wire.flow_mod(m))
    assert (msg.cookie, msg.priority, msg.idle_timeout, msg.flags, msg.command) == (cookie, 100, idle, flags, 0)
    assert dict(msg.match.items()) == m.match.oxm()
    (inst,) = msg.instructions
    assert [a.port for a in inst.actions] == [out_port]


def test_base_entries_and_drops_decode():
    msg = decode(wire.flow_mod(FlowMod(1, Match(eth_type=0x88CC, eth_src="00:00:00:00:00:01"), (CONTROLLER,), 1000)))
    assert dict(msg.match.items()) == {"eth_type": 0x88CC, "eth_src": "00:00:00:00:00:01"}
    assert msg.instructions[0].actions[0].max_len == 0xFFFF      # whole packets to the controller
    drop = decode(wire.flow_mod(FlowMod(1, Match(), (), 0)))
    assert dict(drop.match.items()) == {} and drop.instructions[0].actions == []


@given(st.binary(max_size=1500), st.lists(st.integers(1, 0xFFFFFF00), min_size=1, max_size=4))
def test_packet_outs_carry_the_frame_to_the_ports(data, out_ports):
    buf = wire.packet_out(PacketOut(3, tuple(out_ports), data))
    version, kind, length, _ = ofproto_parser.header(buf)     # the framework has no packet-out parser
    assert (version, kind, length) == (4, 13, len(buf))
    actions = [ofproto_v1_3_parser.OFPAction.parser(buf, 24 + 16 * i) for i in range(len(out_ports))]
    assert [a.port for a in actions] == out_ports
    assert buf[24 + 16 * len(out_ports):] == data


def test_rewrites_and_the_tcp_flags_match_decode_to_what_we_meant():
    """Set-field actions run before the outputs; TCP flags go as ONF's experimenter OXM,
    the flags as their own mask (these set, the others any), which the framework reads back."""
    match = FlowKey("10.0.0.11", "10.0.0.1", 6, 8000, 40000).match(3)._replace(tcp_flags=0x01)
    m = FlowMod(7, match, (2, CONTROLLER), 101, 9, 60, 0, (("eth_src", "02:4c:42:00:00:02"),
                                                           ("ipv4_src", "10.0.0.100")))
    msg = decode(wire.flow_mod(m))
    assert dict(msg.match.items()) == {**m.match._replace(tcp_flags=None).oxm(), "tcp_flags": (1, 1)}
    (inst,) = msg.instructions
    assert [(a.key, a.value) if hasattr(a, "key") else a.port for a in inst.actions] == \
        [("eth_src", "02:4c:42:00:00:02"), ("ipv4_src", "10.0.0.100"), 2, CONTROLLER]
