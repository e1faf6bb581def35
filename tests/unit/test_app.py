"""The app adapter as a whole (controller/app.py): every OpenFlow event handler of LoadBalancer
driven with fake datapaths and the framework's own message classes, through a switch's life on
H1-H7: handshake, port description, LLDP discovery, a host and a flow, port status, statistics,
echo, flow removal, an OpenFlow error, disconnection; and the connection guards. Each event
must reach the Balancer (its effect is asserted), what the app sends must be well-formed
OpenFlow 1.3, and no handler may fail into `survives` (an 'error handling' line)."""

from __future__ import annotations

import importlib
import logging
import signal
import struct
import time
import warnings

import pytest

with warnings.catch_warnings():      # eventlet >= 0.36 warns at import that it is deprecated
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from controller.service import compat
    from controller.app import LoadBalancer

from controller.openflow.messages import COOKIE_BASE, GENERATION_SHIFT
from controller.openflow.packets import ARP_REQUEST, BROADCAST, ETH_LLDP, arp_frame, parse
from fakes.switches import SPEC, FakeOFNetwork
from fakes.frames import ipv4_frame
from controller.files import load_spec

ofp = compat.ofproto_v1_3
parser = importlib.import_module(f"{compat.FRAMEWORK}.ofproto.ofproto_v1_3_parser")
ofp_event = compat.ofp_event
HEADER = struct.Struct("!BBHI")
SENT_TYPES = {ofp.OFPT_FLOW_MOD, ofp.OFPT_PACKET_OUT, ofp.OFPT_MULTIPART_REQUEST, ofp.OFPT_ECHO_REQUEST}
HANDLERS = sorted(name for name, f in vars(LoadBalancer).items() if hasattr(f, "callers"))


class FakeSocket:
    def __init__(self) -> None:
        self.shut = False

    def shutdown(self, how) -> None:
        self.shut = True


class FakeDatapath:
    """What the app uses of the framework's Datapath. Records what is sent; a switch that
    answers echo requests at once (the framework's echo reply handler removes the xid)."""
    ofproto, ofproto_parser = ofp, parser

    def __init__(self, dpid: int | None, tcp_port: int) -> None:
        self.id, self.address = dpid, ("127.0.0.1", tcp_port)
        self.xid, self.sent = 0, b""
        self.state = compat.MAIN_DISPATCHER
        self.unreplied_echo_requests: list[int] = []
        self.socket = FakeSocket()

    def set_xid(self, msg) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send(self, buf, close_socket=False) -> bool:
        self.sent += bytes(buf)
        return True

    def send_msg(self, msg, close_socket=False) -> bool:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        if isinstance(msg, parser.OFPEchoRequest) and msg.xid in self.unreplied_echo_requests:
            self.unreplied_echo_requests.remove(msg.xid)
        return self.send(msg.buf)

    def take(self) -> list[tuple[int, bytes]]:
        """(type, whole message) of everything sent since the last take; each must be OpenFlow
        1.3, lengths must add up, and messages the framework can parse must parse."""
        out, buf, self.sent = [], self.sent, b""
        while buf:
            version, kind, length, xid = HEADER.unpack_from(buf)
            assert version == ofp.OFP_VERSION and HEADER.size <= length <= len(buf), buf[:16].hex()
            assert kind in SENT_TYPES, kind
            if kind in (ofp.OFPT_FLOW_MOD, ofp.OFPT_ECHO_REQUEST):
                assert compat._parse(self, version, kind, length, xid, buf[:length]) is not None
            out.append((kind, buf[:length]))
            buf = buf[length:]
        return out


def packet_outs(sent: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """(output port, frame) of each packet-out (OpenFlow 1.3: one output action, then the frame)."""
    out = []
    for kind, m in sent:
        if kind == ofp.OFPT_PACKET_OUT:
            actions_len = struct.unpack_from("!H", m, 16)[0]
            action_type, _, port = struct.unpack_from("!HHI", m, 24)
            assert action_type == ofp.OFPAT_OUTPUT
            out.append((port, m[24 + actions_len:]))
    return out


def flow_mods(sent: list[tuple[int, bytes]]) -> list:
    return [parser.OFPFlowMod.parser(None, *HEADER.unpack_from(m), m) for kind, m in sent if kind == ofp.OFPT_FLOW_MOD]


def port(no: int, down: bool = False):
    return parser.OFPPort(no, "00:00:00:00:00:%02x" % (no % 256), b"p%d" % no, 0,
                          ofp.OFPPS_LINK_DOWN if down else 0, 0, 0, 0, 0, 0, 0)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record) -> None:
        self.records.append(record)


