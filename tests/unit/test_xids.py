"""Every request the adapter sends has an xid of its own on its connection, and an OpenFlow
error is tied by its xid to the request it answers: logged naming the switch, the error and
the request, and counted by the request's kind and the error's type. The memory of requests
is a fixed ring per connection, whatever a switch sends back."""

from __future__ import annotations

import logging
import struct
import warnings
from collections import Counter
from types import SimpleNamespace

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from prometheus_client import generate_latest

from controller.openflow import xids
from controller.openflow.messages import (
    EchoRequest,
    FlowDelete,
    FlowMod,
    FlowStatsRequest,
    Match,
    PacketOut,
    PortStatsRequest,
)
from controller.service.metrics import Metrics
from controller.service.ratelimit import RateLimit
from controller.service.rest import RestApi
from tests.unit.test_rest import call

with warnings.catch_warnings():      # eventlet >= 0.36 warns at import that it is deprecated
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from controller.app import LoadBalancer

FLOW_MOD_FAILED, TABLE_FULL = ofproto_v1_3.OFPET_FLOW_MOD_FAILED, ofproto_v1_3.OFPFMFC_TABLE_FULL


class FakeDatapath:
    """What the adapter uses of the framework's Datapath: its xid counter (set_xid as the
    framework's), send and send_msg; the bytes sent are kept."""
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, dpid: int) -> None:
        self.id, self.xid, self.wire = dpid, 0, b""

    def set_xid(self, msg) -> int:
        self.xid = (self.xid + 1) & self.ofproto.MAX_XID
        msg.set_xid(self.xid)
        return self.xid

    def send(self, buf: bytes) -> None:
        self.wire += buf

    def send_msg(self, msg) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.send(bytes(msg.buf))

    def sent(self) -> list[tuple[int, int]]:
        """(message type, xid) of each message on the wire, in order."""
        out, at = [], 0
        while at < len(self.wire):
            _, kind, length, xid = struct.unpack_from("!BBHI", self.wire, at)
            out.append((kind, xid))
            at += length
        return out


@pytest.fixture
def app(booted):
    """The adapter, its handlers driven directly, over a booted balancer (the H1-H7 spec, so
    switches have names) with fake connections to s1 and s2."""
    lb = LoadBalancer.__new__(LoadBalancer)     # no framework start-up: threads, listeners, signals
    lb.balancer, lb.ofp_errors, lb.datapaths = booted.balancer, Counter(), {}
    for dpid in (1, 2):
        lb._hold(FakeDatapath(dpid))             # held: its port descriptions asked for, under xid 1
    return lb


