"""Packet parsing: well-formed frames decode exactly; any bytes at all end in a Frame or a
ParseError, never another exception (packet-ins are untrusted input)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core import discovery
from controller.core.flows import FlowKey
from controller.openflow.packets import ARP_REQUEST, BROADCAST, ParseError, arp_frame, parse
from fakes.frames import ipv4_frame


def test_tcp_frame_gives_its_five_tuple():
    frame = parse(ipv4_frame("00:00:00:00:00:01", "00:00:00:00:00:07", "10.0.0.1", "10.0.0.7",
                             6, 40000, 5201))
    assert FlowKey.of(frame.ipv4) == FlowKey("10.0.0.1", "10.0.0.7", 6, 40000, 5201)
    assert str(FlowKey.of(frame.ipv4)) == "tcp 10.0.0.1:40000 > 10.0.0.7:5201"


def test_arp_round_trip():
    frame = parse(arp_frame(ARP_REQUEST, "00:00:00:00:00:01", "10.0.0.1", "00:00:00:00:00:00",
                            "10.0.0.7", eth_dst=BROADCAST))
    assert (frame.eth_dst, frame.arp.sender_ip, frame.arp.target_ip) == (BROADCAST, "10.0.0.1", "10.0.0.7")


KEY = b"k" * 16


@given(st.integers(1, 2**64 - 1), st.integers(1, 0xFFFFFF00), st.floats(allow_nan=False))
def test_lldp_probe_round_trip_is_authentic_only_under_its_key(dpid, port, sent_at):
    payload = parse(discovery.probe(dpid, port, sent_at, KEY)).payload
    assert discovery.parse_probe(payload, KEY) == (discovery.End(dpid, port), sent_at, True)
    assert discovery.parse_probe(payload, b"x" * 16) == (discovery.End(dpid, port), sent_at, False)


@given(st.integers(0, 200), st.integers(0, 255))
def test_a_probe_changed_anywhere_still_authentic_still_says_what_was_signed(index, xor):
    """A host that rewrites a probe's switch, port or time (or its signature) gets it refused."""
    payload = bytearray(parse(discovery.probe(5, 2, 12.5, KEY)).payload)
    payload[index % len(payload)] ^= xor or 1
    probe = discovery.parse_probe(bytes(payload), KEY)
    assert probe is None or not probe.authentic or (probe.src, probe.sent_at) == ((5, 2), 12.5)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_parse_error(data):
    try:
        frame = parse(data)
    except ParseError:
        return
    discovery.parse_probe(frame.payload, KEY)   # must not raise either
    if frame.ipv4:
        FlowKey.of(frame.ipv4).match(1)


def vlan_tagged(frame: bytes) -> bytes:
    return frame[:12] + b"\x81\x00\x00\x05" + frame[12:]


ARP = arp_frame(ARP_REQUEST, "00:00:00:00:00:01", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.7", eth_dst=BROADCAST)
ICMP = ipv4_frame("00:00:00:00:00:01", "00:00:00:00:00:07", "10.0.0.1", "10.0.0.7", proto=1)
# Well-formed frames and where their last header ends: ARP (28 bytes), IPv4 (20), both behind
# an 802.1Q tag too. Cut anywhere before that, only the length checks stand between the
# parser and a struct.error or an IndexError.
WHOLE = [(ARP, 14 + 28), (ICMP, 14 + 20), (vlan_tagged(ARP), 18 + 28), (vlan_tagged(ICMP), 18 + 20)]


@given(st.sampled_from(WHOLE).flatmap(lambda w: st.tuples(st.just(w[0]), st.integers(14, w[1] - 1))),
       st.binary(min_size=12, max_size=12))
def test_truncated_ip_and_arp_raise_parse_error(whole_and_cut, addresses):
    """A frame that ends inside its ARP, IPv4 or 802.1Q header is refused, as ParseError."""
    whole, cut = whole_and_cut
    assert parse(whole)                      # the frame is well-formed before it is cut
    with pytest.raises(ParseError):
        parse(addresses + whole[12:cut])


@pytest.mark.parametrize("proto", [6, 17])
@pytest.mark.parametrize("ports_bytes", [0, 1, 2, 3])
def test_a_first_fragment_cut_inside_its_ports_raises_parse_error(proto, ports_bytes):
    """Without both ports there is no 5-tuple to route on."""
    whole = ipv4_frame("00:00:00:00:00:01", "00:00:00:00:00:07", "10.0.0.1", "10.0.0.7", proto)
    with pytest.raises(ParseError, match="truncated TCP/UDP header"):
        parse(whole[:14 + 20 + ports_bytes])