@pytest.fixture
def app(monkeypatch):
    """A LoadBalancer as osken-manager makes it (settings from LB_*), REST and metrics off;
    what it changes in the process (logging, the framework's hooks, SIGHUP) is put back."""
    for var, value in {"LB_TOPOLOGY": str(SPEC), "LB_REST_PORT": "0", "LB_METRICS_PORT": "0"}.items():
        monkeypatch.setenv(var, value)
    lb, root = logging.getLogger("lb"), logging.getLogger()
    saved_lb = (list(lb.handlers), lb.propagate, lb.level)
    saved_filters = {h: list(h.filters) for h in root.handlers}
    for owner, name in ((compat._ofproto_parser, "msg"), (compat.hub.StreamServer, "serve_forever"),
                        (compat._controller.OpenFlowController, "__call__"), (compat.hub, "listen"),
                        (compat.hub.eventlet, "listen")):
        monkeypatch.setattr(owner, name, getattr(owner, name))     # the framework hooks, put back after
    sighup = signal.getsignal(signal.SIGHUP)
    records = Records()
    lb.addHandler(records)
    a = LoadBalancer()
    a.records = records.records
    yield a
    a.close()
    lb.handlers[:], lb.propagate, lb.level = saved_lb
    for h, filters in saved_filters.items():
        h.filters[:] = filters
    signal.signal(signal.SIGHUP, sighup)