def flow_mod(dpid: int, cookie: int = 0x4C42_0001_0000_0007) -> FlowMod:
    return FlowMod(dpid, Match(in_port=1, eth_type=0x800, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.7", ip_proto=1),
                   (2,), 100, cookie)


def error(dp, xid: int, type_: int = FLOW_MOD_FAILED, code: int | None = TABLE_FULL):
    msg = ofproto_v1_3_parser.OFPErrorMsg(dp, type_=type_, code=code, data=b"")
    msg.xid = xid
    return SimpleNamespace(msg=msg)


def test_every_message_gets_the_next_xid_of_its_connection(app):
    s1, s2 = app.datapaths[1], app.datapaths[2]
    app._send([flow_mod(1), PacketOut(1, (1,), b"frame"), FlowDelete(1), PortStatsRequest(1), FlowStatsRequest(1),
               EchoRequest(1, b"probe"), flow_mod(2)])
    framework_echo = ofproto_v1_3_parser.OFPEchoRequest(s1)     # the framework's own sends share the counter
    s1.send_msg(framework_echo)
    app._send([flow_mod(1)])
    assert [xid for _, xid in s1.sent()] == list(range(1, 10))
    assert [kind for kind, _ in s1.sent()] == [18, 14, 13, 14, 18, 18, 2, 2, 14]
    assert s2.sent() == [(18, 1), (14, 2)]          # per connection


def test_xids_wrap_as_the_framework_counter_does(app):
    s1 = app.datapaths[1]
    s1.xid = xids.MAX_XID - 1
    app._send([flow_mod(1), PacketOut(1, (1,), b""), flow_mod(1)])
    assert [xid for _, xid in s1.sent()][1:] == [xids.MAX_XID, 0, 1] and s1.xid == 1
    assert xids.kind(s1.lb_sent.get(0)) == "packet_out" and xids.kind(s1.lb_sent.get(1)) == "flow_mod"


def test_an_error_is_tied_to_its_request_logged_and_counted_by_kind(app, caplog):
    s1 = app.datapaths[1]
    app._send([PacketOut(1, (1,), b"frame"), flow_mod(1), PortStatsRequest(1)])
    (_, flow_mod_xid), = [(k, x) for k, x in s1.sent() if k == 14]
    with caplog.at_level(logging.ERROR, logger="lb.app"):
        app._error(error(s1, flow_mod_xid))
        app._error(error(s1, 4, ofproto_v1_3.OFPET_BAD_REQUEST, ofproto_v1_3.OFPBRC_BAD_MULTIPART))
        app._error(error(s1, 1, ofproto_v1_3.OFPET_BAD_REQUEST, ofproto_v1_3.OFPBRC_BAD_TYPE))
    assert caplog.messages == [
        f"OpenFlow error from s1: OFPET_FLOW_MOD_FAILED OFPFMFC_TABLE_FULL, in answer to flow_mod cookie "
        f"0x4c42000100000007 priority 100 match in_port=1,eth_type=0x800,ipv4_src=10.0.0.1,ipv4_dst=10.0.0.7,"
        f"ip_proto=1 (xid {flow_mod_xid})",
        "OpenFlow error from s1: OFPET_BAD_REQUEST OFPBRC_BAD_MULTIPART, in answer to port_stats (xid 4)",
        "OpenFlow error from s1: OFPET_BAD_REQUEST OFPBRC_BAD_TYPE, in answer to port_desc (xid 1)"]
    assert app.ofp_errors == {("flow_mod", "OFPET_FLOW_MOD_FAILED"): 1, ("port_stats", "OFPET_BAD_REQUEST"): 1,
                              ("port_desc", "OFPET_BAD_REQUEST"): 1}
    assert "poll_errors" not in app.balancer.counters


def test_replies_to_xids_never_sent_or_forgotten_are_unknown(app, caplog):
    s1 = app.datapaths[1]
    app._send([flow_mod(1)])
    app._send([PacketOut(1, (1,), b"")] * xids.REMEMBERED)       # the flow-mod (xid 2) is now the 1025th last
    with caplog.at_level(logging.ERROR, logger="lb.app"):
        for xid in (2, 0, 0xFFFFFFFF, 2000):
            app._error(error(s1, xid))
        app._error(error(s1, 2 + xids.REMEMBERED, ofproto_v1_3.OFPET_BAD_ACTION, ofproto_v1_3.OFPBAC_BAD_OUT_PORT))
    assert [m.split("in answer to ")[1] for m in caplog.messages] == [
        "an unknown request (xid 2)", "an unknown request (xid 0)", "an unknown request (xid 4294967295)",
        "an unknown request (xid 2000)", f"packet_out (xid {2 + xids.REMEMBERED})"]
    assert app.ofp_errors == {("unknown", "OFPET_FLOW_MOD_FAILED"): 4, ("packet_out", "OFPET_BAD_ACTION"): 1}


def test_what_a_switch_sends_cannot_grow_memory_or_mint_labels(app, caplog):
    """Unknown types and codes stay numbers in the log and count as type 'unknown';
    experimenter errors (no code) are named; the ring keeps its size."""
    s1 = app.datapaths[1]
    app._send([flow_mod(1)] * (3 * xids.REMEMBERED))
    sent = s1.lb_sent
    with caplog.at_level(logging.ERROR, logger="lb.app"):
        for type_ in range(100, 600):
            app._error(error(s1, type_, type_, 7))
        app._error(error(s1, 1, ofproto_v1_3.OFPET_EXPERIMENTER, None))
        app._error(error(s1, 2, FLOW_MOD_FAILED, 999))
    assert len(sent._xids) == len(sent._requests) == xids.REMEMBERED
    assert set(app.ofp_errors) == {("unknown", "unknown"), ("unknown", "OFPET_EXPERIMENTER"),
                                   ("unknown", "OFPET_FLOW_MOD_FAILED")}
    assert "from s1: type 100 code 7, in answer" in caplog.messages[0]
    assert "from s1: OFPET_EXPERIMENTER, in answer" in caplog.messages[-2]
    assert "from s1: OFPET_FLOW_MOD_FAILED code 999, in answer" in caplog.messages[-1]


def test_the_error_line_is_one_template_under_the_rate_limit(app):
    """A switch answering every request with an error writes `burst` lines per period."""
    lines, limit = [], RateLimit(burst=20, period_s=10, clock=lambda: 0.0)
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    handler.addFilter(limit)
    logger = logging.getLogger("lb.app")
    logger.addHandler(handler)
    try:
        s1 = app.datapaths[1]
        app._send([flow_mod(1, cookie=c) for c in range(100)])
        for xid in range(2, 102):
            app._error(error(s1, xid))
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 20 and app.ofp_errors[("flow_mod", "OFPET_FLOW_MOD_FAILED")] == 100


def test_errors_by_kind_in_prometheus_and_rest(booted):
    errors = Counter({("flow_mod", "OFPET_FLOW_MOD_FAILED"): 3, ("unknown", "OFPET_BAD_REQUEST"): 1})
    text = generate_latest(Metrics(booted.balancer, ofp_errors=errors).registry).decode()
    assert 'lb_ofp_errors_total{request="flow_mod",type="OFPET_FLOW_MOD_FAILED"} 3.0' in text
    assert 'lb_ofp_errors_total{request="unknown",type="OFPET_BAD_REQUEST"} 1.0' in text
    assert "poll_errors" not in text
    status, body = call(RestApi(booted.balancer, ofp_errors=errors), "/api/v1/counters")
    assert status == 200
    assert body["ofp_errors"] == [{"request": "flow_mod", "type": "OFPET_FLOW_MOD_FAILED", "count": 3},
                                  {"request": "unknown", "type": "OFPET_BAD_REQUEST", "count": 1}]
    assert body["counters"]["datapath_connects"] == 8 and body["counters"]["ofp_bad_messages"] == 0


def test_error_names_come_from_the_framework_constants():
    names = xids.ErrorNames(ofproto_v1_3)
    assert names.describe(5, 1) == "OFPET_FLOW_MOD_FAILED OFPFMFC_TABLE_FULL"
    assert names.describe(1, 9) == "OFPET_BAD_REQUEST OFPBRC_BAD_TABLE_ID"
    assert names.describe(4, 9) == "OFPET_BAD_MATCH OFPBMC_BAD_PREREQ"
    # every type of the spec but the experimenter's has codes, each named once
    assert {t for t, _ in names.codes} == set(names.types) - {0xFFFF}
    assert len(names.codes) == len(set(names.codes.values()))