def test_every_handler_drives_the_balancer_and_sends_well_formed_openflow(app):
    spec, driven = load_spec(SPEC), set()
    wiring = FakeOFNetwork(spec)
    b = app.balancer

    def handle(name: str, ev) -> None:
        driven.add(name)
        getattr(app, name)(ev)

    def msg_event(msg):
        return ofp_event.ofp_msg_to_ev(msg)

    def state(dp, to):
        ev = ofp_event.EventOFPStateChange(dp)
        ev.state = to
        handle("_state_change", ev)

    def packet_in(dp, in_port: int, data: bytes):
        handle("_packet_in", msg_event(parser.OFPPacketIn(dp, ofp.OFP_NO_BUFFER, len(data), ofp.OFPR_NO_MATCH,
                                                          0, 0, parser.OFPMatch(in_port=in_port), data)))

    # -- handshake and port description -------------------------------------------------------
    dps = {s.dpid: FakeDatapath(s.dpid, 40000 + s.dpid) for s in spec.switches}
    for dp in dps.values():
        state(dp, compat.HANDSHAKE_DISPATCHER)
        assert dp in app._handshaking
        handle("_features", msg_event(parser.OFPSwitchFeatures(dp, dp.id, 0, 254, 0, 0)))
        state(dp, compat.MAIN_DISPATCHER)
        assert app.datapaths[dp.id] is dp and dp not in app._handshaking
        assert [k for k, _ in dp.take()] == [ofp.OFPT_MULTIPART_REQUEST]      # its port description
    for dp in dps.values():
        ports = wiring.ports(wiring.name(dp.id))
        reply = parser.OFPPortDescStatsReply(dp)
        reply.body = [port(p) for p in sorted(ports)] + [port(99, down=True), port(ofp.OFPP_LOCAL)]
        handle("_port_desc", msg_event(reply))
        assert b.net.ports[dp.id] == ports                 # neither the down port nor LOCAL
        sent = dp.take()
        assert any(m.command == ofp.OFPFC_ADD and m.priority == 0 for m in flow_mods(sent))    # table-miss
        assert {p for p, frame in packet_outs(sent) if parse(frame).eth_type == ETH_LLDP} == ports

    # -- discovery: each probe handed to the neighbour as a packet-in --------------------------
    def deliver_probes(sent_by: dict) -> None:
        while sent_by:
            more = {}
            for dpid, sent in sent_by.items():
                for out_port, frame in packet_outs(sent):
                    node, in_port = wiring.peer(dpid, out_port)
                    if node in wiring.dpid and parse(frame).eth_type == ETH_LLDP:
                        packet_in(dps[wiring.dpid[node]], in_port, frame)
            for dp in dps.values():
                sent = dp.take()
                if sent:
                    more[dp.id] = sent
            sent_by = more
    app._probe(time.monotonic())
    deliver_probes({dp.id: dp.take() for dp in dps.values()})
    assert b.net.missing_spec_links() == []

    # -- port status: a link port of s1 goes down, then up ----------------------------------------
    s1 = wiring.dpid["s1"]
    link_port = next(p for (n, p), (peer, _) in wiring.wire.items() if n == "s1" and peer == "s2")
    handle("_port_status", msg_event(parser.OFPPortStatus(dps[s1], ofp.OFPPR_MODIFY, port(link_port, down=True))))
    assert link_port not in b.net.ports[s1] and b.net.missing_spec_links() != []
    handle("_port_status", msg_event(parser.OFPPortStatus(dps[s1], ofp.OFPPR_MODIFY, port(link_port))))
    assert link_port in b.net.ports[s1]
    deliver_probes({s1: dps[s1].take()})                   # the port is probed at once
    assert b.net.missing_spec_links() == []

    # -- a host, and a flow from h1 to h7 --------------------------------------------------------
    h1, h7 = spec.host("h1"), spec.host("h7")
    (s1, h1_port), = [(wiring.dpid[n], p) for (n, p), (peer, _) in wiring.wire.items() if peer == "h1"]
    (s7, h7_port), = [(wiring.dpid[n], p) for (n, p), (peer, _) in wiring.wire.items() if peer == "h7"]
    packet_in(dps[s1], h1_port, arp_frame(ARP_REQUEST, h1.mac, h1.ip, "00:00:00:00:00:00", h7.ip, eth_dst=BROADCAST))
    packet_in(dps[s7], h7_port, arp_frame(ARP_REQUEST, h7.mac, h7.ip, "00:00:00:00:00:00", h1.ip, eth_dst=BROADCAST))
    assert b.net.hosts[h1.mac].at == (s1, h1_port) and b.net.hosts[h7.mac].at == (s7, h7_port)
    for dp in dps.values():
        dp.take()
    data = ipv4_frame(h1.mac, h7.mac, h1.ip, h7.ip, 17, 40000, 7000)
    packet_in(dps[s1], h1_port, data)
    (flow,) = b.flows.values()
    for dpid in flow.path:
        sent = dps[dpid].take()
        assert [m.cookie for m in flow_mods(sent)] == [flow.cookie]
        if dpid == s7:
            assert packet_outs(sent) == [(h7_port, data)]      # released at h7's port

    # -- statistics and echo -----------------------------------------------------------------------
    def xid_of(sent, kind):
        return next(HEADER.unpack_from(m)[3] for k, m in sent
                    if k == ofp.OFPT_MULTIPART_REQUEST and struct.unpack_from("!H", m, HEADER.size)[0] == kind)

    polls = []
    for _ in range(2):          # two polls, every switch answering each, its replies in two parts
        for dp in dps.values():
            dp.take()
        polls.append(time.monotonic())
        app._poll(polls[-1])
        stale = b.counters["stale_replies"]
        for dp in dps.values():
            sent = dp.take()
            assert sorted(k for k, _ in sent) == sorted([ofp.OFPT_ECHO_REQUEST, ofp.OFPT_MULTIPART_REQUEST,
                                                          ofp.OFPT_MULTIPART_REQUEST])
            echo = next(m for k, m in sent if k == ofp.OFPT_ECHO_REQUEST)
            handle("_echo_reply", msg_event(parser.OFPEchoReply(dp, data=echo[HEADER.size:])))
            assert dp.id in b.monitor.rtt_s
            body = [parser.OFPPortStats(p, 10, 10, 1000, 1000, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0)
                    for p in sorted(b.net.ports[dp.id])]
            for part, flags in ((body[:1], ofp.OFPMPF_REPLY_MORE), (body[1:], 0)):
                reply = parser.OFPPortStatsReply(dp, flags=flags)
                reply.xid, reply.body = xid_of(sent, ofp.OFPMP_PORT_STATS), part
                handle("_port_stats", msg_event(reply))
            for flags in (ofp.OFPMPF_REPLY_MORE, 0):      # a flow reply answers its poll at its last part
                reply = parser.OFPFlowStatsReply(dp, flags=flags)
                reply.xid, reply.body = xid_of(sent, ofp.OFPMP_FLOW), []
                handle("_flow_stats", msg_event(reply))
                assert (b.monitor._flow_round.get(dp.id) == polls[-1]) == (not flags)
    # each port's window is known to answer the second poll: matched by xid
    assert {r.polls for e, r in b.monitor.rates.items() if e.dpid in b.net.ports} == {tuple(polls)}
    app._poll(time.monotonic())
    assert b.counters["stale_replies"] == stale             # every switch answered
    for dp in dps.values():
        dp.take()
    earlier = COOKIE_BASE | (b.generation ^ 1) << GENERATION_SHIFT | 5
    output = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(2)])]
    reply = parser.OFPFlowStatsReply(dps[s1])
    reply.body = [parser.OFPFlowStats(0, 3, 0, 100, 10, 0, 0, earlier, 50, 5000, parser.OFPMatch(), output)]
    handle("_flow_stats", msg_event(reply))
    deletes = [m for m in flow_mods(dps[s1].take()) if m.command == ofp.OFPFC_DELETE]
    assert [(m.cookie, m.cookie_mask >> GENERATION_SHIFT) for m in deletes] == [(earlier & ~0xFFFFFFFF, 0xFFFFFFFF)]

    # -- the flow ends; an OpenFlow error; a switch leaves ----------------------------------------
    assert list(b.flows.values()) == [flow]
    handle("_flow_removed", msg_event(parser.OFPFlowRemoved(dps[s1], flow.cookie, 100, ofp.OFPRR_IDLE_TIMEOUT,
                                                            0, 10, 0, 10, 0, 1, 100, parser.OFPMatch())))
    assert b.flows == {}
    error = parser.OFPErrorMsg(dps[s1], ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_TYPE, b"")
    error.xid = 0xFFFF      # as parsed off the wire: every message has one
    handle("_error", msg_event(error))
    s2 = wiring.dpid["s2"]
    dps[s2].state = compat.DEAD_DISPATCHER
    state(dps[s2], compat.DEAD_DISPATCHER)
    assert s2 not in app.datapaths and s2 not in b.net.ports

    assert driven == set(HANDLERS)
    assert [r.getMessage() for r in app.records if r.levelno >= logging.ERROR and r.name == "lb.app"
            and r.getMessage().startswith("error handling")] == []


def test_connection_guards_close_bad_rival_and_slow_connections(app):
    holder = FakeDatapath(1, 40001)
    app._hold(holder)
    rival = FakeDatapath(1, 40101)
    app._claims.add(1)
    app._contest(holder, rival)                 # the holder answers its echo: the rival is closed
    assert app.datapaths[1] is holder and rival.socket.shut and not holder.socket.shut
    garbled = FakeDatapath(None, 40102)
    assert app._admit(garbled, b"\x04\x0a\x00\x04\x00\x00\x00\x01") is False     # length under a header's
    assert garbled.socket.shut and app._admit(garbled, HEADER.pack(4, 2, 8, 1)) is False   # nothing more parsed
    assert app._admit(FakeDatapath(None, 40103), HEADER.pack(4, 2, 8, 1)) is True           # an echo request
    slow = FakeDatapath(None, 40104)
    ev = ofp_event.EventOFPStateChange(slow)
    ev.state = compat.HANDSHAKE_DISPATCHER
    app._state_change(ev)
    app._expire_handshakes(time.monotonic() + 60)
    assert slow.socket.shut and slow not in app._handshaking
    app._reload_model()                          # not bpann: a warning, nothing raised
